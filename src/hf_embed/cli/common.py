"""Helpers the commands share: argument types and checks, logging, reading text, loading and saving tokenizers.

Every command checks its arguments before it imports torch or transformers or loads anything: the argument
types here run inside `argparse` (a bad value is a usage error, exit status 2), the `check_*` helpers first
thing in each command (a one-line error naming the argument, exit status 1): a file that is missing, a folder,
unreadable; a model folder without `config.json`; an output that cannot be written. This module imports only
the standard library.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from ..arguments import looks_local

# `HfEmbedConfig`'s `POSITION_EMBEDDING_TYPES`, listed here so that parsing imports nothing heavy;
# tests/test_cli.py checks that both lists agree.
POSITION_EMBEDDING_TYPES = ("absolute", "sinusoidal", "rotary", "relative", "none")
PICTURE_SUFFIXES = (".png", ".svg", ".pdf")  # matplotlib writes each; the format follows the suffix
# The same words as hf_embed.visualize.require_matplotlib's, said here without importing torch.
PLOT_INSTALL_HINT = (
    "pictures need matplotlib, which is not installed: pip install 'hf-embed[plot]' (or pip install matplotlib)"
)


def preset_names() -> list[str]:
    """The presets shipped in the package (what `HfEmbedConfig.from_preset` accepts), without importing it."""
    folder = resources.files("hf_embed").joinpath("presets")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def preset_or_file(text: str) -> str:
    """An argument type: a preset name, or an existing `.json` file of settings (as `HfEmbedConfig.from_preset`)."""
    if text.endswith(".json"):
        if not Path(text).is_file():
            raise argparse.ArgumentTypeError(f"{text}: no such config file")
        return text
    names = preset_names()
    if text not in names:
        shown = ", ".join(repr(name) for name in names)
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {shown}, or a .json file)")
    return text


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


class _CliFormatter(logging.Formatter):
    """`hf-embed COMMAND: warning: message`, the shape of the CLI's error lines."""

    def __init__(self, command: str):
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        return f"hf-embed {self.command}: {record.levelname.lower()}: {record.getMessage()}"


class _CliHandler(logging.StreamHandler):
    """The CLI's own handler: found and replaced when `main` runs again."""


def configure_logging(command: str, *, debug: bool) -> None:
    """Show hf-embed's warnings (with `--debug`, its info too) once each, on stderr.

    The handler goes on the `hf_embed` logger, not on the root logger: huggingface_hub gives its own logger a
    stderr handler and lets records propagate, so a root handler printed each of its lines (retries, "No files
    have been modified") twice. Calling this again (tests call `main` many times) replaces the handler.
    """
    logger = logging.getLogger("hf_embed")
    for old in [h for h in logger.handlers if isinstance(h, _CliHandler)]:
        logger.removeHandler(old)
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(_CliFormatter(command))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if debug else logging.WARNING)


def check_files(paths: list[Path], what: str = "") -> None:
    """Raise (naming it, and the option `what` when given) for an input file that is missing, a folder or
    unreadable: before anything loads, not after."""
    for path in paths:
        named = f"{what} {path}" if what else str(path)
        if path.is_dir():
            raise IsADirectoryError(f"{named}: is a folder, not a file")
        if not path.is_file():
            raise FileNotFoundError(f"{named}: no such file")
        if not os.access(path, os.R_OK):
            raise PermissionError(f"{named}: not readable (permission denied)")


def check_model_folder(path: Path, what: str = "") -> None:
    """Raise (naming it) unless `path` is an existing folder holding a saved model (`config.json`)."""
    named = f"{what} {path}" if what else str(path)
    if not path.exists():
        raise FileNotFoundError(f"{named}: no such folder")
    if not path.is_dir():
        raise NotADirectoryError(f"{named}: is a file, not a model folder")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{named}: no config.json, so it is not a saved model folder")


def check_tokenizer_name(name: str, what: str = "--tokenizer") -> None:
    """Raise unless `name` is 'gpt2', a Hub id ('org/name'), or a local folder holding a saved tokenizer.

    A bare name other than 'gpt2' that is no folder is refused at once: most often a misspelt folder, which the
    Hub would otherwise be asked for (a minute of retries, then a message naming neither the option nor the value).
    """
    if name == "gpt2":
        return
    if "/" not in name and not os.path.exists(os.path.expanduser(name)):
        raise FileNotFoundError(
            f"{what} {name}: no such folder ('gpt2' is built in; a tokenizer on the Hub is named 'org/name')"
        )
    if not looks_local(name):
        return
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{what} {name}: no such folder" if not folder.exists() else f"{what} {name}: is a file"
        )
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise FileNotFoundError(f"{what} {name}: no tokenizer.json or tokenizer_config.json in it")


def check_output_folder(path: Path) -> None:
    """Raise unless `path` can become a folder (new, or an existing folder that is replaced whole)."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a folder")


def check_empty_output(folder: Path, force: bool, *, replaces: str = "its model and tokenizer") -> None:
    """Refuse to write into a folder that holds anything, unless `--force` says to replace `replaces` in it."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--output {folder}: is a file; give a folder")
    if force or not folder.exists():
        return
    names = sorted(p.name for p in folder.iterdir())
    if names:
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        raise FileExistsError(
            f"--output {folder}: exists and is not empty ({shown}); pass --force to replace {replaces}"
        )


def check_output_file(path: Path, what: str = "--output") -> None:
    """Raise unless `path` can become a file (its suffix is checked by `path_with_suffix` while parsing)."""
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path}: is a folder; give a file name")


def check_matplotlib() -> None:
    """Raise `ImportError` with the install command when matplotlib is missing (found without importing it)."""
    from importlib.util import find_spec

    if "matplotlib" in sys.modules:
        missing = sys.modules["matplotlib"] is None  # None there means "cannot be imported"
    else:
        missing = find_spec("matplotlib") is None
    if missing:
        raise ImportError(PLOT_INSTALL_HINT)


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
    """The text of a UTF-8 file (BOM dropped), read as `tokenize` reads it: invalid UTF-8 names file and byte."""
    from ..tokenize_corpus import iter_text_chunks

    return "".join(iter_text_chunks(path))
