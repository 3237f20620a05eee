"""Helpers the commands share: argument types checked while parsing, reading text, loading and saving tokenizers.

Every command checks its arguments before it imports torch or transformers or loads anything: the argument
types here run inside `argparse` (a bad value is a usage error, exit status 2), the `check_*` helpers first
thing in each command (a one-line error, exit status 1). This module imports only the standard library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import resources
from pathlib import Path

# `HfEmbedConfig`'s `POSITION_EMBEDDING_TYPES`, listed here so that parsing imports nothing heavy;
# tests/test_cli.py checks that both lists agree.
POSITION_EMBEDDING_TYPES = ("absolute", "sinusoidal", "rotary", "relative", "none")


def preset_names() -> list[str]:
    """The presets shipped in the package (what `HfEmbedConfig.from_preset` accepts), without importing it."""
    folder = resources.files("hf_embed").joinpath("presets")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def int_at_least(low: int) -> Callable[[str], int]:
    """An argument type: an integer >= `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value

    return parse


def path_with_suffix(*suffixes: str) -> Callable[[str], Path]:
    """An argument type: an output path whose name ends in one of `suffixes` (the format follows the suffix)."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text!r} must end in {' or '.join(suffixes)}")
        return path

    return parse


def check_files(paths: list[Path]) -> None:
    """Raise (naming it) for an input that is missing or a folder: before anything loads, not after."""
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a text file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")


def check_model_folder(path: Path) -> None:
    """Raise (naming it) unless `path` is an existing folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder")
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: is a file, not a model folder")


def check_output_folder(path: Path) -> None:
    """Raise unless `path` can become a folder (new, or an existing folder that is replaced whole)."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a folder")


def load_tokenizer(name: str):
    """'gpt2' (built offline; imports no torch), or a saved tokenizer folder or Hub id (`AutoTokenizer`)."""
    if name == "gpt2":
        from ..tokenization import gpt2_tokenizer

        return gpt2_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


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
