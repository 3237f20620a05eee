"""Helpers the tests share (imported by test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import time

import pytest
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


# The engine a GPT-2 vocabulary gets: fastokens where it is installed (every platform but Windows on ARM).
FAST_ENGINE = "fastokens" if importlib.util.find_spec("fastokens") else "tiktoken"
TRICKY = "a  \n b\r\n\r\nc \t d\n\n\ne  f's 12 34\u3000x\u00a0y é\n中文 \n\n  🤗\n" * 40


def write_text(path, text: str, bom: bool = False):
    """Write `text` as UTF-8 (after a BOM if `bom`) to `path`; return `path`."""
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def ids_of(tokenizer, text: str) -> list[int]:
    """A transformers tokenizer's ids of `text`, no special tokens added: the reference."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def read_tokens(path) -> list[int]:
    """Every id of a token file."""
    from hf_embed.token_files import TokenFile

    file = TokenFile(path)
    return file.read(0, file.count).tolist()


def in_child(work, timeout: float = 60) -> int:
    """Run `work()` in a forked copy of this process (warm: no imports, no tokenizer build); its exit status:
    0 when it returns, 99 when it raises, N when it calls `os._exit(N)`. A child still running after `timeout`
    seconds is killed and the test fails."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the child did not finish in {timeout} s")
        time.sleep(0.001)


SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]

# What `save_pretrained` copies next to the weights for `trust_remote_code`: the modeling file and what it imports
# (`from .name import ...`, followed recursively, copied flat).
MODEL_FILES = (
    "configuration_hf_embed.py",
    "modeling_hf_embed.py",
    "embeddings.py",
    "position_embeddings.py",
    "validation.py",
    "arguments.py",
    "atomic_write.py",
    "output_lock.py",
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
