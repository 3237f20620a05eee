"""The one integer check: plain int arguments (sizes, counts, ranks, ids), each error naming the value and the limit.

It imports nothing, so the modules that run without torch (tokenization, token files, the tokenize command)
use the same check as the model; `validation.py` re-exports it beside the tensor checks.

This file imports only the standard library: `save_pretrained` copies it next to the weights with the model files.
"""

from __future__ import annotations


def check_positive_int(
    name: str, value: object, *, minimum: int = 1, below: int | None = None, why: str | None = None
) -> int:
    """Check an integer argument: an int (not a bool) >= `minimum` (1 by default: positive) and < `below` if given.

    Args:
        name: the argument's name, for the message.
        value: what was passed.
        minimum: the least value allowed (0 for a count or an index).
        below: when given, the values allowed end just before it (a rank below `world_size`, an id below the
            vocabulary size).
        why: a few words on the limit, put in parentheses after it.

    Returns:
        `value`.

    Raises:
        ValueError: `"`num_workers` must be an integer >= 0, got -1"`, `"`rank` must be an integer in 0..1, got 2"`.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (below is not None and value >= below)
    ):
        limit = f">= {minimum}" if below is None else f"in {minimum}..{below - 1}"
        reason = f" ({why})" if why else ""
        raise ValueError(f"`{name}` must be an integer {limit}{reason}, got {value!r}")
    return value


__all__ = ["check_positive_int"]
