"""HfEmbeddings / HfEmbedModel: semantics, GPT-2 parity, save/load, dtypes, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, GPT2Config, GPT2LMHeadModel, GPT2Model

from helpers import MODEL_FILES, SCHEMES, model_for
from hf_embed import HfEmbedConfig, HfEmbeddings, HfEmbedModel, HfEmbedModelOutput
from hf_embed.position_embeddings import sinusoid_table


def small_gpt2(cls=GPT2Model):
    torch.manual_seed(0)
    return cls(GPT2Config(vocab_size=99, n_embd=32, n_positions=16, n_layer=1, n_head=2)).eval()


def gpt2_stage(gpt2, ids, position_ids=None):
    """transformers GPT-2's embedding stage, written out as GPT2Model.forward computes it."""
    if position_ids is None:
        position_ids = torch.arange(ids.shape[1]).unsqueeze(0)
    return gpt2.wte(ids) + gpt2.wpe(position_ids)


def test_output_is_token_plus_position(tiny_config, tiny_ids):
    model = HfEmbedModel(tiny_config).eval()
    out = model(tiny_ids)
    assert isinstance(out, HfEmbedModelOutput)
    assert out.last_hidden_state.shape == (13, 7, 32)
    emb = model.embeddings
    expected = emb.wte.weight[tiny_ids] + emb.wpe.weight[:7]
    torch.testing.assert_close(out.last_hidden_state, expected, rtol=0, atol=0)
    assert model(tiny_ids, return_dict=False)[0].equal(out.last_hidden_state)


def test_hf_embeddings_is_a_plain_module(tiny_config, tiny_ids):
    layer = HfEmbeddings(tiny_config).eval()
    assert not hasattr(layer, "config")  # usable inside any model
    for table in (layer.wte.weight, layer.wpe.weight):  # initialized on its own: GPT-2's normal(0, 0.02)
        assert torch.isfinite(table).all() and 0.015 < table.std().item() < 0.025
    hidden_states, position_embeddings = layer(tiny_ids)
    assert hidden_states.shape == (13, 7, 32) and position_embeddings is None
    assert torch.equal(hidden_states, layer.wte.weight[tiny_ids] + layer.wpe.weight[:7])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("initializer_range", [0.02, None])
def test_layer_alone_draws_the_tables_of_the_model(scheme, initializer_range):
    """Same seed, same tables, and the same random stream afterwards: each table drawn once, wte then wpe."""
    config = HfEmbedConfig.from_preset(
        "tiny", position_embedding_type=scheme, head_dim=8, initializer_range=initializer_range
    )
    torch.manual_seed(11)
    layer = HfEmbeddings(config)
    after_layer = torch.rand(3)
    torch.manual_seed(11)
    model = HfEmbedModel(config)
    after_model = torch.rand(3)
    assert torch.equal(after_layer, after_model)
    mine, theirs = layer.state_dict(keep_vars=True), model.embeddings.state_dict(keep_vars=True)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    if scheme == "sinusoidal":
        assert torch.equal(layer.wpe.table, sinusoid_table(16, 32).float())

    torch.manual_seed(11)  # the draws, written out
    std = 1.0 if initializer_range is None else initializer_range
    tables = [torch.empty(99, 32).normal_(0.0, std)]
    if scheme in ("absolute", "relative"):
        tables.append(torch.empty(*layer.wpe.weight.shape).normal_(0.0, std))
    assert torch.equal(torch.rand(3), after_layer)
    assert torch.equal(layer.wte.weight, tables[0])
    if len(tables) == 2:
        assert torch.equal(layer.wpe.weight, tables[1])


def test_meta_device_construction_allocates_and_draws_nothing():
    config = HfEmbedConfig.from_preset("gpt2-xl")  # 50257 x 1600 and 1024 x 1600
    state = torch.random.get_rng_state()
    with torch.device("meta"):
        for module in (HfEmbeddings(config), HfEmbedModel(config)):
            assert all(t.is_meta for t in (*module.parameters(), *module.buffers()))
    with torch.device("meta"):
        sinusoidal = HfEmbeddings(HfEmbedConfig.from_preset("gpt2-xl", position_embedding_type="sinusoidal"))
    assert sinusoidal.wpe.table.is_meta
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("cls", [GPT2Model, GPT2LMHeadModel])
def test_gpt2_parity(cls, tiny_ids):
    gpt2 = small_gpt2(cls)
    transformer = getattr(gpt2, "transformer", gpt2)
    model = HfEmbedModel.from_gpt2(gpt2).eval()
    assert model.config.hidden_size == 32 and model.config.max_position_embeddings == 16
    assert torch.equal(model(tiny_ids).last_hidden_state, gpt2_stage(transformer, tiny_ids))
    position_ids = torch.randint(0, 16, tiny_ids.shape, generator=torch.Generator().manual_seed(1))
    assert torch.equal(
        model(tiny_ids, position_ids=position_ids).last_hidden_state, gpt2_stage(transformer, tiny_ids, position_ids)
    )


def test_gpt2_parity_with_gpt2model_hidden_states(tiny_ids):
    """hidden_states[0] of GPT2Model is its embedding stage (dropout off in eval)."""
    gpt2 = small_gpt2()
    model = HfEmbedModel.from_gpt2(gpt2).eval()
    with torch.no_grad():
        reference = gpt2(tiny_ids, output_hidden_states=True).hidden_states[0]
    assert torch.equal(model(tiny_ids).last_hidden_state, reference)


@pytest.mark.parametrize("with_positions", [False, True])
def test_gpt2_parity_with_token_types_positions_and_masks(tiny_ids, with_positions):
    """GPT-2 embeds `token_type_ids` with `wte` and adds them after the positions: bit for bit, masks included."""
    gpt2 = small_gpt2()
    model = HfEmbedModel.from_gpt2(gpt2).eval()
    generator = torch.Generator().manual_seed(2)
    token_types = torch.randint(0, 99, tiny_ids.shape, generator=generator)
    mask = torch.ones_like(tiny_ids)
    kwargs = {"token_type_ids": token_types, "attention_mask": mask}
    if with_positions:  # with explicit positions a padded mask means the same to both models
        mask[:5, :3] = 0
        kwargs["position_ids"] = torch.randint(0, 16, tiny_ids.shape, generator=generator)
    with torch.no_grad():
        reference = gpt2(tiny_ids, output_hidden_states=True, **kwargs).hidden_states[0]
    assert torch.equal(model(tiny_ids, **kwargs).last_hidden_state, reference)
    one_row = {**kwargs, "token_type_ids": token_types[:1]}  # (1, T) token types broadcast over the batch, as in GPT-2
    with torch.no_grad():
        reference = gpt2(tiny_ids, output_hidden_states=True, **one_row).hidden_states[0]
    assert torch.equal(model(tiny_ids, **one_row).last_hidden_state, reference)
    with pytest.raises(ValueError, match=r"token type id 99 at \[0, 1\] is outside the vocabulary \(size 99\)"):
        model(tiny_ids[:1, :2], token_type_ids=torch.tensor([[0, 99]]))
    with pytest.raises(ValueError, match=r"`token_type_ids` must have shape \(13, 7\) or \(1, 7\), got \(13, 6\)"):
        model(tiny_ids, token_type_ids=token_types[:, :6])


def test_output_hidden_states_is_the_embedding_output(tiny_config, tiny_ids):
    model = HfEmbedModel(tiny_config).eval()
    out = model(tiny_ids, output_hidden_states=True)
    assert len(out.hidden_states) == 1 and out.hidden_states[0] is out.last_hidden_state
    assert model(tiny_ids).hidden_states is None
    as_tuple = model(tiny_ids, output_hidden_states=True, return_dict=False)
    assert len(as_tuple) == 2 and torch.equal(as_tuple[0], out.last_hidden_state) and as_tuple[1][0] is as_tuple[0]
    model.config.output_hidden_states = True
    assert len(model(tiny_ids).hidden_states) == 1


def test_unknown_keywords_are_refused_by_name(tiny_config, tiny_ids):
    model = HfEmbedModel(tiny_config).eval()
    mask = torch.ones_like(tiny_ids)
    with pytest.raises(TypeError, match=r"argument 'attention_mak'; did you mean 'attention_mask'\?"):
        model(tiny_ids, attention_mak=mask)
    with pytest.raises(TypeError, match=r"HfEmbedModel.forward\(\) got an unexpected keyword argument 'head_mask'"):
        model(tiny_ids, head_mask=None)
    with pytest.raises(TypeError, match="'cache_position'"):  # positions are position_ids or past_key_values_length
        model(tiny_ids, cache_position=torch.arange(7))


def test_keywords_of_transformers_machinery_are_accepted(tiny_config, tiny_ids):
    """What generation, Trainer and packing collators pass: accepted and ignored (the output is unchanged)."""
    from transformers import DataCollatorWithFlattening, DynamicCache
    from transformers.utils.generic import TransformersKwargs

    from hf_embed.validation import IGNORED_FORWARD_KEYWORDS

    explicit = {"position_ids", "output_hidden_states"}  # parameters of the forward itself
    assert set(TransformersKwargs.__annotations__) - explicit <= IGNORED_FORWARD_KEYWORDS
    model = HfEmbedModel(tiny_config).eval()
    expected = model(tiny_ids).last_hidden_state
    machinery = {
        "cache": DynamicCache(),
        "past_key_values": None,
        "use_cache": True,
        "output_attentions": False,
        "logits_to_keep": 1,
        "num_items_in_batch": torch.tensor(91),
    }
    assert torch.equal(model(tiny_ids, **machinery).last_hidden_state, expected)

    collate = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_seq_idx=True, return_tensors="pt")
    batch = collate([{"input_ids": [1, 2, 3]}, {"input_ids": [4, 5]}])
    batch.pop("labels")
    packed = model(**batch).last_hidden_state  # each example restarts at position 0
    assert torch.equal(packed[0, :3], model(torch.tensor([[1, 2, 3]])).last_hidden_state[0])
    assert torch.equal(packed[0, 3:], model(torch.tensor([[4, 5]])).last_hidden_state[0])

    cache = DynamicCache()
    cache.update(torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2), 0)
    with pytest.raises(ValueError, match=r"`cache` holds 4 tokens.*past_key_values_length=4"):
        model(tiny_ids, cache=cache)


def test_from_gpt2_directory(tmp_path, tiny_ids):
    gpt2 = small_gpt2(GPT2LMHeadModel)
    gpt2.save_pretrained(tmp_path)
    model = HfEmbedModel.from_gpt2(tmp_path).eval()
    assert torch.equal(model(tiny_ids).last_hidden_state, gpt2_stage(gpt2.transformer, tiny_ids))


def test_to_gpt2_writes_tables_and_tied_head_follows(tiny_config, tiny_ids):
    gpt2 = small_gpt2(GPT2LMHeadModel)
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", max_position_embeddings=16)).eval()
    model.to_gpt2(gpt2)
    assert torch.equal(gpt2.transformer.wte.weight, model.embeddings.wte.weight)
    assert torch.equal(gpt2.lm_head.weight, model.embeddings.wte.weight)
    assert torch.equal(model(tiny_ids).last_hidden_state, gpt2_stage(gpt2.transformer, tiny_ids))
    with pytest.raises(ValueError, match=r"`wpe` shapes differ: this model \(8, 32\), GPT-2 \(16, 32\)"):
        HfEmbedModel(HfEmbedConfig.from_preset("tiny", max_position_embeddings=8)).to_gpt2(gpt2)
    with pytest.raises(TypeError, match="expected a transformers GPT-2 model"):
        model.to_gpt2(torch.nn.Linear(2, 2))


def test_default_init_is_gpt2_normal():
    model = HfEmbedModel(HfEmbedConfig(vocab_size=2000, hidden_size=64, max_position_embeddings=512))
    for table in (model.embeddings.wte.weight, model.embeddings.wpe.weight):
        assert abs(table.mean().item()) < 1e-3
        assert table.std().item() == pytest.approx(0.02, rel=0.02)


def test_torch_default_init_matches_nn_embedding_under_seed():
    config = HfEmbedConfig.from_preset("book-ch2")
    assert config.initializer_range is None
    torch.manual_seed(123)
    model = HfEmbedModel(config)
    torch.manual_seed(123)
    reference = torch.nn.Embedding(50257, 256)
    assert torch.equal(model.embeddings.wte.weight, reference.weight)
    torch.manual_seed(123)
    assert torch.equal(HfEmbeddings(config).wte.weight, reference.weight)  # the layer alone, too


def test_book_small_table_under_seed():
    """The chapter's `torch.manual_seed(123); nn.Embedding(6, 3)`."""
    torch.manual_seed(123)
    model = HfEmbedModel(HfEmbedConfig(vocab_size=6, hidden_size=3, max_position_embeddings=4, initializer_range=None))
    torch.manual_seed(123)
    assert torch.equal(model.embeddings.wte.weight, torch.nn.Embedding(6, 3).weight)
    torch.manual_seed(123)
    layer = HfEmbeddings(HfEmbedConfig(vocab_size=6, hidden_size=3, max_position_embeddings=4, initializer_range=None))
    assert torch.equal(layer.wte.weight, model.embeddings.wte.weight)


def test_save_pretrained_layout(tiny_config, tmp_path):
    HfEmbedModel(tiny_config).save_pretrained(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["config.json", "model.safetensors", *MODEL_FILES])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "hf_embed"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_hf_embed.HfEmbedConfig",
        "AutoModel": "modeling_hf_embed.HfEmbedModel",
        "AutoModelForCausalLM": "modeling_hf_embed.HfEmbedForCausalLM",
    }
    assert sorted(load_file(tmp_path / "model.safetensors")) == ["embeddings.wpe.weight", "embeddings.wte.weight"]


def test_automodel_roundtrip(tiny_config, tiny_ids, tmp_path):
    model = HfEmbedModel(tiny_config).eval()
    model.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is HfEmbedConfig
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is HfEmbedModel
    assert not loaded.training
    assert torch.equal(loaded(tiny_ids).last_hidden_state, model(tiny_ids).last_hidden_state)


def test_loading_never_reinitializes_loaded_weights(tiny_config, tmp_path):
    """A checkpoint with only `wte`, loaded with the explicit opt-in to a partial load: `wte` comes back as saved,
    the missing `wpe` is initialized and named in the report. Without the opt-in it is an error (test_loading.py)."""
    model = HfEmbedModel(tiny_config)
    model.config.save_pretrained(tmp_path)
    wte = model.embeddings.wte.weight.detach().clone()
    save_file({"embeddings.wte.weight": wte}, tmp_path / "model.safetensors", metadata={"format": "pt"})
    torch.manual_seed(5)
    loaded, report = HfEmbedModel.from_pretrained(tmp_path, output_loading_info=True)
    assert report["missing_keys"] == {"embeddings.wpe.weight"}
    assert torch.equal(loaded.embeddings.wte.weight, wte)
    torch.manual_seed(5)  # the missing table is the only one drawn: the loaded wte drew nothing before it
    assert torch.equal(loaded.embeddings.wpe.weight, torch.empty(16, 32).normal_(0.0, 0.02))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_loading_draws_nothing(scheme, tmp_path):
    model = model_for(scheme)
    model.save_pretrained(tmp_path)
    torch.manual_seed(5)
    loaded = HfEmbedModel.from_pretrained(tmp_path)
    after_load = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after_load, torch.rand(3))
    mine, theirs = loaded.state_dict(), model.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    if scheme == "sinusoidal":  # the non-persistent table is recomputed, not left uninitialized
        assert torch.equal(loaded.embeddings.wpe.table, sinusoid_table(16, 32).float())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_from_pretrained_dtype(tiny_config, tiny_ids, tmp_path, dtype):
    model = HfEmbedModel(tiny_config).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, dtype=dtype)
    assert loaded.dtype == dtype
    out = loaded(tiny_ids).last_hidden_state
    assert out.dtype == dtype
    torch.testing.assert_close(out, model.to(dtype)(tiny_ids).last_hidden_state, rtol=0, atol=0)


@pytest.mark.parametrize("device_map", ["cpu", "auto"])
def test_from_pretrained_device_map(tiny_config, tiny_ids, tmp_path, device_map):
    model = HfEmbedModel(tiny_config).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, device_map=device_map)
    assert loaded.device.type == "cpu"
    assert torch.equal(loaded(tiny_ids).last_hidden_state, model(tiny_ids).last_hidden_state)


def test_inputs_embeds_equals_input_ids(tiny_config, tiny_ids):
    model = HfEmbedModel(tiny_config).eval()
    inputs_embeds = model.get_input_embeddings()(tiny_ids)
    assert torch.equal(model(inputs_embeds=inputs_embeds).last_hidden_state, model(tiny_ids).last_hidden_state)


def test_left_padding_gives_pads_no_position(tiny_config):
    model = HfEmbedModel(tiny_config).eval()
    row = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[0, 0, 0, 5, 6, 7, 8], [1, 2, 3, 5, 6, 7, 8]])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    out = model(padded, attention_mask=mask).last_hidden_state
    assert torch.equal(out[0, 3:], model(row).last_hidden_state[0])
    assert torch.equal(out[1], model(padded[1:]).last_hidden_state[0])


def test_incremental_positions_equal_full_sequence(tiny_config, tiny_ids):
    model = HfEmbedModel(tiny_config).eval()
    full = model(tiny_ids).last_hidden_state
    steps = [model(tiny_ids[:, t : t + 1], past_key_values_length=t).last_hidden_state for t in range(7)]
    assert torch.equal(torch.cat(steps, dim=1), full)
    # a mask covering past + new tokens, as generation passes it
    mask = torch.ones(13, 7, dtype=torch.long)
    step = model(tiny_ids[:, 6:], attention_mask=mask, past_key_values_length=6).last_hidden_state
    assert torch.equal(step, full[:, 6:])


def test_dropout_only_in_training(tiny_ids):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", embedding_dropout=0.5))
    model.train()
    assert (model(tiny_ids).last_hidden_state == 0).float().mean() > 0.3
    model.eval()
    assert (model(tiny_ids).last_hidden_state == 0).sum() == 0


def test_sparse_gradients(tiny_ids):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", sparse_gradients=True))
    model(tiny_ids).last_hidden_state.sum().backward()
    assert model.embeddings.wte.weight.grad.is_sparse
    dense = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    dense.load_state_dict(model.state_dict())
    dense(tiny_ids).last_hidden_state.sum().backward()
    assert torch.equal(model.embeddings.wte.weight.grad.to_dense(), dense.embeddings.wte.weight.grad)


def test_resize_token_embeddings(tiny_config, tiny_ids, tmp_path):
    model = HfEmbedModel(tiny_config).eval()
    before = model(tiny_ids).last_hidden_state
    model.resize_token_embeddings(130, pad_to_multiple_of=64)
    assert model.config.vocab_size == 192
    assert model.get_input_embeddings().weight.shape == (192, 32)
    assert torch.equal(model(tiny_ids).last_hidden_state, before)
    model(torch.tensor([[191]]))  # new rows are usable
    model.save_pretrained(tmp_path)
    assert AutoModel.from_pretrained(tmp_path).config.vocab_size == 192


def test_set_input_embeddings(tiny_config):
    model = HfEmbedModel(tiny_config)
    table = torch.nn.Embedding(120, 32)
    model.set_input_embeddings(table)
    assert model.get_input_embeddings() is table
    model(torch.tensor([[119]]))
    with pytest.raises(ValueError, match=r"token id 120 at \[0, 0\] is outside the vocabulary \(size 120\)"):
        model(torch.tensor([[120]]))


def test_none_position_type(tiny_ids):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="none")).eval()
    assert sorted(model.state_dict()) == ["embeddings.wte.weight"]
    assert torch.equal(model(tiny_ids).last_hidden_state, model.embeddings.wte(tiny_ids))


BAD_INPUTS = [
    (
        {"input_ids": torch.tensor([[1, 99]])},
        ValueError,
        r"token id 99 at \[0, 1\] is outside the vocabulary \(size 99\)",
    ),
    ({"input_ids": torch.tensor([[1, -3]])}, ValueError, r"token id -3 at \[0, 1\] is outside the vocabulary"),
    ({"input_ids": torch.tensor([[1.0, 2.0]])}, TypeError, r"`input_ids` must hold integers .* got torch.float32"),
    ({"input_ids": torch.tensor([[True]])}, TypeError, r"got torch.bool"),
    ({"input_ids": [[1, 2]]}, TypeError, r"`input_ids` must be a torch.Tensor, got list"),
    ({"input_ids": torch.tensor([1, 2])}, ValueError, r"rank 2 \(batch, seq_len\), got rank 1 with shape \(2,\)"),
    ({"input_ids": torch.zeros(1, 2, 3, dtype=torch.long)}, ValueError, r"got rank 3"),
    (
        {"input_ids": torch.zeros(1, 17, dtype=torch.long)},
        ValueError,
        r"sequence length 17 .* exceeds max_position_embeddings \(16\)",
    ),
    (
        {"input_ids": torch.zeros(1, 10, dtype=torch.long), "past_key_values_length": 7},
        ValueError,
        r"sequence length 10 \(plus past length 7\) exceeds max_position_embeddings \(16\)",
    ),
    ({}, ValueError, r"either `input_ids` or `inputs_embeds`"),
    ({"input_ids": torch.zeros(1, 2, dtype=torch.long), "inputs_embeds": torch.zeros(1, 2, 32)}, ValueError, "both"),
    ({"inputs_embeds": torch.zeros(1, 2, 31)}, ValueError, r"shape \(batch, seq_len, 32\), got \(1, 2, 31\)"),
    ({"inputs_embeds": torch.zeros(1, 2, 32, dtype=torch.long)}, TypeError, r"floating point, got torch.int64"),
    (
        {"input_ids": torch.zeros(2, 3, dtype=torch.long), "position_ids": torch.zeros(2, 4, dtype=torch.long)},
        ValueError,
        r"`position_ids` must have shape \(2, 3\) or \(1, 3\), got \(2, 4\)",
    ),
    (
        {"input_ids": torch.zeros(1, 2, dtype=torch.long), "position_ids": torch.tensor([[0, 16]])},
        ValueError,
        r"position id 16 at \[0, 1\] is outside max_position_embeddings \(16\)",
    ),
    (
        {"input_ids": torch.zeros(1, 2, dtype=torch.long), "position_ids": torch.tensor([[0.0, 1.0]])},
        TypeError,
        r"`position_ids` must hold integers",
    ),
    (
        {"input_ids": torch.zeros(2, 3, dtype=torch.long), "attention_mask": torch.ones(3, 3)},
        ValueError,
        r"`attention_mask` must have shape \(2, 3\) or \(2, 3\), got \(3, 3\)",
    ),
    ({"input_ids": torch.zeros(1, 2, dtype=torch.long), "past_key_values_length": -1}, ValueError, r"got -1"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(tiny_config, kwargs, error, message):
    model = HfEmbedModel(tiny_config)
    with pytest.raises(error, match=message):
        model(**kwargs)


INTEGER_DTYPES = [
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.uint16,
    torch.uint32,
    torch.uint64,
]


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_every_integer_dtype_gives_the_same_output(tiny_config, tiny_ids, dtype):
    model = HfEmbedModel(tiny_config).eval()
    generator = torch.Generator().manual_seed(5)
    inputs = {
        "input_ids": tiny_ids,
        "position_ids": torch.randint(0, 16, tiny_ids.shape, generator=generator),
        "token_type_ids": torch.randint(0, 99, tiny_ids.shape, generator=generator),
    }
    expected = model(**inputs).last_hidden_state
    assert torch.equal(model(**{k: v.to(dtype) for k, v in inputs.items()}).last_hidden_state, expected)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("input_ids", r"token id {} at \[0, 1\] is outside the vocabulary \(size 99\)"),
        ("position_ids", r"position id {} at \[0, 1\] is outside max_position_embeddings \(16\)"),
        ("token_type_ids", r"token type id {} at \[0, 1\] is outside the vocabulary \(size 99\)"),
    ],
)
def test_large_unsigned_ids_are_reported_with_their_real_value(tiny_config, name, message):
    """uint64 values past int64's range are not read as negative numbers; uint32 ones are not truncated."""
    model = HfEmbedModel(tiny_config)
    for value, dtype in ((2**63 + 5, torch.uint64), (2**64 - 1, torch.uint64), (2**32 - 1, torch.uint32)):
        inputs = {"input_ids": torch.tensor([[1, 2]]), name: torch.tensor([[1, value]], dtype=dtype)}
        with pytest.raises(ValueError, match=message.format(value)):
            model(**inputs)


@pytest.mark.parametrize(
    "dtype",
    [torch.float16, torch.complex64, torch.bool, torch.float8_e4m3fn, torch.bits8, torch.uint4, torch.qint8],
    ids=str,
)
def test_other_dtypes_are_refused_by_name(tiny_config, dtype):
    model = HfEmbedModel(tiny_config)
    if dtype.is_floating_point or dtype in (torch.complex64, torch.bool):
        tensor = torch.zeros(1, 2, dtype=dtype)
    elif dtype == torch.qint8:
        tensor = torch.quantize_per_tensor(torch.zeros(1, 2), 0.1, 0, dtype)
    else:
        tensor = torch.empty(1, 2, dtype=dtype)
    for name in ("input_ids", "position_ids", "token_type_ids"):
        inputs = {"input_ids": torch.tensor([[1, 2]]), name: tensor}
        with pytest.raises(TypeError, match=rf"`{name}` must hold integers .* got {tensor.dtype}"):
            model(**inputs)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_matches_cpu(tiny_config, tiny_ids, tmp_path, dtype):
    model = HfEmbedModel(tiny_config).eval()
    model.save_pretrained(tmp_path)
    on_gpu = AutoModel.from_pretrained(tmp_path, dtype=dtype, device_map="cuda")
    out = on_gpu(tiny_ids.cuda()).last_hidden_state
    assert out.device.type == "cuda" and out.dtype == dtype
    torch.testing.assert_close(out.cpu(), model.to(dtype)(tiny_ids).last_hidden_state, rtol=0, atol=0)


def test_past_length_takes_the_one_integer_check():
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match=rf"`past_key_values_length` must be an integer >= 0, got {bad!r}"):
            model(torch.tensor([[1]]), past_key_values_length=bad)
