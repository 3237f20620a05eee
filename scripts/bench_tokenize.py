"""Tokenizing a corpus: hf-embed's token files against tiktoken on 1 and N threads, and the usual recipes, one run.

Each method runs in a fresh process (none inherits another's threads, caches or environment; `datasets` with
`num_proc` switches `tokenizers` to one thread for good), all methods once per round in a rotated order:
  hf-embed-1 / -N  `hf_embed.tokenize_corpus.tokenize_files(files, out, tokenizer, num_threads=1 / N)`: hf-embed's
                   engine (fastokens, checked against tiktoken), files streamed in pieces, one token file
  tiktoken-1       tiktoken's GPT-2 `encode_ordinary` on each whole file, one thread
  tiktoken-N       tiktoken's own threaded `encode_ordinary_batch(texts, num_threads=N)` over the files
  datasets         `datasets.map(batched=True, num_proc=N)` with the `tokenizers` tokenizer
  nanogpt          nanoGPT's recipe: `datasets.map(num_proc=N)` calling tiktoken `encode_ordinary` per document
The timer starts after the imports and `gpt2_tokenizer()` and includes reading the files and building each
engine from that tokenizer; it stops when the ids are in memory (tiktoken's lists are turned into an array
afterwards). All ids are checked identical. Reported: MB/s (wall and process CPU time), the ratio of the
medians against tiktoken with the same number of threads, and each method's peak RSS when its ids are done
(the whole process, imports and the tokenizer included; reading them back for the check is not counted).
The corpus is ../shared/data/corpus by default (about 68 MB, 94 files).

    python scripts/bench_tokenize.py [--corpus DIR] [--rounds 3] [--threads N] [--methods ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "corpus"
METHODS = ["hf-embed-1", "tiktoken-1", "hf-embed-N", "tiktoken-N", "nanogpt", "datasets"]


def read_texts_exact(files: list[Path]) -> list[str]:
    """The same reading as hf-embed's: UTF-8, BOM dropped, line ends kept."""
    texts = []
    for f in files:
        with f.open(encoding="utf-8-sig", newline="") as handle:
            texts.append(handle.read())
    return texts


def run_method(method: str, files: list[Path], out: Path, threads: int) -> dict:
    from hf_embed.token_files import TokenFile
    from hf_embed.tokenization import gpt2_tokenizer, tiktoken_encoding
    from hf_embed.tokenize_corpus import tokenize_files

    tokenizer = gpt2_tokenizer()
    wall, cpu = time.perf_counter(), time.process_time()
    extra = {}
    if method.startswith("hf-embed"):
        header = tokenize_files(files, out, tokenizer, num_threads=1 if method.endswith("-1") else threads)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = peak_rss_mb()
        file = TokenFile(out)
        ids = file.read(0, file.count)
        extra = {key: header[key] for key in header if key.startswith("engine")}
    elif method.startswith("tiktoken"):
        encoding = tiktoken_encoding(tokenizer)
        texts = read_texts_exact(files)
        if method == "tiktoken-1":
            lists = [encoding.encode_ordinary(text) for text in texts]
        else:
            lists = encoding.encode_ordinary_batch(texts, num_threads=threads)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = peak_rss_mb()
        ids = np.concatenate([np.asarray(i, np.uint16) for i in lists])
    else:
        import datasets

        datasets.disable_progress_bars()
        dataset = datasets.Dataset.from_dict({"text": read_texts_exact(files)})
        if method == "datasets":

            def tokenize(batch):
                return {"ids": tokenizer(batch["text"], add_special_tokens=False)["input_ids"]}

            mapped = dataset.map(tokenize, batched=True, num_proc=threads, remove_columns=["text"])
        else:
            encoding = tiktoken_encoding(tokenizer)
            mapped = dataset.map(
                lambda row: {"ids": encoding.encode_ordinary(row["text"])}, num_proc=threads, remove_columns=["text"]
            )
        rows = mapped["ids"]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = peak_rss_mb()
        ids = np.concatenate([np.asarray(row, np.uint16) for row in rows])
    digest = hashlib.sha256(np.ascontiguousarray(ids, dtype=np.uint16).tobytes()).hexdigest()
    return {"wall": wall, "cpu": cpu, "peak_rss_mb": peak, "tokens": len(ids), "sha256": digest, **extra}


def peak_rss_mb() -> float:
    """This process's peak RSS so far, or its `num_proc` workers' if larger."""
    scale = 1024 if sys.platform != "darwin" else 2**20
    own, children = (resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return max(own, children) / scale


def run_child(method: str, args: argparse.Namespace, out: Path) -> dict:
    """One method in a fresh process: its result, with its peak RSS when the ids were done (MB)."""
    command = [sys.executable, __file__, "--corpus", str(args.corpus), "--threads", str(args.threads)]
    done = subprocess.run([*command, "--only", method, "--out", str(out)], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"{method} failed (exit status {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="N (default: all cores)")
    parser.add_argument("--only", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = sorted(args.corpus.glob("*.txt"))
    if not files:
        sys.exit(f"no .txt files in {args.corpus}")
    if args.only:  # a child process: one method
        print(json.dumps(run_method(args.only, files, args.out, args.threads)))
        return

    megabytes = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {len(files)} files, {megabytes:.1f} MB; N = {args.threads} threads; {args.rounds} rounds")
    runs: dict[str, list[dict]] = {method: [] for method in args.methods}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            shift = round_ % len(args.methods)
            for method in args.methods[shift:] + args.methods[:shift]:
                out = Path(tmp) / f"{method}.bin"
                runs[method].append(run_child(method, args, out))
                out.unlink(missing_ok=True)
    digests = {run["sha256"] for results in runs.values() for run in results}
    median = {m: {k: statistics.median(r[k] for r in results) for k in ("wall", "cpu")} for m, results in runs.items()}

    def ratio(method: str, key: str) -> str:
        reference = "tiktoken-1" if method.endswith("-1") else "tiktoken-N"
        if reference not in median:
            return ""
        return f"{median[reference][key] / median[method][key]:.2f}"

    print(
        f"{'method':11} {'MB/s wall':>9} {'x tiktoken':>10} {'MB/s CPU':>9} {'x tiktoken':>10} "
        f"{'peak RSS MB':>11} {'tokens':>12}"
    )
    for method, results in runs.items():
        print(
            f"{method:11} {megabytes / median[method]['wall']:9.1f} {ratio(method, 'wall'):>10} "
            f"{megabytes / median[method]['cpu']:9.1f} {ratio(method, 'cpu'):>10} "
            f"{max(r['peak_rss_mb'] for r in results):11.0f} {results[0]['tokens']:12,}"
        )
    print(f"ids identical across all methods and rounds: {len(digests) == 1}")
    print("x tiktoken: median time of tiktoken with the same threads (1, or N for -N/nanogpt/datasets) / the method's")
    engine = next((r for r in runs.get("hf-embed-N", runs.get("hf-embed-1", [])) if "engine" in r), None)
    if engine is not None:
        print("hf-embed engine:", json.dumps({k: v for k, v in engine.items() if k.startswith("engine")}))


if __name__ == "__main__":
    main()
