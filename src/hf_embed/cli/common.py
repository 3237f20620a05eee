"""Helpers the commands share: reading text, loading and saving tokenizers."""

from __future__ import annotations

from pathlib import Path


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    from ..tokenization import gpt2_tokenizer

    return gpt2_tokenizer() if name == "gpt2" else AutoTokenizer.from_pretrained(name)


def save_folder(folder: Path, *parts) -> None:
    """Save each of `parts` (a model, a tokenizer: anything with `save_pretrained`) into `folder`, published
    together: one staging folder, one swap, so a crash never leaves a model beside another save's tokenizer."""
    from ..atomic_write import write_folder_atomically

    def write(staging: str) -> None:
        for part in parts:
            part.save_pretrained(staging)

    write_folder_atomically(folder, write)


def save_tokenizer(tokenizer, folder: Path) -> None:
    save_folder(folder, tokenizer)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 at byte {error.start}") from None
