"""Helpers the tests share (imported by test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import random

import torch

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


SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]

# What `save_pretrained` copies next to the weights for `trust_remote_code`: the modeling file and what it imports
# (`from .name import ...`, followed recursively, copied flat).
MODEL_FILES = (
    "configuration_hf_embed.py",
    "modeling_hf_embed.py",
    "position_embeddings.py",
    "validation.py",
    "atomic_write.py",
    "loading.py",
    "families.py",
    "gather_add.py",
)


def model_for(scheme: str, **overrides):
    """A tiny `HfEmbedModel` (vocab 99, hidden 32, 16 positions) of one position scheme, seeded, in eval mode."""
    from hf_embed import HfEmbedConfig, HfEmbedModel

    torch.manual_seed(0)
    values = {"position_embedding_type": scheme, "head_dim": 8, "max_relative_distance": 3, **overrides}
    return HfEmbedModel(HfEmbedConfig.from_preset("tiny", **values)).eval()


def assert_same_positions(a, b):
    """Equal position embeddings: None, a tensor, or a (cos, sin) pair."""
    if a is None or b is None:
        assert a is None and b is None
    elif isinstance(a, tuple):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    else:
        assert torch.equal(a, b)
