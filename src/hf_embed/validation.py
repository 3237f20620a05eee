"""The checks every entry point shares: integer arguments, integer tensors, ids inside a range.

Each names the bad value and the limit. On CUDA, and on any device under `torch.compile`, the range
check is an asynchronous device assert: validating never adds a host sync or a graph break.

This file imports only torch: `save_pretrained` copies it next to the weights with the model files.
"""

from __future__ import annotations

import torch

INDEX_DTYPES = (torch.int64, torch.int32)  # what the gather kernels take as they are


def check_positive_int(name: str, value: object) -> int:
    """`value` if it is an int >= 1 (not a bool), else a `ValueError` naming `name` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return value


def check_integer_tensor(name: str, value: object) -> None:
    """A `TypeError` unless `value` is a tensor of integers (not bool, float or complex)."""
    if isinstance(value, torch.Tensor) and value.dtype in INDEX_DTYPES:  # the common case, first
        return
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise TypeError(f"`{name}` must hold integers (torch.int64 or torch.int32), got {value.dtype}")


def first_out_of_range(values: torch.Tensor, low: int, high: int) -> tuple[int, list[int]] | None:
    """The first element outside [low, high) and its index, or None. Host tensors only."""
    if values.numel() == 0:
        return None
    lo, hi = torch.aminmax(values)
    if lo.item() >= low and hi.item() < high:
        return None
    bad = ((values < low) | (values >= high)).nonzero()[0]
    return int(values[tuple(bad)]), bad.tolist()


def check_range(values: torch.Tensor, high: int, what: str, limit: str) -> None:
    """Every element of `values` in [0, high), else `ValueError("{what} 7 at [0, 3] is outside {limit}")`.

    A 1-D tensor names the index as `at position 3`.
    """
    if values.device.type in ("cpu", "meta") and not torch.compiler.is_compiling():
        if values.device.type == "cpu" and (bad := first_out_of_range(values, 0, high)) is not None:
            value, index = bad
            where = f"position {index[0]}" if len(index) == 1 else str(index)
            raise ValueError(f"{what} {value} at {where} is outside {limit}")
    else:
        torch._assert_async(((values >= 0) & (values < high)).all(), f"a {what} is outside {limit}")


__all__ = ["INDEX_DTYPES", "check_integer_tensor", "check_positive_int", "check_range", "first_out_of_range"]
