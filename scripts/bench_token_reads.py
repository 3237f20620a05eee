"""Iterating a token file's batches against the same windows held in memory, one run.

Writes a token file of about `--tokens` ids (generated text, tokenized by `tokenize_files`), then times full
passes of `create_dataloader(Path(file))` and of `create_dataloader(ids_in_memory)` with the same options
(shuffled, `--batch-size` x `--max-length`, stride = max_length), alternating the two so that both see the same
machine state, and prints microseconds per batch and the ratio (file / memory). The in-memory loader is the floor:
it slices one tensor that is already there.

    python scripts/bench_token_reads.py [--tokens 2000000] [--batch-size 8] [--max-length 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hf_embed import create_dataloader, gpt2_tokenizer
from hf_embed.tokenize_corpus import tokenize_files


def generated_text(num_words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = "the a of and to in lighthouse ledger harbour keeper winter evening question library grey".split()
    return " ".join(rng.choice(words) + ("." if i % 13 == 12 else "") for i in range(num_words))


def per_batch_us(loader) -> float:
    start = time.perf_counter()
    batches = sum(1 for _ in loader)
    return (time.perf_counter() - start) / batches * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        text_path = Path(folder) / "corpus.txt"
        text_path.write_text(generated_text(args.tokens), encoding="utf-8")
        tokenize_files([text_path], Path(folder) / "tokens.bin", gpt2_tokenizer())
        options = {"batch_size": args.batch_size, "max_length": args.max_length, "stride": args.max_length, "seed": 0}
        from_file = create_dataloader(Path(folder) / "tokens.bin", **options)
        dataset = from_file.dataset
        ids = torch.cat([dataset[i][0] for i in range(len(dataset))] + [dataset[len(dataset) - 1][1][-1:]])
        in_memory = create_dataloader(ids, **options)
        assert [torch.equal(a[0], b[0]) for a, b in zip(from_file, in_memory, strict=True)].count(False) == 0
        file_us, memory_us = [], []
        for _ in range(args.repeats):
            file_us.append(per_batch_us(from_file))
            memory_us.append(per_batch_us(in_memory))
    file_median, memory_median = statistics.median(file_us), statistics.median(memory_us)
    print(f"{len(dataset)} windows of {args.max_length}, batch {args.batch_size}, {len(from_file)} batches a pass")
    print(f"token file: {file_median:8.1f} us/batch  (runs: {', '.join(f'{t:.1f}' for t in file_us)})")
    print(f"in memory:  {memory_median:8.1f} us/batch  (runs: {', '.join(f'{t:.1f}' for t in memory_us)})")
    print(f"ratio token file / in memory: {file_median / memory_median:.2f}")


if __name__ == "__main__":
    main()
