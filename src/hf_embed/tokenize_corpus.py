"""Text into token files: UTF-8 files and datasets cut in pieces that tokenize like the whole, encoded on all cores.

`tokenize_files` and `tokenize_dataset` turn a corpus into one token file (or a Megatron pair) through
`write_token_file`, the threaded pipeline: pieces are encoded by the fastest exact engine (`fast_encoding.Encoder`)
in groups, in order, and streamed to the file. The file's layout is `token_files.py`'s, the one place that knows
it; `megatron.py` knows Megatron's.
"""

from __future__ import annotations

import codecs
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from tqdm import tqdm

from .arguments import check_positive_int
from .atomic_write import check_output_is_not_an_input
from .fast_encoding import PIECE_CHARS, SAFE_CUT_BYTES, Encoder, EngineMismatch
from .megatron import megatron_dtype, prefix_of, write_pair
from .token_files import check_replaceable, choose_dtype, new_header, numpy_dtype, write_version_2
from .tokenization import gpt2_tokenizer, tokenizer_sha256, vocab_size_of

logger = logging.getLogger(__name__)

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

    Args:
        text: the text.
        separator: a non-empty str, e.g. "\\n\\n" or "<|endoftext|>".

    Returns:
        The documents, in order.

    Raises:
        ValueError: `separator` is not a non-empty str.
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
    (as `split_documents` cuts a str). Pieces are cut at a `fast_encoding.SAFE_CUT` after at least `chunk_chars`
    bytes, and at every document end: the pieces of a document encode to the ids of that document alone. The
    file is cut as bytes (a UTF-8 separator matches as bytes exactly where it matches as text), each piece
    decoded once.

    Args:
        path: a UTF-8 text file.
        separator: where documents end (kept at the end of each), or None for one document.
        chunk_chars: the least bytes in a piece that does not end a document.

    Returns:
        An iterator of `(piece, starts_document)`.

    Raises:
        ValueError: invalid UTF-8, naming the file and the byte offset. FileNotFoundError: no such file.
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
                limit = end + len(needle) if needle and end >= 0 else len(pending) - keep  # no cut past it
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

    Encoding the pieces one by one gives the ids of the whole text: each is cut at a `fast_encoding.SAFE_CUT`
    after at least `chunk_chars` bytes (the last may be shorter).

    Args:
        path: a UTF-8 text file.
        chunk_chars: the least bytes in a piece but the last.

    Returns:
        An iterator of the pieces, which concatenate to the file's text.

    Raises:
        ValueError: invalid UTF-8, naming the file and the byte offset. FileNotFoundError: no such file.
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


# ---------------------------------------------------------------------------------------------- encoding


class Piece(NamedTuple):
    """A text to encode, in output order: whether a document starts with it, whether the eos id follows it.

    Args:
        text: the text.
        starts_document: a document starts with this piece.
        eos_after: the tokenizer's eos id follows the piece's ids.
    """

    text: str
    starts_document: bool = False
    eos_after: bool = False


class _Encoded(NamedTuple):
    ids: np.ndarray  # (n,) in the file's dtype
    starts: list[int]  # where documents start, relative to the first id of `ids`
    num_bytes: int  # UTF-8 bytes encoded (for the progress bar)


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


def _write_ids(encoded: Iterable[_Encoded], f: BinaryIO, bar: tqdm) -> np.ndarray:
    """Append the ids to `f`; return where documents start, then the id count (int64, (documents + 1,))."""
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
    return np.array([*starts, count], dtype=np.int64)


def write_token_file(
    tasks: Iterable[list[Piece]],
    output: str | Path,
    tokenizer,
    header: dict,
    *,
    dtype: str | None = None,
    num_threads: int | None = None,
    progress_bytes: int | None = None,
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
        tokenizer: the tokenizer, encoded by the fastest exact engine for it (`fast_encoding.Encoder`; the header
            records which, what was checked, and why a faster one was not used).
        header: extra header fields, read once the text is encoded (a field may count what encoding saw).
        dtype: "uint16" or "uint32"; default the smallest that holds the vocabulary.
        num_threads: encoding threads (default: all cores).
        progress_bytes: the input's size, for the progress bar on a terminal.
        output_format: "hf-embed" (one file) or "megatron" (a `.bin`/`.idx` pair; Megatron picks the dtype).

    Returns:
        The header written (for Megatron, what its files would not hold: tokenizer, engine, sources).

    Raises:
        ValueError: a bad `output_format` or `dtype` (one too small for the vocabulary, any with Megatron), no
            tokens at all, an eos id asked of a tokenizer that has none. OutputLockedError: another writer holds
            the output. RuntimeError: `tasks` is a one-pass iterator and had to be encoded again.
        FileExistsError: `output` is a file that is not a token file (`token_files.check_replaceable`).
    """
    output = Path(output)
    if output_format not in ("hf-embed", "megatron"):
        raise ValueError(f"`output_format` must be 'hf-embed' or 'megatron', got {output_format!r}")
    check_replaceable(output, output_format=output_format)
    vocab_size = vocab_size_of(tokenizer)
    if output_format == "megatron":
        if dtype is not None:
            raise ValueError(f"Megatron's files take the dtype Megatron picks for the vocabulary; got dtype={dtype!r}")
        np_dtype = megatron_dtype(vocab_size)
        dtype = np_dtype.name
    else:
        dtype = choose_dtype(vocab_size, dtype)
        np_dtype = numpy_dtype(dtype)
    eos = tokenizer.eos_token_id if getattr(tokenizer, "eos_token_id", None) is not None else None
    full_header = new_header(
        dtype,
        vocab_size=vocab_size,
        tokenizer_sha256=tokenizer_sha256(tokenizer),
        eos_token_id=eos,
        **({"format": "megatron-indexed-dataset"} if output_format == "megatron" else {}),
    )

    def write_ids(f: BinaryIO) -> np.ndarray:
        bar = tqdm(total=progress_bytes, unit="B", unit_scale=True, desc=output.name, disable=not sys.stderr.isatty())
        with bar:
            return _write_ids(_encode_in_order(tasks, encoder, eos, np_dtype), f, bar)

    def complete_header(offsets: np.ndarray) -> dict:  # the engine and the sources: final once encoded
        full_header.update(count=int(offsets[-1]), documents=len(offsets) - 1, **encoder.record(), **header)
        return full_header

    def write_bin(temporary: str) -> np.ndarray:  # Megatron's .bin: the ids alone
        with open(temporary, "wb") as f:
            offsets = write_ids(f)
        complete_header(offsets)
        return offsets

    def publish() -> None:
        if output_format == "megatron":
            write_pair(prefix_of(output), write_bin, np_dtype)
        else:
            write_version_2(output, dtype, write_ids, complete_header)

    with Encoder(tokenizer, num_threads=num_threads) as encoder:
        try:
            publish()
        except EngineMismatch as mismatch:  # never seen; the pieces are encoded again, all of them, by tiktoken
            if iter(tasks) is tasks:
                raise RuntimeError(f"{mismatch}; `tasks` is an iterator and cannot be encoded again") from None
            encoder.switch_to_tiktoken(str(mismatch))
            publish()
    return full_header


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

    Args:
        files: all the files, in order.
        shard_index: this shard, in 0..num_shards - 1.
        num_shards: how many shards split the files.

    Returns:
        `(index of the block's first file in files, the block)`.

    Raises:
        ValueError: `num_shards` not an integer >= 1, `shard_index` outside 0..num_shards - 1.
    """
    check_positive_int("num_shards", num_shards)
    check_positive_int("shard_index", shard_index, minimum=0, below=num_shards)
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
    *,
    eos_between_files: bool = False,
    dtype: str | None = None,
    num_threads: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    chunk_chars: int = PIECE_CHARS,
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
        FileExistsError: `output` is a file that is not a token file (`token_files.check_replaceable`).
    """
    if split_documents_on is not None:
        _check_separator(split_documents_on)
    tokenizer = tokenizer if tokenizer is not None else gpt2_tokenizer()
    paths, empty = _nonempty_files(files)
    outputs = [Path(f"{prefix_of(output)}{s}") for s in (".bin", ".idx")] if output_format == "megatron" else [output]
    for target in outputs:
        check_output_is_not_an_input(target, paths + empty)  # on the list: `files` may be a generator (Path.glob)
    check_replaceable(output, output_format=output_format)  # before any text is read
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

    sizes = [p.stat().st_size for p in paths]
    sources = [{"path": str(p), "bytes": size} for p, size in zip(paths, sizes, strict=True)]
    header = {
        "files": sources,
        "skipped_empty_files": [str(p) for p in empty],
        "eos_between_files": eos_between_files,
        "split_documents_on": split_documents_on,
        "shard": [shard_index, num_shards],
    }
    total = sum(sizes)
    return write_token_file(
        _Again(tasks),
        output,
        tokenizer,
        header,
        dtype=dtype,
        num_threads=num_threads,
        progress_bytes=total,
        output_format=output_format,
    )


def tokenize_dataset(
    dataset,
    output: str | Path,
    tokenizer=None,
    *,
    text_column: str = "text",
    eos_between_rows: bool = False,
    dtype: str | None = None,
    num_threads: int | None = None,
    batch_size: int = 1000,
    output_format: str = "hf-embed",
) -> dict:
    """Tokenize a `datasets.Dataset` of text (any iterable of `{text_column: str}` rows) into a token file.

    Each row is a document; the ids equal tokenizing the rows one by one. Empty rows are no documents: they are
    skipped and counted in the header (`skipped_empty_rows`).

    Args:
        dataset: a `datasets.Dataset` (read in batches through `.iter`), or any iterable of dict rows.
        output: the token file to write (a prefix with `output_format="megatron"`).
        tokenizer: default GPT-2's.
        text_column: the column that holds the text.
        eos_between_rows: end every row but the last with the eos id.
        dtype, num_threads, output_format: see `write_token_file`.
        batch_size: rows read from a `datasets.Dataset` at a time.

    Returns:
        The header written.

    Raises:
        ValueError: no column `text_column`, no tokens at all, a bad `dtype`/`output_format`.
        TypeError: a row whose text is not a str (naming the row).
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
        _Again(tasks), output, tokenizer, header, dtype=dtype, num_threads=num_threads, output_format=output_format
    )
    if header["skipped_empty_rows"]:
        logger.warning("skipped %d empty rows (no documents)", header["skipped_empty_rows"])
    return written


__all__ = [
    "Piece",
    "iter_document_chunks",
    "iter_text_chunks",
    "shard_files",
    "split_documents",
    "tokenize_dataset",
    "tokenize_files",
    "write_token_file",
]
