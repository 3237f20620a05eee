"""Text into token files: pieces that tokenize like the whole, `tokenize_files` (shards, empty files, documents
split on a separator), `tokenize_dataset`; ids equal to the tokenizer's."""

from __future__ import annotations

import random

import numpy as np
import pytest

from helpers import FAST_ENGINE, TRICKY, ids_of, make_text, read_tokens, write_text
from hf_embed.token_files import TokenFile
from hf_embed.tokenize_corpus import (
    iter_document_chunks,
    iter_text_chunks,
    split_documents,
    tokenize_dataset,
    tokenize_files,
)


@pytest.mark.parametrize("chunk_chars", [7, 64, 1 << 18])
def test_chunks_tokenize_like_the_whole_text(gpt2_tok, tmp_path, chunk_chars):
    text = TRICKY + make_text(2000, seed=3)
    path = write_text(tmp_path / "t.txt", text)
    chunks = list(iter_text_chunks(path, chunk_chars))
    assert "".join(chunks) == text
    if chunk_chars < 100:
        assert len(chunks) > 10
    assert [i for c in chunks for i in ids_of(gpt2_tok, c)] == ids_of(gpt2_tok, text)


def test_tokenize_files_equals_the_tokenizer(gpt2_tok, tmp_path):
    texts = [make_text(800, seed=s) for s in range(3)] + [TRICKY]
    files = [write_text(tmp_path / f"{i}.txt", t, bom=i == 1) for i, t in enumerate(texts)]
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
    path = write_text(tmp_path / "bom.txt", "line one\r\nline two\r\n", bom=True)
    tokenize_files([path], tmp_path / "t.bin", gpt2_tok)
    assert read_tokens(tmp_path / "t.bin") == ids_of(gpt2_tok, "line one\r\nline two\r\n")


def test_eos_between_files(gpt2_tok, tmp_path):
    files = [write_text(tmp_path / f"{i}.txt", f"file number {i}") for i in range(3)]
    tokenize_files(files, tmp_path / "t.bin", gpt2_tok, eos_between_files=True)
    expected = [*ids_of(gpt2_tok, "file number 0"), 50256, *ids_of(gpt2_tok, "file number 1"), 50256]
    assert read_tokens(tmp_path / "t.bin") == expected + ids_of(gpt2_tok, "file number 2")


@pytest.mark.slow
def test_shards_concatenate_to_the_single_process_file(gpt2_tok, tmp_path):
    files = [write_text(tmp_path / f"{i}.txt", make_text(100, seed=i)) for i in range(5)]
    tokenize_files(files, tmp_path / "all.bin", gpt2_tok, eos_between_files=True)
    parts = []
    for index in range(3):
        header = tokenize_files(
            files, tmp_path / f"s{index}.bin", gpt2_tok, eos_between_files=True, shard_index=index, num_shards=3
        )
        assert header["shard"] == [index, 3]
        parts += read_tokens(tmp_path / f"s{index}.bin")
    assert parts == read_tokens(tmp_path / "all.bin")


def test_bad_corpus_inputs_are_clear_errors(gpt2_tok, tmp_path):
    good = write_text(tmp_path / "good.txt", "hello")
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
    with pytest.raises(ValueError, match=r"`shard_index` must be an integer in 0\.\.1, got 3"):
        tokenize_files([good], out, gpt2_tok, shard_index=3, num_shards=2)
    with pytest.raises(ValueError, match=r"the output .*good\.txt is one of the inputs: writing it would destroy"):
        tokenize_files([good], good, gpt2_tok)
    assert good.read_text() == "hello"


def test_empty_files_are_skipped_with_a_warning(gpt2_tok, tmp_path, caplog):
    files = [
        write_text(tmp_path / "a.txt", "first file"),
        tmp_path / "empty.txt",
        write_text(tmp_path / "c.txt", "third"),
    ]
    files[1].write_bytes(b"")
    files.append(write_text(tmp_path / "bom-only.txt", "", bom=True))
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
    path = write_text(tmp_path / "big.txt", text)
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
    files = [write_text(tmp_path / f"{i}.txt", f"text {i}\r\n\r\nmore") for i in range(2)]
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


def test_options_are_keyword_only(gpt2_tok, tmp_path):
    path = write_text(tmp_path / "a.txt", "some text")
    with pytest.raises(TypeError, match="positional argument"):
        tokenize_files([path], tmp_path / "t.bin", gpt2_tok, True)
    with pytest.raises(TypeError, match="positional argument"):
        tokenize_dataset([{"text": "some text"}], tmp_path / "t.bin", gpt2_tok, "text")
    assert not list(tmp_path.glob("t.bin*"))
