"""`HfEmbedForCausalLM` as a transformers citizen: outputs, generate, pipeline, PEFT, positions, tensor parallel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, pipeline

from hf_embed import HfEmbedConfig, HfEmbedForCausalLM, gpt2_tokenizer

SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]


def causal_lm(scheme: str = "absolute", **overrides) -> HfEmbedForCausalLM:
    torch.manual_seed(0)
    config = HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, head_dim=8, **overrides)
    model = HfEmbedForCausalLM(config).eval()
    if scheme == "absolute":  # positions strong enough to change the argmax: generation then tests them
        with torch.no_grad():
            model.model.embeddings.wpe.weight.mul_(20)
    return model


@pytest.mark.parametrize("scheme", SCHEMES)
def test_return_dict_and_hidden_states(scheme, tiny_ids):
    model = causal_lm(scheme)
    out = model(tiny_ids, labels=tiny_ids, output_hidden_states=True)
    hidden = model.model(tiny_ids).last_hidden_state
    assert len(out.hidden_states) == 1 and torch.equal(out.hidden_states[0], hidden)  # no layers: the embeddings
    torch.testing.assert_close(out.logits, hidden @ model.model.embeddings.wte.weight.T)
    loss, logits, (hidden_states,) = model(tiny_ids, labels=tiny_ids, output_hidden_states=True, return_dict=False)
    assert torch.equal(loss, out.loss) and torch.equal(logits, out.logits) and torch.equal(hidden_states, hidden)
    model.config.return_dict = False  # from the config, as transformers reads it
    (logits,) = model(tiny_ids)
    assert torch.equal(logits, out.logits)
    model.config.output_hidden_states = True
    assert len(model(tiny_ids)) == 2
    last = causal_lm(scheme)(tiny_ids, logits_to_keep=1).logits
    assert last.shape == (13, 1, 99) and torch.equal(last, out.logits[:, -1:])


def padded_causal_lm() -> HfEmbedForCausalLM:
    """99 real ids in a table padded to 128 rows, whose padding rows would win every step if they were not masked:
    every real row and every hidden state has a large component along dimension 0, and the padding rows have a
    larger one (their logits are about 3x the real ones')."""
    model = causal_lm()
    model.resize_token_embeddings(pad_to_multiple_of=64)
    with torch.no_grad():
        wte = model.get_input_embeddings().weight  # (128, 32), the head's too
        wte[:99, 0] += 10.0
        wte[99:] = 0.0
        wte[99:, 0] = 30.0
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_padding_rows_of_a_padded_vocabulary_get_no_probability(dtype, tiny_ids, tmp_path):
    model = padded_causal_lm().to(dtype)
    assert (model.config.vocab_size, model.config.unpadded_vocab_size) == (128, 99)
    assert model.lm_head.weight is model.get_input_embeddings().weight and model.lm_head.weight.shape == (128, 32)
    logits = model(tiny_ids).logits  # (13, 7, 128)
    assert torch.equal(logits[..., 99:], torch.full_like(logits[..., 99:], torch.finfo(dtype).min))
    assert torch.equal(logits[..., :99], model.model(tiny_ids).last_hidden_state @ model.lm_head.weight[:99].T)
    assert torch.softmax(logits.float(), dim=-1)[..., 99:].max() == 0
    prompt = tiny_ids[:4, :3]
    greedy = model.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0)
    torch.manual_seed(0)
    sampled = model.generate(prompt, max_new_tokens=10, do_sample=True, top_k=0, temperature=2.0, pad_token_id=0)
    assert greedy[:, 3:].max() < 99 and sampled[:, 3:].max() < 99
    model.config.unpadded_vocab_size = None  # the same model without the mask: the padding rows win
    assert model.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0)[:, 3:].min() >= 99
    model.config.unpadded_vocab_size = 99
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=dtype).eval()
    assert loaded.config.unpadded_vocab_size == 99 and torch.equal(loaded(tiny_ids).logits, logits)


def test_resize_token_embeddings_records_the_real_vocabulary(tiny_ids):
    model = causal_lm()
    model.resize_token_embeddings(130, pad_to_multiple_of=64)  # a tokenizer of 130 ids, rows to 192
    assert (model.config.vocab_size, model.config.unpadded_vocab_size, model.config.real_vocab_size) == (192, 130, 130)
    model.resize_token_embeddings(pad_to_multiple_of=128)  # the real vocabulary stays 130; rows to 256
    assert (model.config.vocab_size, model.config.unpadded_vocab_size) == (256, 130)
    model.resize_token_embeddings(140)  # no padding asked: none left
    assert (model.config.vocab_size, model.config.unpadded_vocab_size) == (140, None)
    assert model(tiny_ids).logits.shape == (13, 7, 140)
    labels = tiny_ids
    padded = padded_causal_lm()
    unmasked_logits = padded.model(tiny_ids).last_hidden_state @ padded.lm_head.weight[:99].T  # (13, 7, 99)
    expected = torch.nn.functional.cross_entropy(unmasked_logits[:, :-1].reshape(-1, 99), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(padded(tiny_ids, labels=labels).loss, expected)  # the padding rows take no mass


def test_keywords_reach_the_loss_and_misspelt_ones_are_refused(tiny_ids):
    model = causal_lm()
    with pytest.raises(TypeError, match="'attention_mak'; did you mean 'attention_mask'"):
        model(tiny_ids, attention_mak=torch.ones_like(tiny_ids))
    mean = model(tiny_ids, labels=tiny_ids).loss
    summed = model(tiny_ids, labels=tiny_ids, num_items_in_batch=torch.tensor(1)).loss  # Trainer: sum / items
    torch.testing.assert_close(summed, mean * 13 * 6)
    shifted = torch.cat((tiny_ids[:, 1:], torch.full((13, 1), -100)), dim=1)  # packed sequences pass these
    torch.testing.assert_close(model(tiny_ids, shift_labels=shifted).loss, mean)
    generated = model.generate(tiny_ids[:2, :3], max_new_tokens=2, do_sample=False, pad_token_id=0, use_cache=True)
    assert generated.shape == (2, 5)  # what generate passes is accepted


def greedy_loop(model, ids, mask, steps):
    """Greedy decoding written out: the whole sequence each step, positions from the mask."""
    for _ in range(steps):
        with torch.no_grad():
            logits = model(ids, attention_mask=mask).logits[:, -1]  # (B, V)
        token = logits.argmax(-1, keepdim=True)  # (B, 1)
        ids, mask = torch.cat((ids, token), 1), torch.cat((mask, torch.ones_like(token)), 1)
    return ids


@pytest.mark.parametrize("scheme", SCHEMES)
def test_generate_greedy_equals_a_hand_written_loop(scheme):
    model = causal_lm(scheme)
    prompt = torch.tensor([[0, 0, 5, 17, 42], [7, 8, 9, 10, 11]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])  # the first row is left-padded
    generated = model.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, greedy_loop(model, prompt, mask, 6))
    alone = model.generate(prompt[:1, 2:], max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(generated[0, 2:], alone[0])  # the padded row continues as it would unpadded
    if scheme == "absolute":  # the positions decide here: ignoring the mask would give other tokens
        ones = torch.ones_like(mask[:1])
        shifted = model.generate(prompt[:1], attention_mask=ones, max_new_tokens=6, do_sample=False, pad_token_id=0)
        assert not torch.equal(shifted[0, 5:], generated[0, 5:])
    embedded = model.generate(
        inputs_embeds=model.get_input_embeddings()(prompt[1:]), max_new_tokens=6, do_sample=False, pad_token_id=0
    )
    assert torch.equal(embedded[0], generated[1, 5:])  # a prompt given as embeddings stays in front


def test_generate_sampling_equals_a_hand_written_loop():
    model = causal_lm("absolute")
    prompt = torch.tensor([[3, 4, 5], [6, 7, 8]])
    torch.manual_seed(123)
    sampled = model.generate(prompt, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=8, pad_token_id=0)
    torch.manual_seed(123)
    ids = prompt
    for _ in range(8):
        with torch.no_grad():
            probs = torch.softmax(model(ids).logits[:, -1], dim=-1)  # (B, V)
        ids = torch.cat((ids, torch.multinomial(probs, num_samples=1)), 1)
    assert torch.equal(sampled, ids)


@pytest.mark.slow
def test_text_generation_pipeline(tmp_path):
    model = causal_lm("absolute", vocab_size=50257)
    tokenizer = gpt2_tokenizer()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    generator = pipeline("text-generation", model=str(tmp_path))
    prompt = "The lighthouse keeper"
    text = generator(prompt, max_new_tokens=5, do_sample=False)[0]["generated_text"]
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    expected = greedy_loop(model, ids, torch.ones_like(ids), 5)
    assert text == tokenizer.decode(expected[0])
    batch = generator([prompt, "A much longer prompt about the winter harbour"], max_new_tokens=3, do_sample=False)
    assert batch[0][0]["generated_text"] == tokenizer.decode(expected[0, : ids.shape[1] + 3])


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize(
    ("tied", "targets"),
    [(False, ["wte", "lm_head"]), (True, ["wpe"])],
    ids=["untied-wte-and-head", "tied-wpe"],
)
def test_peft_lora_trains_saves_reloads_and_merges(tmp_path, tiny_ids, tied, targets):
    """LoRA with `task_type="CAUSAL_LM"`: trains, generates, saves, reloads, and the merged model equals the adapter."""
    peft = pytest.importorskip("peft")
    base = causal_lm("absolute", tie_word_embeddings=tied)
    base.save_pretrained(tmp_path / "base")
    model = peft.get_peft_model(base, peft.LoraConfig(task_type="CAUSAL_LM", target_modules=targets, r=4, lora_alpha=8))
    assert type(model).__name__ == "PeftModelForCausalLM"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    with torch.no_grad():
        before = model(input_ids=tiny_ids, labels=tiny_ids).loss.item()
    model.train()
    for _ in range(20):
        optimizer.zero_grad()
        model(input_ids=tiny_ids, labels=tiny_ids).loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model(input_ids=tiny_ids, labels=tiny_ids).loss.item()
        tuned = model(input_ids=tiny_ids).logits
    assert after < before - 0.1, (before, after)  # it learned
    prompt, ones = tiny_ids[:2, :3], torch.ones(2, 3, dtype=torch.long)
    generated = model.generate(input_ids=prompt, attention_mask=ones, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, greedy_loop(model, prompt, ones, 4))
    model.save_pretrained(tmp_path / "adapter")
    reloaded = peft.PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "adapter"
    )
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(input_ids=tiny_ids).logits, tuned)
        merged = reloaded.merge_and_unload()
        assert type(merged) is HfEmbedForCausalLM
        assert (merged.lm_head.weight is merged.model.embeddings.wte.weight) == tied
        torch.testing.assert_close(merged(tiny_ids).logits, tuned, rtol=1e-5, atol=1e-4)


def test_peft_lora_on_the_tied_table_merges_into_the_shared_table(tiny_ids):
    """As with transformers' GPT-2: an adapter on `wte` changes the input side only, and merging writes into the
    table that the head shares, so the head changes too (README, "In the ecosystem")."""
    peft = pytest.importorskip("peft")
    base = causal_lm("absolute")
    table = base.model.embeddings.wte.weight.detach().clone()
    lora = peft.LoraConfig(task_type="CAUSAL_LM", target_modules=["wte"], r=4, init_lora_weights=False)
    model = peft.get_peft_model(base, lora).eval()
    delta = model.base_model.model.model.embeddings.wte.get_delta_weight("default").detach()  # (V, D)
    merged = model.merge_and_unload()
    assert merged.lm_head.weight is merged.model.embeddings.wte.weight  # still one table
    torch.testing.assert_close(merged.model.embeddings.wte.weight.detach(), table + delta)


@pytest.mark.parametrize("scheme", ["absolute", "sinusoidal"])
def test_position_embeddings_of_the_causal_lm(scheme, tiny_ids):
    """The causal LM resizes through its embedding stage; the first rows are kept, as in transformers' contract."""
    model = causal_lm(scheme)
    assert model.get_position_embeddings() is model.model.embeddings.wpe
    table = model.get_position_embeddings().weight.detach().clone()  # (16, 32)
    model.resize_position_embeddings(32)
    assert model.config.max_position_embeddings == 32 and model.get_position_embeddings().weight.shape == (32, 32)
    assert torch.equal(model.get_position_embeddings().weight[:16], table)
    long = torch.randint(0, 99, (2, 30))
    assert model(long).logits.shape == (2, 30, 99)
    model.resize_position_embeddings(8)
    assert model.config.max_position_embeddings == 8
    assert torch.equal(model.get_position_embeddings().weight, table[:8])
    assert model(tiny_ids).logits.shape == (13, 7, 99)


TP_WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    from transformers.distributed import DistributedConfig
    import hf_embed  # registers the model

    folder = sys.argv[1]
    ref = load_file(folder + "/ref.safetensors")
    model = AutoModelForCausalLM.from_pretrained(
        folder + "/model", distributed_config=DistributedConfig(tp_plan="auto")
    ).eval()
    wte, head = model.model.embeddings.wte.weight, model.lm_head.weight
    assert type(wte).__name__ == "DTensor" and head is wte, (type(wte), head is wte)
    assert wte.to_local().shape == (50, 32), wte.to_local().shape  # vocabulary-parallel: half the rows each
    logits = model(ref["ids"]).logits
    assert type(logits) is torch.Tensor and torch.equal(logits, ref["logits"]), (logits - ref["logits"]).abs().max()
    generated = model.generate(ref["ids"][:2, :3], max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, ref["generated"]), (generated, ref["generated"])
    model.save_pretrained(folder + "/saved")
    dist.barrier()
    open(f"{folder}/rank{dist.get_rank()}.ok", "w").close()
    """
)


@pytest.mark.slow
def test_tensor_parallel_with_the_tied_head_two_ranks(tmp_path, tiny_ids):
    model = causal_lm("absolute", vocab_size=100)
    model.save_pretrained(tmp_path / "model")
    generated = model.generate(tiny_ids[:2, :3], max_new_tokens=4, do_sample=False, pad_token_id=0)
    reference = {"ids": tiny_ids, "logits": model(tiny_ids).logits.detach().contiguous(), "generated": generated}
    save_file(reference, tmp_path / "ref.safetensors")
    (tmp_path / "worker.py").write_text(TP_WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, str(tmp_path / "worker.py"), str(tmp_path)], capture_output=True, text=True, timeout=240, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "rank0.ok").is_file() and (tmp_path / "rank1.ok").is_file()
    with safe_open(tmp_path / "saved" / "model.safetensors", framework="pt") as saved:
        assert sorted(saved.keys()) == ["model.embeddings.wpe.weight", "model.embeddings.wte.weight"]  # one table
    saved, original = load_file(tmp_path / "saved" / "model.safetensors"), model.state_dict()
    assert all(torch.equal(tensor, original[name]) for name, tensor in saved.items())  # gathered whole
