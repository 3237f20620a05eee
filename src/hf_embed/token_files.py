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
datasets (`PREFIX.bin` + `PREFIX.idx`, see `megatron.py`), which `write_token_file` also writes.

This module is the one place that knows the format. It also streams text files in pieces that tokenize like
the whole file, and writes token files on all cores.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from .atomic_write import check_output_is_not_an_input, write_file_atomically
from .megatron import MegatronIndex, megatron_dtype, pair_of, prefix_of, write_pair
from .tokenization import (
    PIECE_CHARS,
    SAFE_CUT_BYTES,
    Encoder,
    EngineMismatch,
    gpt2_tokenizer,
    tokenizer_sha256,
    vocab_size_of,
)

logger = logging.getLogger(__name__)

TOKEN_FILE_FORMAT = "hf-embed-tokens"
VERSION = 2
MAGIC = b"HFEMBTOK"
IDS_OFFSET = 4096
# magic, version, ids offset, id count, documents offset, document offsets count, header offset, header length
_PREFIX = struct.Struct("<8s7Q")
_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
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
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._megatron = None
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
                "version 1 had); write one with `hf-embed tokenize` or `hf_embed.token_files.tokenize_files`"
            )
        try:
            header = json.loads(sidecar.read_text(encoding="utf-8"))
            if header.get("format") != TOKEN_FILE_FORMAT or header["dtype"] not in _DTYPES:
                raise ValueError("not an hf-embed token-file header")
            count = header["count"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"bad token count {count!r}")
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
        self._megatron = MegatronIndex(bin_path, idx_path)
        self.path, self.header = bin_path, self._megatron.header()
        self.dtype, self.count = self._megatron.dtype, self._megatron.count
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
        view = memoryview(out).cast("B")
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
    """The JSON header of a token file (any version), checked against the file's size."""
    return TokenFile(path).header


# ---------------------------------------------------------------------------------------------- text in


def _decode(buffer: bytearray, start: int, end: int, path: Path, offset: int) -> str:
    try:
        return str(memoryview(buffer)[start:end], "utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 at byte {offset + start + error.start}") from None


def split_documents(text: str, separator: str) -> list[str]:
    """`text` cut after each occurrence of `separator`: the documents, each ending with the separator it had.

    No text is lost (the documents concatenate to `text`), and a separator such as `<|endoftext|>` ends its
    document with the eos id once tokenized. Text after the last separator is the last document.
    """
    _check_separator(separator)
    parts = text.split(separator)
    return [part + separator for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _check_separator(separator: object) -> None:
    if not isinstance(separator, str) or not separator:
        raise ValueError(
            f"`split_documents_on` must be a non-empty str (e.g. '\\n\\n' or '<|endoftext|>'), got {separator!r}"
        )


def iter_document_chunks(
    path: str | Path, separator: str | None = None, chunk_chars: int = PIECE_CHARS
) -> Iterator[tuple[str, bool]]:
    """Pieces of a UTF-8 file (BOM dropped, line ends kept), each with whether a document starts with it.

    Without `separator` the file is one document. With it, a document ends after each occurrence of `separator`
    (as `split_documents` cuts a str). Pieces are cut at a `tokenization.SAFE_CUT` after at least `chunk_chars`
    bytes, and at every document end: the pieces of a document encode to the ids of that document alone. The
    file is cut as bytes (a UTF-8 separator matches as bytes exactly where it matches as text), each piece
    decoded once. Invalid UTF-8 is a `ValueError` naming the file and the byte offset.
    """
    path = Path(path)
    needle = separator.encode("utf-8") if separator else None
    keep = len(needle) - 1 if needle else 0  # a separator may begin in the last `keep` bytes read so far
    pending = bytearray()
    offset, starts = 0, True  # where pending[0] is in the file; whether the next piece starts a document
    with path.open("rb") as f:
        block = f.read(max(1 << 22, 2 * chunk_chars))
        if block.startswith(codecs.BOM_UTF8):
            block, offset = block[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
        while block:
            pending += block
            start = 0
            while True:
                end = pending.find(needle, start) if needle else -1
                limit = end + len(needle) if end >= 0 else len(pending) - keep  # no cut past it
                cut = (
                    SAFE_CUT_BYTES.search(pending, start + chunk_chars, limit) if limit - start > chunk_chars else None
                )
                if cut is not None:  # a piece of a long document
                    yield _decode(pending, start, cut.start(), path, offset), starts
                    start, starts = cut.start(), False
                elif end >= 0:  # the rest of a document, up to and with its separator
                    yield _decode(pending, start, limit, path, offset), starts
                    start, starts = limit, True
                else:
                    break
            del pending[:start]
            offset += start
            block = f.read(max(1 << 22, 2 * chunk_chars))
    if pending:
        yield _decode(pending, 0, len(pending), path, offset), starts


def iter_text_chunks(path: str | Path, chunk_chars: int = PIECE_CHARS) -> Iterator[str]:
    """Pieces of a UTF-8 file (BOM dropped, line ends kept) cut where tokenization is unaffected.

    Encoding the pieces one by one gives the ids of the whole text: each is cut at a `tokenization.SAFE_CUT`
    after at least `chunk_chars` bytes (the last may be shorter). Invalid UTF-8 is a `ValueError` naming the
    file and the byte offset.
    """
    for text, _ in iter_document_chunks(path, None, chunk_chars):
        yield text


def _occurs_in(paths: Sequence[Path], separator: str) -> bool:
    """Whether `separator` occurs in any of the files (read as bytes, 1 MB at a time; stops at the first)."""
    needle = separator.encode("utf-8")
    for path in paths:
        tail = b""
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                if needle in tail + block:
                    return True
                tail = block[-(len(needle) - 1) :] if len(needle) > 1 else b""
    return False


# ---------------------------------------------------------------------------------------------- writing


class Piece(NamedTuple):
    """A text to encode, in output order: whether a document starts with it, whether the eos id follows it."""

    text: str
    starts_document: bool = False
    eos_after: bool = False


class _Encoded(NamedTuple):
    ids: np.ndarray  # (n,) in the file's dtype
    starts: list[int]  # where documents start, relative to the first id of `ids`
    num_bytes: int  # UTF-8 bytes encoded (for the progress bar)


def _choose_dtype(vocab_size: int, dtype: str | None) -> str:
    if dtype is None:
        return "uint16" if vocab_size <= _LIMITS["uint16"] else "uint32"
    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if vocab_size > _LIMITS[dtype]:
        raise ValueError(f"a vocabulary of {vocab_size} ids does not fit {dtype} (at most {_LIMITS[dtype]} ids)")
    return dtype


def _encode_in_order(
    tasks: Iterable[list[Piece]], encoder: Encoder, eos: int | None, dtype: np.dtype
) -> Iterator[_Encoded]:
    """Encode `tasks` in groups of about `encoder.threads` pieces of `PIECE_CHARS`; results in task order."""
    group, size = [], 0
    for task in tasks:
        group.append(task)
        size += sum(len(piece.text) for piece in task)
        if size >= encoder.threads * PIECE_CHARS:
            yield from _encode_group(group, encoder, eos, dtype)
            group, size = [], 0
    yield from _encode_group(group, encoder, eos, dtype)


def _encode_group(group: list[list[Piece]], encoder: Encoder, eos: int | None, dtype: np.dtype) -> Iterator[_Encoded]:
    encoded = iter(encoder.encode_batch([piece.text for task in group for piece in task]))
    for task in group:
        pieces, starts, size = [], [], 0
        for piece in task:
            if piece.starts_document:
                starts.append(size)
            ids = next(encoded)
            pieces.append(ids)
            size += len(ids)
            if piece.eos_after:
                if eos is None:
                    raise ValueError("an eos between documents needs a tokenizer with an eos token")
                pieces.append(np.array([eos], dtype=np.uint32))
                size += 1
        ids = np.concatenate(pieces) if len(pieces) != 1 else pieces[0]
        yield _Encoded(ids.astype(dtype, copy=False), starts, sum(len(piece.text.encode("utf-8")) for piece in task))


def _write_ids(encoded: Iterable[_Encoded], f, bar) -> tuple[int, np.ndarray]:
    """Append the ids to `f`; return the id count and where documents start (int64, 0 first)."""
    count, starts = 0, [0]
    for ids, relative, num_bytes in encoded:
        f.write(ids.tobytes())
        starts.extend(count + s for s in relative if count + s != starts[-1])
        count += len(ids)
        bar.update(num_bytes)
        elapsed = bar.format_dict["elapsed"] or float("inf")
        bar.set_postfix_str(f"{count:,} tokens, {count / elapsed:,.0f} tokens/s", refresh=False)
    if count == 0:
        raise ValueError("the corpus produced no tokens")
    return count, np.array(starts, dtype=np.int64)


def write_token_file(
    tasks: Iterable[list[Piece]],
    output: str | Path,
    tokenizer,
    header: dict,
    dtype: str | None = None,
    num_threads: int | None = None,
    progress_bytes: int | None = None,
    *,
    output_format: str = "hf-embed",
) -> dict:
    """Encode `tasks` (lists of `Piece`) on all cores and write the ids, in order, as one token file.

    The file is published whole (`write_file_atomically`): an interrupted or failed run leaves the previous
    output as it was, and no temporary behind. `header` adds fields to the JSON header (the sources). With
    `output_format="megatron"`, `output` is a prefix and the ids go to Megatron's `PREFIX.bin` + `PREFIX.idx`,
    one sequence per document (see `megatron.write_pair` for how the pair is published).

    Args:
        tasks: the text, in order, cut into units of work; a `Piece` says where documents start and where an
            eos id follows. Iterated a second time, from the start, in the one case where the fast engine's
            ids differ from tiktoken's on a checked piece (a list, or an object whose `__iter__` starts over).
        output: the token file to write.
        tokenizer: the tokenizer, encoded by the fastest exact engine for it (`tokenization.Encoder`; the header
            records which, what was checked, and why a faster one was not used).
        header: extra header fields, read once the text is encoded (a field may count what encoding saw).
        dtype: "uint16" or "uint32"; default the smallest that holds the vocabulary.
        num_threads: encoding threads (default: all cores).
        progress_bytes: the input's size, for the progress bar on a terminal.
        output_format: "hf-embed" (one file) or "megatron" (a `.bin`/`.idx` pair; Megatron picks the dtype).

    Returns:
        The header written (for Megatron, what its files would not hold: tokenizer, engine, sources).
    """
    output = Path(output)
    if output_format not in ("hf-embed", "megatron"):
        raise ValueError(f"`output_format` must be 'hf-embed' or 'megatron', got {output_format!r}")
    vocab_size = vocab_size_of(tokenizer)
    if output_format == "megatron":
        if dtype is not None:
            raise ValueError(f"Megatron's files take the dtype Megatron picks for the vocabulary; got dtype={dtype!r}")
        np_dtype = megatron_dtype(vocab_size)
        dtype = np_dtype.name
    else:
        dtype = _choose_dtype(vocab_size, dtype)
        np_dtype = _DTYPES[dtype]
    eos = tokenizer.eos_token_id if getattr(tokenizer, "eos_token_id", None) is not None else None
    full_header = {
        "format": TOKEN_FILE_FORMAT if output_format == "hf-embed" else "megatron-indexed-dataset",
        "version": VERSION,
        "dtype": dtype,
        "count": None,
        "vocab_size": vocab_size,
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "engine": None,
        "eos_token_id": eos,
        "documents": None,
    }

    def progress_bar():
        return tqdm(total=progress_bytes, unit="B", unit_scale=True, desc=output.name, disable=not sys.stderr.isatty())

    def write_ids(temporary: str) -> np.ndarray:  # Megatron's .bin: the ids alone
        with progress_bar() as bar, open(temporary, "wb") as f:
            count, starts = _write_ids(_encode_in_order(tasks, encoder, eos, np_dtype), f, bar)
        full_header.update(count=count, documents=len(starts), **encoder.record(), **header)
        return np.append(starts, count)

    def write(temporary: str) -> None:  # hf-embed's one file
        with progress_bar() as bar, open(temporary, "wb") as f:
            f.seek(IDS_OFFSET)
            count, starts = _write_ids(_encode_in_order(tasks, encoder, eos, np_dtype), f, bar)
            offsets = np.append(starts, count).astype("<u8")  # (documents + 1,)
            _, documents_at, _, header_at = _layout(count, np_dtype, len(starts))
            f.seek(documents_at)
            f.write(offsets.tobytes())
            # the engine and the sources: final once encoded
            full_header.update(count=count, documents=len(starts), **encoder.record(), **header)
            encoded_header = (json.dumps(full_header, indent=2) + "\n").encode("utf-8")
            f.write(encoded_header)
            f.seek(0)
            f.write(
                _PREFIX.pack(
                    MAGIC, VERSION, IDS_OFFSET, count, documents_at, len(offsets), header_at, len(encoded_header)
                )
            )

    def publish() -> None:
        if output_format == "megatron":
            write_pair(prefix_of(output), write_ids, np_dtype)
        else:
            write_file_atomically(output, write)

    with Encoder(tokenizer, num_threads=num_threads) as encoder:
        try:
            publish()
        except EngineMismatch as mismatch:  # never seen; the pieces are encoded again, all of them, by tiktoken
            if iter(tasks) is tasks:
                raise RuntimeError(f"{mismatch}; `tasks` is an iterator and cannot be encoded again") from None
            encoder.switch_to_tiktoken(str(mismatch))
            publish()
    if output_format == "hf-embed":
        _remove_stale_sidecar(output)
    return full_header


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


# ---------------------------------------------------------------------------------------------- corpora


def _nonempty_files(files: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(files with text, empty files); a missing file or a folder is an error naming it."""
    if not files:
        raise ValueError("no input files: the corpus is empty")
    paths, empty = [], []
    for path in map(Path, files):
        if path.is_dir():
            raise ValueError(f"{path}: is a directory, not a text file")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        size = path.stat().st_size
        if size == 0 or (size == len(codecs.BOM_UTF8) and path.read_bytes() == codecs.BOM_UTF8):
            empty.append(path)
        else:
            paths.append(path)
    for path in empty:
        logger.warning("%s: empty file, skipped", path)
    if empty:
        logger.warning("skipped %d empty file%s of %d", len(empty), "s" * (len(empty) > 1), len(files))
    if not paths:
        raise ValueError(f"all {len(files)} input files are empty: the corpus has no text")
    return paths, empty


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


def _with_last(items: Iterable) -> Iterator[tuple[object, bool]]:
    """Each item and whether it is the last."""
    items = iter(items)
    previous = next(items, _NOTHING)
    if previous is _NOTHING:
        return
    for item in items:
        yield previous, False
        previous = item
    yield previous, True


_NOTHING = object()


class _Again:
    """The tasks a generator function yields, from the start each time they are iterated."""

    def __init__(self, tasks: Callable[[], Iterator[list[Piece]]]):
        self.tasks = tasks

    def __iter__(self) -> Iterator[list[Piece]]:
        return self.tasks()


def tokenize_files(
    files: Sequence[str | Path],
    output: str | Path,
    tokenizer=None,
    eos_between_files: bool = False,
    dtype: str | None = None,
    num_threads: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    chunk_chars: int = PIECE_CHARS,
    *,
    split_documents_on: str | None = None,
    output_format: str = "hf-embed",
) -> dict:
    """Tokenize UTF-8 text files into one token file: the ids of each file, in order; each file a document.

    Args:
        files: UTF-8 text files (BOM dropped, line ends kept). Empty files are skipped with a warning (the
            header lists them under `skipped_empty_files`).
        output: the token file to write.
        tokenizer: default GPT-2's.
        eos_between_files: end every file but the last with the eos id (it belongs to the file's document).
        dtype, num_threads: see `write_token_file`.
        shard_index, num_shards: this process takes its contiguous block of the files; the shards' outputs,
            concatenated in order, equal the single-process file.
        chunk_chars: bytes in the pieces a file is encoded in, at least (they tokenize like the whole file).
        split_documents_on: a separator (a blank line "\\n\\n", "<|endoftext|>", ...): a document ends after
            each occurrence, keeping the separator; each document is tokenized alone.
        output_format: "hf-embed", or "megatron" for `PREFIX.bin` + `PREFIX.idx` (`output` is the prefix).

    Returns:
        The header written.

    Raises:
        ValueError: no files, all files empty, a folder, invalid UTF-8 (naming file and byte), a bad shard, an
            output that is one of the inputs, a separator that occurs in no file.
        FileNotFoundError: a missing file.
    """
    if split_documents_on is not None:
        _check_separator(split_documents_on)
    tokenizer = tokenizer if tokenizer is not None else gpt2_tokenizer()
    paths, empty = _nonempty_files(files)
    outputs = [Path(f"{prefix_of(output)}{s}") for s in (".bin", ".idx")] if output_format == "megatron" else [output]
    for target in outputs:
        check_output_is_not_an_input(target, paths + empty)  # on the list: `files` may be a generator (Path.glob)
    if split_documents_on is not None and not _occurs_in(paths, split_documents_on):
        raise ValueError(
            f"the separator {split_documents_on!r} occurs in none of the {len(paths)} input files, so each file would "
            "be one document; check it (the command line reads \\n, \\r, \\t and \\\\ as escapes)"
        )
    _, paths = shard_files(paths, shard_index, num_shards)

    def pieces():
        for i, path in enumerate(paths):
            # The last shard holds the last file, which alone has no eos after it.
            more_files = shard_index < num_shards - 1 or i < len(paths) - 1
            for (chunk, starts), last in _with_last(iter_document_chunks(path, split_documents_on, chunk_chars)):
                yield Piece(chunk, starts_document=starts, eos_after=eos_between_files and last and more_files)

    def tasks():  # documents of a few words are batched, so that each task is worth a thread's time
        task, size = [], 0
        for piece in pieces():
            task.append(piece)
            size += len(piece.text)
            if size >= chunk_chars:
                yield task
                task, size = [], 0
        if task:
            yield task

    sources = [{"path": str(p), "bytes": p.stat().st_size} for p in paths]
    header = {
        "files": sources,
        "skipped_empty_files": [str(p) for p in empty],
        "eos_between_files": eos_between_files,
        "split_documents_on": split_documents_on,
        "shard": [shard_index, num_shards],
    }
    total = sum(s["bytes"] for s in sources)
    return write_token_file(
        _Again(tasks), output, tokenizer, header, dtype, num_threads, progress_bytes=total, output_format=output_format
    )


def tokenize_dataset(
    dataset,
    output: str | Path,
    tokenizer=None,
    text_column: str = "text",
    eos_between_rows: bool = False,
    dtype: str | None = None,
    num_threads: int | None = None,
    batch_size: int = 1000,
    *,
    output_format: str = "hf-embed",
) -> dict:
    """Tokenize a `datasets.Dataset` of text (any iterable of `{text_column: str}` rows) into a token file.

    Each row is a document; the ids equal tokenizing the rows one by one. `eos_between_rows` ends every row
    but the last with the eos id. Empty rows are no documents: they are skipped and counted in the header
    (`skipped_empty_rows`). `output_format="megatron"` writes `PREFIX.bin` + `PREFIX.idx` instead.
    """
    tokenizer = tokenizer if tokenizer is not None else gpt2_tokenizer()
    names = getattr(dataset, "column_names", None)
    if names is not None and text_column not in names:
        raise ValueError(f"the dataset has no column {text_column!r} (columns: {names})")
    header = {"dataset": repr(dataset)[:200], "text_column": text_column, "eos_between_rows": eos_between_rows}
    header["skipped_empty_rows"] = 0

    def rows():
        header["skipped_empty_rows"] = 0  # counted again if the rows are encoded again
        batches = dataset.iter(batch_size=batch_size) if hasattr(dataset, "iter") else None
        texts = (t for batch in batches for t in batch[text_column]) if batches is not None else None
        if texts is None:
            texts = (row[text_column] for row in dataset)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"row {index}: column {text_column!r} holds {type(text).__name__}, not str")
            if text:
                yield text
            else:
                header["skipped_empty_rows"] += 1

    def tasks():
        task, size = [], 0
        for text, last in _with_last(rows()):
            task.append(Piece(text, starts_document=True, eos_after=eos_between_rows and not last))
            size += len(text)
            if size >= 1 << 18:
                yield task
                task, size = [], 0
        if task:
            yield task

    written = write_token_file(
        _Again(tasks), output, tokenizer, header, dtype, num_threads, output_format=output_format
    )
    if header["skipped_empty_rows"]:
        logger.warning("skipped %d empty rows (no documents)", header["skipped_empty_rows"])
    return written


__all__ = [
    "IDS_OFFSET",
    "TOKEN_FILE_FORMAT",
    "Piece",
    "TokenFile",
    "iter_document_chunks",
    "iter_text_chunks",
    "read_header",
    "shard_files",
    "split_documents",
    "tokenize_dataset",
    "tokenize_files",
    "write_token_file",
]
