"""`HfEmbeddings`, the layer: token rows, position information, dropout; a plain `nn.Module` for any model.

`modeling_hf_embed.py` wraps it in transformers' model classes. Shapes in comments use: B batch size, T sequence
length (new tokens), P past length, D hidden size, V vocabulary size.

This file imports only torch, transformers and its flat siblings: `save_pretrained` copies it next to the weights
for `trust_remote_code` loading.
"""

from __future__ import annotations

from typing import TypeGuard, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.module import (
    _global_backward_hooks,
    _global_backward_pre_hooks,
    _global_forward_hooks,
    _global_forward_pre_hooks,
)

from .configuration_hf_embed import SQRT_HIDDEN_SIZE, HfEmbedConfig
from .gather_add import BLOCKED_DTYPES, MIN_BLOCKED_ELEMENTS, gather_add_rows
from .position_embeddings import (
    MAX_RELATIVE_ELEMENTS,
    LearnedPositionEmbedding,
    Positions,
    RotaryPositionEmbedding,
    SinusoidalPositionEmbedding,
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

_M = TypeVar("_M", bound=nn.Module)


def _calls_own_forward(module: nn.Module, cls: type[_M]) -> TypeGuard[_M]:
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

    Args:
        config: the stage's settings (`HfEmbedConfig`).
        initialize: fill the tables now (False: the owner fills them).
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
        self.multipliers: dict[torch.dtype, float] | None = None
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
        device = input_ids.device if input_ids is not None else cast(torch.Tensor, inputs_embeds).device
        positions = self._positions(batch, seq_len, device, position_ids, attention_mask, past_key_values_length)

        # ids -> token rows + position rows in one pass over the output, where that is all there is to do
        summed = self._token_and_position_rows(input_ids, positions) if input_ids is not None else None
        if summed is not None:
            hidden_states, position_embeddings = summed, None  # (B, T, D) = wte(ids) + wpe(pos)
        else:  # the same steps one at a time
            if input_ids is not None:
                hidden_states, owned = self._token_rows(input_ids)  # (B, T, D); owned: a fresh gather of ours
            else:  # `_check_inputs`: exactly one of the two is given
                hidden_states, owned = cast(torch.Tensor, inputs_embeds), False  # a caller's tensor is never modified
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
        multipliers = self.multipliers if self.multipliers is not None else {}
        multiplier = multipliers.get(hidden_states.dtype)
        if multiplier is None:  # a dtype not precomputed (float64, ...)
            multiplier = multiplier_for(self.embedding_multiplier, self.hidden_size, hidden_states.dtype)
            multipliers[hidden_states.dtype] = multiplier
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
        return inputs_embeds.shape[0], inputs_embeds.shape[1]

    def _positions(self, batch, seq_len, device, position_ids, attention_mask, past_length) -> Positions:
        """Resolve where the new tokens sit, checked against `max_position_embeddings`."""
        check_positive_int("past_key_values_length", past_length, minimum=0)
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
        if kind == "absolute" and isinstance(wpe, LearnedPositionEmbedding):  # (checked just above)
            table = wpe.weight  # (old, D)
            wpe.weight = nn.Parameter(self._resized_table(table, n, method), requires_grad=table.requires_grad)
            wpe.num_embeddings = n
        elif kind == "sinusoidal" and isinstance(wpe, SinusoidalPositionEmbedding):  # recomputed at the new length
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


__all__ = ["ADDED_SCHEMES", "RESIZE_METHODS", "HfEmbeddings", "interpolate_refusal", "multiplier_for"]
