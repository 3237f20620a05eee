"""Megatron-LM's indexed dataset, `PREFIX.bin` + `PREFIX.idx`: the files Megatron-LM, NeMo and megatron-core read.

The layout, as megatron-core's `IndexedDataset` parses it (checked against that reader in the tests; all integers
little-endian, the arrays right after each other):

    PREFIX.idx    9-byte magic b"MMIDIDX\\x00\\x00", uint64 version (1), uint8 dtype code, uint64 sequence count N,
                  uint64 document-index count (documents + 1), int32[N] sequence lengths in tokens, int64[N]
                  byte offsets of the sequences in PREFIX.bin, int64[documents + 1] document indices (the first
                  sequence of each document, then N)
    PREFIX.bin    the ids of every sequence back to back, no header

hf-embed writes one sequence per document, in Megatron's dtype for the vocabulary (`DType.optimal_dtype`: uint16
below 65500 ids, else int32), and reads any such pair back into its loaders.

A pair is two files, and no rename publishes two files at once. What Megatron's reader checks when it opens a
pair: the magic, the version, and that the document indices end at the sequence count. What it does not: that
PREFIX.bin is as long as the index says. A new `.bin` under an old `.idx` (or the reverse) can therefore be read
silently as garbage. So `write_pair` (one writer at a time, under the prefix's lock) writes the new `.bin` in
full, then deletes the old `.idx`, publishes the `.bin`, and publishes the new `.idx` last. A crash anywhere
leaves the old pair, or a `.bin` with no `.idx` (which Megatron and hf-embed both refuse to open: run again), or
the new pair; never a `.bin` beside an `.idx` that describes other data. hf-embed's reader also checks the
`.bin`'s size against the index, and every document offset before packing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .atomic_write import write_file_atomically
from .output_lock import output_lock

MAGIC = b"MMIDIDX\x00\x00"
_HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, sequences, document indices
# Megatron's DType codes; 6 and 7 (float64, float32) hold no token ids.
DTYPE_CODES = {1: "u1", 2: "i1", 3: "<i2", 4: "<i4", 5: "<i8", 8: "<u2"}
_CODE_OF = {np.dtype(name): code for code, name in DTYPE_CODES.items()}


def megatron_dtype(vocab_size: int) -> np.dtype:
    """The dtype Megatron's preprocessing picks for a vocabulary (`DType.optimal_dtype`): uint16 below 65500 ids.

    Args:
        vocab_size: the tokenizer's number of ids.

    Returns:
        `np.dtype("<u2")`, or `np.dtype("<i4")` from 65500 ids.
    """
    return np.dtype("<u2") if vocab_size < 65500 else np.dtype("<i4")


def prefix_of(path: str | Path) -> Path:
    """`PREFIX` for `PREFIX`, `PREFIX.bin` or `PREFIX.idx`.

    Args:
        path: a pair's prefix or one of its files.

    Returns:
        The prefix.
    """
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".bin", ".idx") else path


def pair_of(path: str | Path) -> tuple[Path, Path] | None:
    """(`PREFIX.bin`, `PREFIX.idx`) when `path` names a Megatron pair (its prefix, its .bin or its .idx), else None.

    Args:
        path: a prefix, a `.bin` or an `.idx`.

    Returns:
        The two paths when both exist and the `.idx` starts with Megatron's magic; None otherwise.
    """
    path = Path(path)
    if path.suffix not in (".bin", ".idx") and path.exists():
        return None
    prefix = prefix_of(path)
    pair = Path(f"{prefix}.bin"), Path(f"{prefix}.idx")
    try:
        with pair[1].open("rb") as f:
            is_index = f.read(len(MAGIC)) == MAGIC
    except OSError:
        return None
    return pair if is_index else None


class MegatronIndex:
    """The index of a Megatron pair, read in O(1): dtype, sequence and document counts, the total id count.

    Opening checks the index's size against its counts and the `.bin`'s size against the index (the last
    sequence's offset and length). `document_offsets()` reads and checks the arrays (O(sequences)).

    Args:
        bin_path: the pair's `.bin`.
        idx_path: the pair's `.idx`.

    Raises:
        ValueError: a corrupt index, an unknown version or dtype code, a `.bin` whose size the index does not
            describe (the pair does not belong together, or the `.bin` is truncated).
    """

    def __init__(self, bin_path: Path, idx_path: Path):
        self.bin_path, self.idx_path = bin_path, idx_path
        with idx_path.open("rb") as f:
            start = f.read(_HEADER.size)
            size = f.seek(0, 2)
            if len(start) < _HEADER.size:
                raise self._corrupt(f"{size} bytes, shorter than its {_HEADER.size}-byte header")
            _, version, code, sequences, indices = _HEADER.unpack(start)
            if version != 1:
                raise ValueError(f"{idx_path}: Megatron index version {version}; hf-embed reads version 1")
            if code not in DTYPE_CODES:
                raise ValueError(f"{idx_path}: dtype code {code} holds no token ids (known: {sorted(DTYPE_CODES)})")
            self.dtype = np.dtype(DTYPE_CODES[code])
            expected = _HEADER.size + 12 * sequences + 8 * indices
            if size != expected or indices < 1:
                raise self._corrupt(
                    f"{size} bytes, but {sequences} sequences and {indices} document indices take {expected}"
                )
            self.sequences, self.documents = sequences, indices - 1
            self.count = 0
            if sequences:
                f.seek(_HEADER.size + 4 * (sequences - 1))
                (last_length,) = struct.unpack("<i", f.read(4))
                f.seek(_HEADER.size + 4 * sequences + 8 * (sequences - 1))
                (last_pointer,) = struct.unpack("<q", f.read(8))
                end = last_pointer + last_length * self.dtype.itemsize
                if last_length < 0 or last_pointer < 0 or end % self.dtype.itemsize:
                    raise self._corrupt(
                        f"the last sequence ({last_length} ids at byte {last_pointer}) is not whole ids"
                    )
                self.count = end // self.dtype.itemsize
        bin_size = bin_path.stat().st_size
        if bin_size != self.count * self.dtype.itemsize:
            raise ValueError(
                f"{bin_path}: {bin_size} bytes, but {idx_path.name} describes {self.count} {self.dtype.name} ids "
                f"({self.count * self.dtype.itemsize} bytes): the pair does not belong together, or the .bin is "
                "truncated"
            )

    def _corrupt(self, why: str) -> ValueError:
        return ValueError(f"{self.idx_path}: corrupt Megatron index ({why})")

    def header(self) -> dict:
        return {
            "format": "megatron-indexed-dataset",
            "dtype": self.dtype.name,
            "count": self.count,
            "documents": self.documents,
            "sequences": self.sequences,
            "vocab_size": None,  # Megatron's files do not record it
            "tokenizer_sha256": None,
        }

    def document_offsets(self) -> np.ndarray:
        """Where each document starts in the `.bin`, in ids, then the id count: int64, (documents + 1,)."""
        n = self.sequences
        arrays = np.fromfile(self.idx_path, np.uint8, offset=_HEADER.size)
        lengths = arrays[: 4 * n].view("<i4").astype(np.int64)
        pointers = arrays[4 * n : 12 * n].view("<i8")
        indices = arrays[12 * n :].view("<i8")
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        if (lengths < 0).any() or not np.array_equal(pointers, starts[:-1] * self.dtype.itemsize):
            raise self._corrupt("its sequences are not stored back to back in the .bin")
        if indices[0] != 0 or indices[-1] != n or (np.diff(indices) < 0).any():
            raise self._corrupt(f"its document indices are not 0 .. {n} in order")
        return starts[indices]


def write_pair(prefix: str | Path, write_ids: Callable[[str], np.ndarray], dtype: np.dtype) -> None:
    """Publish `PREFIX.bin` and `PREFIX.idx`, one sequence per document, in the order the module docstring gives.

    Args:
        prefix: the pair's prefix.
        write_ids: called with the `.bin`'s temporary path, which it must fill with the ids in `dtype`; returns
            where each document starts and the id count (int64, (documents + 1,)).
        dtype: the ids' dtype, one of Megatron's.

    Raises:
        OutputLockedError: another writer holds the pair. ValueError: a document longer than Megatron's int32
            lengths allow. Whatever `write_ids` raises: the previous pair stays. A failure while the index is
            written (after the new `.bin` replaced the old pair's): neither file is left, so nothing mismatched
            can be read and the next run writes the pair anew.
    """
    prefix = Path(prefix)
    bin_path, idx_path = Path(f"{prefix}.bin"), Path(f"{prefix}.idx")
    written: list[np.ndarray] = []

    def write_bin(temporary: str) -> None:
        written.append(write_ids(temporary))
        idx_path.unlink(missing_ok=True)  # from here until the new index is in, the pair cannot be opened

    def write_idx(temporary: str) -> None:
        offsets = written[0]
        lengths = np.diff(offsets)
        if lengths.max(initial=0) >= 2**31:
            raise ValueError(f"a document of {lengths.max()} ids is longer than Megatron's int32 lengths allow")
        with open(temporary, "wb") as f:
            f.write(_HEADER.pack(MAGIC, 1, _CODE_OF[np.dtype(dtype)], len(lengths), len(lengths) + 1))
            f.write(lengths.astype("<i4").tobytes())
            f.write((offsets[:-1] * np.dtype(dtype).itemsize).astype("<i8").tobytes())
            f.write(np.arange(len(lengths) + 1, dtype="<i8").tobytes())  # document d is sequence d

    prefix.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(prefix):  # one writer of the pair at a time; each file also takes its own lock
        write_file_atomically(bin_path, write_bin)
        try:
            write_file_atomically(idx_path, write_idx)
        except BaseException:  # a failure, Ctrl-C or SIGTERM here: the old index is gone, so no lone .bin either
            bin_path.unlink(missing_ok=True)
            raise


__all__ = ["DTYPE_CODES", "MAGIC", "MegatronIndex", "megatron_dtype", "pair_of", "prefix_of", "write_pair"]
