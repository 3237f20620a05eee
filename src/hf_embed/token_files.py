"""Token files: corpora larger than memory as one file of ids, published whole and checked whenever read.

The format (version 2) is one file, written under a temporary name and published by one atomic rename, so a
crash or a second writer can never leave ids beside a header that does not describe them:

    offset 0      prefix, 64 bytes: magic b"HFEMBTOK", then little-endian uint64s: version (2), ids offset,
                  id count, documents offset, document offsets count, header offset, header length
    offset 4096   the ids, little-endian uint16 (when the vocabulary fits) or uint32; page-aligned, so any tool
                  can memory-map them as they are (`np.memmap(path, "<u2", offset=4096, shape=(count,))`)
    8-aligned     where documents start: `documents + 1` little-endian uint64 token offsets, 0 first and the
                  id count last (document `d` is ids `[offsets[d], offsets[d + 1])`)
    then          the JSON header (UTF-8): dtype, count, vocab_size, tokenizer_sha256, engine, eos_token_id,
                  documents, and the sources; the file ends exactly where it ends

Opening reads the prefix and the header, nothing else. Version 1 files (raw native-order ids plus a
`<file>.json` sidecar, as hf-embed wrote them before) still open, without documents; so do Megatron's indexed
datasets (`PREFIX.bin` + `PREFIX.idx`, see `megatron.py`).

This module is the one place that knows the format: `TokenFile` reads it, `write_version_2` lays it out.
Turning text into token files (chunking, encoding on all cores, `tokenize_files`) is `tokenize_corpus.py`'s.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from .arguments import check_positive_int
from .atomic_write import write_file_atomically
from .megatron import MegatronIndex, pair_of, prefix_of
from .output_lock import lock_path
from .tokenization import tokenizer_sha256, vocab_size_of

TOKEN_FILE_FORMAT = "hf-embed-tokens"
VERSION = 2
MAGIC = b"HFEMBTOK"
IDS_OFFSET = 4096
# magic, version, ids offset, id count, documents offset, document offsets count, header offset, header length
_PREFIX = struct.Struct("<8s7Q")
_DTYPES: dict[str, np.dtype] = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
_LIMITS = {"uint16": 2**16, "uint32": 2**32}
_MAX_HEADER = 1 << 26  # a header is a few hundred bytes per source file; more is a corrupt prefix


# ---------------------------------------------------------------------------------------------- reading


class _Identity(NamedTuple):
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> _Identity:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def changes(self, now: _Identity) -> str:
        said = []
        if (now.device, now.inode) != (self.device, self.inode):
            said.append("replaced by another file")
        if now.size != self.size:
            said.append(f"size {self.size} -> {now.size} bytes")
        if now.mtime_ns != self.mtime_ns:
            said.append("modified")
        return ", ".join(said)


class TokenFile:
    """An opened token file: its header, its ids read by position, where its documents start.

    Opening costs O(1) whatever the file's size: the prefix and the JSON header are read and checked against
    the file's size. The file's identity (device, inode, size, mtime) is recorded; `check()` compares it with
    the file now, and a copy unpickled in a DataLoader worker checks it when it opens the file, so a file
    rewritten, replaced or truncated under a running loader is a `ValueError` naming it, never another
    file's ids under this header.

    Ids are read with `os.pread`, not through a memory map: a memory map turns a file truncated under the
    reader into SIGBUS, which kills the process; a short read is an error that names the file. (Measured with
    `scripts/bench_token_reads.py`: a batch of windows reads as fast this way as by slicing a map.)

    Args:
        path: a version-2 token file, a version-1 file with its `.json` sidecar, or a Megatron pair (its prefix,
            `.bin` or `.idx`).

    Raises:
        FileNotFoundError: no such file, nor a Megatron pair. ValueError: not a token file, a corrupt or truncated
            one (naming the file and what does not add up), an unknown version.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._megatron: MegatronIndex | None = None
        if self.path.is_file():
            with self.path.open("rb") as f:
                start = f.read(_PREFIX.size)
                stat = os.fstat(f.fileno())
                if start[: len(MAGIC)] == MAGIC:
                    self._open_v2(f, start, stat.st_size)
                    self._identities = {self.path: _Identity.of(stat)}
                    return
        pair = pair_of(self.path)
        if pair is not None:
            self._open_megatron(*pair)
        elif not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such token file (nor a Megatron {self.path}.bin/.idx pair)")
        else:
            self._open_v1(stat)

    def _open_v2(self, f, start: bytes, size: int) -> None:
        def corrupt(why: str) -> ValueError:
            return ValueError(f"{self.path}: corrupt token file ({why})")

        if len(start) < _PREFIX.size:
            raise corrupt(f"{size} bytes, shorter than the {_PREFIX.size}-byte prefix")
        _, version, ids_at, count, documents_at, offsets, header_at, header_length = _PREFIX.unpack(start)
        if version != VERSION:
            raise ValueError(f"{self.path}: token-file version {version}; this hf-embed reads versions 1 and {VERSION}")
        if header_length > _MAX_HEADER or header_at + header_length != size:
            raise corrupt(f"{size} bytes, but the prefix puts the header at {header_at}..{header_at + header_length}")
        f.seek(header_at)
        try:
            header = json.loads(f.read(header_length).decode("utf-8"))
            dtype = _DTYPES[header["dtype"]]
            if header.get("format") != TOKEN_FILE_FORMAT or header.get("count") != count:
                raise ValueError("the header does not match the prefix")
        except (ValueError, KeyError, TypeError) as error:
            raise corrupt(f"unreadable header: {error}") from None
        # The layout is fixed by the count and the number of documents, so every field of the prefix is checked.
        documents = header.get("documents")
        expected = _layout(count, dtype, documents)
        found = (ids_at, documents_at, offsets, header_at)
        if found != expected:
            raise corrupt(f"the prefix's layout {found} is not the one {count} ids and {documents} documents have")
        self.header, self.dtype, self.count = header, dtype, count
        self._ids_at, self._ids_path = ids_at, self.path
        self._documents_at, self._document_offsets = documents_at, offsets

    def _open_v1(self, stat: os.stat_result) -> None:
        sidecar = Path(f"{self.path}.json")
        if not sidecar.is_file():
            raise ValueError(
                f"{self.path}: not a token file (no hf-embed prefix, and no {sidecar.name} header beside it as "
                "version 1 had); write one with `hf-embed tokenize` or `hf_embed.tokenize_corpus.tokenize_files`"
            )
        try:
            header = json.loads(sidecar.read_text(encoding="utf-8"))
            if header.get("format") != TOKEN_FILE_FORMAT or header["dtype"] not in _DTYPES:
                raise ValueError("not an hf-embed token-file header")
            count = check_positive_int("count", header["count"], minimum=0)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{sidecar}: corrupt token-file header ({error})") from None
        dtype = np.dtype(_DTYPES[header["dtype"]].newbyteorder("="))  # version 1 wrote native byte order
        if stat.st_size != count * dtype.itemsize:
            raise ValueError(
                f"{self.path}: {stat.st_size} bytes, but its header says {count} {header['dtype']} tokens "
                f"({count * dtype.itemsize} bytes); the file is truncated or does not belong to this header"
            )
        self.header, self.dtype, self.count = header, dtype, count
        self._ids_at, self._ids_path = 0, self.path
        self._documents_at, self._document_offsets = 0, 0
        self._identities = {self.path: _Identity.of(stat), sidecar: _Identity.of(sidecar.stat())}

    def _open_megatron(self, bin_path: Path, idx_path: Path) -> None:
        identities = {bin_path: _Identity.of(bin_path.stat()), idx_path: _Identity.of(idx_path.stat())}
        self._megatron = index = MegatronIndex(bin_path, idx_path)
        self.path, self.header = bin_path, index.header()
        self.dtype, self.count = index.dtype, index.count
        self._ids_at, self._ids_path = 0, bin_path
        self._documents_at, self._document_offsets = 0, 0
        self._identities = identities

    # The descriptor is per process: a copy in a DataLoader worker opens the file anew and checks it there.
    _fd: int | None = None
    _pid: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            fd = os.open(self._ids_path, os.O_RDONLY)
            try:
                self._check_identity(self._ids_path, _Identity.of(os.fstat(fd)))
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._pid = fd, os.getpid()
        return self._fd

    def _check_identity(self, path: Path, now: _Identity) -> None:
        recorded = self._identities[path]
        if now != recorded:
            raise ValueError(
                f"{path}: the token file changed since it was opened ({recorded.changes(now)}); it was rewritten, "
                "replaced or truncated while a loader read it. Open it again (a new loader) once it is complete"
            )

    def check(self) -> None:
        """Raise `ValueError` naming the file if it is no longer the file that was opened."""
        for path in self._identities:
            try:
                now = _Identity.of(os.stat(path))
            except FileNotFoundError:
                raise ValueError(f"{path}: the token file was deleted since it was opened") from None
            self._check_identity(path, now)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Ids `start .. stop - 1` as int64, shape (stop - start,)."""
        return self.read_rows([start], [stop - start], [0], stop - start)[0]

    def read_windows(self, starts: Sequence[int], length: int) -> np.ndarray:
        """Ids `start .. start + length - 1` for each start, as int64, shape (len(starts), length).

        The book's windows: one `preadv` per window straight into one buffer, one conversion for all.
        """
        itemsize, base, count = self.dtype.itemsize, self._ids_at, self.count
        width = length * itemsize
        buffer = bytearray(len(starts) * width)
        view, fd, preadv = memoryview(buffer), self._descriptor(), _PREADV
        for at, start in zip(range(0, len(buffer), width), starts, strict=True):
            if start < 0 or start + length > count:
                raise IndexError(f"ids {start}..{start + length} are outside {self.path} ({count} ids)")
            if preadv(fd, [view[at : at + width]], base + start * itemsize) != width:
                self.check()  # names what changed
                raise ValueError(f"{self._ids_path}: the token file is shorter than when it was opened (truncated)")
        return np.frombuffer(buffer, self.dtype).reshape(len(starts), length).astype(np.int64)

    def read_rows(
        self, starts: Sequence[int], lengths: Sequence[int], rows: Sequence[int], width: int, fill: int = 0
    ) -> np.ndarray:
        """Runs of ids placed in rows of `width`: run `i` (ids `starts[i] .. starts[i] + lengths[i] - 1`) goes to
        row `rows[i]`, right after the runs before it in that row; the rest of each row is `fill`.

        Each run is one `preadv` straight into its place; one conversion to int64 for all, so a batch costs little
        more than its syscalls. Returns int64 (max(rows) + 1, width).
        """
        shape = (max(rows, default=-1) + 1, width)
        if fill:
            info = np.iinfo(self.dtype)
            if not info.min <= fill <= info.max:
                raise ValueError(f"fill id {fill} does not fit {self.path}'s {self.dtype.name} ids")
            out = np.full(shape, fill, dtype=self.dtype)  # in the file's dtype
        else:
            out = np.zeros(shape, dtype=self.dtype)
        if out.size == 0:
            return out.astype(np.int64)
        view = out.data.cast("B")  # out is C-contiguous
        itemsize, base, count = self.dtype.itemsize, self._ids_at, self.count
        fd, preadv = self._descriptor(), _PREADV
        ends = list(range(0, shape[0] * width * itemsize, width * itemsize))  # where each row's next run goes
        for start, length, row in zip(starts, lengths, rows, strict=True):
            if start < 0 or start + length > count:
                raise IndexError(f"ids {start}..{start + length} are outside {self.path} ({count} ids)")
            at, nbytes = ends[row], length * itemsize
            if preadv(fd, [view[at : at + nbytes]], base + start * itemsize) != nbytes:
                self.check()  # names what changed
                raise ValueError(f"{self._ids_path}: the token file is shorter than when it was opened (truncated)")
            ends[row] = at + nbytes
        return out.astype(np.int64)

    @property
    def num_documents(self) -> int | None:
        """How many documents the file records, or None where it records none (version 1)."""
        if self._megatron is not None:
            return self._megatron.documents
        return self._document_offsets - 1 if self._document_offsets else None

    def document_offsets(self) -> np.ndarray | None:
        """Where each document starts, then the id count: int64, shape (documents + 1,); None if not recorded.

        Reads `8 * (documents + 1)` bytes and checks them (first 0, last the count, never decreasing).
        """
        if self._megatron is not None:
            self.check()
            return self._megatron.document_offsets()
        if not self._document_offsets:
            return None
        wanted = 8 * self._document_offsets
        data = os.pread(self._descriptor(), wanted, self._documents_at)
        if len(data) != wanted:
            self.check()
            raise ValueError(f"{self.path}: the token file is shorter than when it was opened (truncated)")
        offsets = np.frombuffer(data, "<u8").astype(np.int64)
        if offsets[0] != 0 or offsets[-1] != self.count or (np.diff(offsets) < 0).any():
            raise ValueError(f"{self.path}: corrupt token file (document offsets are not 0 .. {self.count} in order)")
        return offsets

    def check_vocabulary(self, *, vocab_size: int | None = None, tokenizer=None) -> int | None:
        """Raise `ValueError` (naming both) unless the file's ids fit `vocab_size` and come from `tokenizer`.

        `vocab_size` is a model's table size: the file's vocabulary must not be larger. `tokenizer` must be the
        one that wrote the file (same sha256 of its serialized form; tiktoken encodings, which have none, are
        compared by vocabulary size).

        Returns:
            The bound every id read must stay below, where the file does not record its vocabulary (Megatron's
            files): the reader checks the ids themselves then. None otherwise.
        """
        written = self.header.get("vocab_size")
        if written is None:
            limits = [n for n in (vocab_size, None if tokenizer is None else vocab_size_of(tokenizer)) if n is not None]
            return min(limits, default=None)
        if vocab_size is not None and written is not None and written > vocab_size:
            raise ValueError(
                f"{self.path} holds ids of a {written}-id vocabulary, but vocab_size is {vocab_size}: ids "
                f"{vocab_size}..{written - 1} would be outside the token table (use the model that matches the "
                "tokenizer, or tokenize again with the model's tokenizer)"
            )
        if tokenizer is None:
            return None
        size = vocab_size_of(tokenizer)
        try:
            digest = tokenizer_sha256(tokenizer)
        except AttributeError:  # a tiktoken Encoding: no serialized form to hash
            digest = None
        recorded = self.header.get("tokenizer_sha256")
        if (digest is not None and recorded is not None and digest != recorded) or (
            written is not None and size != written
        ):
            raise ValueError(
                f"{self.path} was written by another tokenizer: the file's has {written} ids (sha256 "
                f"{str(recorded)[:16]}...), the one given has {size} ids (sha256 {str(digest)[:16]}...); "
                "pass the tokenizer that wrote it, or tokenize the text again with this one"
            )
        return None


def _pread_fallback(fd: int, buffers: list[memoryview], offset: int) -> int:
    data = os.pread(fd, len(buffers[0]), offset)
    buffers[0][: len(data)] = data
    return len(data)


_PREADV = getattr(os, "preadv", _pread_fallback)  # preadv reads into the buffer itself: no bytes object per read


def read_header(path: str | Path) -> dict:
    """The JSON header of a token file (any version, or a Megatron pair), checked against the file's size.

    Args:
        path: the token file.

    Returns:
        The header as a dict (`format`, `dtype`, `count`, `documents`, `vocab_size`, `tokenizer_sha256`, the
        sources, ...).

    Raises:
        FileNotFoundError, ValueError: as `TokenFile(path)` does.
    """
    return TokenFile(path).header


# ---------------------------------------------------------------------------------------------- writing


def choose_dtype(vocab_size: int, dtype: str | None = None) -> str:
    """The ids' dtype for a vocabulary: `dtype` if the vocabulary fits it, else the smallest that holds it.

    Args:
        vocab_size: how many ids the tokenizer produces.
        dtype: "uint16" or "uint32"; None picks the smallest that holds `vocab_size` ids.

    Returns:
        "uint16" or "uint32".

    Raises:
        ValueError: an unknown dtype, or one too small for the vocabulary (naming both).
    """
    if dtype is None:
        return "uint16" if vocab_size <= _LIMITS["uint16"] else "uint32"
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if vocab_size > _LIMITS[dtype]:
        raise ValueError(f"a vocabulary of {vocab_size} ids does not fit {dtype} (at most {_LIMITS[dtype]} ids)")
    return dtype


def numpy_dtype(dtype: str) -> np.dtype:
    """The little-endian numpy dtype of a token file's ids.

    Args:
        dtype: "uint16" or "uint32" (what `choose_dtype` returns).

    Returns:
        `np.dtype("<u2")` or `np.dtype("<u4")`.
    """
    return _DTYPES[dtype]


def new_header(
    dtype: str, *, vocab_size: int, tokenizer_sha256: str, eos_token_id: int | None, format: str = TOKEN_FILE_FORMAT
) -> dict:
    """A header before the ids are written: `count`, `engine` and `documents` are None until they are known.

    Args:
        dtype: the ids' dtype name.
        vocab_size: the tokenizer's number of ids.
        tokenizer_sha256: `tokenization.tokenizer_sha256` of the tokenizer.
        eos_token_id: the tokenizer's eos id, or None.
        format: `TOKEN_FILE_FORMAT`, or "megatron-indexed-dataset" for what a Megatron pair's writer reports.

    Returns:
        The header as a dict, in the order the file shows it.
    """
    return {
        "format": format,
        "version": VERSION,
        "dtype": dtype,
        "count": None,
        "vocab_size": vocab_size,
        "tokenizer_sha256": tokenizer_sha256,
        "engine": None,
        "eos_token_id": eos_token_id,
        "documents": None,
    }


def write_version_2(
    output: str | Path,
    dtype: str,
    write_ids: Callable[[BinaryIO], np.ndarray],
    header: Callable[[np.ndarray], dict],
) -> None:
    """Publish a version-2 token file whole (`write_file_atomically`), then remove a version-1 sidecar it replaces.

    Args:
        output: the token file.
        dtype: the ids' dtype name ("uint16" or "uint32").
        write_ids: called with the temporary file opened for writing at `IDS_OFFSET`; writes the ids there in
            `numpy_dtype(dtype)` and returns where documents start, then the id count (int64, (documents + 1,)).
        header: called with those offsets once the ids are written; returns the complete JSON header (with
            `count` and `documents` set).

    Raises:
        OutputLockedError: another writer is writing `output`. Whatever `write_ids` raises: the previous file
            stays as it was, and no temporary is left.
    """

    def write(temporary: str) -> None:
        with open(temporary, "wb") as f:
            f.seek(IDS_OFFSET)
            offsets = np.asarray(write_ids(f), dtype="<u8")  # (documents + 1,)
            count = int(offsets[-1])
            _, documents_at, _, header_at = _layout(count, numpy_dtype(dtype), len(offsets) - 1)
            f.seek(documents_at)
            f.write(offsets.tobytes())
            encoded = (json.dumps(header(offsets), indent=2) + "\n").encode("utf-8")
            f.write(encoded)
            f.seek(0)
            f.write(
                _PREFIX.pack(MAGIC, VERSION, IDS_OFFSET, count, documents_at, len(offsets), header_at, len(encoded))
            )

    write_file_atomically(output, write)
    _remove_stale_sidecar(Path(output))


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def _layout(count: int, dtype: np.dtype, documents: int | None) -> tuple[int, int, int, int]:
    """(ids offset, documents offset, document offsets count, header offset) of a version-2 file."""
    documents_at = _align(IDS_OFFSET + count * dtype.itemsize, 8)
    offsets = documents + 1 if isinstance(documents, int) and documents > 0 else 0
    return IDS_OFFSET, documents_at, offsets, documents_at + 8 * offsets


def _remove_stale_sidecar(output: Path) -> None:
    """A version-1 header beside a file now replaced by a version-2 one describes nothing: remove it."""
    sidecar = Path(f"{output}.json")
    try:
        if json.loads(sidecar.read_text(encoding="utf-8")).get("format") == TOKEN_FILE_FORMAT:
            sidecar.unlink()
    except (OSError, ValueError, AttributeError):
        pass


# `tokenize_files` and its kin lived here before tokenize_corpus.py; `hf_embed.token_files.tokenize_files` still works.
def __getattr__(name: str):
    if not name.startswith("_"):
        from . import tokenize_corpus

        if name in tokenize_corpus.__all__:
            return getattr(tokenize_corpus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_version_1_header(sidecar: Path) -> bool:
    """Whether `sidecar` is the JSON header a version-1 token file kept beside its ids."""
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")).get("format") == TOKEN_FILE_FORMAT
    except (OSError, ValueError, AttributeError):  # missing, unreadable, not JSON, not an object
        return False


def check_replaceable(output: str | Path, *, output_format: str = "hf-embed") -> None:
    """Refuse to write a token file over a file that is not one: tokenizing would destroy a user's file.

    A new path, an empty file and a token file (either version) may be replaced; with `output_format="megatron"`,
    `output` is a prefix and its pair may be replaced when the `.idx` is Megatron's, neither file holds anything, or
    a writer of the pair died mid-publish (a `.bin` without its index, the writer's lock file beside it).

    Args:
        output: the path `tokenize_files`/`tokenize_dataset` would write (a prefix for Megatron).
        output_format: "hf-embed" or "megatron".

    Raises:
        FileExistsError: naming the file, its size, and what to do.
    """
    if output_format == "megatron":
        prefix = prefix_of(output)
        paths = [Path(f"{prefix}{suffix}") for suffix in (".bin", ".idx")]
        if pair_of(paths[1]) is not None or os.path.exists(lock_path(prefix)):
            return  # a pair, or what a writer of it left when it died mid-publish (its lock file is still there)
        what = "part of a Megatron pair"
    else:
        paths = [Path(output)]
        if _is_version_1_header(Path(f"{output}.json")):  # a version-1 token file: ids beside a JSON header
            return
        what = "a token file"
    for path in paths:
        if not path.is_file() or path.stat().st_size == 0:
            continue
        if output_format != "megatron":
            with path.open("rb") as f:
                if f.read(len(MAGIC)) == MAGIC:
                    continue
        raise FileExistsError(
            f"{path}: exists and is not {what} ({path.stat().st_size:,} bytes), and tokenizing would replace it; "
            "remove it or choose another path"
        )


__all__ = [
    "IDS_OFFSET",
    "TOKEN_FILE_FORMAT",
    "TokenFile",
    "check_replaceable",
    "choose_dtype",
    "new_header",
    "numpy_dtype",
    "read_header",
    "write_version_2",
]
