"""Position information for the embedding stage: one small module per scheme.

Shapes in comments use: B batch size, T sequence length (new tokens), P past length, D hidden size.

This file imports only torch and `configuration_hf_embed`: `save_pretrained` copies it next to the
weights for `trust_remote_code` loading.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_hf_embed import HfEmbedConfig


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


def _add_rows(table: torch.Tensor, hidden_states: torch.Tensor, positions: Positions, inplace: bool) -> torch.Tensor:
    """hidden (B, T, D) + table[positions]: the fast path of the additive schemes.

    Contiguous positions are a slice of the table (no gather, no index tensor), and when the caller
    owns `hidden_states` (fresh from the token gather) the rows are added in place. Together that is one
    (B, T, D) allocation and two passes over it, where GPT-2's `wte(ids) + wpe(pos)` makes three tensors.
    """
    if positions.ids is None:
        rows = table[positions.past_length : positions.past_length + positions.length]  # (T, D) view
    else:
        rows = F.embedding(positions.ids, table)  # (B or 1, T, D)
    if rows.dtype != hidden_states.dtype:
        rows = rows.to(hidden_states.dtype)
    # Measured (scripts/bench_embed.py, torch 2.13): on CPU, bf16 `add_` is ~20% slower than `+`, unlike fp32/fp16.
    if inplace and not (hidden_states.dtype == torch.bfloat16 and hidden_states.device.type == "cpu"):
        return hidden_states.add_(rows)
    return hidden_states + rows


class LearnedPositionEmbedding(nn.Embedding):
    """GPT-2's absolute positions: one learned vector per position, added to the token embeddings."""

    def add_to(self, hidden_states, positions: Positions, inplace: bool):
        return _add_rows(self.weight, hidden_states, positions, inplace), None


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


class SinusoidalPositionEmbedding(nn.Module):
    """The fixed sin/cos table of Vaswani et al. (2017), added like the learned one; never saved."""

    def __init__(self, num_positions: int, dim: int):
        super().__init__()
        self.num_positions, self.dim = num_positions, dim
        # Derived, so non-persistent: it never pollutes the checkpoint. `from_pretrained` leaves such buffers
        # uninitialized, so `_init_weights` refills it (`reset_table`).
        self.register_buffer("table", torch.empty(num_positions, dim), persistent=False)
        self.reset_table()

    @torch.no_grad()
    def reset_table(self) -> None:
        if self.table.device.type != "meta":
            self.table.copy_(sinusoid_table(self.num_positions, self.dim))

    def add_to(self, hidden_states, positions: Positions, inplace: bool):
        return _add_rows(self.table, hidden_states, positions, inplace), None


class RotaryPositionEmbedding(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021) as in transformers' `LlamaRotaryEmbedding`.

    Tokens pass unchanged; `add_to` returns `(cos, sin)`, each (B or 1, T, dim), for attention layers to
    apply to queries and keys with `apply_rotary_pos_emb`. Computed from positions, so any length works.
    """

    def __init__(self, dim: int, theta: float):
        super().__init__()
        self.dim, self.theta = dim, float(theta)

    def inv_freq(self, device) -> torch.Tensor:
        # Recomputed (dim / 2 values) rather than kept as a buffer that `.to(bfloat16)` would round.
        return 1.0 / (self.theta ** (torch.arange(0, self.dim, 2, dtype=torch.int64, device=device).float() / self.dim))

    def cos_sin(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) for (B, T) positions, each (B, T, dim), computed in float32 and cast to `dtype`."""
        freqs = position_ids[..., None].float() * self.inv_freq(position_ids.device)  # (B, T, dim / 2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (B, T, dim)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def add_to(self, hidden_states, positions: Positions, inplace: bool):
        return hidden_states, self.cos_sin(positions.query(), hidden_states.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., d): [x1, x2] -> [-x2, x1], the halves that RoPE rotates together."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    """Rotate queries and keys by their positions' angles (as transformers' Llama `apply_rotary_pos_emb`).

    `q`, `k`: (B, heads, T, d); `cos`, `sin`: (B, T, d), unsqueezed at `unsqueeze_dim` to broadcast
    over heads (use 2 for (B, T, heads, d) layouts).
    """
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


MAX_RELATIVE_ELEMENTS = 2**28  # 1 GiB of float32: the most the relative scheme materializes in one output


class RelativePositionEmbedding(nn.Embedding):
    """Learned embeddings of clipped relative distances (Shaw et al. 2018; BERT's `relative_key`).

    Row `clip(key_pos - query_pos, -k, k) + k` of a (2k + 1, dim) table. Tokens pass unchanged; `add_to`
    returns the (B or 1, T, P + T, dim) embeddings between the new tokens and every token they attend to.
    """

    def __init__(self, max_distance: int, dim: int):
        super().__init__(2 * max_distance + 1, dim, _weight=torch.empty(2 * max_distance + 1, dim))
        self.max_distance = max_distance

    def relative_embeddings(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> torch.Tensor:
        """(..., Tq) and (..., Tk) positions -> (..., Tq, Tk, dim) embeddings of their clipped distances."""
        distance = key_positions.unsqueeze(-2) - query_positions.unsqueeze(-1)  # (..., Tq, Tk)
        k = self.max_distance
        return self(distance.clamp(-k, k) + k)

    def add_to(self, hidden_states, positions: Positions, inplace: bool):
        query, keys = positions.query(), positions.keys()
        size = max(query.shape[0], keys.shape[0]) * query.shape[-1] * keys.shape[-1] * self.embedding_dim
        if size > MAX_RELATIVE_ELEMENTS:
            raise ValueError(
                f"the relative position embeddings for {query.shape[-1]} queries x {keys.shape[-1]} keys x "
                f"{self.embedding_dim} dims would hold {size} values (limit {MAX_RELATIVE_ELEMENTS}); call "
                "`wpe.relative_embeddings(query_positions, key_positions)` per block, or use a smaller `head_dim`"
            )
        return hidden_states, self.relative_embeddings(query, keys)


class NoPositionEmbedding(nn.Module):
    """No position information: the token embeddings pass through unchanged."""

    def add_to(self, hidden_states, positions: Positions, inplace: bool):
        return hidden_states, None


def position_module(config: HfEmbedConfig) -> nn.Module:
    """The one module for `config.position_embedding_type`, chosen once."""
    kind = config.position_embedding_type
    if kind == "absolute":
        n, d = config.max_position_embeddings, config.hidden_size
        return LearnedPositionEmbedding(n, d, _weight=torch.empty(n, d))
    if kind == "sinusoidal":
        return SinusoidalPositionEmbedding(config.max_position_embeddings, config.hidden_size)
    if kind == "rotary":
        return RotaryPositionEmbedding(config.position_dim, config.rope_theta)
    if kind == "relative":
        return RelativePositionEmbedding(config.max_relative_distance, config.position_dim)
    return NoPositionEmbedding()


def position_ids_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding: the n-th real token of a row gets position n; pads get 0.

    (B, L) mask -> (B, L) int64 positions. Pads' outputs are meant to be masked out.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)


__all__ = [
    "MAX_RELATIVE_ELEMENTS",
    "LearnedPositionEmbedding",
    "NoPositionEmbedding",
    "Positions",
    "RelativePositionEmbedding",
    "RotaryPositionEmbedding",
    "SinusoidalPositionEmbedding",
    "apply_rotary_pos_emb",
    "position_ids_from_attention_mask",
    "position_module",
    "rotate_half",
    "sinusoid_table",
]
