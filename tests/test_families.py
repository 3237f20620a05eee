"""The embedding stages of GPT-2, Llama, Mistral, Qwen2, Gemma and BLOOM, against transformers' own models.

Each family's model is built tiny here; hf-embed's output must equal its `hidden_states[0]` (the input of its first
block) and, for the rotary families, its rotary `(cos, sin)`: torch.equal, in float32 and bfloat16.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from transformers import AutoModel, BertConfig, BertModel

from hf_embed import HfEmbedConfig, HfEmbedForCausalLM, HfEmbedModel
from hf_embed.embeddings import multiplier_for
from hf_embed.families import FAMILIES

SIZES = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
FAMILY_CONFIGS = {
    "gpt2": ("GPT2", {"vocab_size": 99, "n_embd": 32, "n_layer": 1, "n_head": 4, "n_positions": 64}),
    "llama": ("Llama", {**SIZES, "intermediate_size": 37, "max_position_embeddings": 64}),
    "mistral": ("Mistral", {**SIZES, "intermediate_size": 37, "max_position_embeddings": 64, "head_dim": 16}),
    "qwen2": ("Qwen2", {**SIZES, "intermediate_size": 37, "max_position_embeddings": 64}),
    "gemma": ("Gemma", {**SIZES, "intermediate_size": 37, "max_position_embeddings": 64, "head_dim": 12}),
    "bloom": ("Bloom", {"vocab_size": 99, "hidden_size": 32, "n_layer": 1, "n_head": 4}),
}
ROTARY = ("llama", "mistral", "qwen2", "gemma")


def family_model(model_type: str, *, causal: bool = False, seed: int = 0, **config_overrides):
    """A tiny transformers model of the family (its base model, or its causal LM), seeded, in eval mode."""
    prefix, values = FAMILY_CONFIGS[model_type]
    config = getattr(transformers, f"{prefix}Config")(**{**values, **config_overrides})
    cls = getattr(transformers, f"{prefix}LMHeadModel" if model_type == "gpt2" else f"{prefix}ForCausalLM")
    cls = cls if causal else getattr(transformers, f"{prefix}Model")
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():  # BLOOM's LayerNorm starts as ones and zeros: give it values that show
        for name, parameter in model.named_parameters():
            if "layernorm" in name or "ln_" in name:
                parameter.normal_(1.0 if name.endswith("weight") else 0.0, 0.5)
    return model


def their_stage(model, ids, **kwargs) -> torch.Tensor:
    """The input of the family's first block: `hidden_states[0]` with `output_hidden_states=True`."""
    with torch.no_grad():
        return model(ids, output_hidden_states=True, **kwargs).hidden_states[0]


def their_rotary(model, hidden, position_ids):
    return model.base_model.rotary_emb(hidden, position_ids)


def assert_same_stage(ours: HfEmbedModel, theirs, ids: torch.Tensor) -> None:
    out = ours(ids)
    assert torch.equal(out.last_hidden_state, their_stage(theirs, ids))
    if theirs.config.model_type in ROTARY:
        position_ids = torch.arange(ids.shape[1]).unsqueeze(0)
        cos, sin = their_rotary(theirs, out.last_hidden_state, position_ids)
        assert torch.equal(out.position_embeddings[0], cos) and torch.equal(out.position_embeddings[1], sin)
    else:
        assert out.position_embeddings is None


@pytest.mark.parametrize("causal", [False, True], ids=["base", "causal-lm"])
@pytest.mark.parametrize("model_type", FAMILY_CONFIGS)
def test_from_transformers_equals_their_embedding_stage(model_type, causal, tiny_ids):
    theirs = family_model(model_type, causal=causal)
    ours = HfEmbedModel.from_transformers(theirs).eval()
    assert_same_stage(ours, theirs, tiny_ids)
    expected_scheme = {"gpt2": "absolute", "bloom": "none"}.get(model_type, "rotary")
    assert ours.config.position_embedding_type == expected_scheme
    assert ours.config.embedding_multiplier == ("sqrt_hidden_size" if model_type == "gemma" else 1.0)
    assert ours.config.embedding_layernorm == (model_type == "bloom")


@pytest.mark.parametrize("model_type", FAMILY_CONFIGS)
def test_from_transformers_of_a_saved_folder_in_bfloat16(model_type, tmp_path, tiny_ids):
    """A path works too, and the dtype comes along: bfloat16 stages are equal bit for bit as well (same ops)."""
    theirs = family_model(model_type, causal=True)
    theirs.save_pretrained(tmp_path)
    loaded = type(theirs).from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    ours = HfEmbedModel.from_transformers(tmp_path).to(torch.bfloat16).eval()
    assert ours.dtype == torch.bfloat16
    assert_same_stage(ours, loaded, tiny_ids)
    ours.save_pretrained(tmp_path / "hf-embed")  # and back, as an hf-embed model (built on the meta device)
    assert_same_stage(AutoModel.from_pretrained(tmp_path / "hf-embed").eval(), loaded, tiny_ids)


@pytest.mark.parametrize(
    ("model_type", "rope_parameters"),
    [
        ("llama", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}),
        ("qwen2", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}),
        ("mistral", {"rope_type": "linear", "factor": 2.0}),
    ],
)
def test_scaled_rope_of_a_family_comes_along(model_type, rope_parameters):
    theirs = family_model(model_type, rope_parameters={**rope_parameters, "rope_theta": 500000.0})
    ours = HfEmbedModel.from_transformers(theirs).eval()
    assert ours.config.rope_parameters == theirs.config.rope_parameters
    ids = torch.randint(0, 99, (2, 50), generator=torch.Generator().manual_seed(3))
    assert_same_stage(ours, theirs, ids)


@pytest.mark.parametrize("model_type", FAMILY_CONFIGS)
def test_to_transformers_writes_the_tables_and_a_tied_head_follows(model_type, tiny_ids):
    theirs = family_model(model_type, causal=True)
    ours = HfEmbedModel.from_transformers(family_model(model_type, seed=1)).eval()  # other tables, same stage
    assert not torch.equal(ours(tiny_ids).last_hidden_state, their_stage(theirs, tiny_ids))
    assert ours.to_transformers(theirs) is theirs
    assert_same_stage(ours, theirs, tiny_ids)
    head, table = theirs.get_output_embeddings().weight, theirs.get_input_embeddings().weight
    if theirs.config.tie_word_embeddings:
        assert head is table and torch.equal(head, ours.embeddings.wte.weight)


def test_gpt2_aliases_stay_thin():
    gpt2 = family_model("gpt2", causal=True)
    ours = HfEmbedModel.from_gpt2(gpt2)
    assert torch.equal(ours.embeddings.wpe.weight, gpt2.transformer.wpe.weight)
    with pytest.raises(TypeError, match=r"expected a transformers GPT-2 model with `wte` and `wpe`, got LlamaModel"):
        ours.to_gpt2(family_model("llama"))


def test_an_unsupported_architecture_lists_the_supported_ones(tmp_path):
    bert = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4))
    message = (
        r"unsupported architecture 'bert'; hf-embed imports the embedding stages of: GPT-2 \('gpt2'\), "
        r"Llama \('llama'\), Mistral \('mistral'\), Qwen2 \('qwen2'\), Gemma \('gemma'\), BLOOM \('bloom'\)"
    )
    with pytest.raises(ValueError, match=message):
        HfEmbedModel.from_transformers(bert)
    bert.save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match=message):
        HfEmbedModel.from_transformers(tmp_path / "bert")
    with pytest.raises(ValueError, match=r"\(this is already an hf-embed model: load it with"):
        HfEmbedModel.from_transformers(HfEmbedModel(HfEmbedConfig.from_preset("tiny")))
    with pytest.raises(ValueError, match=r"unsupported architecture 'bert'"):
        HfEmbedModel(HfEmbedConfig.from_preset("tiny")).to_transformers(bert)
    with pytest.raises(TypeError, match=r"expected a transformers model \(a PreTrainedModel\), got Linear"):
        HfEmbedModel.from_transformers(torch.nn.Linear(2, 2))
    assert set(FAMILIES) == set(FAMILY_CONFIGS)


def test_to_transformers_refuses_a_different_stage():
    llama = family_model("llama")
    absolute = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    with pytest.raises(ValueError, match=r"stages differ \(position_embedding_type 'absolute' here, 'rotary' in Llama"):
        absolute.to_transformers(llama)
    from_llama = HfEmbedModel.from_transformers(llama)
    with pytest.raises(ValueError, match=r"embedding_multiplier 1.0 here, 'sqrt_hidden_size' in Gemma"):
        from_llama.to_transformers(family_model("gemma", head_dim=8))
    with pytest.raises(ValueError, match=r"rope_parameters .*'rope_theta': 10000.0.* here, .*500000.0.* in Llama"):
        from_llama.to_transformers(family_model("llama", rope_parameters={"rope_type": "default", "rope_theta": 5e5}))
    before = llama.get_input_embeddings().weight.clone()
    with pytest.raises(ValueError, match=r"`wte` shapes differ: this model \(99, 32\), Llama \(120, 32\)"):
        from_llama.to_transformers(family_model("llama", vocab_size=120))
    assert torch.equal(llama.get_input_embeddings().weight, before)  # nothing written


# --------------------------------------------------------------------------- the multiplier and the norm


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("hidden_size", [48, 2048, 3072])
def test_gemma_multiplier_is_rounded_where_gemma_rounds_it(dtype, hidden_size):
    """Gemma's `embed_scale` is sqrt(hidden_size) as a float32 tensor cast to the weights' dtype."""
    gemma = transformers.GemmaModel(
        transformers.GemmaConfig(
            vocab_size=11,
            hidden_size=hidden_size,
            intermediate_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            num_key_value_heads=1,
            head_dim=8,
        )
    ).to(dtype)
    expected = gemma.embed_tokens.embed_scale.to(dtype).item()
    assert multiplier_for("sqrt_hidden_size", hidden_size, dtype) == expected
    if hidden_size == 2048 and dtype == torch.bfloat16:
        assert expected == 45.25 != hidden_size**0.5
    ours = HfEmbedModel.from_transformers(gemma).eval()
    ids = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(ours(ids).last_hidden_state, their_stage(gemma, ids))


def test_a_number_multiplies_as_granite_does(tiny_ids):
    config = transformers.GraniteConfig(**SIZES, intermediate_size=37, embedding_multiplier=12.3)
    torch.manual_seed(0)
    granite = transformers.GraniteModel(config).eval()
    ours = HfEmbedModel(
        HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary", head_dim=8, embedding_multiplier=12.3)
    ).eval()
    ours.embeddings.wte.weight.data.copy_(granite.embed_tokens.weight)
    for dtype in (torch.float32, torch.bfloat16):
        assert torch.equal(ours.to(dtype)(tiny_ids).last_hidden_state, their_stage(granite.to(dtype), tiny_ids))


@pytest.mark.parametrize("scheme", ["absolute", "rotary"])
def test_inputs_embeds_are_multiplied_like_the_ids_rows(scheme, tiny_ids):
    """`inputs_embeds=get_input_embeddings()(ids)` gives the output of `ids` (transformers' common-test rule)."""
    model = HfEmbedModel(
        HfEmbedConfig.from_preset(
            "tiny", position_embedding_type=scheme, head_dim=8, embedding_multiplier="sqrt_hidden_size"
        )
    ).eval()
    rows = model.get_input_embeddings()(tiny_ids)
    assert torch.equal(model(inputs_embeds=rows).last_hidden_state, model(tiny_ids).last_hidden_state)
    expected = rows * multiplier_for("sqrt_hidden_size", 32, torch.float32)
    if scheme == "absolute":
        expected = expected + model.embeddings.wpe.weight[:7]
    assert torch.equal(model(tiny_ids).last_hidden_state, expected)


def test_the_norm_comes_after_the_sum_and_dropout_after_the_norm(tiny_ids, tmp_path):
    """BLOOM normalizes the token rows; with learned positions the sum is normalized; dropout is the last step."""
    config = HfEmbedConfig.from_preset("tiny", embedding_layernorm=True, layer_norm_epsilon=1e-3, embedding_dropout=0.3)
    model = HfEmbedModel(config)
    with torch.no_grad():
        model.embeddings.norm.weight.normal_(1.0, 0.5)
        model.embeddings.norm.bias.normal_(0.0, 0.5)
    e = model.embeddings
    summed = e.wte(tiny_ids) + e.wpe(torch.arange(7))
    normed = torch.nn.functional.layer_norm(summed, (32,), e.norm.weight, e.norm.bias, 1e-3)
    assert torch.equal(model.eval()(tiny_ids).last_hidden_state, normed)
    model.train()
    torch.manual_seed(5)
    dropped = model(tiny_ids).last_hidden_state
    torch.manual_seed(5)
    assert torch.equal(dropped, torch.nn.functional.dropout(normed, 0.3, training=True))
    assert list(model.state_dict()) == [
        "embeddings.wte.weight",
        "embeddings.wpe.weight",
        "embeddings.norm.weight",
        "embeddings.norm.bias",
    ]
    model.save_pretrained(tmp_path)
    loaded = HfEmbedModel.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(tiny_ids).last_hidden_state, normed)


def test_the_norm_starts_as_ones_and_zeros_and_draws_nothing():
    config = HfEmbedConfig.from_preset("tiny", embedding_layernorm=True)
    torch.manual_seed(0)
    with_norm = HfEmbedModel(config)
    torch.manual_seed(0)
    without = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    assert torch.equal(with_norm.embeddings.wte.weight, without.embeddings.wte.weight)
    assert torch.equal(with_norm.embeddings.norm.weight, torch.ones(32))
    assert torch.equal(with_norm.embeddings.norm.bias, torch.zeros(32))


def test_a_causal_lm_built_from_a_family_uses_its_stage(tiny_ids):
    gemma = family_model("gemma")
    stage = HfEmbedModel.from_transformers(gemma)
    causal = HfEmbedForCausalLM(stage.config).eval()
    causal.model.load_state_dict(stage.state_dict())
    hidden = their_stage(gemma, tiny_ids)
    torch.testing.assert_close(causal(tiny_ids).logits, hidden @ gemma.embed_tokens.weight.T, rtol=0, atol=0)
