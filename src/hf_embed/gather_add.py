"""Token rows plus position rows in one pass over the output: `table[ids] + rows`, a block of tokens at a time.

Shapes in comments use: B batch size, T sequence length, D hidden size, V vocabulary size.

Why blocks: the embedding stage gathers B * T rows of a table far larger than the caches and adds a position row
to each. Done as two whole-tensor steps (what `wte(ids) + wpe(pos)` does), the add is a second pass over a
(B, T, D) output that at GPT-2's (8, 1024, 768) is 25 MB, larger than the caches, so it goes to memory again:
1.45-1.84x the gather alone on a 2-core machine. Here the tokens go a block at a time: gather the block's rows into
the output, then add their position rows while the block is still in cache (for long sequences, one run of
positions for every sequence in turn, so that those position rows stay in cache too). Memory then sees one
pass, as for the gather alone; the add costs cache bandwidth and one dispatch per block. What it gains is modest
(docs/performance.md): on a 2-core AMD EPYC, 1.32-1.58x the gather where the two steps took 1.60-1.64x (one
thread, CPU time), 1.46-1.76x against 1.58-1.81x (two threads). The add itself, even in cache, costs 0.2-0.3x the
gather there; only a loop that adds as it copies gets below that.

Why not a fused kernel: a compiled kernel (one loop that adds as it copies) measured 1.08-1.19x the gather, but
hf-embed ships as a pure-Python wheel whose model files must load next to the weights with nothing but torch, so a
kernel would mean platform wheels or a compiler on every user's machine, and `torch.compile` costs tens of seconds
and a C++ compiler at the first call. Blocking is two torch ops per block, exact, on every platform and dtype;
`torch.compile(model)` remains the user's way to a fused loop.

This file imports only torch: `save_pretrained` copies it next to the weights with the model files.
"""

from __future__ import annotations

import torch

# Bytes of output rows per thread in one block. Each op of a block splits its rows evenly over the threads, so
# every thread adds the rows it gathered, from its own caches (L2 of 1-2 MB on current server cores, then L3).
# Smaller blocks cost more dispatches, and every op is a parallel region whose threads must all arrive: on a busy
# machine each region waits for a descheduled thread. Measured on a 2-core AMD EPYC (docs/performance.md): one
# thread, 256 KB to 4 MB per thread were alike; two threads on a loaded machine, 2-4 MB were best.
BLOCK_BYTES_PER_THREAD = 2 << 20
# Below this many output elements (4 MB of float32) the output stays in cache between the two steps anyway.
MIN_BLOCKED_ELEMENTS = 1 << 20
# Where the add is memory bound, so that doing it in cache pays. A bfloat16 or float16 add on CPU converts each
# element to float32 and back, and costs about as much in cache as out of it (measured: ~150 ns per 768-element
# row either way, against ~80 ns for float32 in cache and ~230 ns out of it); their blocks only add dispatches.
BLOCKED_DTYPES = (torch.float32, torch.float64)


def block_tokens(row_bytes: int) -> int:
    """How many tokens (output rows of `row_bytes`) one block holds with torch's current number of threads."""
    return max(1, BLOCK_BYTES_PER_THREAD * torch.get_num_threads() // row_bytes)


def gather_add_rows(table: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """`torch.embedding(table, ids) + rows`, bit for bit, gathered and added a block of tokens at a time.

    (V, D) table, (B, T) int64 or int32 ids, (T, D) rows -> a new (B, T, D) tensor. The numbers are the reference's:
    each output row is a copy of a table row (what the gather does) plus its position row, one add per element.

    Inference only: the ops write into the output (`out=`), which autograd does not record, so callers use it only
    where no gradient is wanted. Plain tensors on one device, `rows` in the table's dtype.

    Raises:
        IndexError: an id outside the table (torch's own check, before that block is written).
    """
    batch, seq_len = ids.shape
    dim = table.shape[1]
    ids = ids.contiguous()
    out = torch.empty(batch, seq_len, dim, dtype=table.dtype, device=table.device)  # (B, T, D)
    tokens = block_tokens(dim * table.element_size())
    if tokens >= seq_len:  # whole sequences per block: (k, T, D) += (T, D)
        sequences = tokens // seq_len
        for out_block, id_block in zip(out.split(sequences), ids.split(sequences), strict=True):
            torch.index_select(table, 0, id_block.view(-1), out=out_block.view(-1, dim))
            out_block.add_(rows)
    else:  # a run of t positions, for each sequence in turn: (t, D) += (t, D)
        runs = -(-seq_len // tokens)
        for out_run, id_run, row_run in zip(
            out.tensor_split(runs, 1), ids.tensor_split(runs, 1), rows.tensor_split(runs), strict=True
        ):
            for out_block, id_block in zip(out_run, id_run, strict=True):
                torch.index_select(table, 0, id_block, out=out_block)
                out_block.add_(row_run)
    return out


__all__ = ["BLOCKED_DTYPES", "BLOCK_BYTES_PER_THREAD", "MIN_BLOCKED_ELEMENTS", "block_tokens", "gather_add_rows"]
