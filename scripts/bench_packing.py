"""Packed documents on a real corpus: padding, build memory, and iteration cost against the plain windows.

Tokenizes the corpus (../shared/data/corpus by default: 94 public-domain books, ~20M GPT-2 tokens; absent, the
script says so and exits) twice into temporary token files: one document per file, and one document per paragraph
(split on a blank line, "\\r\\n\\r\\n", as most of these files end their lines). Then, for each:

- padding: the fraction of padded tokens of `packing="best-fit"` against naive padding (each document, or
  window-sized piece of one, alone in a window);
- build: time, and peak Python memory (tracemalloc, in a second build), of `create_dataloader(Path(file),
  packing=...)`, per document: building an epoch is O(documents), whatever the number of tokens;
- iteration: microseconds per batch of the plain windows, "concat" and "best-fit" over the same file (shuffled,
  the same batch size and window), timed in alternating blocks, medians, and the ratio packed / plain.

    python scripts/bench_packing.py [--corpus DIR] [--max-length 256] [--batch-size 8] [--block 50] [--blocks 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from itertools import islice
from pathlib import Path

import torch

from hf_embed import create_dataloader, gpt2_tokenizer
from hf_embed.tokenize_corpus import tokenize_files

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "corpus"


def build(path: Path, packing: str | None, options: dict):
    """The loader, the seconds it took to build, and the peak Python memory of building it (a second build,
    traced: tracing slows allocation down, so it is not the one timed)."""
    start = time.perf_counter()
    loader = create_dataloader(path, packing=packing, **options)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    create_dataloader(path, packing=packing, **options)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return loader, seconds, peak


def endless(loader):
    while True:
        yield from loader


def interleaved_us(loaders: dict, block: int, blocks: int) -> dict:
    """Microseconds per batch of each loader: `blocks` rounds, each timing `block` batches of every loader in turn,
    so that all see the same machine (a shared VM's load drifts); the median over the rounds."""
    streams = {name: endless(loader) for name, loader in loaders.items()}
    times: dict = {name: [] for name in loaders}
    for _ in range(blocks):
        for name, stream in streams.items():
            start = time.perf_counter()
            for _ in islice(stream, block):
                pass
            times[name].append((time.perf_counter() - start) / block * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--block", type=int, default=50, help="batches timed in a row per loader")
    parser.add_argument("--blocks", type=int, default=100, help="rounds (each loader once per round)")
    args = parser.parse_args()
    files = sorted(args.corpus.glob("*.txt")) if args.corpus.is_dir() else []
    if not files:
        print(f"no corpus at {args.corpus} (optional benchmark data): nothing to measure")
        return
    torch.set_num_threads(1)
    options = {"batch_size": args.batch_size, "max_length": args.max_length, "stride": args.max_length, "seed": 0}
    tokenizer = gpt2_tokenizer()
    with tempfile.TemporaryDirectory() as folder:
        for name, separator in (("files", None), ("paragraphs", "\r\n\r\n")):
            path = Path(folder) / f"{name}.bin"
            header = tokenize_files(files, path, tokenizer, split_documents_on=separator)
            print(f"\n{len(files)} files, {header['count']:,} tokens, {header['documents']:,} documents ({name})")
            loaders = {}
            for packing in (None, "concat", "best-fit"):
                loader, seconds, peak = build(path, packing, options)
                loaders[packing] = loader
                per_document = peak / header["documents"]
                print(
                    f"  build {packing or 'plain'!s:9}: {seconds * 1e3:8.1f} ms, peak {peak / 1e6:7.2f} MB "
                    f"({per_document:,.0f} bytes per document), {len(loader.dataset):,} windows"
                )
            best_fit = loaders["best-fit"].dataset
            print(
                f"  padding with best-fit: {100 * best_fit.padded_fraction:.2f}% of the tokens; naive (one document "
                f"per window): {100 * best_fit.naive_padded_fraction:.2f}%"
            )
            times = interleaved_us(loaders, args.block, args.blocks)
            print(
                f"  iteration, us per batch of {args.batch_size} x {args.max_length} (median of {args.blocks} rounds "
                f"of {args.block} batches each):"
            )
            for packing, us in times.items():
                print(f"    {packing or 'plain'!s:9} {us:8.1f}  ratio to plain {us / times[None]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
