"""The embedding stage of a GPT-style model: token embeddings plus position information.

Shapes in comments use: B batch size, T sequence length (new tokens), P past length,
D hidden size, V vocabulary size.

This file imports only torch, transformers and its flat siblings (`configuration_hf_embed`,
`position_embeddings`, `validation`, `atomic_write`): `save_pretrained` copies them next to the
weights for `trust_remote_code` loading.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import (
    _global_backward_hooks,
    _global_backward_pre_hooks,
    _global_forward_hooks,
    _global_forward_pre_hooks,
)
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput

from .atomic_write import read_folder_consistently, write_folder_atomically
from .configuration_hf_embed import SQRT_HIDDEN_SIZE, HfEmbedConfig
from .families import base_model_of, family_of, stage_settings
from .gather_add import BLOCKED_DTYPES, MIN_BLOCKED_ELEMENTS, gather_add_rows
from .loading import (
    check_dtypes,
    check_loading_info,
    declared_dtype,
    hidden_load_report,
    local_folder,
    read_config_dict,
    stored_dtypes,
    weight_files,
)
from .position_embeddings import (
    MAX_RELATIVE_ELEMENTS,
    LearnedPositionEmbedding,
    Positions,
    RotaryPositionEmbedding,
    SinusoidalPositionEmbedding,
    apply_rotary_pos_emb,
    init_embedding_module,
    init_table,
    position_ids_from_attention_mask,
    position_module,
    relative_distance_ids,
)
from .validation import (
    INDEX_DTYPES,
    as_index_tensor,
    check_integer_tensor,
    check_mask,
    check_positive_int,
    check_range,
)


def _calls_own_forward(module: nn.Module, cls: type[nn.Module]) -> bool:
    """Whether calling `module` runs exactly `cls.forward`, so that a fast path may do that work itself.

    Not when it is a subclass or a wrapper (PEFT, quantization, parametrizations), has hooks of any kind (its own
    or global, forward or backward), or had its `forward` replaced on the instance (transformers' tensor parallel,
    accelerate's offloading): those must run through the module call.
    """
    return (
        type(module) is cls
        and "forward" not in module.__dict__
        and not (module._forward_pre_hooks or module._forward_hooks)
        and not (module._backward_pre_hooks or module._backward_hooks)
        and not (_global_forward_pre_hooks or _global_forward_hooks)
        and not (_global_backward_pre_hooks or _global_backward_hooks)
    )


def _is_stock_embedding(module: nn.Module) -> bool:
    """Whether `module(ids)` is exactly `torch.embedding(module.weight, ids, ...)`: a plain `nn.Embedding` that
    `_calls_own_forward` and does not renormalize rows (`max_norm`)."""
    return _calls_own_forward(module, nn.Embedding) and module.max_norm is None


def _stock_position_table(wpe: nn.Module) -> torch.Tensor | None:
    """The table whose rows `wpe(position_ids)` returns, when reading it directly is exactly that call; else None.

    The same rule as `_is_stock_embedding`, for the two schemes whose rows are added: the learned table and the
    sinusoidal buffer.
    """
    if _calls_own_forward(wpe, LearnedPositionEmbedding) and wpe.max_norm is None:
        return wpe.weight
    if _calls_own_forward(wpe, SinusoidalPositionEmbedding):
        return wpe.table
    return None


# --------------------------------------------------------------------------- keywords

# What transformers' machinery passes to a model's `forward` (checked on transformers 5.24) that the embedding
# stage has no use for. Generation passes `cache` (`past_key_values` before it was renamed), `use_cache`,
# `output_attentions`, and `logits_to_keep` where the forward declares it; Trainer passes `num_items_in_batch`
# to a forward that takes `**kwargs`; packed-sequence collators (`DataCollatorWithFlattening`) add
# flash-attention's `cu_seq_lens_q`/`cu_seq_lens_k`/`max_length_q`/`max_length_k` and `seq_idx` (positions come
# in `position_ids`); `TransformersKwargs` also names `output_router_logits` and `is_causal`. Generation passes
# `cache_position` only to a forward that declares it, which hf-embed's do not: positions are `position_ids` or
# `past_key_values_length`.
IGNORED_FORWARD_KEYWORDS = frozenset(
    {
        "cache",
        "past_key_values",
        "use_cache",
        "output_attentions",
        "output_router_logits",
        "logits_to_keep",
        "num_items_in_batch",
        "cu_seq_lens_q",
        "cu_seq_lens_k",
        "max_length_q",
        "max_length_k",
        "seq_idx",
        "is_causal",
    }
)


def check_forward_keywords(forward: Callable, kwargs: dict) -> None:
    """The keyword policy of every hf-embed `forward`: refuse what neither it nor transformers' machinery passes.

    Call it first thing with the forward's `**kwargs`. Keywords in `IGNORED_FORWARD_KEYWORDS` are accepted and
    ignored, except a cache that already holds tokens: hf-embed keeps none, so the new tokens' positions would
    silently start at 0.

    Args:
        forward: the bound `forward` being called (its name and parameters make the message).
        kwargs: the keywords it received beyond its own parameters.

    Raises:
        TypeError: for any other keyword, named, with the closest accepted name when there is one
            (`attention_mak` -> `attention_mask`).
        ValueError: for a `cache`/`past_key_values` that holds tokens.
    """
    for name, value in kwargs.items():
        if name not in IGNORED_FORWARD_KEYWORDS:
            known = [*inspect.signature(forward).parameters, *sorted(IGNORED_FORWARD_KEYWORDS)]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{forward.__qualname__}() got an unexpected keyword argument {name!r}{hint}")
        if name in ("cache", "past_key_values") and value is not None and (cached := _cached_tokens(value)):
            raise ValueError(
                f"`{name}` holds {cached} tokens, but hf-embed keeps no cache and would place the new tokens at "
                f"position 0; pass `past_key_values_length={cached}` or `position_ids` instead"
            )


def _cached_tokens(cache) -> int:
    """How many tokens a transformers `Cache` (or a legacy tuple of per-layer (key, value)) holds."""
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    if isinstance(cache, (tuple, list)) and cache and cache[0] is not None and len(cache[0]):
        return int(cache[0][0].shape[-2])  # (B, heads, P, head_dim)
    return 0


# --------------------------------------------------------------------------- the layer

ADDED_SCHEMES = ("absolute", "sinusoidal")  # position rows added to the token rows; the others feed attention
FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def multiplier_for(embedding_multiplier: float | str, hidden_size: int, dtype: torch.dtype) -> float:
    """The number token rows of `dtype` are multiplied by (`HfEmbedConfig.embedding_multiplier`).

    A number is used as it is, as transformers' Granite does (`inputs_embeds * config.embedding_multiplier`; torch
    computes half-precision products in float32). `"sqrt_hidden_size"` is Gemma's `embed_scale`: sqrt(hidden_size)
    held as a float32 tensor and cast to the weights' dtype before the product (transformers 5.24,
    `GemmaTextScaledWordEmbedding`), so in bfloat16 it is 45.25 for hidden size 2048, not float32's 45.254833.
    (Rounding through float32 or straight to bfloat16/float16 agrees for every hidden size up to 200000.)
    """
    if embedding_multiplier == SQRT_HIDDEN_SIZE:
        return torch.tensor(hidden_size**0.5, dtype=torch.float32, device="cpu").to(dtype).item()  # (meta at load)
    return float(embedding_multiplier)


class HfEmbeddings(nn.Module):
    """Token embeddings (`wte`) plus position information (`wpe`), then dropout.

    With the default absolute positions, `dropout(wte(input_ids) + wpe(position_ids))`: equal (eval mode,
    same weights) to the embedding stage of transformers' `GPT2Model`. A plain `nn.Module`, usable inside
    any model. `forward` returns `(hidden_states, position_embeddings)`; the second is `None` except for
    the rotary (`(cos, sin)`) and relative (distance embeddings) schemes, which attention layers consume.

    Built alone it initializes its tables as `HfEmbedModel(config)` does, drawing the same numbers under the same
    seed: `wte`, then `wpe`, normal(0, `initializer_range`) each (`initializer_range=None`: torch's `nn.Embedding`
    default). `initialize=False` leaves them for an owner that fills them itself (`HfEmbedModel`'s `_init_weights`,
    which skips tensors `from_pretrained` loaded). On the meta device nothing is allocated or drawn.
    """

    def __init__(self, config: HfEmbedConfig, *, initialize: bool = True):
        super().__init__()
        self.vocab_size = config.vocab_size
        self.hidden_size = config.hidden_size
        self.max_positions = config.max_position_embeddings
        self.position_embedding_type = config.position_embedding_type  # chosen once: how `wpe`'s output is used
        self.position_dim = config.position_dim
        self.max_relative_distance = config.max_relative_distance
        self.initializer_range = config.initializer_range
        V, D = config.vocab_size, config.hidden_size
        self.wte = nn.Embedding(V, D, sparse=config.sparse_gradients, _weight=torch.empty(V, D))  # filled below
        self.wpe = position_module(config)
        # Gemma's or Granite's multiplier on the token rows, per dtype (None: 1, nothing to do); BLOOM's LayerNorm
        self.embedding_multiplier = config.embedding_multiplier
        self.multipliers = None
        if multiplier_for(self.embedding_multiplier, D, torch.float32) != 1.0:
            self.multipliers = {dtype: multiplier_for(self.embedding_multiplier, D, dtype) for dtype in FLOAT_DTYPES}
        self.norm = nn.LayerNorm(D, eps=config.layer_norm_epsilon) if config.embedding_layernorm else None
        self.drop = nn.Dropout(config.embedding_dropout)
        if initialize:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the tables as at construction: `wte`, then `wpe` (`init_embedding_module`); the norm is ones and
        zeros (no random numbers drawn)."""
        for module in (self.wte, self.wpe, self.norm):
            if module is not None:
                init_embedding_module(module, self.initializer_range)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        past_key_values_length: int = 0,
        *,
        token_type_ids: torch.LongTensor | None = None,
    ):
        """ids -> token rows -> (multiplier) -> position information -> (norm) -> dropout.

        (B, T) -> ((B, T, D), position embeddings). The plain reference is GPT-2's stage, `drop(wte(ids) +
        wpe(pos))` with `pos = arange(past, past + T)`, and this computes it bit for bit: the two-step path in
        `tests/test_fast_path.py::test_fast_path_is_bit_identical_to_reference`, the one-pass path in
        `tests/test_fast_path.py::test_blocked_path_is_bit_identical_to_reference` and `tests/test_gather_add.py`,
        and against `GPT2Model` itself in `tests/test_modeling.py::test_gpt2_parity`.

        `inputs_embeds` (B, T, D) may replace the token rows (and are multiplied like them, so
        `inputs_embeds=wte(ids)` gives the output of `ids`); `token_type_ids` (B or 1, T) are embedded with `wte`
        and added after the positions, as GPT-2 does. Other families' options, each one line and nothing at all
        when off: `embedding_multiplier` (Gemma's sqrt(D) in the model's dtype, Granite's number) on the token
        rows, as `GemmaModel`/`GraniteModel` do; `embedding_layernorm` on the sum, as BLOOM's
        `word_embeddings_layernorm`, with dropout after it as in BERT and GPT-2 (dropout is the stage's last step)
        (`tests/test_families.py`).

        The fast path changes how, not what: for a stock `wte` (`_is_stock_embedding`) the token rows are one
        gather of our own, and for a stock `wpe` (`_stock_position_table`) contiguous positions are a slice of
        its table, added in place into that gather. Large float32 and float64 inputs on CPU with no gradient to
        record do both in one pass, a block of tokens at a time (`_token_and_position_rows`,
        `gather_add.gather_add_rows`). Anything else (hooks, adapters, offloading, tensor parallel) runs through the
        module calls.
        """
        batch, seq_len = self._check_inputs(input_ids, inputs_embeds)
        device = (input_ids if input_ids is not None else inputs_embeds).device
        positions = self._positions(batch, seq_len, device, position_ids, attention_mask, past_key_values_length)

        # ids -> token rows + position rows in one pass over the output, where that is all there is to do
        summed = self._token_and_position_rows(input_ids, positions) if inputs_embeds is None else None
        if summed is not None:
            hidden_states, position_embeddings = summed, None  # (B, T, D) = wte(ids) + wpe(pos)
        else:  # the same steps one at a time
            if inputs_embeds is None:
                hidden_states, owned = self._token_rows(input_ids)  # (B, T, D); owned: a fresh gather of ours
            else:
                hidden_states, owned = inputs_embeds, False  # a caller's tensor is never modified
            if self.multipliers is not None:
                hidden_states = self._multiply(hidden_states, owned)  # Gemma: wte(ids) * sqrt(D) in the model's dtype
            hidden_states, position_embeddings = self.position_information(hidden_states, positions, owned=owned)
        if token_type_ids is not None:
            hidden_states = hidden_states + self._token_type_embeddings(token_type_ids, batch, seq_len)
        if self.norm is not None:
            hidden_states = self.norm(hidden_states)  # BLOOM's word_embeddings_layernorm, on the sum
        if self.training and self.drop.p > 0:
            hidden_states = self.drop(hidden_states)
        return hidden_states, position_embeddings

    def _multiply(self, hidden_states: torch.Tensor, owned: bool) -> torch.Tensor:
        """(B, T, D) token rows times `embedding_multiplier` as rounded for their dtype (in place into our own)."""
        multiplier = self.multipliers.get(hidden_states.dtype)
        if multiplier is None:  # a dtype not precomputed (float64, ...)
            multiplier = multiplier_for(self.embedding_multiplier, self.hidden_size, hidden_states.dtype)
            self.multipliers[hidden_states.dtype] = multiplier
        return hidden_states.mul_(multiplier) if owned else hidden_states * multiplier

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """`wte(input_ids)`, (B, T) -> (B, T, D), with out-of-vocabulary ids reported by value and index."""
        return self._token_rows(input_ids)[0]

    def _token_rows(self, ids: torch.Tensor, what: str = "token id") -> tuple[torch.Tensor, bool]:
        """`wte(ids)` (B, T) -> (B, T, D), and whether it is a fresh gather of ours that may be added to in place.

        Speed for small calls: a stock `nn.Embedding` is gathered with `torch.embedding` directly, skipping
        `nn.Embedding.forward` and `F.embedding`'s Python (~2.5 us of a ~15 us (1, 16) call on CPU); anything
        else goes through its module call (see `_is_stock_embedding`), whose output is not ours to modify (a hook
        may keep it; tensor parallel returns a view). Under torch.compile nothing is in place: the out-of-place
        add fuses into the gather. On CPU the range check is the gather's own bounds check, which raises before
        anything is written, so valid ids pay nothing for it; on CUDA an asynchronous device assert runs first,
        with no host sync.
        """
        if ids.dtype not in INDEX_DTYPES:  # exact int64 for the other integer dtypes
            ids = as_index_tensor(ids, what, self._vocabulary())
        compiling = torch.compiler.is_compiling()
        if compiling or not (ids.is_cpu or ids.is_meta):
            check_range(ids, self.vocab_size, what, self._vocabulary())
        wte = self.wte
        try:
            if _is_stock_embedding(wte):
                padding_idx = -1 if wte.padding_idx is None else wte.padding_idx
                rows = torch.embedding(wte.weight, ids, padding_idx, wte.scale_grad_by_freq, wte.sparse)
                return rows, not compiling
            return wte(ids), False
        except IndexError:
            if ids.is_cpu:  # name the first bad id; any other IndexError propagates
                check_range(ids, self.vocab_size, what, self._vocabulary())
            raise

    def _token_and_position_rows(self, ids: torch.Tensor, positions: Positions) -> torch.Tensor | None:
        """`wte(ids) + wpe(positions)` (B, T) -> (B, T, D) in one pass over the output, or None where it does not apply.

        The same numbers as the two steps (`gather_add.gather_add_rows`: each row a copy of a token row plus its
        position row), a block of tokens at a time so that the add happens in cache. Only where the two steps
        would be exactly one gather and one add with nothing else wanted of them: an output of at least
        `MIN_BLOCKED_ELEMENTS` (smaller ones stay in cache anyway) on CPU, plain tensors (not under torch.compile,
        tracing or torch.func), a stock `wte` and position table (`_is_stock_embedding`, `_stock_position_table`)
        of one dtype in `BLOCKED_DTYPES`, contiguous positions, no multiplier, and no gradient to record: the
        blocks are written with `out=` ops, which autograd does not track, so training takes the two steps.
        """
        if (
            torch.compiler.is_compiling()  # first: a compiled graph has no guard on anything below
            or ids.numel() * self.hidden_size < MIN_BLOCKED_ELEMENTS
            or positions.ids is not None
            or self.multipliers is not None
            or self.position_embedding_type not in ADDED_SCHEMES
            or type(ids) is not torch.Tensor
            or not ids.is_cpu
            or ids.dtype not in INDEX_DTYPES
            or torch.jit.is_tracing()
            or torch._C._are_functorch_transforms_active()
            or not _is_stock_embedding(self.wte)
        ):
            return None
        weight, table = self.wte.weight, _stock_position_table(self.wpe)
        if (
            table is None
            or not all(type(t) in (torch.Tensor, nn.Parameter) and t.is_cpu and t.dim() == 2 for t in (weight, table))
            or table.dtype != weight.dtype
            or weight.dtype not in BLOCKED_DTYPES
            or (torch.is_grad_enabled() and (weight.requires_grad or table.requires_grad))
        ):
            return None
        rows = table[positions.past_length : positions.past_length + positions.length]  # (T, D) view
        try:
            return gather_add_rows(weight, ids, rows)
        except IndexError:  # name the first bad id
            check_range(ids, self.vocab_size, "token id", self._vocabulary())
            raise

    def _vocabulary(self) -> str:
        return f"the vocabulary (size {self.vocab_size})"

    def position_information(
        self, hidden_states: torch.Tensor, positions: Positions, *, owned: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | torch.Tensor | None]:
        """The scheme's step, through `wpe`'s module call: (B, T, D) -> ((B, T, D), position embeddings or None).

        Absolute and sinusoidal rows are added to `hidden_states` (in place when `owned`: a fresh tensor of ours);
        rotary `(cos, sin)` and relative distance embeddings are returned for attention; "none" adds nothing.
        """
        kind = self.position_embedding_type
        if kind in ADDED_SCHEMES:
            return self._add_position_rows(hidden_states, positions, owned), None
        if kind == "rotary":
            return hidden_states, self.wpe(positions.query(), hidden_states.dtype)  # (cos, sin)
        if kind == "relative":
            return hidden_states, self.wpe(self._relative_distance_ids(positions))  # (B or 1, T, P + T, d)
        return hidden_states, self.wpe(positions.query())  # "none": None

    def _add_position_rows(self, hidden_states: torch.Tensor, positions: Positions, owned: bool) -> torch.Tensor:
        """hidden (B, T, D) + wpe(positions) (B or 1, T, D).

        Fast path, for a stock table: contiguous positions are a (T, D) slice of it (no index tensor, no gather),
        and into a fresh gather of ours the rows are added in place. Together that is one (B, T, D) allocation and
        two passes over it, where GPT-2's `wte(ids) + wpe(pos)` makes three tensors; the numbers are the same.
        """
        table = _stock_position_table(self.wpe) if positions.ids is None else None
        if table is not None:
            rows = table[positions.past_length : positions.past_length + positions.length]  # (T, D) view
        else:
            rows = self.wpe(positions.query())  # (B or 1, T, D)
        if rows.dtype != hidden_states.dtype:
            rows = rows.to(hidden_states.dtype)
        # Measured (scripts/bench_embed.py, torch 2.13): on CPU, bf16 `add_` is ~20% slower than `+`, unlike fp32/fp16.
        if owned and not (hidden_states.dtype == torch.bfloat16 and hidden_states.device.type == "cpu"):
            return hidden_states.add_(rows)
        return hidden_states + rows

    def _relative_distance_ids(self, positions: Positions) -> torch.Tensor:
        """(B or 1, T, P + T) ids of the clipped distances from each new token to every token it attends to."""
        query, keys = positions.query(), positions.keys()  # (B or 1, T), (B or 1, P + T)
        size = max(query.shape[0], keys.shape[0]) * query.shape[-1] * keys.shape[-1] * self.position_dim
        if size > MAX_RELATIVE_ELEMENTS:
            raise ValueError(
                f"the relative position embeddings for {query.shape[-1]} queries x {keys.shape[-1]} keys x "
                f"{self.position_dim} dims would hold {size} values (limit {MAX_RELATIVE_ELEMENTS}); call "
                "`wpe.relative_embeddings(query_positions, key_positions)` per block, or use a smaller `head_dim`"
            )
        return relative_distance_ids(query, keys, self.max_relative_distance)

    def _token_type_embeddings(self, token_type_ids: torch.Tensor, batch: int, seq_len: int) -> torch.Tensor:
        """`wte(token_type_ids)`: GPT-2 embeds token types with the token table. (B or 1, T) -> (B or 1, T, D)."""
        token_type_ids = _per_token_ids("token_type_ids", token_type_ids, batch, seq_len)
        return self._token_rows(token_type_ids, "token type id")[0]

    def _check_inputs(self, input_ids, inputs_embeds) -> tuple[int, int]:
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("You cannot specify both `input_ids` and `inputs_embeds` at the same time")
        if input_ids is None and inputs_embeds is None:
            raise ValueError("You have to specify either `input_ids` or `inputs_embeds`")
        if input_ids is not None:
            check_integer_tensor("input_ids", input_ids)
            if input_ids.dim() != 2:
                raise ValueError(
                    f"`input_ids` must have rank 2 (batch, seq_len), got rank {input_ids.dim()} "
                    f"with shape {tuple(input_ids.shape)}"
                )
            return input_ids.shape  # ids are range-checked by `token_embeddings`
        if not isinstance(inputs_embeds, torch.Tensor):
            raise TypeError(f"`inputs_embeds` must be a torch.Tensor, got {type(inputs_embeds).__name__}")
        if not inputs_embeds.is_floating_point():
            raise TypeError(f"`inputs_embeds` must be floating point, got {inputs_embeds.dtype}")
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.hidden_size:
            raise ValueError(
                f"`inputs_embeds` must have shape (batch, seq_len, {self.hidden_size}), "
                f"got {tuple(inputs_embeds.shape)}"
            )
        return tuple(inputs_embeds.shape[:2])

    def _positions(self, batch, seq_len, device, position_ids, attention_mask, past_length) -> Positions:
        """Resolve where the new tokens sit, checked against `max_position_embeddings`."""
        if isinstance(past_length, bool) or not isinstance(past_length, int) or past_length < 0:
            raise ValueError(f"`past_key_values_length` must be a non-negative int, got {past_length!r}")
        if attention_mask is not None:
            self._check_attention_mask(attention_mask, batch, seq_len, past_length)
        positions = Positions(past_length, seq_len, device)
        if position_ids is not None:
            position_ids = _per_token_ids("position_ids", position_ids, batch, seq_len)
            limit = f"max_position_embeddings ({self.max_positions})"
            position_ids = as_index_tensor(position_ids, "position id", limit)
            check_range(position_ids, self.max_positions, "position id", limit)
            positions.ids = position_ids.long()
            return positions

        if past_length + seq_len > self.max_positions:
            raise ValueError(
                f"sequence length {seq_len} (plus past length {past_length}) exceeds "
                f"max_position_embeddings ({self.max_positions})"
            )
        if attention_mask is not None:
            all_ids = position_ids_from_attention_mask(attention_mask)  # (B, T) or (B, P + T)
            if attention_mask.shape[1] == seq_len:
                positions.ids = all_ids + past_length
            else:
                positions.past_ids, positions.ids = all_ids[:, :past_length], all_ids[:, past_length:]
        return positions

    @staticmethod
    def _check_attention_mask(attention_mask, batch: int, seq_len: int, past_length: int) -> None:
        """(B, T) or (B, P + T), holding only 0 (padding) and 1 (token), whether or not positions come from it."""
        if not isinstance(attention_mask, torch.Tensor):
            raise TypeError(f"`attention_mask` must be a torch.Tensor, got {type(attention_mask).__name__}")
        lengths = (seq_len, past_length + seq_len)
        if attention_mask.dim() != 2 or attention_mask.shape[0] != batch or attention_mask.shape[1] not in lengths:
            raise ValueError(
                f"`attention_mask` must have shape ({batch}, {seq_len}) or ({batch}, {past_length + seq_len}), "
                f"got {tuple(attention_mask.shape)}"
            )
        check_mask("attention_mask", attention_mask)

    @torch.no_grad()
    def resize_position_embeddings(self, new_num_position_embeddings: int, *, method: str = "keep") -> None:
        """Change how many positions the layer takes (see `HfEmbedModel.resize_position_embeddings`)."""
        n = check_positive_int("new_num_position_embeddings", new_num_position_embeddings)
        method = RESIZE_METHOD_ALIASES.get(method, method)
        if method not in RESIZE_METHODS:
            raise ValueError(f"`method` must be one of {RESIZE_METHODS}, got {method!r}")
        kind, wpe = self.position_embedding_type, self.wpe
        if method == "interpolate" and kind != "absolute":
            raise ValueError(interpolate_refusal(kind))
        expected = {"absolute": LearnedPositionEmbedding, "sinusoidal": SinusoidalPositionEmbedding}.get(kind)
        if expected is not None and type(wpe) is not expected:
            raise TypeError(
                f"cannot resize `wpe` of type {type(wpe).__name__} (expected {expected.__name__}); merge or remove "
                "adapters and wrappers first"
            )
        if kind == "absolute":
            table = wpe.weight  # (old, D)
            wpe.weight = nn.Parameter(self._resized_table(table, n, method), requires_grad=table.requires_grad)
            wpe.num_embeddings = n
        elif kind == "sinusoidal":  # fixed: recomputed at the new length
            wpe.num_positions = n
            wpe.table = torch.empty(n, wpe.dim, dtype=wpe.table.dtype, device=wpe.table.device)
            wpe.reset_table()
        elif isinstance(wpe, RotaryPositionEmbedding):  # a dynamic scheme records its original length
            wpe.set_max_positions(n)
        self.max_positions = n  # rotary, relative and none compute from positions: only the limit changes

    def _resized_table(self, table: torch.Tensor, n: int, method: str) -> torch.Tensor:
        """(old, D) -> (n, D) by `method` ("keep" or "interpolate")."""
        old, dim = table.shape
        if method == "interpolate":
            # (1, D, old) -> (1, D, n): linear in the position index, first and last rows kept; in float32
            stretched = F.interpolate(table.T.float()[None], size=n, mode="linear", align_corners=True)[0].T
            return stretched.to(table.dtype).contiguous()
        if n <= old:
            return table[:n].clone()
        new_rows = torch.empty(n - old, dim, dtype=table.dtype, device=table.device)
        init_table(new_rows, self.initializer_range)  # as at construction
        return torch.cat((table, new_rows))


RESIZE_METHODS = ("keep", "interpolate")
RESIZE_METHOD_ALIASES = {"extend": "keep"}  # the name before "keep" also crops


def interpolate_refusal(position_embedding_type: str) -> str:
    """Why `method="interpolate"` does not apply to a scheme other than the learned table (one message for the
    model and the `hf-embed resize` command, which checks before loading anything)."""
    hint = ""
    if position_embedding_type == "rotary":  # Chen et al. (2023), position interpolation: transformers' "linear"
        hint = "; to interpolate rotary positions, give rope_parameters {'rope_type': 'linear', 'factor': new / old}"
    return (
        f"method='interpolate' resamples a learned position table; position_embedding_type="
        f"{position_embedding_type!r} has none (its positions are computed or clipped, so 'keep' only moves the "
        f"limit){hint}"
    )


def _per_token_ids(name: str, ids, batch: int, seq_len: int) -> torch.Tensor:
    """One integer per new token: (B, T), or (1, T) / (T,) for every row alike -> (B or 1, T)."""
    check_integer_tensor(name, ids)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2 or ids.shape[-1] != seq_len or ids.shape[0] not in (1, batch):
        raise ValueError(f"`{name}` must have shape ({batch}, {seq_len}) or (1, {seq_len}), got {tuple(ids.shape)}")
    return ids


# --------------------------------------------------------------------------- the model


@dataclass
class HfEmbedModelOutput(BaseModelOutput):
    """`BaseModelOutput` whose `last_hidden_state` is the embedding stage's output (B, T, D).

    position_embeddings: for `"rotary"`, `(cos, sin)` each (B or 1, T, head_dim); for `"relative"`, the
    (B or 1, T, P + T, head_dim) distance embeddings between the new tokens and all tokens; else None.
    """

    position_embeddings: tuple[torch.Tensor, torch.Tensor] | torch.Tensor | None = None


class HfEmbedPreTrainedModel(PreTrainedModel):
    config_class = HfEmbedConfig
    config: HfEmbedConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _input_embed_layer = "wte"
    _no_split_modules = ["HfEmbeddings"]
    supports_gradient_checkpointing = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, strict: the model is loaded whole, or it is an error.

        - A path that looks local (see `loading.local_folder`) and does not exist is a `FileNotFoundError` at
          once, with no Hub request; a folder without `config.json` says so.
        - A `config.json` of another model type is refused; a transformers GPT-2 gets the hint to convert it
          (`HfEmbedModel.from_gpt2`).
        - Missing, unexpected or renamed tensors, and tensors whose shape or dtype disagrees with
          `config.json`, are a `ValueError` naming the checkpoint and the tensors: no table is left freshly
          initialized. Opt-ins, as in transformers: `ignore_mismatched_sizes=True` re-initializes tables of
          another size; `output_loading_info=True` returns `(model, report)` instead of raising, and any
          missing table is then initialized as at construction (the report names it).
        - These checks guard checkpoints read from a folder or the Hub. `from_pretrained(None, config=...,
          state_dict=...)` takes the caller's tensors as transformers does (missing ones initialized).
        - Weights in pickle files (`pytorch_model.bin`) can run code when loaded, so they are refused unless
          `use_safetensors=False` is passed. A corrupt or truncated weights file is a `ValueError` naming it.

        A save published into the folder while it is read (config of one save, weights of the next) is
        noticed, and the folder is read again (`atomic_write.read_folder_consistently`).

        Raises:
            FileNotFoundError, NotADirectoryError, ValueError: as above.
        """
        return read_folder_consistently(
            pretrained_model_name_or_path,
            lambda: cls._from_pretrained_once(pretrained_model_name_or_path, *model_args, **kwargs),
        )

    @classmethod
    def _from_pretrained_once(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        kwargs.setdefault("use_safetensors", True)
        if pretrained_model_name_or_path is None:  # tensors handed over in `state_dict`: no file to check
            return super().from_pretrained(None, *model_args, **kwargs)
        folder = local_folder(pretrained_model_name_or_path)
        name = pretrained_model_name_or_path if folder is None else folder
        where = os.fspath(pretrained_model_name_or_path)
        config_json = read_config_dict(
            pretrained_model_name_or_path, folder, kwargs, required=kwargs.get("config") is None
        )
        report_wanted = kwargs.get("output_loading_info", False)
        allow_mismatched_sizes = kwargs.get("ignore_mismatched_sizes", False)
        if not report_wanted:  # checked below, each tensor named, in place of transformers' report
            kwargs.update(output_loading_info=True, ignore_mismatched_sizes=True)
        try:
            with nullcontext() if report_wanted else hidden_load_report():
                model, info = super().from_pretrained(name, *model_args, **kwargs)
        except Exception as error:
            if type(error).__name__ == "SafetensorError":
                raise ValueError(f"{where}: corrupt or truncated safetensors weights ({error})") from error
            pickled = os.path.join(where, "pytorch_model.bin")
            if isinstance(error, OSError) and kwargs["use_safetensors"] and os.path.isfile(pickled):
                raise ValueError(
                    f"{where}: only pickle weights (pytorch_model.bin), which can run code when loaded; hf-embed "
                    "loads safetensors. If you trust the file, pass use_safetensors=False"
                ) from error
            if isinstance(error, RuntimeError) and "mismatched_sizes" in str(error):
                raise ValueError(
                    f"{where}: tensor shapes disagree with config.json (see the load report above)"
                ) from error
            raise
        if report_wanted:
            return model, info
        files = weight_files(name, kwargs) if kwargs["use_safetensors"] is not False else []
        checkpoint = os.path.join(where, os.path.basename(files[0])) if len(files) == 1 else where
        check_loading_info(checkpoint, info, allow_mismatched_sizes=allow_mismatched_sizes)
        check_dtypes(where, stored_dtypes(files), declared_dtype(config_json))
        return model

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """`PreTrainedModel.resize_token_embeddings`, recording the real vocabulary when the table is padded.

        With `pad_to_multiple_of` (64 or 128, for faster matrix products) the table gets rows past `new_num_tokens`
        (the tokenizer's size; by default the current real vocabulary): `config.vocab_size` is the padded row count,
        as in transformers, and `config.unpadded_vocab_size` records the real one, whose padding rows
        `HfEmbedForCausalLM` never gives probability. A tied head follows the table.
        """
        real = new_num_tokens if new_num_tokens is not None else self.config.real_vocab_size
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        rows = embeddings.weight.shape[0]
        self.config.unpadded_vocab_size = real if real < rows else None
        return embeddings

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, published whole: a crash leaves the previous folder or the new one.

        The save is staged in a new folder beside `save_directory`, synced, and swapped in at once
        (`atomic_write.write_folder_atomically`); a second writer of the same folder fails with
        `OutputLockedError`. Files already in the folder that the save does not write (a tokenizer, say)
        are kept; stale weight shards of an earlier save are removed. Ranks that do not write (distributed
        saves) and `push_to_hub` take transformers' path.
        """
        self._map_both_auto_classes()
        is_main_process = kwargs.get("is_main_process", args[0] if args else True)
        if kwargs.get("push_to_hub") or not self.should_save_on_this_rank(is_main_process):
            return super().save_pretrained(save_directory, *args, **kwargs)
        write_folder_atomically(
            save_directory,
            lambda staging: super(HfEmbedPreTrainedModel, self).save_pretrained(staging, *args, **kwargs),
        )

    def _map_both_auto_classes(self) -> None:
        """Let a saved folder of either class load through `AutoModel` and `AutoModelForCausalLM`.

        transformers writes only the saving class into `auto_map`; with both, `trust_remote_code` loading
        gives the embedding stage of a causal-LM folder, or a causal LM (head tied to `wte`) from a base folder.
        """
        if not self.is_remote_code():
            return
        module = type(self).__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            "AutoModel": f"{module}.HfEmbedModel",
            "AutoModelForCausalLM": f"{module}.HfEmbedForCausalLM",
        }

    def gather_sharded_state_dict_for_save(self, model_to_save, state_dict, *args, **kwargs):
        """Gather tensor-parallel weights for saving, each tied tensor once.

        transformers gathers every key into a full tensor of its own, so the tied head and `wte` would no longer
        share storage and the checkpoint would hold the table twice. Aliases are gathered once and put back as
        the same tensor, which `save_pretrained` then writes once under the source's name.
        """
        first, aliases = {}, {}
        for name, parameter in model_to_save.named_parameters(remove_duplicate=False):
            if name in state_dict:
                aliases[name] = first.setdefault(id(parameter), name)
        aliases = {name: source for name, source in aliases.items() if name != source}
        unique = {name: tensor for name, tensor in state_dict.items() if name not in aliases}
        gathered = super().gather_sharded_state_dict_for_save(model_to_save, unique, *args, **kwargs)
        for name, source in aliases.items():
            if source in gathered:
                gathered[name] = gathered[source]
        return gathered

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2's normal(0, initializer_range) for every table (`None`: torch's nn.Embedding default), the fixed
        # sinusoid recomputed: the initializer `HfEmbeddings` uses alone, which skips tensors that were loaded.
        init_embedding_module(module, self.config.initializer_range)


class HfEmbedModel(HfEmbedPreTrainedModel):
    """The embedding stage as a Hugging Face model: `last_hidden_state` is (B, T, D)."""

    _auto_class = "AutoModel"  # as `register_for_auto_class("AutoModel")` sets it (see HfEmbedConfig._auto_class)

    def __init__(self, config: HfEmbedConfig):
        super().__init__(config)
        # `post_init` fills the tables (`_init_weights`, wte then wpe: the numbers `HfEmbeddings(config)` draws),
        # and `from_pretrained` fills only those it did not load.
        self.embeddings = HfEmbeddings(config, initialize=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.wte = value
        self.embeddings.vocab_size = value.num_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values_length: int = 0,
        return_dict: bool | None = None,
        *,
        token_type_ids: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> HfEmbedModelOutput | tuple:
        """The embedding stage: `last_hidden_state` (B, T, D), as `GPT2Model`'s `hidden_states[0]`.

        Args:
            input_ids: (B, T) token ids; or `inputs_embeds` (B, T, D) instead.
            attention_mask: (B, T) or (B, P + T) of 0 (padding) and 1 (token); left padding gets no position.
            position_ids: (B, T) or (1, T) positions; default `P .. P + T - 1`, or from `attention_mask`.
            past_key_values_length: P, tokens before these (incremental decoding).
            return_dict: a `HfEmbedModelOutput` (default `config.return_dict`) or its tuple.
            token_type_ids: (B, T) ids embedded with `wte` and added, as GPT-2 does.
            output_hidden_states: also return `hidden_states=(last_hidden_state,)`, transformers' convention for a
                model whose only hidden state is its embedding output (default `config.output_hidden_states`).
            kwargs: only what transformers' machinery passes (`check_forward_keywords`); anything else is a
                `TypeError` naming it.
        """
        if kwargs:
            check_forward_keywords(self.forward, kwargs)
        hidden_states, position_embeddings = self.embeddings(
            input_ids=input_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            past_key_values_length=past_key_values_length,
            token_type_ids=token_type_ids,
        )
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        output = HfEmbedModelOutput(
            last_hidden_state=hidden_states,
            hidden_states=(hidden_states,) if output_hidden_states else None,
            position_embeddings=position_embeddings,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def get_position_embeddings(self) -> nn.Module:
        return self.embeddings.wpe

    def resize_position_embeddings(self, new_num_position_embeddings: int, method: str = "keep") -> None:
        """Change `max_position_embeddings` (the config follows) for longer or shorter contexts.

        Args:
            new_num_position_embeddings: the new number of positions.
            method: how the learned (absolute) table changes:
                `"keep"` (default; `"extend"` is accepted for it): the first `min(old, new)` rows are kept bit for
                bit, so shrinking keeps the first rows (as transformers' models and nanoGPT's `crop_block_size`
                do), and growing appends rows initialized as at construction;
                `"interpolate"`: the table is resampled linearly over the new length (first and last rows kept:
                `torch.nn.functional.interpolate(mode="linear", align_corners=True)` along positions, in float32);
                learned tables only (other schemes have no table to resample: a `ValueError`).
                The sinusoidal table is recomputed at the new length; rotary, relative and none take the new limit
                (a dynamic-NTK rotary scheme keeps its original length, recorded as
                `rope_parameters["original_max_position_embeddings"]`, and scales past it).

        Raises:
            ValueError: for a length that is not a positive integer, an unknown `method`, or `"interpolate"` for a
                scheme without a learned table.
            TypeError: when the learned or sinusoidal `wpe` is wrapped (a PEFT adapter): merge or remove it first.
        """
        self.embeddings.resize_position_embeddings(new_num_position_embeddings, method=method)
        self.config.max_position_embeddings = new_num_position_embeddings
        wpe = self.embeddings.wpe
        if isinstance(wpe, RotaryPositionEmbedding) and wpe.rope_parameters != self.config.rope_parameters:
            self.config.rope_parameters = dict(wpe.rope_parameters)  # dynamic NTK: the original length recorded

    # ----------------------------------------------------------------------- transformers weights

    @classmethod
    def from_transformers(cls, model_or_path, **config_overrides) -> HfEmbedModel:
        """Build the hf-embed model of a transformers model's embedding stage, with its tables.

        Families (`families.FAMILIES`): GPT-2, Llama, Mistral, Qwen2, Gemma, BLOOM; the base model or any model
        around it (`LlamaForCausalLM`, `GPT2LMHeadModel`, ...). The result's `last_hidden_state` equals their
        `hidden_states[0]` (`output_hidden_states=True`, eval mode) and, for the rotary families, its
        `position_embeddings` equal their rotary `(cos, sin)`; the tables keep their dtype.

        Args:
            model_or_path: a transformers model, or the folder / Hub id of a saved one (loaded with `AutoModel`,
                the whole base model: the tables are then copied out of it).
            config_overrides: `HfEmbedConfig` fields to set instead of the family's (`max_position_embeddings=`
                for BLOOM, which has no length of its own).

        Raises:
            ValueError: an architecture outside the families, naming the supported ones.
            TypeError: something that is not a transformers model or a path.
        """
        if isinstance(model_or_path, (str, bytes)) or hasattr(model_or_path, "__fspath__"):
            from transformers import AutoConfig, AutoModel

            family_of(AutoConfig.from_pretrained(model_or_path))  # an unsupported one fails before any weight loads
            model_or_path = AutoModel.from_pretrained(model_or_path)
        base = base_model_of(model_or_path)
        family = family_of(model_or_path.config)
        config = HfEmbedConfig(**{**family.config(model_or_path.config, base), **config_overrides})
        with init.no_init_weights():
            model = cls(config)
        tensors = {ours: base.get_parameter(theirs).detach() for ours, theirs in family.tables.items()}
        model.embeddings.load_state_dict(tensors)
        return model.to(tensors["wte.weight"].dtype)

    @torch.no_grad()
    def to_transformers(self, model):
        """Write this model's tables into a transformers model of a supported family; a tied LM head follows.

        The two embedding stages must be the same computation (`families.STAGE_FIELDS`: scheme, RoPE settings,
        multiplier, norm) and the tables the same shapes; then `model`'s `hidden_states[0]` equals this model's
        `last_hidden_state`. Returns `model`.

        Raises:
            ValueError: the stages differ (each difference named) or a table's shape differs.
            TypeError: `model` is not a transformers model.
        """
        base = base_model_of(model)
        family = family_of(model.config)
        theirs = HfEmbedConfig(**family.config(model.config, base))
        mine, other = stage_settings(self.config), stage_settings(theirs)
        differences = [
            f"{name} {mine[name]!r} here, {other[name]!r} in {family.name}"
            for name in mine
            if mine[name] != other[name]
        ]
        if differences:
            raise ValueError(
                f"cannot write this model's tables into {type(model).__name__}: the embedding stages differ ("
                + "; ".join(differences)
                + ")"
            )
        for ours, their_name in family.tables.items():
            source, target = self.embeddings.get_parameter(ours), base.get_parameter(their_name)
            if target.shape != source.shape:
                table = ours.split(".")[0]
                shapes = f"this model {tuple(source.shape)}, {family.name} {tuple(target.shape)}"
                raise ValueError(f"`{table}` shapes differ: {shapes}")
        for ours, their_name in family.tables.items():
            base.get_parameter(their_name).copy_(self.embeddings.get_parameter(ours))
        return model

    @classmethod
    def from_gpt2(cls, gpt2, **config_overrides) -> HfEmbedModel:
        """`from_transformers` for a transformers GPT-2 (`GPT2Model`, `GPT2LMHeadModel`, or a path / Hub id)."""
        return cls.from_transformers(gpt2, **config_overrides)

    def to_gpt2(self, gpt2):
        """`to_transformers` for a transformers GPT-2 (`GPT2Model`, `GPT2LMHeadModel`); a tied head follows."""
        if getattr(getattr(gpt2, "config", None), "model_type", None) != "gpt2":
            raise TypeError(f"expected a transformers GPT-2 model with `wte` and `wpe`, got {type(gpt2).__name__}")
        return self.to_transformers(gpt2)


class HfEmbedForCausalLM(HfEmbedPreTrainedModel, GenerationMixin):
    """The embedding stage with a language-model head tied to `wte`: logits = hidden @ wte.T.

    With absolute positions this is a bigram-with-positions model: each token's next-token logits come
    from its own embedding plus its position's. Small enough to train the tables alone with `Trainer`.

    `generate()` works (greedy, sampling, beams; `pipeline("text-generation")`). There is no attention
    and so no cache: every step embeds the whole sequence, with positions from `attention_mask` (left
    padding) or the extended `position_ids`, exactly as a hand-written loop calling the model would.

    A padded vocabulary (`resize_token_embeddings(pad_to_multiple_of=64)`, `config.unpadded_vocab_size`) gets the
    logits of its padding rows set to the dtype's minimum, so softmax gives them probability 0 and `generate()`
    never emits an id the tokenizer cannot decode.
    """

    _auto_class = "AutoModelForCausalLM"  # as `register_for_auto_class("AutoModelForCausalLM")` sets it
    _tied_weights_keys = {"lm_head.weight": "model.embeddings.wte.weight"}
    # Tensor parallel, as transformers' tied-head models (LFM2, GPT-NeoX) plan it: `wte` is split over the
    # vocabulary (`embedding_rowwise`, rows of the (V, D) table), and the head, which IS that table, is split
    # the same way (`colwise`: output features = vocabulary rows), its logits gathered on every rank.
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: HfEmbedConfig):
        super().__init__(config)
        self.model = HfEmbedModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embeddings.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def get_position_embeddings(self) -> nn.Module:
        return self.model.get_position_embeddings()

    def resize_position_embeddings(self, new_num_position_embeddings: int, method: str = "keep") -> None:
        """`HfEmbedModel.resize_position_embeddings` on the embedding stage (same `method`s); the config follows."""
        self.model.resize_position_embeddings(new_num_position_embeddings, method=method)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        past_key_values_length: int = 0,
        return_dict: bool | None = None,
        *,
        token_type_ids: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        shift_labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutput | tuple:
        """Next-token logits (B, T, V) for `input_ids` (B, T) or `inputs_embeds` (B, T, D).

        Args:
            input_ids, attention_mask, position_ids, inputs_embeds, past_key_values_length, token_type_ids,
                output_hidden_states: as `HfEmbedModel.forward`; `hidden_states` is `(embedding output,)`.
            labels: (B, T), the inputs themselves (shifted inside, as GPT-2 does); -100 is ignored.
            shift_labels: (B, T) labels already shifted (packed sequences); used instead of shifting `labels`.
            return_dict: a `CausalLMOutput`, or its non-`None` fields as a tuple; defaults to `config.return_dict`.
            logits_to_keep: an int keeps the logits of the last that many positions (0: all); a 1-D tensor
                keeps those positions. `generate()` passes 1.
            kwargs: only what transformers' machinery passes (`check_forward_keywords`); Trainer's
                `num_items_in_batch` goes to the loss.

        Returns:
            `CausalLMOutput(loss, logits, hidden_states)` or the tuple `(loss?, logits, hidden_states?)`.
        """
        check_forward_keywords(self.forward, kwargs)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            past_key_values_length=past_key_values_length,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state  # (B, T, D)
        if isinstance(logits_to_keep, int):
            hidden_states = hidden_states[:, -logits_to_keep:] if logits_to_keep else hidden_states  # (B, K, D)
        else:
            hidden_states = hidden_states[:, logits_to_keep]
        logits = self.lm_head(hidden_states)  # (B, K, V)
        real = self.config.unpadded_vocab_size
        if real is not None and real < logits.shape[-1]:  # padding rows: no id of the tokenizer, no probability
            logits[..., real:] = torch.finfo(logits.dtype).min
        loss = None
        if labels is not None or shift_labels is not None:
            loss = self.loss_function(
                logits,
                labels,
                vocab_size=self.config.vocab_size,
                num_items_in_batch=kwargs.get("num_items_in_batch"),
                shift_labels=shift_labels,
            )
        output = CausalLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, inputs_embeds=None, **kwargs):
        """Every generation step embeds the whole sequence: there is no cache to hold the past.

        A prompt given as `inputs_embeds` stays in front of the embeddings of the tokens generated so far
        (`input_ids` then holds only those), so each step still sees the whole sequence.
        """
        kwargs.pop("cache", None)
        kwargs.pop("is_first_iteration", None)
        if inputs_embeds is not None:
            if input_ids.shape[1]:
                inputs_embeds = torch.cat((inputs_embeds, self.get_input_embeddings()(input_ids)), dim=1)
            return super().prepare_inputs_for_generation(
                input_ids, inputs_embeds=inputs_embeds, is_first_iteration=True, **kwargs
            )
        return super().prepare_inputs_for_generation(input_ids, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # no attention, nothing to cache


__all__ = [
    "IGNORED_FORWARD_KEYWORDS",
    "HfEmbedForCausalLM",
    "HfEmbedModel",
    "HfEmbedModelOutput",
    "HfEmbedPreTrainedModel",
    "HfEmbeddings",
    "apply_rotary_pos_emb",
    "check_forward_keywords",
    "position_ids_from_attention_mask",
]
