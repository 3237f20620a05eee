"""Shared fixtures: tiny configs, generated text, and a tiktoken GPT-2 encoding built offline."""

from __future__ import annotations

import random

import pytest
import torch

from hf_embed import HfEmbedConfig
from hf_embed.tokenization import ENDOFTEXT, gpt2_vocab_files

# tiktoken's GPT-2 pre-tokenization pattern (tiktoken_ext/openai_public.py, `gpt2`).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

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


@pytest.fixture(scope="session")
def text() -> str:
    return make_text(3000)


@pytest.fixture(scope="session")
def tiktoken_gpt2():
    """tiktoken's `gpt2` encoding, built from the same vocabulary files (no download)."""
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    vocab_file, merges_file = gpt2_vocab_files()
    ranks = data_gym_to_mergeable_bpe_ranks(str(merges_file), str(vocab_file))
    return tiktoken.Encoding("gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={ENDOFTEXT: 50256})


@pytest.fixture(scope="session")
def gpt2_tok():
    from hf_embed import gpt2_tokenizer

    return gpt2_tokenizer()


@pytest.fixture
def tiny_config() -> HfEmbedConfig:
    return HfEmbedConfig.from_preset("tiny")


@pytest.fixture
def tiny_ids() -> torch.Tensor:
    return torch.randint(0, 99, (13, 7), generator=torch.Generator().manual_seed(0))
