"""The checks every entry point shares: integer arguments, integer tensors, ids inside a range, 0/1 masks, and
the keywords a `forward` accepts.

Each names the bad value and the limit. On CUDA, and on any device under `torch.compile`, the range
check is an asynchronous device assert: validating never adds a host sync or a graph break.

This file imports only torch and `arguments`: `save_pretrained` copies both next to the weights with the model files.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

import torch

from .arguments import check_positive_int  # the one integer check, torch-free; re-exported with the tensor checks

INDEX_DTYPES = (torch.int64, torch.int32)  # what the gather kernels take as they are
# Every integer dtype is taken, converted exactly to int64 (`as_index_tensor`); bool, floating, complex, quantized
# and sub-byte dtypes are refused by name.
INTEGER_DTYPES = (*INDEX_DTYPES, torch.int16, torch.int8, torch.uint8, torch.uint16, torch.uint32, torch.uint64)


def check_integer_tensor(name: str, value: object) -> None:
    """Check that `value` is a tensor of an integer dtype (`INTEGER_DTYPES`).

    Args:
        name: the argument's name, for the message.
        value: what was passed.

    Raises:
        TypeError: not a tensor, or a tensor of another dtype (naming it).
    """
    if isinstance(value, torch.Tensor) and value.dtype in INDEX_DTYPES:  # the common case, first
        return
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in INTEGER_DTYPES:
        raise TypeError(
            f"`{name}` must hold integers (torch.int64 or torch.int32; int8/16 and uint8/16/32/64 are converted), "
            f"got {value.dtype}"
        )


def as_index_tensor(values: torch.Tensor, what: str, limit: str) -> torch.Tensor:
    """`values` (integers) in a dtype the gather kernels take: int64/int32 as they are, the rest exactly as int64.

    A uint64 value of 2**63 or more has no int64 equal (it would read as negative), and is outside every limit:
    on CPU a `ValueError` quotes its real value; on other devices it becomes negative and the range check that
    follows refuses it.

    Args:
        values: an integer tensor.
        what: what a value is, for the message ("token id").
        limit: what it must be inside, for the message ("the vocabulary (size 50257)").

    Returns:
        `values`, or an int64 copy.

    Raises:
        ValueError: `"{what} 9223372036854775813 at [0, 1] is outside {limit}"` (uint64 on CPU).
    """
    if values.dtype in INDEX_DTYPES:
        return values
    if values.dtype != torch.uint64:
        return values.long()  # int8/16, uint8/16/32: every value fits
    signed = values.view(torch.int64)  # the same bits; values >= 2**63 read as negative
    if values.device.type == "cpu" and not torch.compiler.is_compiling():
        huge = signed < 0
        if huge.any():
            index = huge.nonzero()[0].tolist()
            raise ValueError(f"{what} {values[tuple(index)].item()} at {_where(index)} is outside {limit}")
    return signed


def check_mask(name: str, mask: torch.Tensor) -> None:
    """Check that every element of `mask` is 0 or 1 (bool; integers; floating 0.0 and 1.0).

    On CUDA, and under `torch.compile`, an asynchronous device assert instead (no host sync, no graph break).

    Args:
        name: the argument's name, for the message.
        mask: the mask.

    Raises:
        TypeError: a dtype that cannot hold 0 and 1. ValueError: naming the first other value and its index.
    """
    if mask.dtype == torch.bool:
        return
    if not (mask.dtype in INTEGER_DTYPES or mask.is_floating_point()):
        raise TypeError(f"`{name}` must hold 0 and 1 (bool, integer or floating), got {mask.dtype}")
    if mask.device.type in ("cpu", "meta") and not torch.compiler.is_compiling():
        if mask.device.type == "cpu" and mask.numel():
            other = (mask != 0) & (mask != 1)  # NaN included
            if other.any():
                index = other.nonzero()[0].tolist()
                value = mask[tuple(index)].item()
                raise ValueError(f"`{name}` must hold 0 (padding) or 1 (token), got {value} at {_where(index)}")
    else:
        torch._assert_async(((mask == 0) | (mask == 1)).all(), f"`{name}` holds a value other than 0 and 1")


def first_out_of_range(values: torch.Tensor, low: int, high: int) -> tuple[int, list[int]] | None:
    """The first element outside [low, high) and its index. Host tensors only.

    Args:
        values: an integer tensor on the CPU.
        low: the least value allowed.
        high: the first value not allowed.

    Returns:
        `(value, index)`, or None when every element is inside.
    """
    if values.numel() == 0:
        return None
    lo, hi = torch.aminmax(values)
    if lo.item() >= low and hi.item() < high:
        return None
    bad = ((values < low) | (values >= high)).nonzero()[0]
    return int(values[tuple(bad)]), bad.tolist()


def check_range(values: torch.Tensor, high: int, what: str, limit: str) -> None:
    """Check that every element of `values` is in [0, high): the one id-range check.

    On CUDA, and under `torch.compile`, an asynchronous device assert instead (no host sync, no graph break).

    Args:
        values: an integer tensor.
        high: the first value not allowed (a vocabulary size, a position limit).
        what: what a value is, for the message ("token id").
        limit: what it must be inside, for the message ("the vocabulary (size 50257)").

    Raises:
        ValueError: `"{what} 7 at [0, 3] is outside {limit}"` (`at position 3` for a 1-D tensor).
    """
    if values.device.type in ("cpu", "meta") and not torch.compiler.is_compiling():
        if values.device.type == "cpu" and (bad := first_out_of_range(values, 0, high)) is not None:
            value, index = bad
            raise ValueError(f"{what} {value} at {_where(index)} is outside {limit}")
    else:
        torch._assert_async(((values >= 0) & (values < high)).all(), f"a {what} is outside {limit}")


def _where(index: list[int]) -> str:
    """`[0, 3]` for an element of a 2-D tensor; `position 3` in a 1-D one."""
    return f"position {index[0]}" if len(index) == 1 else str(index)


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


__all__ = [
    "IGNORED_FORWARD_KEYWORDS",
    "INDEX_DTYPES",
    "INTEGER_DTYPES",
    "as_index_tensor",
    "check_forward_keywords",
    "check_integer_tensor",
    "check_mask",
    "check_positive_int",
    "check_range",
    "first_out_of_range",
]
