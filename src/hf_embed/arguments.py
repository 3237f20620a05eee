"""Checks of plain arguments: the one integer check (sizes, counts, ranks, ids), each error naming the value and the
limit, and the one rule that tells a local path from a Hub id.

It imports nothing heavy, so the modules that run without torch (tokenization, token files, the command line)
use the same checks as the model; `validation.py` re-exports the integer check beside the tensor checks.

This file imports only the standard library: `save_pretrained` copies it next to the weights with the model files.
"""

from __future__ import annotations

import os
import re

HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


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


def looks_local(name: str | os.PathLike) -> bool:
    """Whether a model or tokenizer name means a local path rather than a Hub id (`gpt2`, `org/name`).

    Local: an `os.PathLike`, or a string that exists, starts with `.`, `/` or `~`, holds a backslash or more than
    one `/`, ends with a separator, is not a valid Hub id, or whose first part is an existing folder (`runs/model`
    where `runs/` exists).

    Args:
        name: a path or a Hub id, as given.

    Returns:
        True for a local path (which may not exist), False for a Hub id.
    """
    if isinstance(name, os.PathLike):
        return True
    text = os.fsdecode(name)
    return (
        os.path.exists(os.path.expanduser(text))
        or text.startswith((".", "/", "~"))
        or "\\" in text
        or text.count("/") > 1
        or text.endswith(("/", os.sep))
        or HUB_ID.fullmatch(text) is None
        or ("/" in text and os.path.isdir(text.split("/")[0]))
    )


__all__ = ["HUB_ID", "check_positive_int", "looks_local"]
