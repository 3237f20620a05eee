"""Exact encoding of large texts, faster than `tokenizers`: the engines and the cuts that keep ids exact.

`Encoder` encodes with the fastest engine that gives exactly the ids `tokenizer(text)` gives: fastokens (checked
against tiktoken on every run) where the vocabulary is GPT-2-style byte-level BPE, else tiktoken built from the
same vocabulary (`tiktoken_encoding`), else `tokenizers` itself. Texts are cut at `SAFE_CUT`s, where GPT-2's
pre-tokenizer ends a token anyway, so the pieces encode, one by one and on all cores, to the ids of the whole.

Used by `tokenization.encode` for large texts and by `tokenize_corpus` for corpora; depends on neither.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

# GPT-2's pre-tokenization regex, as `tokenizers`' ByteLevel(use_regex=True) and tiktoken's `gpt2` apply it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def stateless_json(backend: Tokenizer) -> str:
    """The JSON of a `tokenizers.Tokenizer` without truncation or padding.

    transformers leaves the truncation and padding of its last call on the backend; they are options of a
    call, not part of the vocabulary, and must change neither the ids of a whole text nor its hash.

    Args:
        backend: the `tokenizers.Tokenizer`.

    Returns:
        Its serialized form, call options removed.
    """
    serialized = backend.to_str()
    if backend.truncation is None and backend.padding is None:
        return serialized
    copy = Tokenizer.from_str(serialized)
    copy.no_truncation()
    copy.no_padding()
    return copy.to_str()


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted: char -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_in, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            stand_in[byte] = chr(byte)
        else:
            stand_in[byte] = chr(256 + extra)
            extra += 1
    return {char: byte for byte, char in stand_in.items()}


def tiktoken_encoding(tokenizer):
    """A tiktoken `Encoding` giving the same ids as a GPT-2-style byte-level BPE `tokenizers` vocabulary.

    tiktoken's engine encodes 2-4x faster than `tokenizers` and releases the GIL, so threads use every core.

    Args:
        tokenizer: a transformers tokenizer or a `tokenizers.Tokenizer`.

    Returns:
        The `Encoding` (built once per vocabulary and process), or None (the log says why) when the vocabulary
        cannot be expressed that way: another model than plain BPE, another pre-tokenizer than GPT-2's, a
        normalizer, added tokens that are not plain special tokens, or merges whose order is not the id order of
        their results (tiktoken merges by the rank of the merged bytes).
    """
    encoding, why = _tiktoken_encoding(stateless_json(getattr(tokenizer, "backend_tokenizer", tokenizer)))
    if encoding is None:
        logger.info("tiktoken cannot express this vocabulary (%s); using tokenizers", why)
    return encoding


@functools.lru_cache(maxsize=4)  # built once per vocabulary and process (about 0.2 s)
def _tiktoken_encoding(serialized: str):
    """(tiktoken `Encoding`, None) for the `tokenizers` JSON `serialized`, or (None, why it cannot be one)."""
    import tiktoken

    spec = json.loads(serialized)
    model, pre = spec["model"], spec.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or model.get("dropout") or model.get("byte_fallback"):
        return None, "not a plain BPE model"
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return None, "subword prefixes or suffixes"
    if spec.get("normalizer") is not None:
        return None, "a normalizer"
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
        return None, "not GPT-2's byte-level pre-tokenization"
    added = spec.get("added_tokens", [])
    if any(not t.get("special") or t.get("lstrip") or t.get("rstrip") or t.get("single_word") for t in added):
        return None, "added tokens that are not plain special tokens"  # tiktoken matches special text only
    special = {t["content"]: t["id"] for t in added}
    vocab = {token: rank for token, rank in model["vocab"].items() if special.get(token) != rank}
    byte_of = _byte_decoder()
    try:
        ranks = {bytes(byte_of[c] for c in token): rank for token, rank in vocab.items()}
    except KeyError:
        return None, "a token that is not byte-level"
    previous = -1
    for merge in model["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        merged = ranks.get(bytes(byte_of[c] for c in left + right))
        if merged is None or merged <= previous:
            return None, f"merge {left!r} + {right!r} out of id order"
        previous = merged
    if len(ranks) != len(vocab) or set(special.values()) & set(ranks.values()):
        return None, "ids that collide"
    encoding = tiktoken.Encoding(
        f"hf-embed-{hashlib.sha256(serialized.encode('utf-8')).hexdigest()[:12]}",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=special,
    )
    return encoding, None


# ---------------------------------------------------------------------------------------------- engines

# Cuts that GPT-2's pre-tokenizer treats as token boundaries: just before a space or newline that follows any
# character and precedes an ASCII letter, digit or underscore. No pre-token spans such a cut, and the text
# before it ends its last pre-token there too, so pieces cut there encode, one by one, to the ids of the
# whole. All are ASCII, so a cut never falls inside a UTF-8 sequence (the bytes form serves files).
SAFE_CUT = re.compile(r"(?<=.)[ \n](?=[A-Za-z0-9_])", re.S)
SAFE_CUT_BYTES = re.compile(rb"(?<=.)[ \n](?=[A-Za-z0-9_])", re.S)
PIECE_CHARS = 1 << 20  # about 1 MB: large enough for the engines' speed, small enough to spread over threads
CHECK_EVERY = 32  # fastokens: pieces 0, 32, 64, ... are encoded again by tiktoken and compared


def split_text(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of at least `size` characters (the last may be shorter) that encode like the whole.

    Args:
        text: the text.
        size: the least characters in a piece but the last; cuts are the first `SAFE_CUT` after it.

    Returns:
        An iterator of the pieces, which concatenate to `text`.
    """
    start = 0
    while len(text) - start > size:
        cut = SAFE_CUT.search(text, start + size)
        if cut is None:
            break
        yield text[start : cut.start()]
        start = cut.start()
    yield text[start:]


class EngineMismatch(RuntimeError):
    """fastokens' ids differed from tiktoken's on a checked piece: everything must be encoded again by tiktoken.

    Args:
        message: which versions differed, on which piece.
    """


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_fastokens_lock = threading.Lock()
_fastokens_threads: list[int] = []  # the size of fastokens' thread pool in this process, once known


def _why_not_fastokens(threads: int) -> str | None:
    """None where fastokens can run here on at most `threads` threads, else why not.

    fastokens starts one thread pool per process, sized by FASTOKENS_BPE_THREADS when it first encodes
    (default: every core up to 32); no call can use fewer threads than that pool has. The first use in a
    process sets the variable to `threads`, unless the user set it or fastokens was imported before.
    """
    with _fastokens_lock:
        if not _fastokens_threads:
            configured = os.environ.get("FASTOKENS_BPE_THREADS")
            if configured is None and "fastokens" not in sys.modules:
                configured = os.environ["FASTOKENS_BPE_THREADS"] = str(threads)
            size = int(configured) if configured and configured.isdigit() and int(configured) >= 1 else 32
            _fastokens_threads.append(min(size, _cpu_count()))
        pool = _fastokens_threads[0]
    try:
        import fastokens  # noqa: F401
    except ImportError:
        return "fastokens is not installed"
    if pool > threads:
        return f"fastokens' thread pool in this process has {pool} threads, more than the {threads} asked for"
    return None


@functools.lru_cache(maxsize=4)  # built once per vocabulary and process (about 0.35 s); its caches stay with it
def _fastokens_tokenizer(serialized: str):
    import fastokens

    return fastokens.Tokenizer.from_json_str(serialized)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Encoder:
    """Exact encoding for one vocabulary by the fastest engine that can express it; ids as uint32 arrays.

    - fastokens (Crusoe, Apache-2.0) where the vocabulary is GPT-2-style byte-level BPE (tiktoken can express
      it), fastokens is installed and its thread pool fits `num_threads`. Pieces 0, 32, 64, ... are encoded
      again by tiktoken and compared; a difference raises `EngineMismatch`, and the caller encodes everything
      again after `switch_to_tiktoken` (the record says why).
    - tiktoken (from the same vocabulary) otherwise, on `num_threads` threads;
    - `tokenizers` itself for every other vocabulary.

    Truncation or padding left on the tokenizer by earlier calls is ignored: every id of every text comes out.
    `record()` names the engine for a token-file header. Use it in a `with` block (or `close()` it): the
    tiktoken and `tokenizers` engines run on a thread pool of their own.

    Args:
        tokenizer: a transformers tokenizer or a `tokenizers.Tokenizer`.
        num_threads: threads to encode on (default: every core).
    """

    def __init__(self, tokenizer, *, num_threads: int | None = None):
        self.threads = num_threads or _cpu_count()
        self.fallback: str | None = None
        self.checked_pieces = self.checked_bytes = 0
        self._pieces = 0
        self._pool: ThreadPoolExecutor | None = None
        self._fastokens = None
        serialized = stateless_json(getattr(tokenizer, "backend_tokenizer", tokenizer))
        self._tiktoken, why_not_tiktoken = _tiktoken_encoding(serialized)
        if self._tiktoken is None:
            self.engine, self.fallback = "tokenizers", f"tiktoken cannot express this vocabulary ({why_not_tiktoken})"
            self._backend = Tokenizer.from_str(serialized)  # without truncation or padding
            return
        why_not_fastokens = _why_not_fastokens(self.threads)
        if why_not_fastokens is not None:
            self.engine, self.fallback = "tiktoken", why_not_fastokens
            return
        self.engine = "fastokens"
        self._fastokens = _fastokens_tokenizer(serialized)

    def switch_to_tiktoken(self, reason: str) -> None:
        """Encode with tiktoken from now on (after an `EngineMismatch`); `reason` goes into the record."""
        logger.warning("%s; encoding again with tiktoken", reason)
        self.engine, self.fallback, self._fastokens = "tiktoken", reason, None
        self.checked_pieces = self.checked_bytes = 0

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The ids of each text (uint32), in order; `<|endoftext|>` in a text becomes its id."""
        if self._fastokens is not None:
            return self._fastokens_batch(texts)
        if self._tiktoken is not None:
            encoding = self._tiktoken
            return self._map(lambda text: encoding.encode_to_numpy(text, allowed_special="all"), texts)
        backend = self._backend
        return self._map(lambda text: np.asarray(backend.encode(text, add_special_tokens=False).ids, np.uint32), texts)

    def encode_text(self, text: str) -> np.ndarray:
        """The uint32 ids of one text of any length: its pieces (`split_text`) encoded `threads` at a time."""
        try:
            return self._encode_pieces(text)
        except EngineMismatch as error:
            self.switch_to_tiktoken(str(error))
            return self._encode_pieces(text)

    def _encode_pieces(self, text: str) -> np.ndarray:
        parts, batch = [], []
        for piece in split_text(text, PIECE_CHARS):
            batch.append(piece)
            if len(batch) == self.threads:
                parts.extend(self.encode_batch(batch))
                batch = []
        parts.extend(self.encode_batch(batch) if batch else [])
        return np.concatenate(parts) if parts else np.zeros(0, np.uint32)

    def _fastokens_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        if self._fastokens is None or self._tiktoken is None:
            raise RuntimeError(f"fastokens is not this encoder's engine ({self.engine})")
        flat, offsets = self._fastokens.encode_batch_flat(list(texts))
        flat, offsets = np.frombuffer(flat, np.uint32), np.frombuffer(offsets, np.uint64)
        results = [flat[int(offsets[i]) : int(offsets[i + 1])] for i in range(len(texts))]  # views, no copy
        for text, ids in zip(texts, results, strict=True):
            if self._pieces % CHECK_EVERY == 0:
                expected = self._tiktoken.encode_to_numpy(text, allowed_special="all")
                if not np.array_equal(ids, expected):
                    raise EngineMismatch(
                        f"fastokens {_version('fastokens')} and tiktoken {_version('tiktoken')} gave different ids "
                        f"for piece {self._pieces} ({len(text)} characters)"
                    )
                self.checked_pieces += 1
                self.checked_bytes += len(text.encode("utf-8"))
            self._pieces += 1
        return results

    def _map(self, encode, texts: Sequence[str]) -> list[np.ndarray]:
        """`encode` each text, `threads` contiguous runs of texts at once (one task per thread, not per text)."""
        results = []
        if self._pool is None and self.threads > 1 and len(texts) > 1:
            # The first text alone: tiktoken builds its regex state lazily, and threads that build it at the
            # same moment then run at half speed for the whole corpus (measured: 19 vs 34 MB/s on 2 cores).
            results.append(encode(texts[0]))
            texts = texts[1:]
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="hf-embed-encode")
        if self._pool is None or len(texts) <= 1:
            return results + [encode(text) for text in texts]
        step = -(-len(texts) // self.threads)
        runs = [texts[start : start + step] for start in range(0, len(texts), step)]
        for encoded in self._pool.map(lambda run: [encode(text) for text in run], runs):
            results.extend(encoded)
        return results

    def record(self) -> dict:
        """What a token-file header says of the encoding: engine, version, what was checked, or why not faster."""
        record: dict[str, object] = {"engine": self.engine, "engine_version": _version(self.engine)}
        if self.engine == "fastokens":
            record["engine_check"] = {
                "against": f"tiktoken {_version('tiktoken')}",
                "every": CHECK_EVERY,
                "pieces": self.checked_pieces,
                "bytes": self.checked_bytes,
            }
        if self.fallback is not None:
            record["engine_fallback"] = self.fallback
        return record

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = [
    "CHECK_EVERY",
    "GPT2_PATTERN",
    "PIECE_CHARS",
    "SAFE_CUT",
    "SAFE_CUT_BYTES",
    "Encoder",
    "EngineMismatch",
    "split_text",
    "stateless_json",
    "tiktoken_encoding",
]
