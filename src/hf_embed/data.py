"""Sliding-window training data: the book's `GPTDatasetV1` / `create_dataloader_v1`, without copies.

Reference (Raschka, *Build a Large Language Model (From Scratch)*, chapter 2): window `i` starts
at `i * stride` for `i in range(0, len(ids) - max_length, stride)`; its input is
`ids[s : s + max_length]` and its target `ids[s + 1 : s + max_length + 1]`. Here a window is a
view into the one id tensor, so memory stays that of the ids whatever the overlap.
"""

from __future__ import annotations

import codecs
import itertools
import json
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from .tokenization import encode, tiktoken_encoding, tokenizer_sha256, vocab_size_of


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return value


def _as_id_tensor(token_ids) -> torch.Tensor:
    ids = token_ids if isinstance(token_ids, torch.Tensor) else torch.as_tensor(token_ids)
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"token ids must be integers, got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"token ids must be one flat sequence (rank 1), got shape {tuple(ids.shape)}")
    return ids.long()


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise `ValueError` naming the first id outside [0, vocab_size) and its position."""
    if ids.numel() == 0:
        return
    lo, hi = torch.aminmax(ids)
    if lo.item() < 0 or hi.item() >= vocab_size:
        where = int(((ids < 0) | (ids >= vocab_size)).nonzero()[0])
        raise ValueError(
            f"token id {int(ids[where])} at position {where} is outside the vocabulary (size {vocab_size})"
        )


def num_windows(num_tokens: int, max_length: int, stride: int) -> int:
    """len(range(0, num_tokens - max_length, stride)): the reference's window count."""
    return max(0, -(-(num_tokens - max_length) // stride))


class _Windows(Dataset):
    """Window `i` of a flat token sequence: tokens `i * stride .. i * stride + max_length` (inclusive),
    as `(inputs, targets)` = (first max_length, last max_length). Subclasses say where the tokens are."""

    def _set_windows(self, num_tokens: int, max_length: int, stride: int, where: str = "") -> None:
        self.max_length = _positive_int("max_length", max_length)
        self.stride = _positive_int("stride", stride)
        if num_tokens <= self.max_length:
            raise ValueError(
                f"{where}{num_tokens} tokens are too few for one window of max_length={self.max_length} "
                f"(a window needs max_length + 1 = {self.max_length + 1} tokens: inputs plus the shifted target)"
            )
        self._len = num_windows(num_tokens, self.max_length, self.stride)

    def _window(self, start: int) -> torch.Tensor:
        """The int64 tokens start .. start + max_length, shape (max_length + 1,)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self._len <= index < self._len:
            raise IndexError(f"window {index} out of range for {self._len} windows")
        window = self._window((index % self._len) * self.stride)  # (max_length + 1,)
        return window[:-1], window[1:]


class SlidingWindowDataset(_Windows):
    """`(inputs, targets)` windows over one flat id sequence; targets are inputs shifted by one.

    Equal, window for window, to the book's `GPTDatasetV1(txt, tokenizer, max_length, stride)`
    on the same ids. Each item is a pair of int64 views of shape (max_length,).
    """

    def __init__(
        self,
        token_ids: torch.Tensor | Sequence[int],
        max_length: int = 256,
        stride: int = 128,
        vocab_size: int | None = None,
    ):
        self.token_ids = _as_id_tensor(token_ids)
        if vocab_size is not None:
            check_token_ids(self.token_ids, vocab_size)
        self._set_windows(self.token_ids.numel(), max_length, stride)

    def _window(self, start: int) -> torch.Tensor:
        return self.token_ids[start : start + self.max_length + 1]  # a view: no copy


class ShardSampler(Sampler[int]):
    """Indices for one of `world_size` ranks: disjoint across ranks, together every index once, per epoch.

    The epoch's order is `randperm(n)` seeded with `seed + epoch` (the same on every rank; call
    `set_epoch` each epoch) or `0..n-1`; rank `r` takes every `world_size`-th index from position `r`.
    Unlike `DistributedSampler`, nothing is repeated or dropped, so ranks may differ by one index.
    """

    def __init__(self, num_items: int, rank: int, world_size: int, shuffle: bool = True, seed: int = 0):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        self.num_items, self.rank, self.world_size = num_items, rank, world_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.num_items)
        return iter(order[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.num_items, self.world_size))


def _distributed_rank_and_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def create_dataloader(
    source: str | torch.Tensor | Sequence[int] | Dataset | Path,
    tokenizer=None,
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    vocab_size: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> DataLoader:
    """The book's `create_dataloader_v1`, same defaults, same batches for the same seed.

    `source`: a text (then `tokenizer` is required, e.g. `hf_embed.gpt2_tokenizer()`), token ids, a
    `pathlib.Path` of a token file (memory-mapped), or a window dataset. With `shuffle=True` and neither
    `generator` nor `seed`, the order is drawn from torch's global RNG exactly as `DataLoader(shuffle=True)`
    draws it, so `torch.manual_seed(s)` before iterating reproduces the reference. `seed` makes the order
    independent of the global RNG.

    Under `torch.distributed` (or with `rank`/`world_size`), each rank loads a disjoint shard of the windows
    (`ShardSampler`; the shards cover every window once per epoch; call `loader.sampler.set_epoch(e)`).
    """
    batch_size = _positive_int("batch_size", batch_size)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"`num_workers` must be an integer >= 0, got {num_workers!r}")
    if seed is not None and generator is not None:
        raise ValueError("pass either `generator` or `seed`, not both")

    if isinstance(source, Dataset):
        dataset = source
    elif isinstance(source, Path):
        dataset = TokenFileDataset(source, max_length=max_length, stride=stride)
    else:
        token_ids = source
        if isinstance(source, str):
            if tokenizer is None:
                raise TypeError("a text needs a `tokenizer` (for GPT-2's: `tokenizer=hf_embed.gpt2_tokenizer()`)")
            token_ids = encode(tokenizer, source)
            vocab_size = vocab_size if vocab_size is not None else vocab_size_of(tokenizer)
        dataset = SlidingWindowDataset(token_ids, max_length=max_length, stride=stride, vocab_size=vocab_size)

    rank, world_size = _distributed_rank_and_size(rank, world_size)
    sampler = None
    if world_size > 1:
        sampler = ShardSampler(len(dataset), rank, world_size, shuffle=shuffle, seed=seed or 0)
        shuffle = False
    elif seed is not None:
        generator = torch.Generator().manual_seed(seed)

    windows = len(sampler) if sampler is not None else len(dataset)
    if drop_last and windows < batch_size:
        raise ValueError(
            f"{windows} windows are fewer than batch_size={batch_size} with drop_last=True: "
            "the loader would yield no batch (use more text, a smaller batch_size, or drop_last=False)"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
    )


# --------------------------------------------------------------------------- token files
# A token file is one flat array of ids (uint16 when the vocabulary fits, else uint32, native byte order)
# plus a JSON sidecar `<file>.json` describing it. nanoGPT's format, with a header that can be checked.

TOKEN_FILE_FORMAT = "hf-embed-tokens"
_DTYPES = {"uint16": (np.uint16, 2**16), "uint32": (np.uint32, 2**32)}


def header_path(path: str | Path) -> Path:
    return Path(f"{path}.json")


def read_header(path: str | Path) -> dict:
    """The sidecar of a token file, checked against the file's size."""
    path = Path(path)
    sidecar = header_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such token file")
    if not sidecar.is_file():
        raise FileNotFoundError(f"{sidecar}: the header of token file {path} is missing")
    try:
        header = json.loads(sidecar.read_text(encoding="utf-8"))
        if header.get("format") != TOKEN_FILE_FORMAT or header["dtype"] not in _DTYPES:
            raise ValueError("not an hf-embed token-file header")
        count = header["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"bad token count {count!r}")
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{sidecar}: corrupt token-file header ({error})") from None
    itemsize = np.dtype(_DTYPES[header["dtype"]][0]).itemsize
    size = path.stat().st_size
    if size != count * itemsize:
        raise ValueError(
            f"{path}: {size} bytes, but its header says {count} {header['dtype']} tokens ({count * itemsize} bytes); "
            "the file is truncated or does not belong to this header"
        )
    return header


class TokenFileDataset(_Windows):
    """The windows of `SlidingWindowDataset` over a token file, read through a memory map.

    Opening costs O(1) time and memory whatever the file size; each item reads only its window. The
    map is opened lazily in each process, so the dataset pickles to DataLoader workers without sharing
    a file handle across `fork`.
    """

    def __init__(self, path: str | Path, max_length: int = 256, stride: int = 128):
        self.path = Path(path)
        self.header = read_header(self.path)
        self.dtype = _DTYPES[self.header["dtype"]][0]
        self._set_windows(self.header["count"], max_length, stride, where=f"{self.path}: ")
        self._tokens = None

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            self._tokens = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.header["count"],))
        return self._tokens

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tokens": None}

    def _window(self, start: int) -> torch.Tensor:
        return torch.from_numpy(self.tokens[start : start + self.max_length + 1].astype(np.int64))


def _safe_split(text: str, limit: int) -> int:
    """A cut in `text` near `limit` that GPT-2's pre-tokenizer treats as a token boundary.

    Just before a space or newline that is followed by a letter, digit or underscore: whatever precedes
    it, no pre-token spans the cut, and the left part's last pre-token ends there too. The last such cut
    at or before `limit`, else the first after it, else the end of the text.
    """
    high = limit + 1
    while high > 0:  # scan back in 64K windows; each window is read once
        low = max(0, high - 65536)
        last = None
        for last in _SPLIT.finditer(text, low, high):  # noqa: B007
            pass
        if last is not None:
            return last.start()
        high = low
    following = _SPLIT.search(text, limit)
    return following.start() if following is not None else len(text)


_SPLIT = re.compile(r"(?<=.)[ \n](?=\w)", re.S)


def iter_text_chunks(path: str | Path, chunk_chars: int = 1 << 18) -> Iterator[str]:
    """Pieces of a UTF-8 file (BOM dropped, line ends kept) cut where tokenization is unaffected.

    Encoding the pieces one by one gives the ids of the whole text. Invalid UTF-8 is a `ValueError`
    naming the file and the byte offset.
    """
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, offset, first = "", 0, True
    with path.open("rb") as f:
        while True:
            block = f.read(1 << 20)
            if first and block.startswith(codecs.BOM_UTF8):
                block, offset = block[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
            first = False
            buffered = len(decoder.getstate()[0])
            try:
                pending += decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}: not valid UTF-8 at byte {offset - buffered + error.start}") from None
            offset += len(block)
            while len(pending) >= 2 * chunk_chars:
                cut = _safe_split(pending, chunk_chars)
                yield pending[:cut]
                pending = pending[cut:]
            if not block:
                break
    if pending:
        yield pending


def _encoder(tokenizer) -> tuple[str, Callable[[str], np.ndarray]]:
    """(engine name, text -> ids) for `tokenizer`: tiktoken's engine where it can express the vocabulary.

    Special-token text (`<|endoftext|>`) becomes its id on both engines, as `tokenizer(text)` does.
    """
    encoding = tiktoken_encoding(tokenizer)
    if encoding is not None:
        return "tiktoken", lambda text: encoding.encode_to_numpy(text, allowed_special="all")
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return "tokenizers", lambda text: np.asarray(backend.encode(text, add_special_tokens=False).ids, dtype=np.uint32)


def _choose_dtype(vocab_size: int, dtype: str | None) -> str:
    if dtype is None:
        return "uint16" if vocab_size <= _DTYPES["uint16"][1] else "uint32"
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if vocab_size > _DTYPES[dtype][1]:
        raise ValueError(f"a vocabulary of {vocab_size} ids does not fit {dtype} (at most {_DTYPES[dtype][1]} ids)")
    return dtype


def _check_corpus_files(files: Sequence[str | Path]) -> list[Path]:
    if not files:
        raise ValueError("no input files: the corpus is empty")
    paths = [Path(f) for f in files]
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a text file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise ValueError(f"{path}: empty file")
    return paths


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_token_file(
    tasks: Iterable[list[tuple[bool, str]]],
    output: str | Path,
    tokenizer,
    header: dict,
    dtype: str | None = None,
    num_threads: int | None = None,
    progress_bytes: int | None = None,
) -> dict:
    """Encode `tasks` (lists of `(eos_before, text)`) on all cores and write the ids, in order, to `output`.

    Written under a temporary name and renamed at the end (header last): an interrupted run leaves
    no partial token file behind. Returns the header.
    """
    output = Path(output)
    vocab_size = vocab_size_of(tokenizer)
    dtype = _choose_dtype(vocab_size, dtype)
    engine, encode = _encoder(tokenizer)
    eos = tokenizer.eos_token_id if getattr(tokenizer, "eos_token_id", None) is not None else None
    np_dtype = _DTYPES[dtype][0]
    threads = num_threads or os.cpu_count() or 1

    def run(task: list[tuple[bool, str]]) -> tuple[np.ndarray, int]:
        pieces = []
        for eos_before, text in task:
            if eos_before:
                if eos is None:
                    raise ValueError("eos between documents needs a tokenizer with an eos token")
                pieces.append(np.array([eos], dtype=np.uint32))
            pieces.append(encode(text))
        ids = np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)
        return ids.astype(np_dtype), sum(len(text.encode("utf-8")) for _, text in task)

    temporary, count = _atomic_path(output), 0
    bar = tqdm(total=progress_bytes, unit="B", unit_scale=True, desc=output.name, disable=not sys.stderr.isatty())
    try:
        with temporary.open("wb") as f, ThreadPoolExecutor(threads) as pool:
            tasks = iter(tasks)
            # The first task runs alone: tiktoken builds its regex state lazily, and two threads building it
            # at once then run at half speed for the whole corpus (measured: 19 vs 34 MB/s on 2 cores).
            for task in itertools.islice(tasks, 1):
                count += _write_result(run(task), f, bar, count)
            pending: deque = deque()
            for task in tasks:
                pending.append(pool.submit(run, task))
                if len(pending) >= 4 * threads:  # bounded (a few chunks per thread), deep enough to keep all busy
                    count += _write_result(pending.popleft().result(), f, bar, count)
            while pending:
                count += _write_result(pending.popleft().result(), f, bar, count)
        if count == 0:
            raise ValueError("the corpus produced no tokens")
        header = {
            "format": TOKEN_FILE_FORMAT,
            "version": 1,
            "dtype": dtype,
            "count": count,
            "vocab_size": vocab_size,
            "tokenizer_sha256": tokenizer_sha256(tokenizer),
            "engine": engine,
            "eos_token_id": eos,
            **header,
        }
        sidecar = _atomic_path(header_path(output))
        sidecar.write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, output)
        os.replace(sidecar, header_path(output))
    except BaseException:
        temporary.unlink(missing_ok=True)
        _atomic_path(header_path(output)).unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    return header


def _write_result(result: tuple[np.ndarray, int], f, bar, count: int) -> int:
    ids, num_bytes = result
    f.write(ids.tobytes())
    bar.update(num_bytes)
    elapsed = bar.format_dict["elapsed"] or float("inf")
    bar.set_postfix_str(f"{count + len(ids):,} tokens, {(count + len(ids)) / elapsed:,.0f} tokens/s", refresh=False)
    return len(ids)


def shard_files(files: Sequence, shard_index: int, num_shards: int) -> tuple[int, list]:
    """The contiguous block of `files` for one shard, and the global index of its first file.

    Shard outputs concatenated in shard order equal the single-process output.
    """
    if not (isinstance(num_shards, int) and num_shards >= 1 and isinstance(shard_index, int)):
        raise ValueError(f"bad shard {shard_index!r} of {num_shards!r}")
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} is outside 0..{num_shards - 1}")
    start = shard_index * len(files) // num_shards
    return start, list(files[start : (shard_index + 1) * len(files) // num_shards])


def tokenize_files(
    files: Sequence[str | Path],
    output: str | Path,
    tokenizer=None,
    eos_between_files: bool = False,
    dtype: str | None = None,
    num_threads: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    chunk_chars: int = 1 << 18,
) -> dict:
    """Tokenize UTF-8 text files into one token file (ids of each file, in order) plus its JSON header.

    `eos_between_files` puts the tokenizer's eos id before every file but the first. With
    `num_shards > 1` this process takes its contiguous block of files; the shards' outputs, concatenated
    in order, equal the single-process file. Returns the header.
    """
    from .tokenization import gpt2_tokenizer

    tokenizer = tokenizer if tokenizer is not None else gpt2_tokenizer()
    paths = _check_corpus_files(files)
    first_index, paths = shard_files(paths, shard_index, num_shards)

    def tasks():
        for i, path in enumerate(paths):
            for j, chunk in enumerate(iter_text_chunks(path, chunk_chars)):
                yield [(eos_between_files and first_index + i > 0 and j == 0, chunk)]

    sources = [{"path": str(p), "bytes": p.stat().st_size} for p in paths]
    header = {"files": sources, "eos_between_files": eos_between_files, "shard": [shard_index, num_shards]}
    total = sum(s["bytes"] for s in sources)
    return write_token_file(tasks(), output, tokenizer, header, dtype, num_threads, progress_bytes=total)


def tokenize_dataset(
    dataset,
    output: str | Path,
    tokenizer=None,
    text_column: str = "text",
    eos_between_rows: bool = False,
    dtype: str | None = None,
    num_threads: int | None = None,
    batch_size: int = 1000,
) -> dict:
    """Tokenize a `datasets.Dataset` of text (any iterable of `{text_column: str}` rows) into a token file.

    The ids equal tokenizing the rows one by one; `eos_between_rows` puts the eos id between rows.
    """
    from .tokenization import gpt2_tokenizer

    tokenizer = tokenizer if tokenizer is not None else gpt2_tokenizer()
    names = getattr(dataset, "column_names", None)
    if names is not None and text_column not in names:
        raise ValueError(f"the dataset has no column {text_column!r} (columns: {names})")

    def rows():
        if hasattr(dataset, "iter"):
            for batch in dataset.iter(batch_size=batch_size):
                yield from batch[text_column]
        else:
            for row in dataset:
                yield row[text_column]

    def tasks():
        task, size, index = [], 0, 0
        for text in rows():
            if not isinstance(text, str):
                raise TypeError(f"row {index}: column {text_column!r} holds {type(text).__name__}, not str")
            task.append((eos_between_rows and index > 0, text))
            size, index = size + len(text), index + 1
            if size >= 1 << 18:
                yield task
                task, size = [], 0
        if task:
            yield task

    header = {"dataset": repr(dataset)[:200], "text_column": text_column, "eos_between_rows": eos_between_rows}
    return write_token_file(tasks(), output, tokenizer, header, dtype, num_threads)


__all__ = [
    "ShardSampler",
    "SlidingWindowDataset",
    "TokenFileDataset",
    "check_token_ids",
    "create_dataloader",
    "iter_text_chunks",
    "num_windows",
    "read_header",
    "shard_files",
    "tokenize_dataset",
    "tokenize_files",
    "write_token_file",
]
