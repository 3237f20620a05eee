"""Position schemes: each against its definition or reference implementation, and the shared position rules."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModel, LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as llama_apply_rotary_pos_emb
from transformers.models.wav2vec2_bert.modeling_wav2vec2_bert import _apply_relative_key_position_encoding

from hf_embed import HfEmbedConfig, HfEmbedModel, apply_rotary_pos_emb
from hf_embed.position_embeddings import sinusoid_table

SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]


def model_for(scheme: str, **overrides) -> HfEmbedModel:
    torch.manual_seed(0)
    values = {"position_embedding_type": scheme, "head_dim": 8, "max_relative_distance": 3, **overrides}
    return HfEmbedModel(HfEmbedConfig.from_preset("tiny", **values)).eval()


def assert_same_positions(a, b):
    """Equal position embeddings: None, a tensor, or a (cos, sin) pair."""
    if a is None or b is None:
        assert a is None and b is None
    elif isinstance(a, tuple):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    else:
        assert torch.equal(a, b)


def test_unknown_scheme_lists_the_choices():
    with pytest.raises(ValueError, match=r"one of \('absolute', 'sinusoidal', 'rotary', 'relative', 'none'\)"):
        HfEmbedConfig(position_embedding_type="alibi")


def test_rotary_needs_an_even_dimension():
    with pytest.raises(ValueError, match=r"`head_dim` must be even, got 7"):
        HfEmbedConfig(position_embedding_type="rotary", head_dim=7)
    with pytest.raises(ValueError, match=r"`head_dim` must be even, got 33"):
        HfEmbedConfig(position_embedding_type="rotary", hidden_size=33)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_scheme_is_its_own_module(scheme):
    names = {
        "absolute": "LearnedPositionEmbedding",
        "sinusoidal": "SinusoidalPositionEmbedding",
        "rotary": "RotaryPositionEmbedding",
        "relative": "RelativePositionEmbedding",
        "none": "NoPositionEmbedding",
    }
    assert type(model_for(scheme).embeddings.wpe).__name__ == names[scheme]


# --------------------------------------------------------------------------- sinusoidal


@pytest.mark.parametrize("dim", [8, 7, 1])
def test_sinusoid_table_is_the_paper_formula(dim):
    table = sinusoid_table(50, dim)
    for pos in range(50):
        for j in range(dim):
            i2 = j - j % 2  # the 2i of this dimension's pair
            angle = pos / 10000 ** (i2 / dim)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert table[pos, j].item() == pytest.approx(expected, abs=1e-12)


def test_sinusoidal_odd_hidden_size_works(tiny_ids):
    model = model_for("sinusoidal", hidden_size=33)
    out = model(tiny_ids).last_hidden_state
    expected = model.embeddings.wte(tiny_ids) + sinusoid_table(16, 33)[:7].float()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_sinusoidal_table_is_not_saved_and_is_right_after_loading(tmp_path, tiny_ids):
    model = model_for("sinusoidal")
    assert list(model.state_dict()) == ["embeddings.wte.weight"]
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.embeddings.wpe.table, sinusoid_table(16, 32).float())
    assert torch.equal(loaded(tiny_ids).last_hidden_state, model(tiny_ids).last_hidden_state)
    half = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert torch.equal(half.embeddings.wpe.table, sinusoid_table(16, 32).to(torch.bfloat16))


# --------------------------------------------------------------------------- rotary


@pytest.mark.parametrize(("head_dim", "theta"), [(8, 10000.0), (16, 500000.0)])
def test_rotary_equals_llama(head_dim, theta):
    model = model_for("rotary", head_dim=head_dim, rope_theta=theta, max_position_embeddings=64)
    llama = LlamaRotaryEmbedding(
        LlamaConfig(
            hidden_size=4 * head_dim,
            num_attention_heads=4,
            head_dim=head_dim,
            max_position_embeddings=64,
            rope_parameters={"rope_type": "default", "rope_theta": theta},
        )
    )
    ids = torch.randint(0, 99, (3, 20))
    position_ids = torch.randint(0, 64, (3, 20))
    out = model(ids, position_ids=position_ids)
    assert torch.equal(out.last_hidden_state, model.embeddings.wte(ids))  # tokens pass unchanged
    cos, sin = out.position_embeddings
    assert cos.shape == sin.shape == (3, 20, head_dim)
    ref_cos, ref_sin = llama(out.last_hidden_state, position_ids)
    torch.testing.assert_close(cos, ref_cos, rtol=0, atol=0)
    torch.testing.assert_close(sin, ref_sin, rtol=0, atol=0)

    q, k = torch.randn(3, 4, 20, head_dim), torch.randn(3, 2, 20, head_dim)
    ours = apply_rotary_pos_emb(q, k, cos, sin)
    reference = llama_apply_rotary_pos_emb(q, k, ref_cos, ref_sin)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rotary_default_positions_broadcast_over_batch(tiny_ids):
    cos, sin = model_for("rotary")(tiny_ids).position_embeddings
    assert cos.shape == (1, 7, 8)
    explicit = model_for("rotary")(tiny_ids, position_ids=torch.arange(7).expand(13, 7)).position_embeddings
    assert torch.equal(explicit[0][5], cos[0]) and torch.equal(explicit[1][12], sin[0])


def test_rotary_preserves_dot_products_of_equal_offsets():
    """The point of RoPE: q.k after rotation depends on positions only through their difference."""
    model = model_for("rotary", max_position_embeddings=64)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq, pk):
        cos_q, sin_q = model.embeddings.wpe.cos_sin(torch.tensor([[pq]]), torch.float32)
        cos_k, sin_k = model.embeddings.wpe.cos_sin(torch.tensor([[pk]]), torch.float32)
        rq, _ = apply_rotary_pos_emb(q, q, cos_q, sin_q)
        _, rk = apply_rotary_pos_emb(k, k, cos_k, sin_k)
        return (rq * rk).sum().item()

    assert score(3, 1) == pytest.approx(score(40, 38), abs=1e-5)


# --------------------------------------------------------------------------- relative


def test_relative_is_the_definition(tiny_ids):
    model = model_for("relative", max_relative_distance=3)
    table = model.embeddings.wpe.weight
    assert table.shape == (7, 8)
    out = model(tiny_ids)
    assert torch.equal(out.last_hidden_state, model.embeddings.wte(tiny_ids))
    rel = out.position_embeddings
    assert rel.shape == (1, 7, 7, 8)
    for i in range(7):
        for j in range(7):
            assert torch.equal(rel[0, i, j], table[max(-3, min(3, j - i)) + 3])
    q_pos, k_pos = torch.tensor([0, 5, 9]), torch.tensor([2, 3, 20, 9])
    assert model.embeddings.wpe.relative_embeddings(q_pos, k_pos).shape == (3, 4, 8)


def test_relative_equals_transformers_relative_key():
    """wav2vec2-bert's `relative_key` attention bias, computed with our table, equals the one from our embeddings."""
    model = model_for("relative", max_relative_distance=3)
    wpe = model.embeddings.wpe

    class Module:  # the attributes `_apply_relative_key_position_encoding` reads
        left_max_position_embeddings = right_max_position_embeddings = 3
        distance_embedding = wpe
        scaling = 1.0

    query, key = torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8)
    _, bias = _apply_relative_key_position_encoding(Module(), query, key)
    rel = wpe.relative_embeddings(torch.arange(9), torch.arange(9))  # (9, 9, 8)
    torch.testing.assert_close(torch.einsum("bhld,lrd->bhlr", query, rel), bias, rtol=0, atol=0)


# --------------------------------------------------------------------------- rules shared by every scheme


@pytest.mark.parametrize("scheme", SCHEMES)
def test_incremental_equals_whole_sequence(scheme, tiny_ids):
    model = model_for(scheme)
    full = model(tiny_ids)
    for t in range(7):
        step = model(tiny_ids[:, t : t + 1], past_key_values_length=t)
        assert torch.equal(step.last_hidden_state, full.last_hidden_state[:, t : t + 1])
        if scheme == "rotary":
            assert all(
                torch.equal(a, b[:, t : t + 1])
                for a, b in zip(step.position_embeddings, full.position_embeddings, strict=True)
            )
        elif scheme == "relative":  # keys are the past and the new token
            assert torch.equal(step.position_embeddings, full.position_embeddings[:, t : t + 1, : t + 1])
        else:
            assert step.position_embeddings is None


@pytest.mark.parametrize("scheme", SCHEMES)
def test_left_padding_embeds_like_unpadded(scheme):
    model = model_for(scheme)
    row = torch.tensor([[5, 6, 7, 8]])
    padded = torch.tensor([[0, 0, 0, 5, 6, 7, 8]])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1]])
    out = model(padded, attention_mask=mask)
    ref = model(row)
    assert torch.equal(out.last_hidden_state[:, 3:], ref.last_hidden_state)
    if scheme == "rotary":
        assert all(
            torch.equal(a[:, 3:], b) for a, b in zip(out.position_embeddings, ref.position_embeddings, strict=True)
        )
    elif scheme == "relative":
        assert torch.equal(out.position_embeddings[:, 3:, 3:], ref.position_embeddings)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_explicit_position_ids_equal_default(scheme, tiny_ids):
    model = model_for(scheme)
    default = model(tiny_ids)
    explicit = model(tiny_ids, position_ids=torch.arange(7).unsqueeze(0))
    assert torch.equal(default.last_hidden_state, explicit.last_hidden_state)
    assert_same_positions(default.position_embeddings, explicit.position_embeddings)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_save_load_roundtrip(scheme, tiny_ids, tmp_path):
    model = model_for(scheme)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert loaded.config.position_embedding_type == scheme
    a, b = model(tiny_ids), loaded(tiny_ids)
    assert torch.equal(a.last_hidden_state, b.last_hidden_state)
    assert_same_positions(a.position_embeddings, b.position_embeddings)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(scheme, dtype, tiny_ids):
    model = model_for(scheme)
    reference = model(tiny_ids)
    out = model.to(dtype)(tiny_ids)
    assert out.last_hidden_state.dtype == dtype
    torch.testing.assert_close(out.last_hidden_state.float(), reference.last_hidden_state, rtol=1e-2, atol=1e-2)
    if scheme == "rotary":
        assert out.position_embeddings[0].dtype == dtype


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bad_input_rules_hold(scheme):
    model = model_for(scheme)
    with pytest.raises(ValueError, match=r"sequence length 17 .* exceeds max_position_embeddings \(16\)"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token id 99 at \[0, 0\]"):
        model(torch.tensor([[99]]))


# --------------------------------------------------------------------------- longer contexts


def test_resize_learned_interpolate(tiny_ids, tmp_path):
    model = model_for("absolute")
    old = model.embeddings.wpe.weight.detach().clone()  # (16, 32)
    model.resize_position_embeddings(31, method="interpolate")
    new = model.embeddings.wpe.weight
    assert new.shape == (31, 32) and model.config.max_position_embeddings == 31
    # 31 points over 16: new row 2j sits exactly on old row j, odd rows are midpoints
    torch.testing.assert_close(new[0::2], old, rtol=0, atol=1e-6)
    torch.testing.assert_close(new[1::2], (old[:-1] + old[1:]) / 2, rtol=0, atol=1e-6)
    model(torch.zeros(1, 31, dtype=torch.long))
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert loaded.config.max_position_embeddings == 31
    assert torch.equal(loaded.embeddings.wpe.weight, new)


def test_resize_learned_extend(tiny_ids):
    model = model_for("absolute")
    before = model(tiny_ids).last_hidden_state
    old = model.embeddings.wpe.weight.detach().clone()
    model.resize_position_embeddings(40, method="extend")
    assert torch.equal(model.embeddings.wpe.weight[:16], old)
    assert 0.01 < model.embeddings.wpe.weight[16:].std().item() < 0.03
    assert torch.equal(model(tiny_ids).last_hidden_state, before)
    with pytest.raises(ValueError, match=r"cannot shrink the table from 40 to 8 positions"):
        model.resize_position_embeddings(8, method="extend")
    with pytest.raises(ValueError, match=r"'interpolate' or 'extend', got 'cubic'"):
        model.resize_position_embeddings(50, method="cubic")


@pytest.mark.parametrize("scheme", ["sinusoidal", "rotary", "relative", "none"])
def test_fixed_schemes_work_past_their_old_length(scheme, tmp_path):
    model = model_for(scheme)
    ids = torch.randint(0, 99, (2, 40))
    with pytest.raises(ValueError, match="exceeds max_position_embeddings"):
        model(ids)
    model.resize_position_embeddings(64)
    out = model(ids)
    if scheme == "sinusoidal":
        torch.testing.assert_close(
            out.last_hidden_state, model.embeddings.wte(ids) + sinusoid_table(40, 32).float(), rtol=0, atol=0
        )
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(loaded(ids).last_hidden_state, out.last_hidden_state)


def test_relative_refuses_a_huge_output_before_allocating():
    model = model_for("relative", max_position_embeddings=100_000, head_dim=64)
    with pytest.raises(ValueError, match=r"50000 queries x 50000 keys x 64 dims would hold 160000000000 values"):
        model(torch.zeros(1, 50_000, dtype=torch.long))
