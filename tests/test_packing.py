"""Packed documents: layouts, sources, shards, bad input, and the ground truth of transformers' own models.

The ground truth: in a packed batch every document segment must get exactly what it gets alone from position 0
(logits of `LlamaForCausalLM` with sdpa and eager attention, of `GPT2LMHeadModel`, and hf-embed's embeddings in
every position scheme), and the batch's loss must be the token-weighted mean of the segments' losses.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from helpers import make_text
from hf_embed import HfEmbedConfig, HfEmbedModel, SlidingWindowDataset, create_dataloader
from hf_embed.packing import _best_fit_decreasing
from hf_embed.tokenize_corpus import tokenize_files

T = 16


def random_documents(count: int = 40, seed: int = 0, vocab: int = 99, longest: int = 40) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(rng.randint(1, longest))] for _ in range(count)]


def segments(batch: dict) -> list[tuple[int, int, int]]:
    """(row, first column, length) of every segment of a packed batch, found from its position_ids alone."""
    found = []
    for row, positions in enumerate(batch["position_ids"].tolist()):
        starts = [t for t, p in enumerate(positions) if p == 0] + [len(positions)]
        found += [(row, a, b - a) for a, b in itertools.pairwise(starts)]
    return found


def real_segments(batch: dict) -> list[tuple[int, int, int]]:
    """The segments that hold tokens of a document (not padding)."""
    return [(r, a, n) for r, a, n in segments(batch) if n == 1 or (batch["labels"][r, a + 1 : a + n] != -100).all()]


def batches(source, mode: str, **options) -> list[dict]:
    options = {"batch_size": 4, "max_length": T, "stride": T, "seed": 0, "drop_last": False, **options}
    return list(create_dataloader(source, packing=mode, **options))


# ------------------------------------------------------------------------------------------------ layouts


def test_concat_windows_are_the_books_windows_split_at_documents():
    documents = random_documents()
    flat = [i for d in documents for i in d]
    starts = np.cumsum([0] + [len(d) for d in documents])[:-1].tolist()
    plain = list(create_dataloader(torch.tensor(flat), batch_size=4, max_length=T, stride=5, seed=3))
    packed = list(create_dataloader(documents, batch_size=4, max_length=T, stride=5, seed=3, packing="concat"))
    assert len(plain) == len(packed) > 5
    for (inputs, _), batch in zip(plain, packed, strict=True):
        assert torch.equal(batch["input_ids"], inputs)  # the same windows, in the same order
        assert set(batch) == {"input_ids", "labels", "position_ids"}
    dataset = create_dataloader(documents, max_length=T, stride=5, packing="concat").dataset
    for index in range(len(dataset)):
        item, begin = dataset[index], index * 5
        expected_positions, expected_labels = [], []
        for t in range(T):
            token = begin + t
            document_start = starts[bisect.bisect_right(starts, token) - 1]
            segment_start = max(document_start, begin)
            expected_positions.append(token - segment_start)
            expected_labels.append(-100 if token == segment_start else flat[token])
        assert item["position_ids"].tolist() == expected_positions
        assert item["labels"].tolist() == expected_labels
        assert item["input_ids"].tolist() == flat[begin : begin + T]


def reference_best_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit decreasing the slow, obvious way: scan every open bin for the tightest fit."""
    order = sorted((i for i, n in enumerate(lengths) if n), key=lambda i: -lengths[i])
    bins, rooms = [], []
    for i in order:
        fits = [b for b in range(len(bins)) if rooms[b] >= lengths[i]]
        if fits:
            b = min(fits, key=lambda b: (rooms[b], -b))
        else:
            b = len(bins)
            bins.append([])
            rooms.append(capacity)
        bins[b].append(i)
        rooms[b] -= lengths[i]
    return bins


def test_best_fit_decreasing_equals_the_obvious_algorithm():
    rng = np.random.default_rng(0)
    for trial in range(30):
        lengths = rng.integers(0, 64, size=rng.integers(1, 200))
        starts, documents = _best_fit_decreasing(lengths, 64)
        ours = [documents[starts[b] : starts[b + 1]].tolist() for b in range(len(starts) - 1)]
        reference = reference_best_fit(lengths.tolist(), 64)
        # Bins with equal room are interchangeable, so ties may go either way; the fills may not.
        fills = sorted(sum(lengths[b]) for b in ours)
        assert len(ours) == len(reference) and fills == sorted(sum(lengths[b]) for b in reference), trial
        assert all(fill <= 64 for fill in fills)
        assert sorted(documents.tolist()) == np.flatnonzero(lengths).tolist()  # each placed once


def test_best_fit_places_whole_documents_and_cuts_long_ones(caplog):
    documents = random_documents(60, seed=1, longest=50)
    total = sum(len(d) for d in documents)
    with caplog.at_level(logging.INFO, logger="hf_embed"):
        loader = create_dataloader(documents, batch_size=4, max_length=T, stride=T, shuffle=False, packing="best-fit")
    dataset = loader.dataset
    assert f"60 documents into {len(dataset)} windows of {T} tokens" in caplog.text
    assert loader.padded_fraction == pytest.approx(1 - total / (len(dataset) * T))
    pieces = sum(len(d) // T + (len(d) % T > 0) for d in documents)
    assert dataset.naive_padded_fraction == pytest.approx(1 - total / (pieces * T))
    assert dataset.naive_padded_fraction > 10 * loader.padded_fraction
    found, padded = [], 0
    for index in range(len(dataset)):
        item = dataset[index]
        used = 0
        for _, a, n in real_segments({key: value[None] for key, value in item.items()}):
            found.append(item["input_ids"][a : a + n].tolist())
            assert a == used  # documents back to back from the window's start
            used += n
        assert (item["input_ids"][used:] == 0).all() and (item["labels"][used:] == -100).all()  # then padding
        assert item["position_ids"][used:].tolist() == list(range(T - used))  # a segment of its own
        padded += T - used
    expected = []
    for d in documents:  # long documents cut into window-sized pieces, the remainder last
        expected += [d[i : i + T] for i in range(0, len(d), T)]
    assert sorted(found) == sorted(expected)
    assert padded == len(dataset) * T - total


def test_sources_agree_token_file_ids_and_texts(gpt2_tok, tmp_path):
    texts = [make_text(n, seed=s) for s, n in enumerate([30, 5, 80, 12, 44, 3, 60])]
    for i, text in enumerate(texts):
        (tmp_path / f"{i}.txt").write_bytes(text.encode())
    tokenize_files([tmp_path / f"{i}.txt" for i in range(len(texts))], tmp_path / "t.bin", gpt2_tok)
    ids = [gpt2_tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    for mode in ("concat", "best-fit"):
        from_file = batches(Path(tmp_path / "t.bin"), mode, pad_id=50256)
        from_ids = batches(ids, mode, pad_id=50256)
        from_texts = batches(texts, mode, tokenizer=gpt2_tok)
        joined = batches(
            "".join(t + "<|endoftext|>" for t in texts), mode, tokenizer=gpt2_tok, split_documents_on="<|endoftext|>"
        )
        for a, b, c in zip(from_file, from_ids, from_texts, strict=True):
            assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
        assert len(joined) > 0 and all(d["input_ids"].max() <= 50256 for d in joined)


def test_deterministic_under_seed_and_sharded_like_the_plain_loader():
    documents = random_documents(80, seed=2)
    for mode in ("concat", "best-fit"):
        first, again = batches(documents, mode, seed=5), batches(documents, mode, seed=5)
        assert all(torch.equal(a[k], b[k]) for a, b in zip(first, again, strict=True) for k in a)
        assert any(
            not torch.equal(a["input_ids"], b["input_ids"])
            for a, b in zip(first, batches(documents, mode, seed=6), strict=False)
        )

        def rows(mode=mode, **options) -> list[list[int]]:
            return [row for b in batches(documents, mode, seed=5, **options) for row in b["input_ids"].tolist()]

        single = rows()
        shares = [rows(rank=r, world_size=3) for r in range(3)]
        assert len({len(s) for s in shares}) == 1
        interleaved = [shares[i % 3][i // 3] for i in range(3 * len(shares[0]))]
        assert interleaved[: len(single)] == single[: len(interleaved)]


def test_bad_packing_input_is_a_clear_error(gpt2_tok, tmp_path):
    with pytest.raises(ValueError, match=r"`packing` must be None, 'concat' or 'best-fit', got 'bestfit'"):
        create_dataloader(random_documents(), packing="bestfit")
    with pytest.raises(ValueError, match=r"the separator '\\n\\n\\n' never occurs in the text 'one\\n\\ntwo'"):
        create_dataloader("one\n\ntwo", tokenizer=gpt2_tok, packing="concat", split_documents_on="\n\n\n")
    with pytest.raises(ValueError, match=r"document 1 of the 3 id sequences has no tokens \(1 documents of length 0\)"):
        create_dataloader([[1, 2, 3] * 10, [], [4, 5] * 10], max_length=4, packing="best-fit")
    with pytest.raises(ValueError, match=r"document 1 of the 2 texts has no tokens"):
        create_dataloader(["some text " * 20, ""], tokenizer=gpt2_tok, max_length=4, packing="concat")
    with pytest.raises(ValueError, match=r"max_length=1 is too small for any document: a window of one token"):
        create_dataloader(random_documents(), max_length=1, packing="best-fit")
    windows = SlidingWindowDataset(torch.arange(100), max_length=4, stride=4)
    with pytest.raises(
        ValueError, match=r"packing='concat' needs documents, and a SlidingWindowDataset yields the book's"
    ):
        create_dataloader(windows, packing="concat")
    with pytest.raises(
        ValueError, match=r"`pad_id` must be an integer in 0\.\.98 \(an id of the vocabulary, size 99\)"
    ):
        create_dataloader(random_documents(), packing="best-fit", vocab_size=99, pad_id=99)
    old = tmp_path / "old.bin"
    np.arange(500, dtype=np.uint16).tofile(old)
    header = {"format": "hf-embed-tokens", "version": 1, "dtype": "uint16", "count": 500}
    Path(f"{old}.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match=r"old\.bin records no document boundaries"):
        create_dataloader(old, packing="best-fit")
    assert len(create_dataloader(old, max_length=T)) > 0  # still opens without packing


def test_a_window_smaller_than_every_document_warns(caplog):
    documents = [list(range(50)), list(range(70))]
    with caplog.at_level(logging.WARNING, logger="hf_embed"):
        create_dataloader(documents, max_length=T, packing="best-fit", batch_size=1)
    assert f"every one of its 2 documents is longer than max_length={T}" in caplog.text


# ------------------------------------------------------------------------------------------------ ground truth


def tiny_llama(attention: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation=attention,
    )
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(attention: str) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, attn_implementation=attention)
    return GPT2LMHeadModel(config).eval()


MODELS = [("llama", "sdpa"), ("llama", "eager"), ("gpt2", "sdpa"), ("gpt2", "eager")]


@pytest.fixture(scope="module")
def packed_batches() -> dict[str, list[dict]]:
    documents = random_documents(30, seed=3, longest=30)
    return {mode: batches(documents, mode, batch_size=5) for mode in ("concat", "best-fit")}


@pytest.mark.parametrize(("family", "attention"), MODELS)
@pytest.mark.parametrize("mode", ["concat", "best-fit"])
def test_each_segment_gets_what_it_gets_alone(packed_batches, family, attention, mode):
    """Logits of every segment equal the segment run alone from position 0; the loss is their weighted mean."""
    model = tiny_llama(attention) if family == "llama" else tiny_gpt2(attention)
    checked = 0
    for batch in packed_batches[mode][:3]:
        with torch.no_grad():
            packed = model(**batch, use_cache=False)
        losses, weights = [], []
        for row, a, n in real_segments(batch):
            ids = batch["input_ids"][row, a : a + n][None]  # (1, n)
            with torch.no_grad():
                alone = model(input_ids=ids, position_ids=torch.arange(n)[None], labels=ids, use_cache=False)
            torch.testing.assert_close(packed.logits[row, a : a + n], alone.logits[0], rtol=1e-5, atol=1e-5)
            if n > 1:
                losses.append(alone.loss)
                weights.append(n - 1)  # predictions inside the segment
            checked += 1
        expected = sum(w * loss for w, loss in zip(weights, losses, strict=True)) / sum(weights)
        torch.testing.assert_close(packed.loss, expected, rtol=1e-5, atol=1e-6)
    assert checked > 10


@pytest.mark.slow
def test_flex_attention_honours_packed_positions_too(packed_batches):
    """flex_attention gives the packed logits of eager attention (which equal each segment alone, above)."""
    pytest.importorskip("torch.nn.attention.flex_attention")
    eager, flex = tiny_llama("eager"), tiny_llama("flex_attention")
    for mode in ("concat", "best-fit"):
        batch = packed_batches[mode][0]
        with torch.no_grad():
            expected, got = eager(**batch, use_cache=False), flex(**batch, use_cache=False)
        torch.testing.assert_close(got.logits, expected.logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.loss, expected.loss, rtol=1e-5, atol=1e-6)


def test_what_turns_packed_detection_off(packed_batches):
    """transformers 5.x: a 2D attention_mask, or a cache, switches the block-diagonal mask off (as the README says)."""
    model = tiny_llama("sdpa")
    batch = packed_batches["concat"][0]
    with torch.no_grad():
        packed = model(**batch, use_cache=False).logits
        masked = model(**batch, attention_mask=torch.ones_like(batch["input_ids"]), use_cache=False).logits
        cached = model(**batch, use_cache=True).logits
    assert not torch.allclose(packed, masked, atol=1e-4)  # the documents attend to each other again
    assert not torch.allclose(packed, cached, atol=1e-4)


@pytest.mark.parametrize("scheme", ["absolute", "sinusoidal", "rotary", "relative"])
@pytest.mark.parametrize("mode", ["concat", "best-fit"])
def test_hf_embed_gives_each_document_its_own_positions(packed_batches, scheme, mode):
    torch.manual_seed(0)
    config = HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, max_position_embeddings=T)
    model = HfEmbedModel(config).eval()
    for batch in packed_batches[mode][:3]:
        with torch.no_grad():
            packed = model(batch["input_ids"], position_ids=batch["position_ids"])
        for row, a, n in segments(batch):
            ids = batch["input_ids"][row, a : a + n][None]
            with torch.no_grad():
                alone = model(ids, position_ids=torch.arange(n)[None])
            torch.testing.assert_close(packed.last_hidden_state[row, a : a + n], alone.last_hidden_state[0])
            if scheme == "rotary":
                for mine, theirs in zip(packed.position_embeddings, alone.position_embeddings, strict=True):
                    torch.testing.assert_close(mine[row, a : a + n], theirs[0])
            if scheme == "relative":  # distances inside the document; across documents the attention mask decides
                block = packed.position_embeddings[row, a : a + n, a : a + n]
                torch.testing.assert_close(block, alone.position_embeddings[0])


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=30),
    max_length=st.integers(2, 40),
    mode=st.sampled_from(["concat", "best-fit"]),
)
def test_packed_windows_keep_every_document_whole_and_apart(lengths, max_length, mode):
    """Any documents, any window: positions restart exactly at each segment, labels follow, nothing is lost."""
    documents, next_id = [], 1
    for n in lengths:
        documents.append(list(range(next_id, next_id + n)))  # ids that say which document and where
        next_id += n
    flat = [i for d in documents for i in d]
    document_of = {i: k for k, d in enumerate(documents) for i in d}
    try:
        loader = create_dataloader(
            documents,
            batch_size=3,
            max_length=max_length,
            stride=max_length,
            packing=mode,
            shuffle=False,
            drop_last=False,
            pad_id=0,
        )
    except ValueError as error:
        assert len(flat) <= max_length and mode == "concat" and "too few" in str(error)
        return
    placed = []
    for batch in loader:
        for ids, positions, labels in zip(
            batch["input_ids"].tolist(), batch["position_ids"].tolist(), batch["labels"].tolist(), strict=True
        ):
            for t, (token, position, label) in enumerate(zip(ids, positions, labels, strict=True)):
                if token == 0:  # padding: a segment of its own, never a label
                    assert label == -100 and (position == 0 or ids[t - 1] == 0)
                    continue
                same = t > 0 and ids[t - 1] != 0 and document_of[ids[t - 1]] == document_of[token]
                assert position == (positions[t - 1] + 1 if same else 0)
                assert label == (token if same else -100)
                if same:
                    assert token == ids[t - 1] + 1  # consecutive ids of one document, in order
                placed.append(token)
    if mode == "best-fit":
        assert sorted(placed) == flat  # every token of every document exactly once
    else:
        assert set(placed) <= set(flat)
