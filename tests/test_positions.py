"""Position schemes: each against its definition or reference implementation, and the shared position rules."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from transformers import AutoModel, LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as llama_apply_rotary_pos_emb
from transformers.models.wav2vec2_bert.modeling_wav2vec2_bert import _apply_relative_key_position_encoding

from helpers import SCHEMES, assert_same_positions, model_for
from hf_embed import HfEmbedConfig, apply_rotary_pos_emb
from hf_embed.configuration_hf_embed import ROPE_TYPES
from hf_embed.position_embeddings import sinusoid_table


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


# One setting of each rope_type of the installed transformers (head_dim 16: 8 frequencies; original length 16).
ROPE_CASES = {
    "default": {"rope_type": "default", "rope_theta": 10000.0},
    "linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
    "yarn": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 16},
    "longrope": {
        "rope_type": "longrope",
        "rope_theta": 10000.0,
        "short_factor": [1.0, 1.1, 1.2, 1.3, 1.5, 1.8, 2.0, 2.5],
        "long_factor": [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0],
        "original_max_position_embeddings": 16,
    },
    "llama3": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    },
    "proportional": {"rope_type": "proportional", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
}


def llama_rotary(rope_parameters: dict, max_position_embeddings: int) -> LlamaRotaryEmbedding:
    """transformers' own rotary module for a Llama of head_dim 16 with these settings."""
    config = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        head_dim=16,
        max_position_embeddings=max_position_embeddings,
        rope_parameters=copy.deepcopy(rope_parameters),
    )
    return LlamaRotaryEmbedding(config)


def test_every_rope_type_of_transformers_is_covered():
    assert ROPE_TYPES == ("default", *ROPE_INIT_FUNCTIONS)
    assert set(ROPE_CASES) == set(ROPE_TYPES), "a new rope_type in transformers: add a case to ROPE_CASES"


@pytest.mark.parametrize("rope_type", ROPE_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_equals_llama_for_every_rope_type(rope_type, dtype):
    """Same config, same positions: the very `(cos, sin)` of `LlamaRotaryEmbedding` (torch.equal, fp32 and bf16).

    Positions below and past the original length (16): longrope switches to its long factors there.
    """
    rope = ROPE_CASES[rope_type]
    model = model_for("rotary", head_dim=16, max_position_embeddings=64, rope_parameters=rope).to(dtype)
    llama = llama_rotary(rope, 64)
    ids = torch.randint(0, 99, (3, 20), generator=torch.Generator().manual_seed(1))
    for high in (16, 64):  # within the original length, then past it
        if rope_type == "dynamic" and high > 16:
            continue  # stateful past the original length: test_dynamic_rope_follows_transformers_call_by_call
        position_ids = torch.randint(0, high, (3, 20), generator=torch.Generator().manual_seed(high))
        cos, sin = model(ids, position_ids=position_ids).position_embeddings
        x = torch.zeros(1, dtype=dtype)
        ref_cos, ref_sin = llama(x, position_ids)
        assert cos.dtype == sin.dtype == dtype and cos.shape == (3, 20, 16)
        assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin), (rope_type, high)
    assert model.embeddings.wpe.attention_scaling == llama.attention_scaling


def test_dynamic_rope_follows_transformers_call_by_call(tmp_path):
    """Dynamic NTK is stateful in transformers: the frequencies of the longest call so far are kept until a call
    shorter than the original length. Past the original length (16), each call equals Llama's after the same calls.
    """
    rope = ROPE_CASES["dynamic"]
    model = model_for("rotary", head_dim=16, max_position_embeddings=16, rope_parameters=rope)
    model.resize_position_embeddings(64)  # a longer limit; the original length is recorded
    assert model.config.rope_parameters == {**rope, "original_max_position_embeddings": 16}
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    llama = llama_rotary(rope, 16)  # transformers: max_position_embeddings is the original length
    cos_at = {}
    for length in (10, 40, 30, 50, 8, 20, 20):  # grow, stay, grow, back, grow, same
        position_ids = torch.arange(length).unsqueeze(0)
        ids = torch.zeros(1, length, dtype=torch.long)
        ref_cos, ref_sin = llama(torch.zeros(1), position_ids)
        for ours in (model, loaded):
            cos, sin = ours(ids).position_embeddings
            assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin), length
        cos_at.setdefault(length, []).append(cos)
    assert not torch.equal(
        cos_at[30][0],
        model_for("rotary", head_dim=16, max_position_embeddings=64)(
            torch.zeros(1, 30, dtype=torch.long)
        ).position_embeddings[0],
    ), "past the original length the frequencies are scaled"


def test_rope_parameters_are_stored_as_transformers_stores_them(tmp_path):
    config = HfEmbedConfig(position_embedding_type="rotary", head_dim=8, rope_theta=500000.0)  # an older config
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 500000.0} and config.rope_theta == 500000.0
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["rope_parameters"] == {"rope_type": "default", "rope_theta": 500000.0} and "rope_theta" not in saved
    old = {k: v for k, v in saved.items() if k != "rope_parameters"} | {"rope_theta": 20000.0}
    (tmp_path / "config.json").write_text(json.dumps(old))  # as saved before rope_parameters
    assert HfEmbedConfig.from_pretrained(tmp_path).rope_parameters == {"rope_type": "default", "rope_theta": 20000.0}
    yarn = HfEmbedConfig(  # transformers' older names
        position_embedding_type="rotary", max_position_embeddings=64, rope_scaling={"type": "yarn", "factor": 4.0}
    )
    llama = LlamaConfig(max_position_embeddings=64, rope_parameters={"rope_type": "yarn", "factor": 4.0})
    assert yarn.rope_parameters == llama.rope_parameters  # original_max_position_embeddings added, as transformers
    config.rope_theta = 1e6
    assert config.rope_parameters["rope_theta"] == 1e6
    absolute = HfEmbedConfig(rope_theta=10000.0)  # saved by every scheme before rope_parameters: no meaning here
    assert absolute.rope_theta is None and "rope_parameters" not in absolute.to_dict()
    with pytest.raises(ValueError, match=r"`rope_parameters` are for position_embedding_type='rotary', not 'absolute'"):
        HfEmbedConfig(rope_parameters={"rope_type": "linear", "factor": 2.0})


@pytest.mark.parametrize(
    ("rope_parameters", "message"),
    [
        ({"rope_type": "ntk"}, r"`rope_parameters\['rope_type'\]` must be one of \('default', 'linear', 'dynamic'"),
        ({"rope_type": "linear"}, r"for rope_type 'linear' need 'factor' \(transformers' ROPE_INIT_FUNCTIONS"),
        ({"rope_type": "linear", "factor": 0}, r"`rope_parameters\['factor'\]` must be a positive number, got 0"),
        ({"rope_type": "linear", "factor": "2"}, r"`rope_parameters\['factor'\]` must be a positive number, got '2'"),
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0}, r"high_freq_factor"),
        (
            {"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0] * 4},
            r"`rope_parameters\['short_factor'\]` must be a list of head_dim / 2 = 4 positive numbers, got \[1.0\]",
        ),
        ({"rope_type": "linear", "factor": 2.0, "partial_rotary_factor": 0.5}, r"partial_rotary_factor.*=0.5"),
        ({"rope_type": "default", "rope_theta": 1.0}, r"`rope_theta` must be a number > 1, got 1.0"),
    ],
)
def test_bad_rope_parameters_are_refused_by_name(rope_parameters, message):
    with pytest.raises(ValueError, match=message):
        HfEmbedConfig(position_embedding_type="rotary", head_dim=8, rope_parameters=rope_parameters)


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
        cos_q, sin_q = model.embeddings.wpe(torch.tensor([[pq]]))
        cos_k, sin_k = model.embeddings.wpe(torch.tensor([[pk]]))
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


BAD_MASKS = [
    (torch.tensor([[1, 1, 2, 1]]), r"2 at \[0, 2\]"),
    (torch.tensor([[1, -1, 1, 1]]), r"-1 at \[0, 1\]"),
    (torch.tensor([[0.5, 1.0, 1.0, 1.0]]), r"0.5 at \[0, 0\]"),
    (torch.tensor([[1.0, float("nan"), 1.0, 1.0]]), r"nan at \[0, 1\]"),
    (torch.tensor([[2, 2, 2, 2]], dtype=torch.uint8), r"2 at \[0, 0\]"),
    (torch.tensor([[1, 1, 1, 2**63 + 5]], dtype=torch.uint64), r"9223372036854775813 at \[0, 3\]"),
]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_attention_mask_must_hold_zeros_and_ones(scheme):
    """Anything but 0 (padding) and 1 (token) is refused by value and place, whether or not positions come from it."""
    model = model_for(scheme)
    ids = torch.tensor([[5, 6, 7, 8]])
    for mask, message in BAD_MASKS:
        for kwargs in ({}, {"position_ids": torch.arange(4)}):
            with pytest.raises(
                ValueError, match=r"`attention_mask` must hold 0 \(padding\) or 1 \(token\), got " + message
            ):
                model(ids, attention_mask=mask, **kwargs)
    left_padded = torch.tensor([[0, 1, 1, 1]])
    expected = model(ids, attention_mask=left_padded)
    dtypes = [torch.bool, torch.int32, torch.int16, torch.int8, torch.uint8, torch.uint16, torch.uint32, torch.uint64]
    for dtype in [*dtypes, torch.float32, torch.float16, torch.bfloat16]:
        out = model(ids, attention_mask=left_padded.to(dtype))
        assert torch.equal(out.last_hidden_state, expected.last_hidden_state), dtype
        assert_same_positions(out.position_embeddings, expected.position_embeddings)
    with pytest.raises(TypeError, match=r"`attention_mask` must hold 0 and 1 .* got torch.complex64"):
        model(ids, attention_mask=left_padded.to(torch.complex64))


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


@pytest.mark.parametrize("method", ["keep", "extend"])  # "extend": the name before "keep", same meaning
def test_resize_shrink_keeps_the_first_rows(method, tiny_ids, tmp_path):
    """As transformers' models and nanoGPT's `crop_block_size`: the first n rows, bit for bit."""
    model = model_for("absolute")
    old = model.embeddings.wpe.weight.detach().clone()  # (16, 32)
    before = model(tiny_ids).last_hidden_state
    model.resize_position_embeddings(7, **({} if method == "keep" else {"method": method}))  # "keep": the default
    assert torch.equal(model.embeddings.wpe.weight, old[:7])
    assert model.config.max_position_embeddings == 7 and model.embeddings.max_positions == 7
    assert torch.equal(model(tiny_ids).last_hidden_state, before)
    with pytest.raises(ValueError, match=r"sequence length 8 .* exceeds max_position_embeddings \(7\)"):
        model(torch.zeros(1, 8, dtype=torch.long))
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert loaded.config.max_position_embeddings == 7 and torch.equal(loaded.embeddings.wpe.weight, old[:7])


@pytest.mark.parametrize("initializer_range", [0.02, None])
def test_resize_keep_grows_with_rows_initialized_as_at_construction(initializer_range, tiny_ids):
    model = model_for("absolute", initializer_range=initializer_range)
    old = model.embeddings.wpe.weight.detach().clone()
    before = model(tiny_ids).last_hidden_state
    hooked = []
    model.embeddings.wpe.register_forward_hook(lambda *args: hooked.append(1))  # resized in place: hooks stay
    torch.manual_seed(7)
    model.resize_position_embeddings(40)
    torch.manual_seed(7)
    drawn = torch.empty(24, 32).normal_(0.0, 1.0 if initializer_range is None else initializer_range)
    assert torch.equal(model.embeddings.wpe.weight, torch.cat((old, drawn)))
    assert model.embeddings.wpe.weight.requires_grad and model.embeddings.wpe.num_embeddings == 40
    assert torch.equal(model(tiny_ids).last_hidden_state, before) and hooked
    model(torch.zeros(1, 40, dtype=torch.long))


def linear_resample(table: torch.Tensor, n: int) -> torch.Tensor:
    """Row i of n sits at x = i (old - 1) / (n - 1) on the old rows: (1 - w) old[j] + w old[j + 1]. float64."""
    old = table.double()
    rows = []
    for i in range(n):
        x = i * (len(old) - 1) / (n - 1)
        j = min(int(x), len(old) - 2)
        rows.append((1 - (x - j)) * old[j] + (x - j) * old[j + 1])
    return torch.stack(rows)


@pytest.mark.parametrize("n", [31, 50, 9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_resize_interpolate_is_a_linear_stretch(n, dtype):
    model = model_for("absolute").to(dtype)
    old = model.embeddings.wpe.weight.detach().clone()  # (16, 32)
    model.resize_position_embeddings(n, method="interpolate")
    new = model.embeddings.wpe.weight
    assert new.shape == (n, 32) and new.dtype == dtype and model.config.max_position_embeddings == n
    expected = torch.nn.functional.interpolate(old.float().T.unsqueeze(0), size=n, mode="linear", align_corners=True)
    assert torch.equal(new, expected[0].T.to(dtype))  # torch's own linear interpolation, in float32
    torch.testing.assert_close(
        new.double(), linear_resample(old, n), rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-3
    )
    assert torch.equal(new[0], old[0]) and torch.equal(new[-1], old[-1])


def test_resize_refuses_bad_arguments_and_wrapped_tables():
    for scheme in ("sinusoidal", "rotary", "relative", "none"):
        with pytest.raises(ValueError, match=rf"method='interpolate' resamples a learned position table; .*'{scheme}'"):
            model_for(scheme).resize_position_embeddings(50, method="interpolate")
    with pytest.raises(ValueError, match=r"give rope_parameters \{'rope_type': 'linear', 'factor': new / old\}"):
        model_for("rotary").resize_position_embeddings(50, method="interpolate")
    model = model_for("absolute")
    with pytest.raises(ValueError, match=r"`method` must be one of \('keep', 'interpolate'\), got 'cubic'"):
        model.resize_position_embeddings(50, method="cubic")
    with pytest.raises(ValueError, match=r"`new_num_position_embeddings` must be an integer >= 1, got 0"):
        model.resize_position_embeddings(0)
    model.embeddings.wpe = torch.nn.Embedding(16, 32)
    with pytest.raises(TypeError, match=r"cannot resize `wpe` of type Embedding \(expected LearnedPositionEmbedding\)"):
        model.resize_position_embeddings(50)
    assert model.config.max_position_embeddings == 16


@pytest.mark.parametrize("scheme", ["sinusoidal", "rotary", "relative", "none"])
def test_fixed_schemes_work_past_their_old_length(scheme, tmp_path):
    model = model_for(scheme)
    ids = torch.randint(0, 99, (2, 40))
    with pytest.raises(ValueError, match="exceeds max_position_embeddings"):
        model(ids)
    model.resize_position_embeddings(64)
    out = model(ids)
    if scheme == "sinusoidal":
        assert torch.equal(model.embeddings.wpe.table, sinusoid_table(64, 32).float())
        torch.testing.assert_close(
            out.last_hidden_state, model.embeddings.wte(ids) + sinusoid_table(40, 32).float(), rtol=0, atol=0
        )
        model.resize_position_embeddings(5)
        assert torch.equal(model.embeddings.wpe.table, sinusoid_table(5, 32).float())
        model.resize_position_embeddings(64)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(loaded(ids).last_hidden_state, out.last_hidden_state)


def test_relative_refuses_a_huge_output_before_allocating():
    model = model_for("relative", max_position_embeddings=100_000, head_dim=64)
    with pytest.raises(ValueError, match=r"50000 queries x 50000 keys x 64 dims would hold 160000000000 values"):
        model(torch.zeros(1, 50_000, dtype=torch.long))
