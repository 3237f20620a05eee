"""Megatron's indexed dataset: hf-embed writes pairs megatron-core's own reader reads, and reads them back.

megatron-core is an optional test dependency (Linux wheels); its tests skip, with the reason, where it is absent.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import in_child, make_text
from hf_embed import atomic_write, create_dataloader
from hf_embed.cli import main
from hf_embed.data import SlidingWindowDataset
from hf_embed.megatron import megatron_dtype, pair_of
from hf_embed.token_files import TokenFile
from hf_embed.tokenize_corpus import split_documents, tokenize_dataset, tokenize_files

HAVE_MEGATRON = importlib.util.find_spec("megatron") is not None
# megatron-core warns that Transformer Engine and Apex are absent, and its builder about numpy 2's copy keyword.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def megatron_core():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Transformer Engine and Apex are not installed"
        return pytest.importorskip(
            "megatron.core.datasets.indexed_dataset",
            reason="megatron-core is not installed (pip install megatron-core)",
        )


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def read_with_megatron(prefix, mmap=True) -> list[list[int]]:
    dataset = megatron_core().IndexedDataset(str(prefix), mmap=mmap)
    documents = [dataset[i].tolist() for i in range(len(dataset))]  # copied while the map is open
    assert dataset.document_indices.tolist() == list(range(len(documents) + 1))
    del dataset
    return documents


@pytest.fixture
def corpus(tmp_path) -> list[Path]:
    texts = [make_text(300, seed=1), make_text(40, seed=2) + "\n\n" + make_text(500, seed=3), "one last line\n"]
    paths = []
    for i, text in enumerate(texts):
        paths.append(tmp_path / f"{i}.txt")
        paths[-1].write_text(text, encoding="utf-8")
    return paths


@pytest.mark.slow
def test_megatron_core_reads_what_the_cli_writes(corpus, tmp_path, gpt2_tok, capsys):
    """`hf-embed tokenize --format megatron`: one sequence per document, each the ids of that document alone."""
    prefix = tmp_path / "out" / "corpus_text_document"
    argv = ["tokenize", *map(str, corpus), "--format", "megatron", "--output", str(prefix)]
    assert main([*argv, "--split-documents-on", r"\n\n", "--eos-between-files"]) == 0
    assert f"{prefix}.bin + {prefix}.idx" in capsys.readouterr().out
    expected = []
    for i, path in enumerate(corpus):
        expected += [ids_of(gpt2_tok, d) for d in split_documents(path.read_bytes().decode(), "\n\n")]
        if i < len(corpus) - 1:  # the eos between files ends the last document of each file but the last
            expected[-1].append(50256)
    assert len(expected) > len(corpus)
    for mmap in (True, False):
        assert read_with_megatron(prefix, mmap) == expected
    assert megatron_core().IndexedDataset(str(prefix)).index.dtype == np.uint16
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["corpus_text_document.bin", "corpus_text_document.idx"]


def test_byte_identical_to_megatron_core_builder(corpus, tmp_path, gpt2_tok):
    indexed = megatron_core()
    tokenize_files(corpus, tmp_path / "ours", gpt2_tok, output_format="megatron")
    builder = indexed.IndexedDatasetBuilder(str(tmp_path / "theirs.bin"), dtype=np.uint16)
    for path in corpus:
        ids = ids_of(gpt2_tok, path.read_bytes().decode())
        builder.add_document(torch.tensor(ids), [len(ids)])
    builder.finalize(str(tmp_path / "theirs.idx"))
    for suffix in (".bin", ".idx"):
        assert (tmp_path / f"ours{suffix}").read_bytes() == (tmp_path / f"theirs{suffix}").read_bytes()


def test_megatron_dtype_is_megatrons_choice():
    optimal = megatron_core().DType.optimal_dtype
    for vocab_size in (99, 50257, 65499, 65500, 65536, 100277):
        assert megatron_dtype(vocab_size) == np.dtype(optimal(vocab_size)), vocab_size


def test_datasets_rows_are_sequences(tmp_path, gpt2_tok):
    datasets = pytest.importorskip("datasets")
    rows = [make_text(30, seed=s) for s in range(5)]
    dataset = datasets.Dataset.from_dict({"text": [rows[0], "", *rows[1:]]})
    header = tokenize_dataset(dataset, tmp_path / "rows", gpt2_tok, output_format="megatron")
    assert header["documents"] == 5 and header["skipped_empty_rows"] == 1
    assert read_with_megatron(tmp_path / "rows") == [ids_of(gpt2_tok, row) for row in rows]


def test_a_megatron_pair_opens_in_hf_embed_loaders(corpus, tmp_path, gpt2_tok):
    """No megatron-core needed: hf-embed reads the pair by its prefix, its .bin or its .idx."""
    tokenize_files(corpus, tmp_path / "pair", gpt2_tok, output_format="megatron", split_documents_on="\n\n")
    documents = [d for path in corpus for d in split_documents(path.read_bytes().decode(), "\n\n")]
    expected = [ids_of(gpt2_tok, d) for d in documents]
    flat = [i for ids in expected for i in ids]
    for name in ("pair", "pair.bin", "pair.idx"):
        file = TokenFile(tmp_path / name)
        assert file.header["format"] == "megatron-indexed-dataset" and file.num_documents == len(expected)
        assert file.read(0, file.count).tolist() == flat
        assert file.document_offsets().tolist() == np.cumsum([0] + [len(d) for d in expected]).tolist()
    loader = create_dataloader(Path(tmp_path / "pair"), max_length=16, stride=16, shuffle=False, drop_last=False)
    reference = SlidingWindowDataset(torch.tensor(flat), 16, 16)
    windows = [x for inputs, _ in loader for x in inputs]
    assert len(windows) == len(reference) and all(torch.equal(w, reference[i][0]) for i, w in enumerate(windows))
    with pytest.raises(
        ValueError, match=r"pair\.bin: token id \d+ at \[\d+, \d+\] is outside the vocabulary \(size 99\)"
    ):
        list(create_dataloader(Path(tmp_path / "pair"), max_length=16, stride=16, vocab_size=99))  # checked as read


def test_a_pair_that_does_not_belong_together_is_refused(corpus, tmp_path, gpt2_tok):
    """Megatron's reader does not check the .bin's size against the index; hf-embed's does."""
    tokenize_files(corpus[:1], tmp_path / "a", gpt2_tok, output_format="megatron")
    tokenize_files(corpus, tmp_path / "b", gpt2_tok, output_format="megatron")
    os.replace(tmp_path / "b.bin", tmp_path / "a.bin")  # a new .bin under an old index
    with pytest.raises(ValueError, match=r"a\.bin: \d+ bytes, but a\.idx describes \d+ uint16 ids"):
        TokenFile(tmp_path / "a")
    (tmp_path / "a.idx").write_bytes(b"MMIDIDX\x00\x00" + b"\x01" * 10)
    with pytest.raises(ValueError, match=r"a\.idx: corrupt Megatron index"):
        TokenFile(tmp_path / "a")


@pytest.mark.slow
def test_a_writer_dying_at_any_step_never_leaves_a_mismatched_pair(corpus, tmp_path, gpt2_tok, monkeypatch):
    """Died at each step of publishing the pair: the old pair, the new pair, or a .bin that no reader opens."""
    prefix = tmp_path / "out" / "pair"
    prefix.parent.mkdir()
    old, new = corpus[:1], corpus

    def write(files):
        tokenize_files(files, prefix, gpt2_tok, output_format="megatron")

    def expected_for(files):
        return [ids_of(gpt2_tok, path.read_bytes().decode()) for path in files]

    steps = []
    monkeypatch.setattr(atomic_write, "fault_hook", steps.append)
    write(new)
    monkeypatch.setattr(atomic_write, "fault_hook", None)
    assert steps.count("published") == 2  # the .bin, then the .idx

    def die_at(k: int):
        reached = []

        def hook(step: str) -> None:
            reached.append(step)
            if len(reached) > k:
                os._exit(17)  # no cleanup, no finally: what a crash leaves

        return hook

    outcomes = set()
    for k, step in enumerate(steps):
        write(old)
        monkeypatch.setattr(atomic_write, "fault_hook", die_at(k))
        assert in_child(lambda: write(new)) == 17
        monkeypatch.setattr(atomic_write, "fault_hook", None)
        if pair_of(prefix) is None:  # no index: every reader refuses
            with pytest.raises(FileNotFoundError, match=r"no such token file"):
                TokenFile(prefix)
            if HAVE_MEGATRON:
                with pytest.raises(AssertionError, match=r"\.idx and \.bin files cannot be found"):  # Megatron's check
                    read_with_megatron(prefix)
            outcomes.add("no index")
            continue
        file = TokenFile(prefix)
        offsets = file.document_offsets().tolist()
        ids = [file.read(a, b).tolist() for a, b in itertools.pairwise(offsets)]
        assert ids in (expected_for(old), expected_for(new)), f"died at step {k} ({step!r})"
        if HAVE_MEGATRON:
            assert read_with_megatron(prefix) == ids  # what Megatron reads is the same whole pair
        outcomes.add("new" if ids == expected_for(new) else "old")
    assert outcomes == {"old", "no index", "new"}
    write(new)  # the next writer removes what the dead ones left
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["pair.bin", "pair.idx"]


def test_a_failure_while_the_index_is_written_leaves_no_lone_bin(corpus, tmp_path, gpt2_tok, monkeypatch):
    """The new .bin is in and the old index gone when the index step fails (here: an unknown dtype code; in life
    a full disk or Ctrl-C): neither file is left, and the next run writes the pair."""
    from hf_embed import megatron

    prefix = tmp_path / "pair"
    tokenize_files(corpus[:1], prefix, gpt2_tok, output_format="megatron")
    monkeypatch.setattr(megatron, "_CODE_OF", {})
    with pytest.raises(KeyError):
        tokenize_files(corpus, prefix, gpt2_tok, output_format="megatron")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pair")) == []
    monkeypatch.undo()
    tokenize_files(corpus, prefix, gpt2_tok, output_format="megatron")
    assert TokenFile(prefix).num_documents == len(corpus)
