"""Helpers the commands share: reading text, loading and saving tokenizers."""

from __future__ import annotations

from pathlib import Path


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    from ..tokenization import gpt2_tokenizer

    return gpt2_tokenizer() if name == "gpt2" else AutoTokenizer.from_pretrained(name)


def save_tokenizer(tokenizer, folder: Path) -> None:
    from ..atomic_write import write_folder_atomically

    write_folder_atomically(folder, tokenizer.save_pretrained)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 at byte {error.start}") from None
