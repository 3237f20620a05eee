"""What `from_pretrained` checks around transformers' loader, so that a load is whole or an error.

transformers loads what matches and fills the rest with freshly initialized tables, reporting it on stderr.
For a model that is nothing but its tables that is a silent wrong answer, so hf-embed refuses, before or
after transformers reads the weights: a local path that does not exist (no Hub request), a folder without
`config.json`, a checkpoint of another model type (GPT-2, Llama...: with the hint to convert it), missing, unexpected
or renamed tensors, and tensors whose shape or dtype disagrees with `config.json`.

This file imports only transformers, the standard library and `families`: `save_pretrained` copies it next to the
weights.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from collections.abc import Callable
from contextlib import contextmanager, nullcontext

from transformers.utils import cached_file

from .arguments import looks_local
from .families import FAMILIES

HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "proxies", "revision", "subfolder", "token")
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def local_folder(name) -> str | None:
    """The local folder `name` means, or None when it is a Hub id.

    Local or not is `arguments.looks_local`'s rule (the command line uses it too); anything else (`gpt2`,
    `org/name`) is a Hub id.

    Args:
        name: what `from_pretrained` was given.

    Returns:
        The folder's path, or None for a Hub id.

    Raises:
        FileNotFoundError: a local path that does not exist (nothing is sent to the Hub).
        NotADirectoryError: a local path that is a file, not a model folder.
    """
    text = os.fsdecode(os.fspath(name))
    if not looks_local(name):
        return None
    path = os.path.expanduser(text)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{text}: no such folder (a local path, so the Hub was not asked; a Hub id looks like 'name' or 'org/name')"
        )
    if not os.path.isdir(path):
        raise NotADirectoryError(
            f"{text} is a file; from_pretrained takes the folder that holds config.json and the safetensors weights"
        )
    return path


def read_config_dict(name, folder: str | None, kwargs: dict, *, required: bool = True) -> dict | None:
    """`config.json` of a local folder or a Hub repository, refused if it is not an hf-embed model's.

    Args:
        name: what `from_pretrained` was given.
        folder: `local_folder(name)`.
        kwargs: `from_pretrained`'s keyword arguments (the Hub options are used).
        required: a missing `config.json` is an error (else None is returned).

    Returns:
        The parsed `config.json`, or None for a local folder without one when not `required`.

    Raises:
        FileNotFoundError: a local folder without `config.json`, when `required`.
        ValueError: a `config.json` of another model type (one of `families.FAMILIES` gets the hint to convert it).
    """
    from transformers import PretrainedConfig

    subfolder = kwargs.get("subfolder") or ""
    if folder is not None:
        path = os.path.join(folder, subfolder, "config.json")
        if not os.path.isfile(path):
            if not required:
                return None
            where = os.path.join(os.fspath(name), subfolder) if subfolder else os.fspath(name)
            raise FileNotFoundError(
                f"{where}: no config.json in this folder, so it is not a saved model (save_pretrained and "
                "`hf-embed init` write config.json next to model.safetensors)"
            )
        with open(path, encoding="utf-8") as file:
            try:
                config = json.load(file)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: not valid JSON ({error})") from None
    else:
        config, _ = PretrainedConfig.get_config_dict(name, **{k: kwargs[k] for k in HUB_KWARGS if k in kwargs})
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type in FAMILIES:
        where, family = os.fspath(name), FAMILIES[model_type].name
        cli = f" or `hf-embed init --from-gpt2 {where} --output NEW_FOLDER`" if model_type == "gpt2" else ""
        raise ValueError(
            f"{where} is a transformers {family} checkpoint (model_type {model_type!r}), not an hf-embed model; import "
            f"its embedding stage with HfEmbedModel.from_transformers({where!r}){cli}"
        )
    if model_type is not None and model_type != "hf_embed":
        raise ValueError(f"{os.fspath(name)}: config.json is for model_type {model_type!r}, not an hf-embed model")
    return config


def declared_dtype(config: dict | None) -> str | None:
    """The dtype `config.json` declares for the weights, as a name (`"float32"`), if any.

    Args:
        config: the parsed `config.json`, or None.

    Returns:
        The dtype's name, or None where none (or "auto") is declared.
    """
    value = None if config is None else config.get("dtype") or config.get("torch_dtype")
    if value is None or value == "auto":
        return None
    return str(value).removeprefix("torch.")


def weight_files(name, kwargs: dict) -> list[str]:
    """The safetensors files a finished load read (local, or already in the Hub cache), for their headers.

    Args:
        name: what `from_pretrained` was given (a folder or a Hub id).
        kwargs: its keyword arguments (the Hub options and `variant` are used).

    Returns:
        The files' paths; empty where none is on disk.
    """
    lookup = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
    lookup.update(local_files_only=True, _raise_exceptions_for_missing_entries=False)
    variant = kwargs.get("variant")
    single = "model.safetensors" if not variant else f"model.{variant}.safetensors"
    path = cached_file(name, single, **lookup)
    if path is not None:
        return [path]
    index = cached_file(name, f"{single}.index.json", **lookup)
    if index is None:
        return []
    with open(index, encoding="utf-8") as file:
        shards = sorted(set(json.load(file)["weight_map"].values()))
    return [p for p in (cached_file(name, shard, **lookup) for shard in shards) if p is not None]


def stored_dtypes(files: list[str]) -> dict[str, tuple[str, str]]:
    """`{tensor name: (dtype, file name)}` from safetensors headers (8-byte length, then JSON), weights unread.

    Args:
        files: safetensors files.

    Returns:
        Each tensor's dtype name and the file that holds it.
    """
    stored = {}
    for path in files:
        with open(path, "rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(length))
        for key, entry in header.items():
            if key != "__metadata__":
                stored[key] = (SAFETENSORS_DTYPES.get(entry["dtype"], entry["dtype"].lower()), os.path.basename(path))
    return stored


def check_loading_info(where: str, info: dict, *, allow_mismatched_sizes: bool) -> None:
    """Check transformers' loading report for a partial load: missing, unexpected or mismatched tensors.

    Args:
        where: the checkpoint, for the message.
        info: the `output_loading_info=True` report.
        allow_mismatched_sizes: the caller allowed resized tensors (they are not refused then).

    Raises:
        ValueError: naming the checkpoint and each tensor (with both shapes for a mismatch).
    """
    problems, remedies = [], []
    if info["missing_keys"]:
        problems.append(f"missing {_names(info['missing_keys'])}")
    if info["unexpected_keys"]:
        problems.append(f"unexpected {_names(info['unexpected_keys'])}")
    if problems:
        remedies.append(
            "to accept a partial load (missing tables freshly initialized, listed in the returned report) pass "
            "output_loading_info=True"
        )
    if info["mismatched_keys"] and not allow_mismatched_sizes:
        shapes = ", ".join(
            f"{key} is {tuple(stored)} in the file but {tuple(expected)} by config.json"
            for key, stored, expected in sorted(info["mismatched_keys"])
        )
        problems.append(f"shapes disagree with config.json: {shapes}")
        remedies.append("to re-initialize tables of another size pass ignore_mismatched_sizes=True")
    if problems:
        raise ValueError(
            f"{where}: the checkpoint does not match the model: {'; '.join(problems)}. Nothing was loaded; "
            + "; ".join(remedies)
        )


def check_dtypes(where: str, stored: dict[str, tuple[str, str]], expected: str | None) -> None:
    """Check that every floating-point tensor in the files has the dtype `config.json` declares.

    Args:
        where: the checkpoint, for the message.
        stored: what `stored_dtypes` returned.
        expected: what `declared_dtype` returned (None: nothing to check).

    Raises:
        ValueError: naming each tensor, its dtype and its file.
    """
    if expected is None:
        return
    wrong = sorted(
        (file, key, dtype) for key, (dtype, file) in stored.items() if dtype != expected and dtype in _FLOATS
    )
    if wrong:
        listed = ", ".join(f"{key} is {dtype} in {file}" for file, key, dtype in wrong)
        raise ValueError(
            f"{where}: config.json declares dtype {expected} but {listed}; fix config.json's `dtype` or re-save the "
            "model (save_pretrained writes both from the same model)"
        )


_FLOATS = set(SAFETENSORS_DTYPES.values()) | {"float8_e4m3fn", "float8_e5m2"}


def _names(keys) -> str:
    return "tensors [" + ", ".join(sorted(keys)) + "]"


class _HideReport(logging.Filter):
    """Drops transformers' load report logged by one thread (hf-embed raises its own error in its place)."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread == self.thread and "LOAD REPORT" in str(record.msg))


@contextmanager
def hidden_load_report():
    """A context in which transformers' load report, logged by this thread, is dropped (hf-embed raises its own).

    Returns:
        The context manager.
    """
    logger = logging.getLogger("transformers.modeling_utils")
    hide = _HideReport()
    logger.addFilter(hide)
    try:
        yield
    finally:
        logger.removeFilter(hide)


def load_whole(load: Callable, pretrained_model_name_or_path, *model_args, **kwargs):
    """`load(pretrained_model_name_or_path, ...)` (transformers' `from_pretrained`), strict: the model is loaded
    whole, or it is an error. `HfEmbedPreTrainedModel.from_pretrained` documents the checks.
    """
    kwargs.setdefault("use_safetensors", True)
    if pretrained_model_name_or_path is None:  # tensors handed over in `state_dict`: no file to check
        return load(None, *model_args, **kwargs)
    folder = local_folder(pretrained_model_name_or_path)
    name = pretrained_model_name_or_path if folder is None else folder
    where = os.fspath(pretrained_model_name_or_path)
    config_json = read_config_dict(pretrained_model_name_or_path, folder, kwargs, required=kwargs.get("config") is None)
    report_wanted = kwargs.get("output_loading_info", False)
    allow_mismatched_sizes = kwargs.get("ignore_mismatched_sizes", False)
    if not report_wanted:  # checked below, each tensor named, in place of transformers' report
        kwargs.update(output_loading_info=True, ignore_mismatched_sizes=True)
    try:
        with nullcontext() if report_wanted else hidden_load_report():
            model, info = load(name, *model_args, **kwargs)
    except Exception as error:
        if type(error).__name__ == "SafetensorError":
            raise ValueError(f"{where}: corrupt or truncated safetensors weights ({error})") from error
        pickled = os.path.join(where, "pytorch_model.bin")
        if isinstance(error, OSError) and kwargs["use_safetensors"] and os.path.isfile(pickled):
            raise ValueError(
                f"{where}: only pickle weights (pytorch_model.bin), which can run code when loaded; hf-embed "
                "loads safetensors. If you trust the file, pass use_safetensors=False"
            ) from error
        if isinstance(error, RuntimeError) and "mismatched_sizes" in str(error):
            raise ValueError(f"{where}: tensor shapes disagree with config.json (see the load report above)") from error
        raise
    if report_wanted:
        return model, info
    files = weight_files(name, kwargs) if kwargs["use_safetensors"] is not False else []
    checkpoint = os.path.join(where, os.path.basename(files[0])) if len(files) == 1 else where
    check_loading_info(checkpoint, info, allow_mismatched_sizes=allow_mismatched_sizes)
    check_dtypes(where, stored_dtypes(files), declared_dtype(config_json))
    return model


__all__ = [
    "check_dtypes",
    "check_loading_info",
    "declared_dtype",
    "hidden_load_report",
    "load_whole",
    "local_folder",
    "read_config_dict",
    "stored_dtypes",
    "weight_files",
]
