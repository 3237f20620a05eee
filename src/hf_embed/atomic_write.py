"""Publishing files on disk: write under a temporary name beside the target, then rename it in.

Every writer in hf-embed (`save_pretrained`, token files, the CLI's outputs, pictures) goes through
this module, so an interrupted write never leaves half a file where a user's output was.

This file imports only the standard library: `save_pretrained` copies it next to the weights.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def write_folder_atomically(folder, write) -> None:
    """Run `write(staging)` into a temporary folder beside `folder`, then move each file in by atomic rename.

    An interrupted write leaves `folder` as it was. Files already there that `write` does not produce (a
    tokenizer next to a model, say) are kept, except stale weight shards of an earlier save. `config.json`
    moves last.
    """
    target = os.path.abspath(folder)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.saving-", dir=parent)
    try:
        write(staging)
        os.makedirs(target, exist_ok=True)
        written = sorted(os.listdir(staging), key=lambda name: name == "config.json")
        if any(name.startswith(("model-", "model.safetensors")) for name in written):
            for name in os.listdir(target):
                if name.startswith(("model-", "model.safetensors")) and name not in written:
                    os.remove(os.path.join(target, name))
        for name in written:
            os.replace(os.path.join(staging, name), os.path.join(target, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def temporary_path(path) -> str:
    """`.NAME.tmp-PID` beside `path` (suffix kept, so tools that look at it still recognize the format)."""
    path = os.path.abspath(path)
    stem, suffix = os.path.splitext(os.path.basename(path))
    return os.path.join(os.path.dirname(path), f".{stem}.tmp-{os.getpid()}{suffix}")


def write_file_atomically(path, write) -> None:
    """Run `write(temporary_path)` (same folder and suffix as `path`), then rename it onto `path`."""
    temporary = temporary_path(path)
    try:
        write(temporary)
        os.replace(temporary, os.path.abspath(path))
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


__all__ = ["temporary_path", "write_file_atomically", "write_folder_atomically"]
