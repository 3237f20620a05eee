"""Helpers the tests share (imported by test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import random

WORDS = (
    "the a of and to in is was he she it that with for as his her on at by from they we "
    "lighthouse ledger harbour keeper winter evening question library painted grey silent "
    "café naïve déjà-vu Straße niño 東京 北京 😀 🤗 don't I'm we'll they've 1908 3.14 42"
).split()


def make_text(num_words: int, seed: int = 0) -> str:
    """Deterministic text with punctuation, line breaks, accents, CJK and emoji."""
    rng = random.Random(seed)
    out = []
    for i in range(num_words):
        out.append(rng.choice(WORDS))
        if i % 11 == 10:
            out.append(rng.choice([".", ",", "!", "?", ";"]))
        if i % 37 == 36:
            out.append(rng.choice(["\n", "\n\n", "\r\n", "  "]))
    return " ".join(out)
