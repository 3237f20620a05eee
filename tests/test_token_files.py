"""Token files: exact ids, safe chunking, headers, memory-mapped windows, shards, datasets, BPE training."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import pickle
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers
from transformers import AutoTokenizer

from helpers import make_text
from hf_embed import HfEmbedConfig, SlidingWindowDataset, atomic_write, create_dataloader
from hf_embed.cli import main
from hf_embed.data import TokenFileDataset
from hf_embed.token_files import (
    TokenFile,
    _choose_dtype,
    iter_document_chunks,
    iter_text_chunks,
    read_header,
    split_documents,
    tokenize_dataset,
    tokenize_files,
)
from hf_embed.tokenization import (
    check_vocab_compatible,
    tiktoken_encoding,
    tokenizer_sha256,
    train_tokenizer,
    wrap_tokenizer,
)

# The engine a GPT-2 vocabulary gets: fastokens where it is installed (every platform but Windows on ARM).
FAST_ENGINE = "fastokens" if importlib.util.find_spec("fastokens") else "tiktoken"
TRICKY = "a  \n b\r\n\r\nc \t d\n\n\ne  f's 12 34\u3000x\u00a0y é\n中文 \n\n  🤗\n" * 40


def write(path, text, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def read_tokens(path):
    file = TokenFile(path)
    return file.read(0, file.count).tolist()


@pytest.mark.parametrize("chunk_chars", [7, 64, 1 << 18])
def test_chunks_tokenize_like_the_whole_text(gpt2_tok, tmp_path, chunk_chars):
    text = TRICKY + make_text(2000, seed=3)
    path = write(tmp_path / "t.txt", text)
    chunks = list(iter_text_chunks(path, chunk_chars))
    assert "".join(chunks) == text
    if chunk_chars < 100:
        assert len(chunks) > 10
    assert [i for c in chunks for i in ids_of(gpt2_tok, c)] == ids_of(gpt2_tok, text)


def test_tokenize_files_equals_the_tokenizer(gpt2_tok, tmp_path):
    texts = [make_text(800, seed=s) for s in range(3)] + [TRICKY]
    files = [write(tmp_path / f"{i}.txt", t, bom=i == 1) for i, t in enumerate(texts)]
    header = tokenize_files(files, tmp_path / "tokens.bin", gpt2_tok, chunk_chars=500)
    assert header["engine"] == FAST_ENGINE and header["dtype"] == "uint16"
    if FAST_ENGINE == "fastokens":
        assert header["engine_check"]["against"].startswith("tiktoken ") and header["engine_check"]["pieces"] >= 1
    assert header["count"] == sum(len(ids_of(gpt2_tok, t)) for t in texts)
    assert read_tokens(tmp_path / "tokens.bin") == [i for t in texts for i in ids_of(gpt2_tok, t)]
    assert [f["bytes"] for f in header["files"]] == [f.stat().st_size for f in files]
    assert header["tokenizer_sha256"] and header["vocab_size"] == 50257


@pytest.mark.slow
def test_bom_dropped_crlf_kept(gpt2_tok, tmp_path):
    path = write(tmp_path / "bom.txt", "line one\r\nline two\r\n", bom=True)
    tokenize_files([path], tmp_path / "t.bin", gpt2_tok)
    assert read_tokens(tmp_path / "t.bin") == ids_of(gpt2_tok, "line one\r\nline two\r\n")


def test_eos_between_files(gpt2_tok, tmp_path):
    files = [write(tmp_path / f"{i}.txt", f"file number {i}") for i in range(3)]
    tokenize_files(files, tmp_path / "t.bin", gpt2_tok, eos_between_files=True)
    expected = [*ids_of(gpt2_tok, "file number 0"), 50256, *ids_of(gpt2_tok, "file number 1"), 50256]
    assert read_tokens(tmp_path / "t.bin") == expected + ids_of(gpt2_tok, "file number 2")


@pytest.mark.slow
def test_shards_concatenate_to_the_single_process_file(gpt2_tok, tmp_path):
    files = [write(tmp_path / f"{i}.txt", make_text(100, seed=i)) for i in range(5)]
    tokenize_files(files, tmp_path / "all.bin", gpt2_tok, eos_between_files=True)
    parts = []
    for index in range(3):
        header = tokenize_files(files, tmp_path / f"s{index}.bin", gpt2_tok, True, shard_index=index, num_shards=3)
        assert header["shard"] == [index, 3]
        parts += read_tokens(tmp_path / f"s{index}.bin")
    assert parts == read_tokens(tmp_path / "all.bin")


def test_bad_corpus_inputs_are_clear_errors(gpt2_tok, tmp_path):
    good = write(tmp_path / "good.txt", "hello")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "adir").mkdir()
    out = tmp_path / "out.bin"
    with pytest.raises(ValueError, match=r"adir: is a directory"):
        tokenize_files([tmp_path / "adir"], out, gpt2_tok)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: no such file"):
        tokenize_files([tmp_path / "missing.txt"], out, gpt2_tok)
    with pytest.raises(ValueError, match="the corpus is empty"):
        tokenize_files([], out, gpt2_tok)
    with pytest.raises(ValueError, match=r"all 1 input files are empty"):
        tokenize_files([tmp_path / "empty.txt"], out, gpt2_tok)
    with pytest.raises(ValueError, match=r"shard index 3 is outside 0\.\.1"):
        tokenize_files([good], out, gpt2_tok, shard_index=3, num_shards=2)
    with pytest.raises(ValueError, match=r"the output .*good\.txt is one of the inputs: writing it would destroy"):
        tokenize_files([good], good, gpt2_tok)
    assert good.read_text() == "hello"


def test_empty_files_are_skipped_with_a_warning(gpt2_tok, tmp_path, caplog):
    files = [write(tmp_path / "a.txt", "first file"), tmp_path / "empty.txt", write(tmp_path / "c.txt", "third")]
    files[1].write_bytes(b"")
    files.append(write(tmp_path / "bom-only.txt", "", bom=True))
    with caplog.at_level("WARNING", logger="hf_embed"):
        header = tokenize_files(files, tmp_path / "t.bin", gpt2_tok, eos_between_files=True)
    assert "empty.txt: empty file, skipped" in caplog.text and "skipped 2 empty files of 4" in caplog.text
    assert header["skipped_empty_files"] == [str(files[1]), str(files[3])]
    assert [f["path"] for f in header["files"]] == [str(files[0]), str(files[2])]
    assert read_tokens(tmp_path / "t.bin") == [*ids_of(gpt2_tok, "first file"), 50256, *ids_of(gpt2_tok, "third")]


@pytest.mark.slow
def test_invalid_utf8_names_the_byte_and_leaves_nothing(gpt2_tok, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(("x" * 3_000_000).encode() + b"\xff tail")
    before = set(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"bad\.txt: not valid UTF-8 at byte 3000000"):
        tokenize_files([bad], tmp_path / "out.bin", gpt2_tok)
    assert set(tmp_path.iterdir()) == before  # no partial output, no temporary file


def test_dtype_choice():
    assert _choose_dtype(50257, None) == "uint16"
    assert _choose_dtype(65536, None) == "uint16"
    assert _choose_dtype(65537, None) == "uint32"
    with pytest.raises(ValueError, match=r"a vocabulary of 70000 ids does not fit uint16 \(at most 65536 ids\)"):
        _choose_dtype(70000, "uint16")
    with pytest.raises(ValueError, match=r"one of \['uint16', 'uint32'\], got 'int8'"):
        _choose_dtype(10, "int8")


@pytest.fixture
def token_file(gpt2_tok, tmp_path):
    path = write(tmp_path / "corpus.txt", make_text(3000, seed=7))
    tokenize_files([path], tmp_path / "tokens.bin", gpt2_tok)
    return tmp_path / "tokens.bin"


@pytest.mark.parametrize(("max_length", "stride"), [(4, 4), (32, 7), (256, 128)])
def test_memory_mapped_windows_equal_in_memory(token_file, max_length, stride):
    ids = torch.tensor(read_tokens(token_file))
    mapped = TokenFileDataset(token_file, max_length, stride)
    in_memory = SlidingWindowDataset(ids, max_length, stride)
    assert len(mapped) == len(in_memory)
    for i in [0, 1, len(mapped) // 2, len(mapped) - 1, -1]:
        for a, b in zip(mapped[i], in_memory[i], strict=True):
            assert a.dtype == torch.int64 and torch.equal(a, b)


def test_token_file_loader_with_workers_and_pickle(token_file):
    dataset = TokenFileDataset(token_file, 16, 8)
    dataset[0]  # opens the file in this process
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone.file._fd is None and torch.equal(clone[3][0], dataset[3][0])
    single = list(create_dataloader(token_file, max_length=16, stride=8, seed=0))
    multi = list(create_dataloader(token_file, max_length=16, stride=8, seed=0, num_workers=2))
    assert len(single) == len(multi) > 0
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(single, multi, strict=True))


def test_one_file_with_its_header_inside(gpt2_tok, tmp_path):
    texts = [make_text(200, seed=s) for s in range(3)]
    files = [write(tmp_path / f"{i}.txt", t) for i, t in enumerate(texts)]
    header = tokenize_files(files, tmp_path / "t.bin", gpt2_tok, eos_between_files=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.txt", "1.txt", "2.txt", "t.bin"]  # no sidecar, no litter
    assert (tmp_path / "t.bin").read_bytes()[:8] == b"HFEMBTOK"
    lengths = [len(ids_of(gpt2_tok, t)) + (i < 2) for i, t in enumerate(texts)]  # each eos ends its file's document
    expected = [*ids_of(gpt2_tok, texts[0]), 50256, *ids_of(gpt2_tok, texts[1]), 50256, *ids_of(gpt2_tok, texts[2])]
    mapped = np.memmap(tmp_path / "t.bin", "<u2", mode="r", offset=4096, shape=(len(expected),))
    assert mapped.tolist() == expected  # page-aligned ids: any tool can map them
    file = TokenFile(tmp_path / "t.bin")
    assert file.header == header and file.count == len(expected) == header["count"]
    assert file.document_offsets().tolist() == [0, lengths[0], lengths[0] + lengths[1], sum(lengths)]
    assert file.num_documents == header["documents"] == 3
    assert header["version"] == 2 and header["dtype"] == "uint16" and header["engine"] == FAST_ENGINE
    assert header["vocab_size"] == 50257 and header["eos_token_id"] == 50256
    assert header["tokenizer_sha256"] == tokenizer_sha256(gpt2_tok)
    assert [f["path"] for f in header["files"]] == [str(f) for f in files]


def write_version_1(path, ids, dtype="uint16"):
    """A token file as hf-embed wrote it before the header moved inside: raw ids plus `<file>.json`."""
    np.asarray(ids, dtype=dtype).tofile(path)
    header = {"format": "hf-embed-tokens", "version": 1, "dtype": dtype, "count": len(ids), "vocab_size": 50257}
    Path(f"{path}.json").write_text(json.dumps({**header, "tokenizer_sha256": "ab" * 32, "engine": "tiktoken"}))
    return path


def test_version_1_files_still_open(tmp_path):
    ids = list(range(1000, 1500))
    path = write_version_1(tmp_path / "old.bin", ids)
    dataset = TokenFileDataset(path, 16, 8)
    reference = SlidingWindowDataset(torch.tensor(ids), 16, 8)
    assert len(dataset) == len(reference) and dataset.file.num_documents is None
    assert all(torch.equal(dataset[i][0], reference[i][0]) for i in range(len(dataset)))
    assert read_header(path)["version"] == 1 and dataset.file.document_offsets() is None
    with path.open("ab") as f:
        f.write(b"\x00")
    with pytest.raises(ValueError, match=r"old\.bin: 1001 bytes, but its header says 500 uint16 tokens"):
        TokenFileDataset(path)
    Path(f"{path}.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"old\.bin\.json: corrupt token-file header"):
        TokenFileDataset(path)
    Path(f"{path}.json").unlink()
    with pytest.raises(ValueError, match=r"old\.bin: not a token file \(no hf-embed prefix, and no old\.bin\.json"):
        TokenFileDataset(path)
    with pytest.raises(FileNotFoundError, match=r"nothing\.bin: no such token file"):
        TokenFileDataset(tmp_path / "nothing.bin")


def test_writing_over_a_version_1_file_removes_its_sidecar(gpt2_tok, tmp_path):
    path = write_version_1(tmp_path / "t.bin", [1, 2, 3])
    tokenize_files([write(tmp_path / "a.txt", "new text here")], path, gpt2_tok)
    assert not Path(f"{path}.json").exists() and read_tokens(path) == ids_of(gpt2_tok, "new text here")


def test_corrupt_files_are_errors_naming_them(token_file):
    good = token_file.read_bytes()
    prefix = good[:64]
    cases = {
        "short prefix": good[:20],
        "ids cut": good[: 4096 + 100],
        "one byte short": good[:-1],
        "one byte more": good + b"\x00",
        "header bytes": good[: len(good) - 20] + b"x" * 20,
        "version": prefix[:8] + (3).to_bytes(8, "little") + good[16:],
        "ids past the header": prefix[:24] + (10**9).to_bytes(8, "little") + good[32:],
    }
    for name, data in cases.items():
        token_file.write_bytes(data)
        with pytest.raises(ValueError, match=r"tokens\.bin: (corrupt token file|token-file version 3)"):
            TokenFile(token_file)
        assert name


@pytest.fixture(scope="module")
def small_token_file(gpt2_tok, tmp_path_factory) -> tuple[bytes, list[int]]:
    folder = tmp_path_factory.mktemp("small")
    tokenize_files([write(folder / "a.txt", make_text(60, seed=1))], folder / "t.bin", gpt2_tok)
    return (folder / "t.bin").read_bytes(), read_tokens(folder / "t.bin")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 63), value=st.integers(0, 255), cut=st.integers(0, 200))
@example(position=16, value=2, cut=0)  # the lowest byte of each field of the prefix, made even
@example(position=24, value=2, cut=0)
@example(position=32, value=2, cut=0)
@example(position=40, value=0, cut=0)  # no documents
@example(position=48, value=2, cut=0)
@example(position=56, value=2, cut=0)
def test_damaged_prefix_or_tail_is_never_read_silently(tmp_path, small_token_file, position, value, cut):
    """Any byte of the prefix changed, or the file cut short: a ValueError naming it, or the same ids."""
    good, expected = small_token_file
    data = bytearray(good)
    data[position] = value
    path = tmp_path / "t.bin"
    path.write_bytes(bytes(data[: len(data) - cut]))
    try:
        file = TokenFile(path)
        ids = file.read(0, file.count).tolist()
        offsets = file.document_offsets()
    except ValueError as error:
        assert "t.bin" in str(error)
        return
    assert ids == expected and offsets.tolist() == [0, len(expected)]


def test_vocabulary_and_tokenizer_are_checked_against_the_file(token_file, gpt2_tok, tiktoken_gpt2):
    with pytest.raises(ValueError, match=r"tokens\.bin holds ids of a 50257-id vocabulary, but vocab_size is 99"):
        create_dataloader(token_file, vocab_size=99)
    assert len(create_dataloader(token_file, vocab_size=50304)) > 0  # a table padded past the vocabulary is fine
    other = train_tokenizer([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
    with pytest.raises(ValueError, match=r"tokens\.bin was written by another tokenizer: the file's has 50257 ids"):
        create_dataloader(token_file, tokenizer=other)
    for tokenizer in (gpt2_tok, tiktoken_gpt2):
        assert len(create_dataloader(token_file, tokenizer=tokenizer)) > 0


def test_a_file_changed_under_a_loader_is_an_error_naming_it(token_file, gpt2_tok, tmp_path):
    dataset = TokenFileDataset(token_file, 16, 8)
    last = len(dataset) - 1
    dataset[last]
    original = token_file.read_bytes()
    os.truncate(token_file, 5000)  # a memory map would die of SIGBUS reading past the new end
    with pytest.raises(ValueError, match=r"tokens\.bin: the token file changed since it was opened \(size \d+ -> 5000"):
        dataset[last]
    with pytest.raises(ValueError, match=r"tokens\.bin: the token file changed since it was opened \(size"):
        dataset.file.read(dataset.file.count - 10, dataset.file.count)  # a short read says what changed
    token_file.write_bytes(original)
    with pytest.raises(ValueError, match=r"changed since it was opened \(.*modified\)"):
        dataset[0]  # rewritten in place with the same bytes: still not the file that was opened

    dataset = TokenFileDataset(token_file, 16, 8)
    time.sleep(0.05)  # file times advance in clock ticks
    with token_file.open("r+b") as f:
        f.seek(5000)
        f.write(b"\xff\xff")
    with pytest.raises(ValueError, match=r"changed since it was opened \(modified\)"):
        dataset[0]

    loader = create_dataloader(token_file, max_length=16, stride=8, seed=0, num_workers=1)
    other = write(tmp_path / "other.txt", make_text(3000, seed=99))
    tokenize_files([other], tmp_path / "other.bin", gpt2_tok)
    os.replace(tmp_path / "other.bin", token_file)  # replaced: a worker opening it by name must not read it
    with pytest.raises(ValueError, match=r"tokens\.bin: the token file changed since it was opened \(replaced"):
        next(iter(loader))
    token_file.unlink()
    with pytest.raises(ValueError, match=r"tokens\.bin: the token file was deleted since it was opened"):
        dataset[0]


def in_child(work) -> int:
    """Run `work()` in a forked copy of this process (warm: no imports, no tokenizer build); its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.slow
def test_a_killed_writer_leaves_the_old_file_or_the_new_one(gpt2_tok, tmp_path, monkeypatch):
    """A writer that dies at each step of publishing, or is SIGKILLed at varied instants: the file is always whole.

    After each death the file opens and holds exactly the old ids or the new ones, with their own header and
    documents; the next writer removes what the dead one left (its temporary and its lock file).
    """
    texts = [make_text(60000, seed=i) for i in range(2)]
    sources = [write(tmp_path / f"{i}.txt", text) for i, text in enumerate(texts)]
    expected = [ids_of(gpt2_tok, text) for text in texts]
    output = tmp_path / "out" / "tokens.bin"
    output.parent.mkdir()

    def whole() -> int:
        file = TokenFile(output)
        ids = file.read(0, file.count).tolist()
        assert ids in expected and file.document_offsets().tolist() == [0, len(ids)]
        return expected.index(ids)

    steps = []
    monkeypatch.setattr(atomic_write, "fault_hook", steps.append)
    tokenize_files([sources[1]], output, gpt2_tok)
    monkeypatch.setattr(atomic_write, "fault_hook", None)
    assert steps[-1] == "published" and "renamed" in steps
    for k, step in enumerate(steps):
        tokenize_files([sources[0]], output, gpt2_tok)
        monkeypatch.setattr(atomic_write, "fault_hook", lambda now, k=k: os._exit(17) if now == steps[k] else None)
        assert in_child(lambda: tokenize_files([sources[1]], output, gpt2_tok)) == 17
        monkeypatch.setattr(atomic_write, "fault_hook", None)
        assert whole() == (1 if k >= steps.index("renamed") else 0), f"died at {step!r}"

    start = time.perf_counter()
    assert in_child(lambda: (tokenize_files([sources[0]], output, gpt2_tok, num_threads=2), os._exit(0))) == 0
    one_write = time.perf_counter() - start  # in a fork, as below: kills land before the first write ends and after
    # Kills at random instants, at least 12 of them; then more, with ever longer delays (a loaded machine writes
    # slower than `one_write` said), until kills have landed both before and after a write was published: up to
    # 40. A kill that leaves anything but the whole old file or the whole new one fails `whole()` at once.
    rng = random.Random(0)
    outcomes = set()
    for trial in range(40):
        if trial >= 12 and outcomes == {"kept", "replaced"}:
            break
        before = whole()
        pid = os.fork()
        if pid == 0:
            try:
                for i in itertools.count(1 - before):  # first the version the file does not hold
                    tokenize_files([sources[i % 2]], output, gpt2_tok, num_threads=2)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 2.5 * one_write) * 1.25 ** (trial // 4))  # up to 7.5x longer by the 40th
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        outcomes.add("replaced" if whole() != before else "kept")
    assert outcomes == {"kept", "replaced"}  # kills landed before and after a write was published
    tokenize_files([sources[0]], output, gpt2_tok)  # the next writer removes what the dead ones left
    assert [p.name for p in output.parent.iterdir()] == ["tokens.bin"]


@pytest.mark.slow
def test_documents_split_on_a_separator(gpt2_tok, tiktoken_gpt2, tmp_path):
    """Each document ends after a separator (kept in it) and is tokenized alone, also across the reader's blocks."""
    rng = random.Random(5)
    sep = "<|endoftext|>"
    # ~4.5 MB of ASCII text with separators everywhere, one straddling the reader's first 4 MB block boundary
    words = [make_text(rng.randint(1, 1000), seed=i % 300).encode("ascii", "ignore").decode() for i in range(1900)]
    text = sep.join(words)
    assert len(text) > (1 << 22) + 100_000
    text = text[: (1 << 22) - 5] + sep + text[(1 << 22) - 5 :]
    path = write(tmp_path / "big.txt", text)
    chunks = list(iter_document_chunks(path, sep, chunk_chars=1 << 14))
    assert "".join(c for c, _ in chunks) == text
    documents, current = [], None
    for chunk, starts in chunks:
        if starts:
            current = []
            documents.append(current)
        current.append(chunk)
    assert ["".join(d) for d in documents] == split_documents(text, sep)
    for pieces in documents[:50] + documents[-50:]:  # each document's pieces encode to the document alone
        whole = "".join(pieces)
        assert [i for p in pieces for i in tiktoken_gpt2.encode(p, allowed_special="all")] == (
            tiktoken_gpt2.encode(whole, allowed_special="all")
        )
    header = tokenize_files([path], tmp_path / "t.bin", gpt2_tok, split_documents_on=sep, chunk_chars=1 << 14)
    file = TokenFile(tmp_path / "t.bin")
    expected = [tiktoken_gpt2.encode(d, allowed_special="all") for d in split_documents(text, sep)]
    assert header["documents"] == len(expected) > 1700 and header["split_documents_on"] == sep
    assert file.document_offsets().tolist() == np.cumsum([0] + [len(e) for e in expected]).tolist()
    assert file.read(0, file.count).tolist() == [i for e in expected for i in e]
    assert all(e[-1] == 50256 for e in expected[:-1])  # <|endoftext|> ends its document as the eos id


def test_split_documents_rules():
    assert split_documents("a\n\nb\n\n\n\nc", "\n\n") == ["a\n\n", "b\n\n", "\n\n", "c"]
    assert split_documents("\n\na\n\n", "\n\n") == ["\n\n", "a\n\n"]
    assert split_documents("no separator", "\n\n") == ["no separator"]
    with pytest.raises(ValueError, match=r"`split_documents_on` must be a non-empty str .*got ''"):
        split_documents("x", "")


def test_a_separator_that_never_occurs_is_an_error(gpt2_tok, tmp_path):
    files = [write(tmp_path / f"{i}.txt", f"text {i}\r\n\r\nmore") for i in range(2)]
    with pytest.raises(ValueError, match=r"the separator '\\n\\n\\n' occurs in none of the 2 input files"):
        tokenize_files(files, tmp_path / "t.bin", gpt2_tok, split_documents_on="\n\n\n")
    with pytest.raises(ValueError, match=r"`split_documents_on` must be a non-empty str"):
        tokenize_files(files, tmp_path / "t.bin", gpt2_tok, split_documents_on="")
    assert not (tmp_path / "t.bin").exists()
    header = tokenize_files(files, tmp_path / "t.bin", gpt2_tok, split_documents_on="\r\n\r\n")
    assert header["documents"] == 4


def test_dataset_rows_are_documents(gpt2_tok, tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [make_text(20, seed=s) for s in range(4)]
    dataset = datasets.Dataset.from_dict({"text": [rows[0], "", rows[1], rows[2], "", rows[3]]})
    header = tokenize_dataset(dataset, tmp_path / "d.bin", gpt2_tok, eos_between_rows=True)
    assert header["documents"] == 4 and header["skipped_empty_rows"] == 2
    lengths = [len(ids_of(gpt2_tok, row)) + (i < 3) for i, row in enumerate(rows)]  # the eos ends its row
    assert TokenFile(tmp_path / "d.bin").document_offsets().tolist() == np.cumsum([0, *lengths]).tolist()


def test_tokenize_dataset(gpt2_tok, tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [make_text(50, seed=s) for s in range(30)]
    dataset = datasets.Dataset.from_dict({"text": rows, "id": list(range(30))})
    header = tokenize_dataset(dataset, tmp_path / "d.bin", gpt2_tok, eos_between_rows=True)
    expected = []
    for i, row in enumerate(rows):
        expected += ([50256] if i else []) + ids_of(gpt2_tok, row)
    assert read_tokens(tmp_path / "d.bin") == expected and header["count"] == len(expected)
    mapped = dataset.map(lambda b: {"text": [t.upper() for t in b["text"]]}, batched=True)
    tokenize_dataset(mapped, tmp_path / "m.bin", gpt2_tok)
    assert read_tokens(tmp_path / "m.bin") == [i for row in rows for i in ids_of(gpt2_tok, row.upper())]
    with pytest.raises(ValueError, match=r"no column 'body' \(columns: \['text', 'id'\]\)"):
        tokenize_dataset(dataset, tmp_path / "x.bin", gpt2_tok, text_column="body")


def varied_text(num_words: int, seed: int) -> str:
    rng = random.Random(seed)
    letters = "etaoinshrdlucmfwypvbgkqjxzéü"
    return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 8))) for _ in range(num_words))


def test_train_tokenizer_and_its_tiktoken_engine(tmp_path):
    corpus = [varied_text(2000, seed=s) for s in range(5)] + [make_text(400, seed=1)]
    tokenizer = train_tokenizer(corpus, vocab_size=600, min_frequency=1)
    assert len(tokenizer) == 600 and tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    tokenizer.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    text = make_text(300, seed=99) + "<|endoftext|>" + TRICKY
    assert ids_of(reloaded, text) == ids_of(tokenizer, text)
    assert tokenizer.decode(ids_of(tokenizer, text)) == text
    encoding = tiktoken_encoding(tokenizer)
    assert encoding is not None
    assert encoding.encode(text, allowed_special="all") == ids_of(tokenizer, text)
    path = write(tmp_path / "c.txt", text)
    header = tokenize_files([path], tmp_path / "t.bin", tokenizer)
    assert header["engine"] == FAST_ENGINE and read_tokens(tmp_path / "t.bin") == ids_of(tokenizer, text)
    with pytest.raises(ValueError, match=r"`vocab_size` must be an integer >= 258"):
        train_tokenizer(corpus, vocab_size=100)


def test_vocabulary_tiktoken_cannot_express_falls_back(tmp_path):
    tokenizer = train_tokenizer([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.Lowercase()
    lowered = wrap_tokenizer(backend)
    assert tiktoken_encoding(lowered) is None
    text = "Hello WORLD " + make_text(100, seed=2)
    header = tokenize_files([write(tmp_path / "x.txt", text)], tmp_path / "t.bin", lowered)
    assert header["engine"] == "tokenizers" and read_tokens(tmp_path / "t.bin") == ids_of(lowered, text)
    assert header["engine_fallback"] == "tiktoken cannot express this vocabulary (a normalizer)"


def test_model_and_tokenizer_vocab_must_agree():
    tokenizer = train_tokenizer([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
    check_vocab_compatible(HfEmbedConfig.from_preset("tiny", vocab_size=400), tokenizer)
    with pytest.raises(ValueError, match=r"the tokenizer produces 400 ids but the model's vocab_size is 99"):
        check_vocab_compatible(HfEmbedConfig.from_preset("tiny"), tokenizer)


@pytest.mark.slow
def test_cli_tokenize_and_train(tmp_path, capsys, caplog):
    files = [write(tmp_path / f"{i}.txt", make_text(300, seed=i)) for i in range(2)]
    assert main(["train-tokenizer", *map(str, files), "--vocab-size", "400", "--output", str(tmp_path / "tok")]) == 0
    assert "trained a byte-level BPE of" in capsys.readouterr().out
    out = tmp_path / "t.bin"
    args = ["tokenize", *map(str, files), "--tokenizer", str(tmp_path / "tok"), "--output", str(out)]
    assert main([*args, "--eos-between-files"]) == 0
    assert "2 files" in capsys.readouterr().out
    assert read_header(out)["eos_between_files"] is True
    assert main(["tokenize", str(tmp_path / "nope.txt"), "--output", str(out)]) == 1
    assert "nope.txt: no such file" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_bytes(b"")
    assert main(["tokenize", str(files[0]), str(tmp_path / "empty.txt"), "--output", str(out)]) == 0
    assert "empty.txt: empty file, skipped" in caplog.text  # a warning on stderr (pytest captures the log)
    assert "1 files (1 empty skipped)" in capsys.readouterr().out
    assert main(["tokenize", str(files[0]), "--output", str(out), "--dtype", "uint16", "--tokenizer", "gpt2"]) == 0
