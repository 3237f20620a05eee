"""Sliding-window training data: the book's `GPTDatasetV1` / `create_dataloader_v1`, without copies.

Reference (Raschka, *Build a Large Language Model (From Scratch)*, chapter 2): window `i` starts
at `i * stride` for `i in range(0, len(ids) - max_length, stride)`; its input is
`ids[s : s + max_length]` and its target `ids[s + 1 : s + max_length + 1]`. Here a window is a
view into the one id tensor, so memory stays that of the ids whatever the overlap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .token_files import (  # re-exported: `hf_embed.data` was their home before token_files.py
    iter_text_chunks,
    open_tokens,
    read_header,
    shard_files,
    tokenize_dataset,
    tokenize_files,
    write_token_file,
)
from .tokenization import encode, vocab_size_of
from .validation import check_positive_int, check_range


def _as_id_tensor(token_ids) -> torch.Tensor:
    ids = token_ids if isinstance(token_ids, torch.Tensor) else torch.as_tensor(token_ids)
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"token ids must be integers, got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"token ids must be one flat sequence (rank 1), got shape {tuple(ids.shape)}")
    return ids.long()


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise `ValueError` naming the first id outside [0, vocab_size) and its position."""
    check_range(ids, vocab_size, "token id", f"the vocabulary (size {vocab_size})")


def num_windows(num_tokens: int, max_length: int, stride: int) -> int:
    """len(range(0, num_tokens - max_length, stride)): the reference's window count."""
    return max(0, -(-(num_tokens - max_length) // stride))


class _Windows(Dataset):
    """Window `i` of a flat token sequence: tokens `i * stride .. i * stride + max_length` (inclusive),
    as `(inputs, targets)` = (first max_length, last max_length). Subclasses say where the tokens are."""

    def _set_windows(self, num_tokens: int, max_length: int, stride: int, where: str = "") -> None:
        self.max_length = check_positive_int("max_length", max_length)
        self.stride = check_positive_int("stride", stride)
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
    batch_size = check_positive_int("batch_size", batch_size)
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


class TokenFileDataset(_Windows):
    """The windows of `SlidingWindowDataset` over a token file, read through a memory map.

    Opening costs O(1) time and memory whatever the file size; each item reads only its window. The
    map is opened lazily in each process, so the dataset pickles to DataLoader workers without sharing
    a file handle across `fork`.
    """

    def __init__(self, path: str | Path, max_length: int = 256, stride: int = 128):
        self.path = Path(path)
        self.header = read_header(self.path)
        self._set_windows(self.header["count"], max_length, stride, where=f"{self.path}: ")
        self._tokens = None

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            self._tokens = open_tokens(self.path, self.header)
        return self._tokens

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tokens": None}

    def _window(self, start: int) -> torch.Tensor:
        return torch.from_numpy(self.tokens[start : start + self.max_length + 1].astype(np.int64))


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
