"""Tokenization throughput on a corpus: hf-embed's token-file path against the usual recipes, one run.

Each method runs in a fresh process (so none inherits another's threads, caches or environment; `datasets`
with `num_proc` switches `tokenizers` to one thread for good) and reports MB/s and its peak RSS:
  hf-embed     `hf_embed.data.tokenize_files` (tiktoken's engine built from the `tokenizers` vocabulary, all cores)
  tiktoken     tiktoken's GPT-2 `encode_ordinary`, one thread
  datasets     `datasets.map(batched=True, num_proc=2)` with the same `tokenizers` tokenizer
  nanogpt      nanoGPT's recipe: `datasets.map(num_proc=2)` calling tiktoken `encode_ordinary` per document
All ids are checked identical. The corpus is ../shared/data/corpus by default (about 66 MB, 94 files).

    python scripts/bench_tokenize.py [--corpus DIR] [--methods hf-embed tiktoken datasets nanogpt]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "corpus"
METHODS = ["hf-embed", "tiktoken", "datasets", "nanogpt"]


def read_texts_exact(files: list[Path]) -> list[str]:
    """The same reading as hf-embed's: UTF-8, BOM dropped, line ends kept."""
    texts = []
    for f in files:
        with f.open(encoding="utf-8-sig", newline="") as handle:
            texts.append(handle.read())
    return texts


def run_method(method: str, files: list[Path], out: Path) -> dict:
    from hf_embed import gpt2_tokenizer
    from hf_embed.tokenization import tiktoken_encoding

    tokenizer = gpt2_tokenizer()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # imports and tokenizer: not the method's
    start = time.perf_counter()
    if method == "hf-embed":
        from hf_embed.token_files import IDS_OFFSET, TokenFile, tokenize_files

        tokenize_files(files, out.with_suffix(".bin"), tokenizer)
        count = TokenFile(out.with_suffix(".bin")).count
        ids = np.memmap(out.with_suffix(".bin"), np.uint16, mode="r", offset=IDS_OFFSET, shape=(count,))
    elif method == "tiktoken":
        encoding = tiktoken_encoding(tokenizer)
        ids = np.array([i for text in read_texts_exact(files) for i in encoding.encode_ordinary(text)], np.uint16)
    else:
        import datasets

        datasets.disable_progress_bars()
        dataset = datasets.Dataset.from_dict({"text": read_texts_exact(files)})
        if method == "datasets":

            def tokenize(batch):
                return {"ids": tokenizer(batch["text"], add_special_tokens=False)["input_ids"]}

            mapped = dataset.map(tokenize, batched=True, num_proc=2, remove_columns=["text"])
        else:
            encoding = tiktoken_encoding(tokenizer)
            mapped = dataset.map(
                lambda row: {"ids": encoding.encode_ordinary(row["text"])}, num_proc=2, remove_columns=["text"]
            )
        ids = np.concatenate([np.asarray(row, np.uint16) for row in mapped["ids"]])
    seconds = time.perf_counter() - start
    np.save(out, ids)
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    return {"seconds": seconds, "peak_rss_mb": peak / 1024, "baseline_rss_mb": baseline / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--only", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = sorted(args.corpus.glob("*.txt"))
    if not files:
        sys.exit(f"no .txt files in {args.corpus}")
    if args.only:  # a child process: one method
        print(json.dumps(run_method(args.only, files, args.out)))
        return

    megabytes = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {len(files)} files, {megabytes:.1f} MB")
    results, reference = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            out = Path(tmp) / f"{method}.npy"
            child = [sys.executable, __file__, "--corpus", str(args.corpus), "--only", method, "--out", str(out)]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            results[method] = json.loads(done.stdout.strip().splitlines()[-1])
            ids = np.load(out)
            if reference is None:
                reference = ids
            results[method]["identical"] = bool(np.array_equal(ids, reference))
            results[method]["tokens"] = len(ids)
    base = results.get("tiktoken", {}).get("seconds")
    print(
        f"{'method':10} {'MB/s':>7} {'x tiktoken':>10} {'peak RSS MB':>12} {'(imports)':>10} {'tokens':>12}  identical"
    )
    for method, r in results.items():
        ratio = f"{base / r['seconds']:10.2f}" if base else f"{'':10}"
        print(
            f"{method:10} {megabytes / r['seconds']:7.1f} {ratio} {r['peak_rss_mb']:12.0f} "
            f"{r['baseline_rss_mb']:10.0f} {r['tokens']:12,}  {r['identical']}"
        )
    print("peak RSS is the process's (children included for num_proc); the corpus is", f"{megabytes:.0f} MB")


if __name__ == "__main__":
    main()
