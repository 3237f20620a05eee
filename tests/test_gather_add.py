"""`gather_add_rows` (the cache-blocked gather + add) against its reference, `torch.embedding(table, ids) + rows`.

Every block layout is exercised with small tables by shrinking the block size: whole sequences per block (with a
short last block), runs of positions within a sequence (with uneven runs), one token per block; with 1 and 2
threads (the block size follows the thread count), in every floating dtype, with int64 and int32 ids.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hf_embed import gather_add
from hf_embed.gather_add import block_tokens, gather_add_rows

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


def reference(table, ids, rows):
    return torch.embedding(table, ids) + rows


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit patterns, which `torch.equal` is not quite (it calls -0.0 and 0.0 equal)."""
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(as_int), b.view(as_int))


@pytest.fixture
def threads():
    """Restore torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def tensors(seed: int, vocab: int, batch: int, seq_len: int, dim: int, dtype: torch.dtype):
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(vocab, dim, generator=generator).to(dtype)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=generator)
    rows = torch.randn(seq_len, dim, generator=generator).to(dtype)
    return table, ids, rows


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 9),
    seq_len=st.integers(1, 40),
    dim=st.sampled_from([1, 3, 8, 33]),
    block_bytes=st.integers(1, 2048),
    num_threads=st.sampled_from([1, 2]),
    dtype=st.sampled_from(DTYPES),
    int32=st.booleans(),
)
def test_blocked_equals_reference_bit_for_bit(seed, batch, seq_len, dim, block_bytes, num_threads, dtype, int32):
    table, ids, rows = tensors(seed, 50, batch, seq_len, dim, dtype)
    if int32:
        ids = ids.int()
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gather_add, "BLOCK_BYTES_PER_THREAD", block_bytes)
            out = gather_add_rows(table, ids, rows)
    finally:
        torch.set_num_threads(before)
    assert out.shape == (batch, seq_len, dim) and out.dtype == dtype
    assert same_bits(out, reference(table, ids, rows))


@pytest.mark.parametrize(
    ("block_bytes", "layout"),
    [(10**9, "one block"), (5 * 4 * 8, "whole sequences, a short last block"), (3 * 4 * 8, "runs of positions")],
)
def test_each_layout_equals_reference(monkeypatch, block_bytes, layout):
    monkeypatch.setattr(gather_add, "BLOCK_BYTES_PER_THREAD", block_bytes)
    table, ids, rows = tensors(0, 99, 7, 4 if layout != "runs of positions" else 11, 8, torch.float32)
    assert same_bits(gather_add_rows(table, ids, rows), reference(table, ids, rows))


def test_signed_zeros_and_infinities_keep_their_bits():
    """-0.0 + -0.0 is -0.0 and inf + -inf is NaN in the reference: the blocked sum is the same add."""
    table = torch.tensor([[-0.0, float("inf"), 1.0], [0.0, -0.0, -1.0]])
    rows = torch.tensor([[-0.0, float("-inf"), 1.0], [-0.0, -0.0, 1.0]])
    ids = torch.tensor([[0, 1], [1, 0]])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gather_add, "BLOCK_BYTES_PER_THREAD", 3 * 4)  # one token per block
        assert same_bits(gather_add_rows(table, ids, rows), reference(table, ids, rows))


def test_block_size_follows_threads(threads):
    torch.set_num_threads(1)
    one = block_tokens(3072)
    torch.set_num_threads(2)
    assert one == gather_add.BLOCK_BYTES_PER_THREAD // 3072
    assert block_tokens(3072) == 2 * gather_add.BLOCK_BYTES_PER_THREAD // 3072
    assert block_tokens(10**12) == 1


def test_strided_inputs_and_a_table_slice():
    table, ids, rows = tensors(1, 99, 6, 10, 16, torch.float32)
    ids = ids[:, ::2]  # (6, 5), not contiguous
    rows = torch.randn(16, 5).T  # (5, 16), not contiguous
    assert same_bits(gather_add_rows(table, ids, rows), reference(table, ids, rows))


def test_bad_id_raises_index_error():
    table, ids, rows = tensors(2, 99, 2, 3, 4, torch.float32)
    ids[1, 2] = 99
    with pytest.raises(IndexError):
        gather_add_rows(table, ids, rows)
