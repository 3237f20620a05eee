"""The ecosystem paths: the causal-LM head with tied tables, pipelines, and tensor parallelism."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, pipeline

from hf_embed import HfEmbedConfig, HfEmbedForCausalLM, HfEmbedModel, create_dataloader, gpt2_tokenizer


def test_causal_lm_head_is_tied_and_computes_the_loss(tiny_ids):
    model = HfEmbedForCausalLM(HfEmbedConfig.from_preset("tiny")).eval()
    wte = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is wte
    out = model(tiny_ids, labels=tiny_ids)
    hidden = model.model(tiny_ids).last_hidden_state
    torch.testing.assert_close(out.logits, hidden @ wte.T)
    expected = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 99), tiny_ids[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, expected)


def test_causal_lm_tying_survives_save_and_load(tiny_ids, tmp_path):
    model = HfEmbedForCausalLM(HfEmbedConfig.from_preset("tiny")).eval()
    model.save_pretrained(tmp_path)
    assert sorted(load_file(tmp_path / "model.safetensors")) == [
        "model.embeddings.wpe.weight",
        "model.embeddings.wte.weight",
    ]
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(loaded) is HfEmbedForCausalLM
    assert loaded.lm_head.weight is loaded.model.embeddings.wte.weight
    assert torch.equal(loaded(tiny_ids).logits, model(tiny_ids).logits)
    base = AutoModel.from_pretrained(tmp_path)  # the embedding stage alone, from the head model's folder
    assert torch.equal(base(tiny_ids).last_hidden_state, model.model(tiny_ids).last_hidden_state)


@pytest.mark.slow
def test_trainer_trains_the_tables_alone(tmp_path):
    """A bigram-with-positions model trained with transformers' Trainer on hf-embed's windows."""
    torch.manual_seed(0)
    text = " ".join(["one two three four five six seven eight nine ten eleven"] * 60)  # each next token is certain
    tokenizer = gpt2_tokenizer()
    loader = create_dataloader(text, tokenizer=tokenizer, batch_size=8, max_length=16, stride=16, seed=0)
    ids = sorted({int(i) for x, _ in loader.dataset for i in x})
    remap = {old: new for new, old in enumerate(ids)}  # a small vocabulary keeps the test fast
    rows = [{"input_ids": torch.tensor([remap[int(i)] for i in x])} for x, _ in loader.dataset]
    model = HfEmbedForCausalLM(HfEmbedConfig(vocab_size=len(ids), hidden_size=32, max_position_embeddings=16))

    def collate(batch):
        input_ids = torch.stack([row["input_ids"] for row in batch])
        return {"input_ids": input_ids, "labels": input_ids}

    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=8,
        max_steps=300,
        learning_rate=0.05,
        logging_steps=50,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    batch = collate(rows[:64])
    with torch.no_grad():
        before = model(**batch).loss.item()  # about ln(vocab): nothing learned yet
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate)
    trainer.train()
    with torch.no_grad():
        after = model(**batch).loss.item()
    assert after < 0.7 * before, (before, after)  # a tied bigram cannot reach zero; it must clearly learn
    model.save_pretrained(tmp_path / "trained")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "trained")
    assert torch.equal(reloaded.model.embeddings.wte.weight, model.model.embeddings.wte.weight)


@pytest.mark.slow
def test_feature_extraction_pipeline(tmp_path):
    model = HfEmbedModel(HfEmbedConfig.from_preset("gpt2", hidden_size=64, embedding_dropout=0.0)).eval()
    tokenizer = gpt2_tokenizer()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    extractor = pipeline("feature-extraction", model=str(tmp_path))
    texts = ["short one", "a much longer text with many more tokens in it, and a comma"]
    single = extractor(texts[0], return_tensors=True)
    reference = model(**tokenizer(texts[0], return_tensors="pt")).last_hidden_state
    assert single.shape == (1, 2, 64) and torch.equal(single, reference)
    batched = extractor(texts, batch_size=2, return_tensors=True)
    for text, features in zip(texts, batched, strict=True):
        expected = model(**tokenizer(text, return_tensors="pt")).last_hidden_state
        assert torch.equal(features[:, : expected.shape[1]], expected)  # right padding: real tokens first
    assert AutoTokenizer.from_pretrained(tmp_path).pad_token == "<|endoftext|>"


TP_WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from safetensors.torch import load_file
    from transformers import AutoModel
    from transformers.distributed import DistributedConfig
    import hf_embed  # registers the model

    folder = sys.argv[1]
    ref = load_file(folder + "/ref.safetensors")
    model = AutoModel.from_pretrained(folder + "/model", distributed_config=DistributedConfig(tp_plan="auto")).eval()
    weight = model.embeddings.wte.weight
    assert type(weight).__name__ == "DTensor", type(weight)
    local = weight.to_local()
    assert local.shape == (50, 32), local.shape  # vocabulary-parallel: half the rows each
    out = model(ref["ids"]).last_hidden_state
    assert torch.equal(out, ref["out"]), (out - ref["out"]).abs().max()
    model.save_pretrained(folder + "/saved")
    dist.barrier()
    open(f"{folder}/rank{dist.get_rank()}.ok", "w").close()
    """
)


@pytest.mark.slow
def test_tensor_parallel_two_ranks(tmp_path, tiny_ids):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", vocab_size=100)).eval()
    model.save_pretrained(tmp_path / "model")
    save_file({"ids": tiny_ids, "out": model(tiny_ids).last_hidden_state.contiguous()}, tmp_path / "ref.safetensors")
    (tmp_path / "worker.py").write_text(TP_WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, str(tmp_path / "worker.py"), str(tmp_path)], capture_output=True, text=True, timeout=180, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "rank0.ok").is_file() and (tmp_path / "rank1.ok").is_file()
    saved, original = load_file(tmp_path / "saved" / "model.safetensors"), model.state_dict()
    assert saved.keys() == original.keys()
    assert all(torch.equal(saved[k], original[k]) for k in saved)  # gathered full weights


def test_parallel_plans_name_the_right_modules():
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    modules = dict(model.named_modules())
    for plan in (model.config.base_model_tp_plan, model.config.base_model_pp_plan, model.config.base_model_fsdp_plan):
        assert plan and all(name in modules for name in plan)
    assert model.config.base_model_tp_plan == {"embeddings.wte": "embedding_rowwise"}


@pytest.mark.slow
def test_train_tiny_gpt_script(tmp_path, monkeypatch):
    """scripts/train_tiny_gpt.py, a few steps: GPT-2 trains on hf-embed's tables; they come back as hf-embed."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_tiny_gpt.py"
    spec = importlib.util.spec_from_file_location("train_tiny_gpt", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    losses, gpt2, embeddings = script.train(script.SAMPLE_TEXT, steps=20, max_length=16, hidden_size=32)
    assert len(losses) >= 5 and losses[-1] < losses[len(losses) // 2] < losses[0] and losses[-1] < 0.9 * losses[0]
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight  # the head stayed tied to hf-embed's table
    assert gpt2.transformer.wte.weight.shape == embeddings.embeddings.wte.weight.shape
    assert not torch.equal(gpt2.transformer.wte.weight, embeddings.embeddings.wte.weight)  # trained from the copy
    monkeypatch.chdir(tmp_path)
    assert script.main(["--steps", "20", "--output", str(tmp_path / "out")]) == 0
    reloaded = AutoModel.from_pretrained(tmp_path / "out")
    assert reloaded.config.hidden_size == 64
