"""Sliding windows and batches against the book's GPTDatasetV1 / create_dataloader_v1."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from hf_embed import SlidingWindowDataset, create_dataloader
from hf_embed.data import num_windows


class GPTDatasetV1(Dataset):
    """The reference: Raschka, LLMs from Scratch, chapter 2 (materializes every window)."""

    def __init__(self, txt, tokenizer, max_length, stride):
        self.input_ids, self.target_ids = [], []
        token_ids = tokenizer.encode(txt, allowed_special={"<|endoftext|>"})
        for i in range(0, len(token_ids) - max_length, stride):
            self.input_ids.append(torch.tensor(token_ids[i : i + max_length]))
            self.target_ids.append(torch.tensor(token_ids[i + 1 : i + max_length + 1]))

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]


def create_dataloader_v1(txt, tokenizer, batch_size=4, max_length=256, stride=128, shuffle=True, drop_last=True):
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=0)


@pytest.mark.parametrize(("max_length", "stride"), [(4, 1), (4, 4), (8, 3), (256, 128), (5, 7)])
def test_windows_equal_reference(gpt2_tok, tiktoken_gpt2, text, max_length, stride):
    reference = GPTDatasetV1(text, tiktoken_gpt2, max_length, stride)
    ids = torch.tensor(tiktoken_gpt2.encode(text, allowed_special={"<|endoftext|>"}))
    dataset = SlidingWindowDataset(ids, max_length=max_length, stride=stride)
    assert len(dataset) == len(reference) == num_windows(len(ids), max_length, stride)
    for i in range(len(reference)):
        x, y = dataset[i]
        rx, ry = reference[i]
        assert x.dtype == rx.dtype == torch.int64
        assert torch.equal(x, rx) and torch.equal(y, ry)
    assert torch.equal(dataset[-1][0], reference[len(reference) - 1][0])
    with pytest.raises(IndexError, match="out of range"):
        dataset[len(reference)]


def test_windows_are_views_of_the_ids():
    ids = torch.arange(1000)
    dataset = SlidingWindowDataset(ids, max_length=64, stride=1)
    x, y = dataset[10]
    assert x.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()
    assert y.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()
    assert x.tolist() == list(range(10, 74)) and y.tolist() == list(range(11, 75))


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_equal_reference_with_global_seed(gpt2_tok, tiktoken_gpt2, text, shuffle):
    torch.manual_seed(123)
    reference = list(create_dataloader_v1(text, tiktoken_gpt2, batch_size=8, max_length=4, stride=4, shuffle=shuffle))
    torch.manual_seed(123)
    ours = list(create_dataloader(text, tokenizer=gpt2_tok, batch_size=8, max_length=4, stride=4, shuffle=shuffle))
    assert len(ours) == len(reference) > 3
    for (x, y), (rx, ry) in zip(ours, reference, strict=False):
        assert torch.equal(x, rx) and torch.equal(y, ry)


def test_reference_defaults(gpt2_tok, tiktoken_gpt2, text):
    torch.manual_seed(7)
    reference = list(create_dataloader_v1(text, tiktoken_gpt2))
    torch.manual_seed(7)
    loader = create_dataloader(text, tokenizer=gpt2_tok)
    assert (loader.batch_size, loader.drop_last) == (4, True)
    assert (loader.dataset.max_length, loader.dataset.stride) == (256, 128)
    ours = list(loader)
    assert len(ours) == len(reference) >= 1
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ours, reference, strict=False))


def test_seed_is_independent_of_global_rng():
    ids = torch.arange(500)
    first = [x for x, _ in create_dataloader(ids, max_length=8, stride=8, seed=3)]
    torch.manual_seed(999)
    second = [x for x, _ in create_dataloader(ids, max_length=8, stride=8, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=False))
    other = [x for x, _ in create_dataloader(ids, max_length=8, stride=8, seed=4)]
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=False))


def test_workers_give_the_same_batches():
    ids = torch.arange(2000)
    single = list(create_dataloader(ids, max_length=16, stride=8, seed=1))
    multi = list(create_dataloader(ids, max_length=16, stride=8, seed=1, num_workers=2))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(single, multi, strict=False))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 0}, r"`max_length` must be an integer >= 1, got 0"),
        ({"stride": -2}, r"`stride` must be an integer >= 1, got -2"),
        ({"batch_size": 0}, r"`batch_size` must be an integer >= 1, got 0"),
        ({"max_length": 2.5}, r"`max_length` must be an integer >= 1, got 2.5"),
        ({"num_workers": -1}, r"`num_workers` must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_dataloader(torch.arange(100), **kwargs)


def test_text_too_short_for_one_window(gpt2_tok):
    with pytest.raises(ValueError, match=r"2 tokens are too few for one window of max_length=4"):
        create_dataloader("Hello world", tokenizer=gpt2_tok, max_length=4)


def test_too_few_windows_for_a_batch():
    with pytest.raises(ValueError, match=r"3 windows are fewer than batch_size=4 with drop_last=True"):
        create_dataloader(torch.arange(13), max_length=4, stride=4)
    assert len(list(create_dataloader(torch.arange(13), max_length=4, stride=4, drop_last=False))) == 1


def test_ids_outside_vocabulary():
    ids = torch.arange(100)
    with pytest.raises(ValueError, match=r"token id 99 at position 99 is outside the vocabulary \(size 99\)"):
        create_dataloader(ids, max_length=4, vocab_size=99)
    with pytest.raises(ValueError, match=r"token id -1 at position 2"):
        SlidingWindowDataset([5, 6, -1, 7, 8, 9], max_length=2, stride=1, vocab_size=99)


def test_bad_id_types(gpt2_tok):
    with pytest.raises(TypeError, match=r"token ids must be integers, got torch\.float32"):
        SlidingWindowDataset(torch.rand(100), max_length=4)
    with pytest.raises(ValueError, match=r"rank 1\), got shape \(10, 10\)"):
        SlidingWindowDataset(torch.zeros(10, 10, dtype=torch.long), max_length=4)
    with pytest.raises(TypeError, match="needs a `tokenizer`"):
        create_dataloader("some text")
    with pytest.raises(ValueError, match="either `generator` or `seed`"):
        create_dataloader(torch.arange(100), seed=1, generator=torch.Generator())
