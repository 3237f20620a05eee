"""Training data: the book's `GPTDatasetV1` / `create_dataloader_v1` without copies, on one rank or many.

Reference (Raschka, *Build a Large Language Model (From Scratch)*, chapter 2): window `i` starts
at `i * stride` for `i in range(0, len(ids) - max_length, stride)`; its input is
`ids[s : s + max_length]` and its target `ids[s + 1 : s + max_length + 1]`. Here a window is a
view into the one id tensor (or one read of a token file), so memory stays that of the ids whatever
the overlap. `ShardSampler` gives every rank an equal share of one permutation per epoch;
`create_dataloader(..., packing=...)` keeps documents apart (`packing.py`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence, Sized
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .packing import PACKING_MODES, BestFitWindows, ConcatWindows, InMemoryTokens, collate_packed
from .token_files import TokenFile, read_header  # re-exported, as the next: `hf_embed.data` was their first home
from .tokenization import encode_array, vocab_size_of
from .tokenize_corpus import (
    iter_text_chunks,
    shard_files,
    split_documents,
    tokenize_dataset,
    tokenize_files,
    write_token_file,
)
from .validation import check_positive_int, check_range


def _as_id_tensor(token_ids) -> torch.Tensor:
    if not isinstance(token_ids, torch.Tensor) and len(token_ids) == 0:
        return torch.zeros(0, dtype=torch.long)  # torch.as_tensor([]) is float32: say "no tokens", not "not integers"
    ids = token_ids if isinstance(token_ids, torch.Tensor) else torch.as_tensor(token_ids)
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise TypeError(f"token ids must be integers, got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"token ids must be one flat sequence (rank 1), got shape {tuple(ids.shape)}")
    return ids.long()


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise `ValueError` naming the first id outside [0, vocab_size) and its position.

    Args:
        ids: integer ids, any shape.
        vocab_size: the size of the vocabulary they index.

    Raises:
        ValueError: `"token id 50300 at [0, 7] is outside the vocabulary (size 50257)"`.
    """
    check_range(ids, vocab_size, "token id", f"the vocabulary (size {vocab_size})")


def num_windows(num_tokens: int, max_length: int, stride: int) -> int:
    """How many windows the reference makes: `len(range(0, num_tokens - max_length, stride))`.

    Args:
        num_tokens: the length of the id sequence.
        max_length: the window length.
        stride: the step between window starts.

    Returns:
        The number of windows, 0 when there are too few tokens for one.
    """
    return max(0, -(-(num_tokens - max_length) // stride))


class _Windows(Dataset):
    """Window `i` of a flat token sequence: tokens `i * stride .. i * stride + max_length` (inclusive),
    as `(inputs, targets)` = (first max_length, last max_length). Subclasses say where the tokens are."""

    def _set_windows(self, num_tokens: int, max_length: int, stride: int, source: str) -> None:
        """Check the sizes; `source` names the tokens in messages ("the text 'Hello'", a file's path)."""
        self.max_length = check_positive_int("max_length", max_length)
        self.stride = check_positive_int("stride", stride)
        if num_tokens <= self.max_length:
            counted = "no tokens" if num_tokens == 0 else f"{num_tokens} tokens, too few for one window"
            raise ValueError(
                f"{source} has {counted}: a window of max_length={self.max_length} needs max_length + 1 = "
                f"{self.max_length + 1} tokens (inputs plus the shifted target); use more text or a smaller max_length"
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

    Args:
        token_ids: the ids, a 1-D integer tensor or a sequence of ints.
        max_length: the window length.
        stride: the step between window starts.
        vocab_size: when given, every id is checked to lie in [0, vocab_size).
        source: what the ids are, for error messages ("the text 'Hello'").

    Raises:
        TypeError: ids that are not integers. ValueError: ids that are not 1-D, an id outside `vocab_size`,
            `max_length`/`stride` not integers >= 1, too few ids for one window (`max_length + 1`).
    """

    def __init__(
        self,
        token_ids: torch.Tensor | Sequence[int],
        max_length: int = 256,
        stride: int = 128,
        *,
        vocab_size: int | None = None,
        source: str = "the id sequence",
    ):
        self.token_ids = _as_id_tensor(token_ids)
        if vocab_size is not None:
            check_token_ids(self.token_ids, vocab_size)
        self._set_windows(self.token_ids.numel(), max_length, stride, source)

    def _window(self, start: int) -> torch.Tensor:
        return self.token_ids[start : start + self.max_length + 1]  # a view: no copy


class ShardSampler(Sampler[int]):
    """The windows one rank loads in one epoch; every rank gets the same number, so no rank waits on another.

    The epoch's order is one permutation of `range(num_items)` (or `0..n-1` without `shuffle`), the same one a
    single process would use with the same arguments:

    - `seed=s`: `randperm(n)` seeded with `s + epoch`, exactly `torch.utils.data.DistributedSampler(seed=s)`;
      `set_epoch(e)` picks the epoch, so a resumed run sees the same orders.
    - `generator=g`: `randperm(n, generator=g)`, and with neither: a seed drawn from torch's global RNG, both
      exactly as `DataLoader(shuffle=True)` draws them, so `torch.manual_seed(s)` gives the book's batches.
      Each epoch draws anew from that stream.

    Rank `r` of `W` takes positions `r, r + W, r + 2W, ...` of the permutation. When `W` does not divide `n`,
    `drop_last=False` pads the permutation with its own first indices until it does (every window is seen, a few
    twice) and `drop_last=True` cuts it to the largest multiple of `W` (no window twice, a few skipped): the
    policy of `DistributedSampler`. Unequal shares would hang DistributedDataParallel: the rank with one
    more batch waits forever in its backward for gradients the others never send.

    Under an initialized process group whose rank and size these are, the order drawn from an RNG stream is
    rank 0's (the drawn seed, or the generator's state, is broadcast at the start of each epoch), so ranks
    seeded differently (nanoGPT seeds rank `r` with `1337 + r`) still share one permutation. Every rank must
    then iterate the loader, as DistributedDataParallel requires anyway.

    Without `set_epoch`, each pass moves to the next epoch (so a plain loop reshuffles, with `seed` too);
    `set_epoch(e)` works in one process as under `torch.distributed`, so one script serves both.

    Args:
        num_items: how many windows the dataset has.
        rank: this process's rank, in 0..world_size - 1.
        world_size: how many ranks share the windows.
        shuffle: a permutation per epoch; False keeps `0..n-1` in order.
        seed: the order of epoch `e` is `randperm(n)` seeded with `seed + e`.
        generator: draw the order from this generator instead (not with `seed`).
        drop_last: even the shares by skipping windows rather than repeating some.

    Raises:
        ValueError: `world_size` not an integer >= 1, `rank` outside 0..world_size - 1, both `seed` and `generator`.
    """

    def __init__(
        self,
        num_items: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int | None = None,
        *,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ):
        check_positive_int("world_size", world_size)
        check_positive_int("rank", rank, minimum=0, below=world_size)
        if seed is not None and generator is not None:
            raise ValueError("pass either `generator` or `seed`, not both")
        self.num_items, self.rank, self.world_size = num_items, rank, world_size
        self.shuffle, self.seed, self.generator, self.drop_last = shuffle, seed, generator, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s order next (with `seed`, the order is a function of `seed + epoch`)."""
        self.epoch = epoch

    def _synchronized(self) -> bool:
        """True when this sampler's shards are those of the initialized default process group."""
        dist = torch.distributed
        return (
            self.world_size > 1
            and dist.is_available()
            and dist.is_initialized()
            and (dist.get_rank(), dist.get_world_size()) == (self.rank, self.world_size)
        )

    def permutation(self) -> torch.Tensor:
        """This epoch's order of all `num_items` indices (before padding or cutting), the same on every rank."""
        n = self.num_items
        if not self.shuffle:
            return torch.arange(n)
        if self.seed is not None:
            return torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        if self.generator is not None:
            if self._synchronized():
                self.generator.set_state(_from_rank0(self.generator.get_state()))
            return torch.randperm(n, generator=self.generator)
        seed = int(torch.empty((), dtype=torch.int64).random_().item())  # RandomSampler's draw, to the bit
        if self._synchronized():
            seed = int(_from_rank0(torch.tensor([seed]))[0])
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def __iter__(self) -> Iterator[int]:
        order = self.permutation()  # (n,)
        self.epoch += 1
        total = len(self) * self.world_size
        if total > len(order):  # pad with the permutation's own first indices, as DistributedSampler does
            order = order.repeat(-(-total // max(len(order), 1)))
        yield from order[:total][self.rank :: self.world_size].tolist()
        if self.shuffle and self.seed is None and self.generator is not None:
            # RandomSampler draws one more (empty) slice of a permutation from the generator when an epoch runs
            # to its end; drawing it too keeps the next epoch's order equal to DataLoader(generator=...)'s.
            torch.randperm(self.num_items, generator=self.generator)

    def __len__(self) -> int:
        """Indices per rank: `n // W` with `drop_last`, else `ceil(n / W)`; the same on every rank."""
        if self.drop_last:
            return self.num_items // self.world_size
        return -(-self.num_items // self.world_size)


def _from_rank0(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` as global rank 0 has it (a broadcast over the default group; CPU tensors, any backend)."""
    box = [tensor]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _distributed_rank_and_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if rank is not None or world_size is not None:
        raise ValueError(f"pass both `rank` and `world_size` or neither, got rank={rank!r}, world_size={world_size!r}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def create_dataloader(
    source: str | torch.Tensor | Sequence[int] | Dataset | Path,
    tokenizer=None,
    *,
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
    packing: str | None = None,
    split_documents_on: str | None = None,
    pad_id: int | None = None,
) -> DataLoader:
    """The book's `create_dataloader_v1`, same defaults, same batches for the same seed; or packed documents.

    Args:
        source: a text (a `str`, always the text itself: one that names an existing file is refused, pass
            `pathlib.Path` for a token file), a list of texts (documents), token ids, a list of id sequences
            (documents), a `pathlib.Path` of a token file or Megatron pair, or a window dataset.
        tokenizer: encodes a text source (required then, e.g. `hf_embed.gpt2_tokenizer()`); with a token file,
            the file must have been written by it (header's tokenizer sha256 and vocabulary size).
        batch_size, max_length, stride, shuffle, drop_last, num_workers: as in the book.
        generator, seed: the shuffle's source. Neither: torch's global RNG, drawn exactly as
            `DataLoader(shuffle=True)` draws it, so `torch.manual_seed(s)` reproduces the book's batches.
            `generator`: drawn from it as `DataLoader(shuffle=True, generator=...)` does. `seed`: the order of
            epoch `e` is `DistributedSampler(seed=seed)`'s, independent of the global RNG.
        vocab_size: the model's table size: ids must be below it (checked on ids and text; a token file's
            header must not name a larger vocabulary).
        rank, world_size: the shard to load; by default those of the initialized process group, else one process.
        packing: None (the book's windows and batches), "concat" (the same windows, split at document starts) or
            "best-fit" (whole documents packed into padded windows): batches are then dicts of `input_ids`,
            `labels` and `position_ids` for `model(**batch)`, positions restarting at each document
            (`hf_embed.packing`). The loader's `padded_fraction` says how much of an epoch is padding.
        split_documents_on: cut a text into documents after each occurrence of this separator (kept).
        pad_id: the id padding gets with "best-fit" (its labels are -100 whatever it is); default the
            tokenizer's pad id, else the token file's eos id, else 0.

    Returns:
        A `DataLoader` yielding `(inputs, targets)`, each `(batch_size, max_length)` int64. Its sampler is a
        `ShardSampler` in one process too: `loader.sampler.set_epoch(e)` works everywhere. Under
        `torch.distributed` the ranks share one permutation of the windows per epoch (the one a single process
        draws) and every rank gets the same number of windows and batches: `drop_last=False` repeats a few
        windows to even the shares, `drop_last=True` skips a few (see `ShardSampler`).

    Raises:
        ValueError: bad sizes, ids outside `vocab_size`, too few tokens for a window, a token file of another
            tokenizer or a larger vocabulary, a str that names a file, or (with `drop_last`) too few windows per
            rank for one batch, decided from the global count so that every rank agrees. With packing: an unknown
            mode, a window dataset source, a separator that never occurs, an empty document, a file without
            document boundaries, `max_length` < 2 for "best-fit".
        TypeError: a text without a tokenizer, ids that are not integers.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    check_positive_int("num_workers", num_workers, minimum=0)
    if seed is not None and generator is not None:
        raise ValueError("pass either `generator` or `seed`, not both")

    if packing is not None and packing not in PACKING_MODES:
        raise ValueError(f"`packing` must be None, 'concat' or 'best-fit', got {packing!r}")
    dataset: Dataset
    packed: ConcatWindows | BestFitWindows | None = None
    if isinstance(source, Dataset):
        if packing is not None:
            raise ValueError(
                f"packing={packing!r} needs documents, and a {type(source).__name__} yields the book's (inputs, "
                "targets) windows: pass the text, the ids or the token file itself"
            )
        if not isinstance(source, Sized):
            raise TypeError(f"a {type(source).__name__} has no len(): pass a dataset of windows that has one")
        dataset = source
    elif isinstance(source, os.PathLike):
        if split_documents_on is not None:
            raise ValueError("`split_documents_on` splits a text; a token file records its documents when written")
        if packing is None:
            dataset = TokenFileDataset(source, max_length, stride, vocab_size=vocab_size, tokenizer=tokenizer)
        else:
            file = TokenFile(source)
            id_limit = file.check_vocabulary(vocab_size=vocab_size, tokenizer=tokenizer)
            pad_id = _pad_id(pad_id, tokenizer, file.header.get("eos_token_id"), vocab_size)
            dataset = packed = _packed(packing, file, max_length, stride, pad_id, str(file.path), id_limit)
    else:
        ids, offsets, name = _documents_in_memory(source, tokenizer, split_documents_on)
        if tokenizer is not None and vocab_size is None:
            vocab_size = vocab_size_of(tokenizer)
        if packing is None:
            dataset = SlidingWindowDataset(
                torch.from_numpy(ids), max_length, stride, vocab_size=vocab_size, source=name
            )
        else:
            if vocab_size is not None:
                check_token_ids(torch.from_numpy(ids), vocab_size)
            pad_id = _pad_id(pad_id, tokenizer, None, vocab_size)
            dataset = packed = _packed(packing, InMemoryTokens(ids, offsets), max_length, stride, pad_id, name)

    windows = len(cast(Sized, dataset))  # every dataset above has a len() (torch's `Dataset` type does not say so)
    rank, world_size = _distributed_rank_and_size(rank, world_size)
    sampler = ShardSampler(
        windows, rank, world_size, shuffle=shuffle, seed=seed, generator=generator, drop_last=drop_last
    )
    if seed is not None:  # DataLoader draws its workers' base seed from here, not from the global RNG
        generator = torch.Generator().manual_seed(seed)
    _check_enough_windows(windows, len(sampler), world_size, batch_size, drop_last)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
        collate_fn=None if packing is None else collate_packed,
    )
    if packed is not None:
        loader.padded_fraction = packed.padded_fraction
    return loader


def _packed(
    packing: str, tokens, max_length: int, stride: int, pad_id: int, name: str, id_limit=None
) -> ConcatWindows | BestFitWindows:
    max_length, stride = check_positive_int("max_length", max_length), check_positive_int("stride", stride)
    if packing == "concat":
        return ConcatWindows(tokens, max_length, stride, source=name, id_limit=id_limit)
    return BestFitWindows(tokens, max_length, pad_id=pad_id, source=name, id_limit=id_limit)


def _pad_id(pad_id: int | None, tokenizer, eos_id: int | None, vocab_size: int | None) -> int:
    """The id padding gets: the one given, else the tokenizer's pad (or eos) id, else the file's eos id, else 0."""
    if pad_id is None:
        candidates = [getattr(tokenizer, "pad_token_id", None), eos_id, getattr(tokenizer, "eos_token_id", None)]
        pad_id = next((c for c in candidates if isinstance(c, int)), 0)
    why = None if vocab_size is None else f"an id of the vocabulary, size {vocab_size}"
    return check_positive_int("pad_id", pad_id, minimum=0, below=vocab_size, why=why)


def _documents_in_memory(source, tokenizer, separator: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(ids back to back as int64, document offsets, how messages name the source) of a text or of ids."""
    if isinstance(source, str) or (isinstance(source, list | tuple) and source and isinstance(source[0], str)):
        texts = [source] if isinstance(source, str) else list(source)
        if isinstance(source, str):
            _check_not_a_file_name(source)
        if tokenizer is None:
            raise TypeError("a text needs a `tokenizer` (for GPT-2's: `tokenizer=hf_embed.gpt2_tokenizer()`)")
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("a list of texts must hold only str")
        name = _describe_text(source) if isinstance(source, str) else f"the {len(texts)} texts"
        if separator is not None:
            if not any(separator in text for text in texts):
                raise ValueError(f"the separator {separator!r} never occurs in {name}: each text would be one document")
            texts = [document for text in texts for document in split_documents(text, separator)]
        documents = [encode_array(tokenizer, text).astype(np.int64) for text in texts]
    else:
        if separator is not None:
            raise ValueError("`split_documents_on` splits a text; pass ids as a list of documents (one per sequence)")
        nested = isinstance(source, list | tuple) and len(source) > 0 and not isinstance(source[0], int)
        nested = nested and isinstance(source[0], list | tuple | torch.Tensor | np.ndarray)
        sequences = list(source) if nested else [source]
        documents = [_as_id_tensor(ids).numpy() for ids in sequences]
        name = f"the {len(documents)} id sequences" if nested else "the id sequence"
    offsets = np.zeros(len(documents) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in documents], out=offsets[1:])
    ids = np.concatenate(documents) if documents else np.zeros(0, dtype=np.int64)
    return ids.astype(np.int64, copy=False), offsets, name


def _check_not_a_file_name(text: str) -> None:
    """A str is a text. One that names an existing file or folder is refused: it was meant as a path.

    A text that is also a file name (one short line) gives a handful of tokens, too few for a window of any
    usual size, so refusing it costs nothing real; tokenize it yourself and pass the ids if you mean it.
    """
    if "\n" in text or len(text) > 4096:
        return
    try:
        exists = os.path.exists(text)
    except (OSError, ValueError):
        return
    if exists:
        raise ValueError(
            f"{text!r} names an existing file, but a str is read as the text itself (create_dataloader would "
            f"tokenize the name): for a token file pass pathlib.Path({text!r}); for a text file pass its text, "
            f"pathlib.Path({text!r}).read_text(encoding='utf-8')"
        )


def _describe_text(text: str) -> str:
    """How messages name a text: quoted, shortened, with a hint when it looks like a file name."""
    shown = repr(text) if len(text) <= 40 else f"{text[:37]!r}... ({len(text)} characters)"
    if text and not any(c.isspace() for c in text) and ("." in text or "/" in text or os.sep in text):
        shown += " (a str is read as text, not as a file name; a token file is passed as pathlib.Path)"
    return f"the text {shown}" if text else "the text '' (empty)"


def _check_enough_windows(windows: int, per_rank: int, world_size: int, batch_size: int, drop_last: bool) -> None:
    """Refuse a loader that would yield no batch; decided from global counts, so every rank decides alike."""
    if not drop_last or per_rank >= batch_size:
        return
    if world_size == 1:
        counted = f"{windows} windows are fewer than batch_size={batch_size}"
    else:
        counted = f"{windows} windows over {world_size} ranks give {per_rank} per rank"
        counted += f", fewer than batch_size={batch_size}"
    raise ValueError(
        f"{counted} with drop_last=True: the loader would yield no batch "
        "(use more text, a smaller batch_size, or drop_last=False)"
    )


class TokenFileDataset(_Windows):
    """The windows of `SlidingWindowDataset` over a token file (`hf_embed.token_files.TokenFile`).

    Opening costs O(1) time and memory whatever the file size; each window is one `pread` of its ids. Before
    each batch (and each single item) the file is checked to be the one that was opened, in every DataLoader
    worker too: a token file rewritten, replaced or truncated under a running loader is a `ValueError`
    naming it, never a bus error or another file's ids.

    Args:
        path: the token file.
        max_length, stride: the windows, as in the book.
        vocab_size: the model's table size; a file written with a larger vocabulary is refused.
        tokenizer: the tokenizer the ids are meant for; a file written by another one is refused.
    """

    def __init__(
        self,
        path: str | Path,
        max_length: int = 256,
        stride: int = 128,
        *,
        vocab_size: int | None = None,
        tokenizer=None,
    ):
        self.file = TokenFile(path)
        self._id_limit = self.file.check_vocabulary(vocab_size=vocab_size, tokenizer=tokenizer)
        self.path, self.header = self.file.path, self.file.header
        self._set_windows(self.file.count, max_length, stride, str(self.path))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.file.check()
        return super().__getitem__(index)

    def _check_ids(self, windows: torch.Tensor) -> None:
        """Ids of a file that records no vocabulary (Megatron's) are checked as they are read."""
        if self._id_limit is not None:
            check_range(windows, self._id_limit, f"{self.path}: token id", f"the vocabulary (size {self._id_limit})")

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One batch, as DataLoader asks for it: the file is checked once, the windows read into one array."""
        self.file.check()
        for index in indices:
            if not -self._len <= index < self._len:
                raise IndexError(f"window {index} out of range for {self._len} windows")
        starts = [(index % self._len) * self.stride for index in indices]
        windows = torch.from_numpy(self.file.read_windows(starts, self.max_length + 1))  # (B, max_length + 1)
        self._check_ids(windows)
        return [(window[:-1], window[1:]) for window in windows]

    def _window(self, start: int) -> torch.Tensor:
        window = torch.from_numpy(self.file.read(start, start + self.max_length + 1))
        self._check_ids(window)
        return window


__all__ = [
    "ShardSampler",
    "SlidingWindowDataset",
    "TokenFile",
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
