"""Token files: exact ids, safe chunking, headers, memory-mapped windows, shards, datasets, BPE training."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from tokenizers import normalizers
from transformers import AutoTokenizer

from helpers import make_text
from hf_embed import HfEmbedConfig, SlidingWindowDataset, create_dataloader
from hf_embed.cli import main
from hf_embed.data import TokenFileDataset
from hf_embed.token_files import _choose_dtype, iter_text_chunks, read_header, tokenize_dataset, tokenize_files
from hf_embed.tokenization import check_vocab_compatible, tiktoken_encoding, train_tokenizer, wrap_tokenizer

TRICKY = "a  \n b\r\n\r\nc \t d\n\n\ne  f's 12 34\u3000x\u00a0y é\n中文 \n\n  🤗\n" * 40


def write(path, text, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def read_tokens(path):
    header = read_header(path)
    return np.fromfile(path, dtype=header["dtype"]).tolist()


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
    assert header["engine"] == "tiktoken" and header["dtype"] == "uint16"
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
    with pytest.raises(ValueError, match=r"empty\.txt: empty file"):
        tokenize_files([good, tmp_path / "empty.txt"], out, gpt2_tok)
    with pytest.raises(ValueError, match=r"adir: is a directory"):
        tokenize_files([tmp_path / "adir"], out, gpt2_tok)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: no such file"):
        tokenize_files([tmp_path / "missing.txt"], out, gpt2_tok)
    with pytest.raises(ValueError, match="the corpus is empty"):
        tokenize_files([], out, gpt2_tok)
    with pytest.raises(ValueError, match=r"shard index 3 is outside 0\.\.1"):
        tokenize_files([good], out, gpt2_tok, shard_index=3, num_shards=2)


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
    dataset[0]  # opens the map in this process
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._tokens is None and torch.equal(clone[3][0], dataset[3][0])
    single = list(create_dataloader(token_file, max_length=16, stride=8, seed=0))
    multi = list(create_dataloader(token_file, max_length=16, stride=8, seed=0, num_workers=2))
    assert len(single) == len(multi) > 0
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(single, multi, strict=True))


def test_lying_or_missing_headers(token_file):
    with token_file.open("ab") as f:
        f.write(b"\x00")
    with pytest.raises(ValueError, match=r"tokens\.bin: \d+ bytes, but its header says \d+ uint16 tokens"):
        TokenFileDataset(token_file)
    sidecar = token_file.with_name("tokens.bin.json")
    sidecar.write_text("{not json")
    with pytest.raises(ValueError, match=r"tokens\.bin\.json: corrupt token-file header"):
        TokenFileDataset(token_file)
    sidecar.unlink()
    with pytest.raises(FileNotFoundError, match=r"the header of token file .*tokens\.bin is missing"):
        TokenFileDataset(token_file)


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
    assert header["engine"] == "tiktoken" and read_tokens(tmp_path / "t.bin") == ids_of(tokenizer, text)
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


def test_model_and_tokenizer_vocab_must_agree():
    tokenizer = train_tokenizer([make_text(300, seed=1)], vocab_size=400, min_frequency=1)
    check_vocab_compatible(HfEmbedConfig.from_preset("tiny", vocab_size=400), tokenizer)
    with pytest.raises(ValueError, match=r"the tokenizer produces 400 ids but the model's vocab_size is 99"):
        check_vocab_compatible(HfEmbedConfig.from_preset("tiny"), tokenizer)


@pytest.mark.slow
def test_cli_tokenize_and_train(tmp_path, capsys):
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
    assert main(["tokenize", str(files[0]), "--output", str(out), "--dtype", "uint16", "--tokenizer", "gpt2"]) == 0
