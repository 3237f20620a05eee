"""Position information for the embedding stage: one small module per scheme.

Shapes in comments use: B batch size, T sequence length (new tokens), P past length, D hidden size.

This file imports only torch, transformers and `configuration_hf_embed`: `save_pretrained` copies it next to
the weights for `trust_remote_code` loading.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .configuration_hf_embed import HfEmbedConfig, rope_init_config


@dataclass(slots=True)
class Positions:
    """Where the new tokens sit: `ids` (B or 1, T), or None for the run `past_length .. past_length + T - 1`.

    `past_ids` (B, P) are the past tokens' positions when an attention mask covered them; otherwise the
    past is `0 .. P - 1`. Only the relative scheme looks at the past (its attention keys).
    """

    past_length: int
    length: int
    device: torch.device
    ids: torch.Tensor | None = None
    past_ids: torch.Tensor | None = None

    def query(self) -> torch.Tensor:
        """(B or 1, T) int64 positions of the new tokens."""
        if self.ids is not None:
            return self.ids
        return torch.arange(self.past_length, self.past_length + self.length, device=self.device).unsqueeze(0)

    def keys(self) -> torch.Tensor:
        """(B or 1, P + T) int64 positions of every token attended to: the past, then the new ones."""
        query = self.query()
        past = self.past_ids
        if past is None:
            past = torch.arange(self.past_length, device=self.device).unsqueeze(0)
        batch = max(past.shape[0], query.shape[0])
        return torch.cat((past.expand(batch, -1), query.expand(batch, -1)), dim=-1)


def init_table(weight: torch.Tensor, std: float | None) -> None:
    """Fill a table with GPT-2's normal(0, `std`) in place; `std=None` is torch's `nn.Embedding` default, normal(0, 1).

    The one initializer of every table here, so a module built alone and the same module built inside
    `HfEmbedModel` draw the same numbers. It calls `torch.nn.init.normal_` when it runs (transformers'
    `no_init_weights()` turns that off), skips a meta tensor (nothing to fill, nothing drawn), and skips a tensor
    that `from_pretrained` loaded (flagged `_is_hf_initialized`, as `transformers.initialization` does).
    """
    if weight.is_meta or getattr(weight, "_is_hf_initialized", False):
        return
    with torch.no_grad():
        nn.init.normal_(weight, mean=0.0, std=1.0 if std is None else std)


class PositionEmbedding(nn.Module):
    """The interface of a position scheme: the module `HfEmbeddings.wpe`, which does all of its work in `forward`.

    Everything a scheme computes from its weights and buffers happens in `forward`, so it runs through
    `nn.Module.__call__`: forward and pre-forward hooks fire, accelerate's offloading brings the weights in, and
    wrappers (PEFT's LoRA for embeddings) see it. `HfEmbeddings` calls `wpe(ids)` once per forward:

    | scheme (`position_embedding_type`)  | `ids`                   | `forward` returns              | then       |
    | ----------------------------------- | ----------------------- | ------------------------------ | ---------- |
    | `LearnedPositionEmbedding` absolute | positions (B or 1, T)   | rows (B or 1, T, D), as GPT-2  | added      |
    | `SinusoidalPositionEmbedding`       | positions (B or 1, T)   | rows of the fixed table        | added      |
    | `RotaryPositionEmbedding`           | positions (B or 1, T)   | `(cos, sin)`, (B or 1, T, d)   | returned   |
    | `RelativePositionEmbedding`         | distances (B or 1, T, K)| (B or 1, T, K, d), K = P + T   | returned   |
    | `NoPositionEmbedding`               | positions (B or 1, T)   | None                           | nothing    |

    "Added" rows go into the token rows; "returned" ones are the output's `position_embeddings`, for attention
    layers (d is `head_dim`). The distance ids are `relative_distance_ids(query_positions, key_positions, k)`.

    The learned and relative schemes are `nn.Embedding`s (their `forward` is `nn.Embedding`'s), so anything made
    for embedding tables applies to them. Built alone, each scheme initializes itself; `position_module` builds
    the one a config names, with its tables left for `HfEmbeddings` to fill (`init_embedding_module`).
    """


class LearnedPositionEmbedding(nn.Embedding, PositionEmbedding):
    """GPT-2's absolute positions: one learned vector per position, added to the token embeddings.

    An `nn.Embedding` of `num_positions` rows: `forward(position_ids)` returns rows exactly as GPT-2's `wpe`.
    """


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim) table of Vaswani et al. (2017), section 3.5.

    PE[pos, 2i] = sin(pos / 10000^(2i / dim)) and PE[pos, 2i + 1] = cos(pos / 10000^(2i / dim)). An odd
    `dim` is handled: its last (even) column is a sine with no cosine partner. Computed in float64.
    """
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)  # (P, 1)
    even = torch.arange(0, dim, 2, dtype=torch.float64)  # (ceil(D / 2),) the 2i of each pair
    angle = position / torch.pow(10000.0, even / dim)  # (P, ceil(D / 2))
    table = torch.empty(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table


class SinusoidalPositionEmbedding(PositionEmbedding):
    """The fixed sin/cos table of Vaswani et al. (2017), added like the learned one; never saved."""

    table: torch.Tensor  # (num_positions, dim), a non-persistent buffer

    def __init__(self, num_positions: int, dim: int):
        super().__init__()
        self.num_positions, self.dim = num_positions, dim
        # Derived, so non-persistent: it never pollutes the checkpoint. `from_pretrained` leaves such buffers
        # uninitialized, so `_init_weights` refills it (`reset_table`).
        self.register_buffer("table", torch.empty(num_positions, dim), persistent=False)
        self.reset_table()

    @torch.no_grad()
    def reset_table(self) -> None:
        """Recompute the table (in the buffer's dtype and device); a meta buffer is left as it is."""
        if self.table.device.type != "meta":
            self.table.copy_(sinusoid_table(self.num_positions, self.dim))

    @property
    def weight(self) -> torch.Tensor:
        """The fixed (num_positions, dim) table, under the name transformers' code reads for position tables
        (`model.get_position_embeddings().weight`, as for the learned scheme); a buffer, not a parameter."""
        return self.table

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        """(B or 1, T) positions -> (B or 1, T, D) rows of the table."""
        return F.embedding(position_ids, self.table)


class RotaryPositionEmbedding(PositionEmbedding):
    """Rotary position embedding (RoPE, Su et al. 2021) with transformers' scaling rules, as `LlamaRotaryEmbedding`.

    Tokens pass unchanged; `forward` returns `(cos, sin)`, each (B or 1, T, dim), for attention layers to apply
    to queries and keys with `apply_rotary_pos_emb`. Computed from positions, so any length works.

    The inverse frequencies and the attention scaling come from transformers' own code for `rope_parameters`
    (a transformers v5 `rope_parameters` dict): `ROPE_INIT_FUNCTIONS[rope_type]` for the scaled types (linear,
    dynamic, yarn, longrope, llama3, proportional, ...), `LlamaRotaryEmbedding.compute_default_rope_parameters` for
    "default". `forward` then does what `LlamaRotaryEmbedding.forward` does, in the same order and in float32, so
    the `(cos, sin)` are equal to its own for the same config and positions
    (`tests/test_positions.py::test_rotary_equals_llama_for_every_rope_type`). Like transformers, the frequencies
    are computed on the CPU once and moved to the device (plain attributes, not buffers: `.to(torch.bfloat16)` never
    rounds them); only the dynamic rule computes on the device.

    Two types depend on the positions of each call, as in transformers (`dynamic_rope_update`), where
    `seq_len = max(position_ids) + 1` and "original" is the pretraining length:
    - `"longrope"`: the long factors when `seq_len` exceeds the original length, else the short ones.
    - `"dynamic"` (NTK) is stateful: when `seq_len` exceeds the longest length seen so far, the base is recomputed
      for `seq_len` and kept; a call shorter than the original length goes back to the original frequencies. So
      a call's `(cos, sin)` depend on the calls before it, exactly as `LlamaRotaryEmbedding`'s do (and so,
      past the original length, embedding one token at a time differs from embedding the whole sequence).
      `reset_dynamic_state()` forgets the calls seen.
    """

    max_position_embeddings: int
    attention_scaling: float

    def __init__(self, dim: int, rope_parameters: dict | float = 10000.0, *, max_position_embeddings: int = 2048):
        super().__init__()
        if not isinstance(rope_parameters, dict):  # a bare base, as before `rope_parameters`
            rope_parameters = {"rope_type": "default", "rope_theta": float(rope_parameters)}
        self.dim = dim
        self.rope_parameters = dict(rope_parameters)
        self.rope_type = self.rope_parameters.get("rope_type", "default")
        self.set_max_positions(max_position_embeddings)

    def set_max_positions(self, max_position_embeddings: int) -> None:
        """Take a new `max_position_embeddings`; a dynamic scheme keeps its original length (recorded, if it was
        the old limit, as `rope_parameters["original_max_position_embeddings"]`)."""
        if self.rope_type == "dynamic" and hasattr(self, "max_position_embeddings"):
            self.rope_parameters.setdefault("original_max_position_embeddings", self.max_position_embeddings)
        self.max_position_embeddings = max_position_embeddings
        self._rope_config = rope_init_config(
            self.rope_parameters, head_dim=self.dim, max_position_embeddings=max_position_embeddings
        )
        self.original_length = self.rope_parameters.get("original_max_position_embeddings", max_position_embeddings)
        self._cpu_inv_freq, self.attention_scaling = self._compute()  # the original frequencies (short, for longrope)
        self._inv_freq: dict[torch.device, torch.Tensor] = {}  # device -> the original frequencies there
        self._long_inv_freq: torch.Tensor | None = None  # longrope: computed on first use
        self.reset_dynamic_state()

    def reset_dynamic_state(self) -> None:
        """Dynamic NTK: forget the lengths seen; the next call starts from the original frequencies."""
        self._dynamic_inv_freq: torch.Tensor | None = None  # None: the original frequencies
        self._max_seq_len_cached = self.original_length

    def _compute(self, device: torch.device | None = None, seq_len=None) -> tuple[torch.Tensor, float]:
        """transformers' `(inv_freq, attention_scaling)` for this scheme, as `LlamaRotaryEmbedding` gets them."""
        with torch.device("cpu"):  # as in transformers: tensors start on the CPU, then go to `device`
            if self.rope_type == "default":
                from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

                # typed as taking a LlamaConfig; it reads only the RoPE fields this config holds
                compute = LlamaRotaryEmbedding.compute_default_rope_parameters
                return compute(self._rope_config)  # type: ignore[arg-type]
            return ROPE_INIT_FUNCTIONS[self.rope_type](self._rope_config, device, seq_len=seq_len)

    def inv_freq(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(dim / 2,) float32 inverse frequencies before any per-call rule (dynamic, longrope), on `device`."""
        device = torch.device(device)
        if device not in self._inv_freq:
            self._inv_freq[device] = self._cpu_inv_freq.to(device)
        return self._inv_freq[device]

    def _frequencies(self, position_ids: torch.Tensor) -> torch.Tensor:
        """The (dim / 2,) inverse frequencies for this call's positions (see the class docstring)."""
        device = position_ids.device
        original = self.inv_freq(device)
        if self.rope_type == "dynamic":
            seq_len = torch.max(position_ids) + 1
            if seq_len > self._max_seq_len_cached:  # growth: recompute for this length, on the device
                self._dynamic_inv_freq, self.attention_scaling = self._compute(device, seq_len)
                self._max_seq_len_cached = seq_len
            if seq_len < self.original_length and self._max_seq_len_cached > self.original_length:  # back
                self.reset_dynamic_state()
            return original if self._dynamic_inv_freq is None else self._dynamic_inv_freq.to(device)
        if self.rope_type == "longrope":
            seq_len = torch.max(position_ids) + 1
            if self._long_inv_freq is None:
                self._long_inv_freq, _ = self._compute(device, self.original_length + 1)
            return torch.where(seq_len > self.original_length, self._long_inv_freq.to(device), original)
        return original

    def forward(
        self, position_ids: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B or 1, T) positions -> (cos, sin), each (B or 1, T, dim), computed in float32 and cast to `dtype`."""
        freqs = position_ids[..., None].float() * self._frequencies(position_ids)  # (B, T, dim / 2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (B, T, dim)
        cos, sin = angles.cos(), angles.sin()
        if self.attention_scaling != 1.0:  # yarn, longrope; x * 1.0 is x, so skipping it changes no bit
            cos, sin = cos * self.attention_scaling, sin * self.attention_scaling
        return cos.to(dtype), sin.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., d): [x1, x2] -> [-x2, x1], the halves that RoPE rotates together."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    """Rotate queries and keys by their positions' angles (as transformers' Llama `apply_rotary_pos_emb`).

    Args:
        q: queries, (B, heads, T, d).
        k: keys, (B, heads, T, d).
        cos: (B, T, d), from the rotary scheme's `position_embeddings`.
        sin: (B, T, d).
        unsqueeze_dim: where `cos` and `sin` get the heads axis (2 for (B, T, heads, d) layouts).

    Returns:
        `(q, k)` rotated, shapes unchanged.
    """
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


MAX_RELATIVE_ELEMENTS = 2**28  # 1 GiB of float32: the most the relative scheme materializes in one output


def relative_distance_ids(
    query_positions: torch.Tensor, key_positions: torch.Tensor, max_distance: int
) -> torch.Tensor:
    """Row ids of the relative table: `clip(key - query, -k, k) + k`, in [0, 2k].

    (..., Tq) and (..., Tk) positions -> (..., Tq, Tk) int64 ids (leading dimensions broadcast).
    """
    distance = key_positions.unsqueeze(-2) - query_positions.unsqueeze(-1)  # (..., Tq, Tk)
    return distance.clamp(-max_distance, max_distance) + max_distance


class RelativePositionEmbedding(nn.Embedding, PositionEmbedding):
    """Learned embeddings of clipped relative distances (Shaw et al. 2018; BERT's `relative_key`).

    An `nn.Embedding` of (2k + 1, dim): row `clip(key_pos - query_pos, -k, k) + k` (`relative_distance_ids`) is the
    embedding of that distance. Tokens pass unchanged; `HfEmbeddings` returns the (B or 1, T, P + T, dim)
    embeddings between the new tokens and every token they attend to.
    """

    def __init__(self, max_distance: int, dim: int, *, _weight: torch.Tensor | None = None):
        super().__init__(2 * max_distance + 1, dim, _weight=_weight)
        self.max_distance = max_distance

    def relative_embeddings(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> torch.Tensor:
        """(..., Tq) and (..., Tk) positions -> (..., Tq, Tk, dim) embeddings of their clipped distances."""
        return self(relative_distance_ids(query_positions, key_positions, self.max_distance))


class NoPositionEmbedding(PositionEmbedding):
    """No position information: the token embeddings pass through unchanged."""

    def forward(self, position_ids: torch.Tensor) -> None:
        return None


def position_module(config: HfEmbedConfig) -> PositionEmbedding:
    """The one scheme for `config.position_embedding_type`, chosen once; its tables are left empty.

    `HfEmbeddings` fills them (`init_embedding_module`), so that each table is drawn once, in a fixed order.
    """
    kind = config.position_embedding_type
    if kind == "absolute":
        n, d = config.max_position_embeddings, config.hidden_size
        return LearnedPositionEmbedding(n, d, _weight=torch.empty(n, d))
    if kind == "sinusoidal":
        return SinusoidalPositionEmbedding(config.max_position_embeddings, config.hidden_size)
    if kind == "rotary":
        rope_parameters = getattr(config, "rope_parameters", None) or {"rope_type": "default", "rope_theta": 10000.0}
        return RotaryPositionEmbedding(
            config.position_dim, rope_parameters, max_position_embeddings=config.max_position_embeddings
        )
    if kind == "relative":
        k, d = config.max_relative_distance, config.position_dim
        return RelativePositionEmbedding(k, d, _weight=torch.empty(2 * k + 1, d))
    return NoPositionEmbedding()


def init_embedding_module(module: nn.Module, std: float | None) -> None:
    """Initialize a module of the embedding stage as at construction: tables normal(0, `std`), sinusoid recomputed,
    a LayerNorm ones and zeros (loaded and meta tensors are left alone).

    Anything else (rotary, none, dropout) has nothing to initialize.
    """
    if isinstance(module, nn.Embedding):  # the token table, the learned and relative tables
        init_table(module.weight, std)
    elif isinstance(module, SinusoidalPositionEmbedding):
        module.reset_table()  # a non-persistent buffer: never loaded, so always refilled
    elif isinstance(module, nn.LayerNorm):  # the embedding norm: ones and zeros, as at construction
        for tensor, value in ((module.weight, 1.0), (module.bias, 0.0)):
            if tensor is not None and not tensor.is_meta and not getattr(tensor, "_is_hf_initialized", False):
                with torch.no_grad():
                    tensor.fill_(value)


def position_ids_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding: the n-th real token of a row gets position n; pads get 0.

    Args:
        attention_mask: (B, L), 1 for tokens and 0 for padding.

    Returns:
        (B, L) int64 positions. Pads' outputs are meant to be masked out.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)


__all__ = [
    "MAX_RELATIVE_ELEMENTS",
    "LearnedPositionEmbedding",
    "NoPositionEmbedding",
    "PositionEmbedding",
    "Positions",
    "RelativePositionEmbedding",
    "RotaryPositionEmbedding",
    "SinusoidalPositionEmbedding",
    "apply_rotary_pos_emb",
    "init_embedding_module",
    "init_table",
    "position_ids_from_attention_mask",
    "position_module",
    "relative_distance_ids",
    "rotate_half",
    "sinusoid_table",
]
