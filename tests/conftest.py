"""Shared fixtures: tiny configs, generated text, and a tiktoken GPT-2 encoding built offline."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

from helpers import make_text
from hf_embed import HfEmbedConfig
from hf_embed.tokenization import ENDOFTEXT, gpt2_vocab_files

# Property tests are derandomized by default, so every run tries the same cases and a failure reproduces;
# `pytest --hypothesis-profile explore` searches new ones.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("deterministic")

# tiktoken's GPT-2 pre-tokenization pattern (tiktoken_ext/openai_public.py, `gpt2`).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


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
