"""Packed documents: windows whose positions restart at every document, as batches for `model(**batch)`.

The book's windows cut one stream of tokens, so a window can run from one document into the next: the model then
attends across the boundary and numbers the second document's tokens from wherever the window began. Packed
windows keep documents apart, as Llama 3, OLMo, torchtitan, Megatron (`--reset-position-ids --reset-attention-mask
--eod-mask-loss`) and transformers' `DataCollatorWithFlattening` do. Two layouts:

- `ConcatWindows` ("concat"): the book's windows (same starts, same `max_length` input tokens), each split at the
  document starts inside it.
- `BestFitWindows` ("best-fit"): whole documents placed into windows by best-fit decreasing. A document longer
  than a window is first cut into window-sized pieces (each fills a window alone); the remainders are packed, the
  longest first, each into the open window it fills most tightly; what is left of a window is padding.

Every item is a dict of three (max_length,) int64 tensors:

- `input_ids`: the tokens (the pad id where nothing was placed);
- `position_ids`: 0, 1, 2, ... from each segment's first token, a segment being the part of one document inside
  the window (the window's first token starts one too; so does the padding);
- `labels`: `input_ids`, but -100 on each segment's first token and on padding. transformers' causal LMs shift
  labels inside the model (the logits at t predict the label at t + 1), so the -100 at a document's first token
  is what keeps the previous document's last token from learning to predict another document.

There is no `attention_mask`: transformers (5.x) turns `position_ids` that restart into a block-diagonal causal
mask (`masking_utils.find_packed_sequence_indices`) for sdpa and eager attention, but only when no 2D
`attention_mask` is passed and no cache is in use. The README says which settings honour it.

Building an epoch costs O(documents) time and memory: windows are computed from the document offsets, never
materialized; the tokens stay where they are (a token file is read window by window).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from typing import Protocol, overload

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from .validation import check_range

logger = logging.getLogger(__name__)

PACKING_MODES = ("concat", "best-fit")
IGNORE_INDEX = -100  # what transformers' losses skip
Ints = Sequence[int] | np.ndarray  # positions, lengths or rows: a list, or an integer array


class DocumentTokens(Protocol):
    """Where packed windows read from: a `TokenFile` (`hf_embed.token_files`) or ids held in memory."""

    count: int

    def read(self, start: int, stop: int) -> np.ndarray: ...

    def read_windows(self, starts: Ints, length: int) -> np.ndarray: ...

    def read_rows(self, starts: Ints, lengths: Ints, rows: Ints, width: int, fill: int = 0) -> np.ndarray: ...

    def document_offsets(self) -> np.ndarray | None: ...

    def check(self) -> None: ...


class InMemoryTokens:
    """Documents held in memory: their ids back to back and where each starts (then the id count).

    Args:
        ids: every id, documents back to back, shape (count,).
        offsets: where each document starts, then `count`, shape (documents + 1,).
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        self.ids, self.offsets, self.count = ids, offsets, len(ids)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.ids[start:stop]

    def read_windows(self, starts: Ints, length: int) -> np.ndarray:
        return self.ids[np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)]  # (B, length)

    def read_rows(self, starts: Ints, lengths: Ints, rows: Ints, width: int, fill: int = 0) -> np.ndarray:
        row_of = np.asarray(rows, dtype=np.int64)
        out = np.full((int(row_of.max(initial=-1)) + 1, width), fill, dtype=np.int64)
        if not len(row_of):
            return out
        order = np.argsort(row_of, kind="stable")  # runs of a row in the order given, rows in turn
        starts = np.asarray(starts, dtype=np.int64)[order]
        lengths = np.asarray(lengths, dtype=np.int64)[order]
        rows = row_of[order]
        begin = np.cumsum(lengths) - lengths  # where each run begins in the stream of all runs
        used = np.bincount(rows, weights=lengths, minlength=len(out)).astype(np.int64)
        column = begin - (np.cumsum(used) - used)[rows]  # where each run begins in its row
        step = np.arange(int(lengths.sum())) - np.repeat(begin, lengths)  # each id's place inside its run
        out.reshape(-1)[np.repeat(rows * width + column, lengths) + step] = self.ids[np.repeat(starts, lengths) + step]
        return out

    def document_offsets(self) -> np.ndarray:
        return self.offsets

    def check(self) -> None:
        pass


def checked_offsets(tokens: DocumentTokens, source: str) -> np.ndarray:
    """The document offsets of `tokens`, refusing a source without them and documents of length 0."""
    offsets = tokens.document_offsets()
    if offsets is None:
        raise ValueError(
            f"{source} records no document boundaries (a token file written before hf-embed recorded them): "
            "tokenize the text again to pack it, or load it without `packing`"
        )
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if len(empty):
        raise ValueError(
            f"document {empty[0]} of {source} has no tokens ({len(empty)} documents of length 0): packing places "
            "documents, and an empty one has nothing to place; remove the empty documents"
        )
    return offsets


class PackedBatch(Sequence):
    """The items of one batch, already stacked: `collate_packed` hands the dict of (B, T) tensors on as it is.

    It is also a sequence of per-item dicts (views), so `torch.utils.data.default_collate` stacks it as usual.

    Args:
        tensors: name -> (B, T) tensor.
    """

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["input_ids"])

    @overload
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, torch.Tensor]]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return {key: value[index] for key, value in self.tensors.items()}


def collate_packed(batch):
    """DataLoader's collate for packed windows: a `PackedBatch` is already a batch; anything else is stacked.

    Args:
        batch: what the dataset's `__getitems__` returned, or a list of items.

    Returns:
        The dict of (B, T) tensors (`input_ids`, `labels`, `position_ids`, `attention_mask`), or
        `default_collate(batch)`.
    """
    if isinstance(batch, PackedBatch):
        return batch.tensors
    return default_collate(batch)


def _finish(ids: np.ndarray, rows: np.ndarray, columns: np.ndarray, used: np.ndarray | None = None) -> PackedBatch:
    """(B, T) ids and where segments start -> the batch: positions restart at each start, labels -100 there.

    Segment `i` starts at (`rows[i]`, `columns[i]`), sorted by row, then column; every row has one at column 0.
    Tokens from column `used[r]` of row `r` on are padding (-100 labels). Positions are one cumulative sum of
    steps that are 1 everywhere but at a segment start, where they fall back to 0: three passes over the batch.
    """
    steps = np.ones(ids.shape, dtype=np.int64)  # (B, T)
    same_row = np.zeros(len(rows), dtype=bool)
    same_row[1:] = rows[1:] == rows[:-1]
    previous = np.roll(columns, 1)
    steps[rows, columns] = np.where(same_row, previous + 1 - columns, 0)  # back to 0 from the last position
    labels = ids.copy()
    labels[rows, columns] = IGNORE_INDEX
    if used is not None:
        for row in np.flatnonzero(used < ids.shape[1]).tolist():
            labels[row, used[row] :] = IGNORE_INDEX
    input_ids, position_ids, labels = (torch.from_numpy(a) for a in (ids, np.cumsum(steps, axis=1), labels))
    return PackedBatch({"input_ids": input_ids, "labels": labels, "position_ids": position_ids})


class _Packed(Dataset):
    """Shared by the two layouts: index checks, single items, a file checked once per batch."""

    tokens: DocumentTokens
    padded_fraction: float
    id_limit: int | None = None  # ids are checked below it as read (for files that record no vocabulary)
    _len: int

    def _checked(self, ids: np.ndarray, source: str) -> np.ndarray:
        if self.id_limit is not None:
            check_range(
                torch.from_numpy(ids), self.id_limit, f"{source}: token id", f"the vocabulary (size {self.id_limit})"
            )
        return ids

    def __len__(self) -> int:
        return self._len

    def _indices(self, indices: Sequence[int]) -> list[int]:
        for index in indices:
            if not -self._len <= index < self._len:
                raise IndexError(f"window {index} out of range for {self._len} windows")
        return [index % self._len for index in indices]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> PackedBatch:
        raise NotImplementedError


class ConcatWindows(_Packed):
    """The book's windows over the concatenated documents, with positions and labels per document (see module).

    Window `i` holds tokens `i * stride .. i * stride + max_length - 1`, the inputs of the book's window `i`.

    Args:
        tokens: the documents (a `TokenFile` or `InMemoryTokens`).
        max_length: the window length.
        stride: the step between window starts.
        source: what the tokens are, for error messages.
        id_limit: when given, every id read is checked to lie below it.

    Raises:
        ValueError: no document boundaries, an empty document, too few tokens for one window.
    """

    def __init__(self, tokens: DocumentTokens, max_length: int, stride: int, *, source: str, id_limit=None):
        from .data import num_windows  # here: data imports this module

        self.tokens, self.max_length, self.stride = tokens, max_length, stride
        self.source, self.id_limit = source, id_limit
        self.offsets = checked_offsets(tokens, source)
        if tokens.count <= max_length:
            raise ValueError(
                f"{source} has {tokens.count} tokens, too few for one window: a window of max_length={max_length} "
                f"needs max_length + 1 = {max_length + 1} tokens; use more text or a smaller max_length"
            )
        self._len = num_windows(tokens.count, max_length, stride)
        self.padded_fraction = 0.0

    def __getitems__(self, indices: list[int]) -> PackedBatch:
        self.tokens.check()
        starts = np.array(self._indices(indices), dtype=np.int64) * self.stride  # (B,)
        ids = self._checked(self.tokens.read_windows(starts, self.max_length), self.source)  # (B, T)
        first = np.searchsorted(self.offsets, starts, side="right")  # document starts strictly inside each window
        last = np.searchsorted(self.offsets, starts + self.max_length, side="left")
        counts = last - first + 1  # (B,): the window's start, then the document starts inside it
        rows = np.repeat(np.arange(len(starts)), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # 0, 1, .. in each row
        document = np.repeat(first, counts) + within - 1  # -1: the window's own start
        columns = np.where(within == 0, 0, self.offsets[np.maximum(document, 0)] - starts[rows])
        return _finish(ids, rows, columns)


class BestFitWindows(_Packed):
    """Whole documents in windows by best-fit decreasing, padded with `pad_id` (see module).

    Args:
        tokens: the documents (a `TokenFile` or `InMemoryTokens`).
        max_length: the window length (at least 2); longer documents are cut in pieces of it.
        pad_id: the id that fills the rest of each window.
        source: what the tokens are, for error messages.
        id_limit: when given, every id read is checked to lie below it.

    Attributes:
        padded_fraction: the share of the epoch's tokens that are padding.
        naive_padded_fraction: the same with one document (or piece) per window, for comparison.

    Raises:
        ValueError: `max_length` below 2, no document boundaries, an empty document.
    """

    def __init__(self, tokens: DocumentTokens, max_length: int, *, pad_id: int, source: str, id_limit=None):
        if max_length < 2:
            raise ValueError(
                f"max_length={max_length} is too small for any document: a window of one token holds no token that "
                "predicts another (every label would be -100); use max_length >= 2"
            )
        self.tokens, self.max_length, self.pad_id = tokens, max_length, pad_id
        self.source, self.id_limit = source, id_limit
        self.offsets = checked_offsets(tokens, source)
        lengths = np.diff(self.offsets)  # (D,)
        self._full = lengths // max_length  # window-sized pieces of each document
        self._remainder = lengths % max_length
        self._full_end = np.cumsum(self._full)  # windows 0 .. full_end[d] - 1 hold documents 0 .. d's full pieces
        self._full_windows = int(self._full_end[-1]) if len(lengths) else 0
        bin_starts, bin_documents = _best_fit_decreasing(self._remainder, max_length)
        # The packed windows' runs of ids, in window order: (first id, length) of each document's remainder.
        self._bin_starts = bin_starts
        self._run_starts = (self.offsets[:-1] + self._full * max_length)[bin_documents]
        self._run_lengths = self._remainder[bin_documents]
        full_windows = self._full_windows
        self._len = full_windows + len(bin_starts) - 1
        pieces = full_windows + int(np.count_nonzero(self._remainder))
        self.padded_fraction = 1 - tokens.count / (self._len * max_length)
        self.naive_padded_fraction = 1 - tokens.count / (pieces * max_length)
        if not (lengths <= max_length).any():
            logger.warning(
                "%s: every one of its %d documents is longer than max_length=%d: each is cut into windows, and only "
                "the remainders are packed",
                source,
                len(lengths),
                max_length,
            )
        logger.info(
            "best-fit packing of %s: %d documents into %d windows of %d tokens, %.2f%% padding (one document per "
            "window: %.2f%%)",
            source,
            len(lengths),
            self._len,
            max_length,
            100 * self.padded_fraction,
            100 * self.naive_padded_fraction,
        )

    def _runs(self, index: int) -> tuple[list[int], list[int]]:
        """(first ids, lengths) of the runs of ids window `index` holds, in order."""
        if index < self._full_windows:  # a window-sized piece of a long document
            document = int(np.searchsorted(self._full_end, index, side="right"))
            piece = index - int(self._full_end[document] - self._full[document])
            return [int(self.offsets[document]) + piece * self.max_length], [self.max_length]
        window = slice(self._bin_starts[index - self._full_windows], self._bin_starts[index - self._full_windows + 1])
        return self._run_starts[window].tolist(), self._run_lengths[window].tolist()

    def __getitems__(self, indices: list[int]) -> PackedBatch:
        self.tokens.check()
        starts: list[int] = []
        run_lengths: list[int] = []
        run_rows: list[int] = []
        for row, index in enumerate(self._indices(indices)):
            first, length = self._runs(index)
            starts += first
            run_lengths += length
            run_rows += [row] * len(first)
        batch = (len(indices), self.max_length)
        ids = self._checked(
            self.tokens.read_rows(starts, run_lengths, run_rows, batch[1], fill=self.pad_id), self.source
        )
        lengths, rows = np.array(run_lengths), np.array(run_rows)
        used = np.bincount(rows, weights=lengths, minlength=batch[0]).astype(np.int64)  # (B,) tokens placed
        columns = np.cumsum(lengths) - lengths - (np.cumsum(used) - used)[rows]  # where each run begins in its row
        padded = np.flatnonzero(used < batch[1])  # the padding is a segment of its own: no document attends to it
        rows, columns = np.concatenate([rows, padded]), np.concatenate([columns, used[padded]])
        order = np.lexsort((columns, rows))
        return _finish(ids, rows[order], columns[order], used)


def _best_fit_decreasing(lengths: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Pack the non-zero `lengths` (each < capacity) into bins of `capacity`: longest first, each into the open bin
    it leaves with the least room (a new bin if none has room).

    Returns:
        (bin starts, documents): bin `b` holds documents `documents[starts[b] : starts[b + 1]]`, in placement order.
        O(n log n) time and O(n) memory for n lengths: open bins are kept by remaining room.
    """
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    bins: list[list[int]] = []
    rooms: list[int] = []  # the distinct rooms that open bins have, sorted
    open_bins: dict[int, list[int]] = {}  # room -> the bins with that much room
    for document in order.tolist():
        length = int(lengths[document])
        at = bisect.bisect_left(rooms, length)
        if at < len(rooms):
            room = rooms[at]
            chosen = open_bins[room].pop()
            if not open_bins[room]:
                del open_bins[room], rooms[at]
        else:
            room, chosen = capacity, len(bins)
            bins.append([])
        bins[chosen].append(document)
        left = room - length
        if left:
            if left not in open_bins:
                bisect.insort(rooms, left)
                open_bins[left] = []
            open_bins[left].append(chosen)
    starts = np.zeros(len(bins) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in bins], out=starts[1:])
    documents = np.fromiter((d for b in bins for d in b), dtype=np.int64, count=int(starts[-1]))
    return starts, documents


__all__ = [
    "IGNORE_INDEX",
    "PACKING_MODES",
    "BestFitWindows",
    "ConcatWindows",
    "DocumentTokens",
    "InMemoryTokens",
    "PackedBatch",
    "collate_packed",
]
