"""Sliding windows and batches against the book's GPTDatasetV1 / create_dataloader_v1."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from helpers import make_text
from hf_embed import SlidingWindowDataset, create_dataloader
from hf_embed.data import ShardSampler, num_windows


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
    with pytest.raises(ValueError, match=r"the text 'Hello world' has 2 tokens, too few for one window: a window "):
        create_dataloader("Hello world", tokenizer=gpt2_tok, max_length=4)
    with pytest.raises(ValueError, match=r"max_length=4 needs max_length \+ 1 = 5 tokens .*smaller max_length"):
        create_dataloader("Hello world", tokenizer=gpt2_tok, max_length=4)


def test_strings_are_texts_and_say_so(gpt2_tok, tmp_path, monkeypatch):
    """A str is always the text itself: an empty one, or one that names a file, is a message with the fix."""
    with pytest.raises(ValueError, match=r"the text '' \(empty\) has no tokens: a window of max_length=256 needs"):
        create_dataloader("", tokenizer=gpt2_tok)
    with pytest.raises(ValueError, match=r"the id sequence has no tokens: a window of max_length=4 needs"):
        create_dataloader([], max_length=4)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tokens.bin").write_bytes(b"")
    for name in ("tokens.bin", str(tmp_path / "tokens.bin")):
        with pytest.raises(ValueError, match=r"names an existing file, but a str is read as the text itself"):
            create_dataloader(name, tokenizer=gpt2_tok)
        with pytest.raises(ValueError, match=r"for a token file pass pathlib\.Path\("):
            create_dataloader(name, tokenizer=gpt2_tok)
    with pytest.raises(ValueError, match=r"the text 'missing\.bin' \(a str is read as text, not as a file name; a"):
        create_dataloader("missing.bin", tokenizer=gpt2_tok)
    texts = list(create_dataloader(make_text(300), tokenizer=gpt2_tok, max_length=8, stride=8))  # texts still work
    assert len(texts) > 3


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


# --------------------------------------------------------------------------- epochs and shards


def window_order(loader) -> list[int]:
    """The windows a loader over `torch.arange(...)` with stride == max_length yields, by index."""
    return [int(x[0]) // loader.dataset.stride for inputs, _ in loader for x in inputs]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [True, False])
def test_shards_equal_torch_distributed_sampler(drop_last, shuffle):
    """With `seed`, every rank's indices are those of torch's `DistributedSampler(seed=...)`, epoch by epoch."""
    for n, world in [(10, 2), (11, 2), (11, 3), (5, 4), (3, 4), (1, 2), (16, 2)]:
        for rank in range(world):
            ours = ShardSampler(n, rank, world, shuffle=shuffle, seed=5, drop_last=drop_last)
            torch_sampler = DistributedSampler(range(n), world, rank, shuffle=shuffle, seed=5, drop_last=drop_last)
            for epoch in range(3):
                ours.set_epoch(epoch)
                torch_sampler.set_epoch(epoch)
                assert list(ours) == list(torch_sampler), (n, world, rank, epoch)
                assert len(ours) == len(torch_sampler)


def test_every_rank_gets_the_same_share():
    for n in range(1, 40):
        for world in (2, 3, 5):
            shares = [list(ShardSampler(n, r, world, seed=1)) for r in range(world)]
            assert len({len(s) for s in shares}) == 1
            assert sorted({i for s in shares for i in s}) == list(range(n))  # padding repeats, never skips
            cut = [list(ShardSampler(n, r, world, seed=1, drop_last=True)) for r in range(world)]
            assert len({len(s) for s in cut}) == 1 and len(cut[0]) == n // world
            flat = [i for s in cut for i in s]
            assert len(flat) == len(set(flat))  # dropping never repeats


@pytest.mark.parametrize("mode", ["global", "generator"])
def test_one_process_order_equals_torch_dataloader(mode):
    """Without `seed`, the order is drawn exactly as `DataLoader(shuffle=True)` draws it, epoch after epoch."""
    ids = torch.arange(404)  # 100 windows of 4
    windows = SlidingWindowDataset(ids, max_length=4, stride=4)

    def orders(factory) -> list[list[int]]:
        torch.manual_seed(123)
        loader = factory(torch.Generator().manual_seed(9) if mode == "generator" else None)
        return [window_order(loader) for _ in range(3)]

    reference = orders(lambda g: DataLoader(windows, batch_size=8, shuffle=True, drop_last=True, generator=g))
    assert orders(lambda g: create_dataloader(ids, batch_size=8, max_length=4, stride=4, generator=g)) == reference


def test_set_epoch_in_one_process():
    ids = torch.arange(404)
    loader = create_dataloader(ids, batch_size=10, max_length=4, stride=4, seed=3)
    first, second = window_order(loader), window_order(loader)  # a plain loop reshuffles
    assert first != second and sorted(first) == sorted(second)
    loader.sampler.set_epoch(0)
    assert window_order(loader) == first
    loader.sampler.set_epoch(1)
    assert window_order(loader) == second
    again = create_dataloader(ids, batch_size=10, max_length=4, stride=4, seed=3)
    again.sampler.set_epoch(1)
    assert window_order(again) == second  # the order of an epoch is a function of (seed, epoch): resumable


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("mode", ["seed", "generator", "global"])
def test_ranks_partition_the_one_process_order(mode, drop_last):
    """The ranks' shares, interleaved, are the one-process order of the epoch (padded or cut to equal shares)."""
    n, world = 23, 3
    ids = torch.arange(4 * n + 4)

    def order(rank, world_size):
        torch.manual_seed(77)
        options = {"seed": 4} if mode == "seed" else {}
        if mode == "generator":
            options["generator"] = torch.Generator().manual_seed(8)
        loader = create_dataloader(
            ids, batch_size=2, max_length=4, stride=4, drop_last=drop_last, rank=rank, world_size=world_size, **options
        )
        return [window_order(loader) for _ in range(2)]

    single = order(0, 1)
    shares = [order(rank, world) for rank in range(world)]
    for epoch in range(2):
        per_rank = [share[epoch] for share in shares]
        assert len({len(s) for s in per_rank}) == 1
        if drop_last:  # batches of 2 cut each share of 7 to 6
            assert all(len(s) == 6 for s in per_rank)
        interleaved = [per_rank[i % world][i // world] for i in range(world * len(per_rank[0]))]
        expected = single[epoch] + single[epoch][: len(interleaved) - n]
        assert interleaved == expected[: len(interleaved)]


def test_too_few_windows_is_decided_from_global_counts():
    ids = torch.arange(4 * 9 + 4)  # 9 windows
    for rank in range(2):  # 9 windows over 2 ranks: 4 each with drop_last; every rank refuses alike
        with pytest.raises(ValueError, match=r"9 windows over 2 ranks give 4 per rank, fewer than batch_size=5"):
            create_dataloader(ids, batch_size=5, max_length=4, stride=4, rank=rank, world_size=2)
    for rank in range(2):
        loader = create_dataloader(ids, batch_size=5, max_length=4, stride=4, rank=rank, world_size=2, drop_last=False)
        assert len(list(loader)) == len(loader) == 1
    with pytest.raises(ValueError, match=r"pass both `rank` and `world_size` or neither"):
        create_dataloader(ids, max_length=4, stride=4, rank=1)
    with pytest.raises(ValueError, match=r"`rank` must be an integer in 0\.\.1, got 2"):
        ShardSampler(6, 2, 2)


def test_options_are_keyword_only():
    """`create_dataloader(source, tokenizer, *, ...)`: a batch size passed by position is an error, not a max_length."""
    with pytest.raises(TypeError, match="positional argument"):
        create_dataloader(torch.arange(100), None, 4)
    with pytest.raises(TypeError, match="positional argument"):
        SlidingWindowDataset(torch.arange(100), 4, 4, 99)
