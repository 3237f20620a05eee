"""Token files: the format (one file, its header inside; version 1; Megatron pairs), reading windows and documents,
checks against the file changing or being damaged, and publishing whole."""

from __future__ import annotations

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

from helpers import FAST_ENGINE, ids_of, in_child, make_text, read_tokens, write_text
from hf_embed import SlidingWindowDataset, atomic_write, create_dataloader
from hf_embed.data import TokenFileDataset
from hf_embed.token_files import TokenFile, choose_dtype, read_header
from hf_embed.tokenization import (
    tokenizer_sha256,
    train_tokenizer_from_iterator,
)
from hf_embed.tokenize_corpus import (
    tokenize_files,
)


def test_dtype_choice():
    assert choose_dtype(50257, None) == "uint16"
    assert choose_dtype(65536, None) == "uint16"
    assert choose_dtype(65537, None) == "uint32"
    with pytest.raises(ValueError, match=r"a vocabulary of 70000 ids does not fit uint16 \(at most 65536 ids\)"):
        choose_dtype(70000, "uint16")
    with pytest.raises(ValueError, match=r"one of \['uint16', 'uint32'\], got 'int8'"):
        choose_dtype(10, "int8")


@pytest.fixture
def token_file(gpt2_tok, tmp_path):
    path = write_text(tmp_path / "corpus.txt", make_text(3000, seed=7))
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
    files = [write_text(tmp_path / f"{i}.txt", t) for i, t in enumerate(texts)]
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
    tokenize_files([write_text(tmp_path / "a.txt", "new text here")], path, gpt2_tok)
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
    tokenize_files([write_text(folder / "a.txt", make_text(60, seed=1))], folder / "t.bin", gpt2_tok)
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
    other = train_tokenizer_from_iterator([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
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
    other = write_text(tmp_path / "other.txt", make_text(3000, seed=99))
    tokenize_files([other], tmp_path / "other.bin", gpt2_tok)
    os.replace(tmp_path / "other.bin", token_file)  # replaced: a worker opening it by name must not read it
    with pytest.raises(ValueError, match=r"tokens\.bin: the token file changed since it was opened \(replaced"):
        next(iter(loader))
    token_file.unlink()
    with pytest.raises(ValueError, match=r"tokens\.bin: the token file was deleted since it was opened"):
        dataset[0]


@pytest.mark.slow
def test_a_killed_writer_leaves_the_old_file_or_the_new_one(gpt2_tok, tmp_path, monkeypatch):
    """A writer that dies at each step of publishing, or is SIGKILLed at varied instants: the file is always whole.

    After each death the file opens and holds exactly the old ids or the new ones, with their own header and
    documents; the next writer removes what the dead one left (its temporary and its lock file).
    """
    texts = [make_text(60000, seed=i) for i in range(2)]
    sources = [write_text(tmp_path / f"{i}.txt", text) for i, text in enumerate(texts)]
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


def test_the_writers_old_home_still_works():
    """`tokenize_files` and its kin moved to tokenize_corpus.py; `hf_embed.token_files.X` and `hf_embed.data.X` stay."""
    from hf_embed import data, token_files, tokenize_corpus

    for name in tokenize_corpus.__all__:
        assert getattr(token_files, name) is getattr(tokenize_corpus, name)
    assert data.tokenize_files is tokenize_files and data.read_header is read_header
    with pytest.raises(AttributeError, match="no attribute 'tokenize_everything'"):
        token_files.tokenize_everything  # noqa: B018
