"""A 50 MB text through every door: `create_dataloader(text)`, `encode`, `hf-embed embed --file` against `tokenize`.

Issue 13 asks that each take at most 2x the time and 2x the peak memory of `hf-embed tokenize` on the same
text. Each runs in a fresh process under `/usr/bin/time -v` (wall time and peak RSS of the whole process,
imports included), all four once per round in a rotated order; the table shows the medians, their ratios
against `tokenize`, and the time of the call itself (measured inside the process). The ids of
each are checked against the token file `tokenize` wrote (`embed --truncate` keeps the first 1024).

The text is the shared corpus concatenated to 50 MB, or, where that is absent, synthesized (words of several
scripts, punctuation, line breaks).

    python scripts/bench_large_text.py [--megabytes 50] [--rounds 3] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "corpus"

# Each child prints one line: RESULT {"seconds": time of the call, "sha256": of the uint16 ids, "count": ...}
CHILD = {
    "create_dataloader": """
from hf_embed import create_dataloader, gpt2_tokenizer
tokenizer = gpt2_tokenizer()
text = open(PATH, encoding="utf-8").read()
start = time.perf_counter()
loader = create_dataloader(text, tokenizer=tokenizer, batch_size=8, max_length=256, stride=256)
seconds = time.perf_counter() - start
report(seconds, loader.dataset.token_ids.numpy())
""",
    "encode": """
from hf_embed.tokenization import encode, gpt2_tokenizer
tokenizer = gpt2_tokenizer()
text = open(PATH, encoding="utf-8").read()
start = time.perf_counter()
ids = encode(tokenizer, text)
seconds = time.perf_counter() - start
report(seconds, ids)
""",
}
PRELUDE = """
import hashlib, json, sys, time
import numpy as np
PATH = sys.argv[1]
def report(seconds, ids):
    ids = np.asarray(ids, dtype=np.uint16)
    print("RESULT " + json.dumps({"seconds": seconds, "count": len(ids), "sha256": hashlib.sha256(ids).hexdigest()}))
"""


def make_text(path: Path, megabytes: float, corpus: Path) -> str:
    """Write the benchmark text; say where it came from."""
    target = int(megabytes * 1e6)
    files = sorted(corpus.glob("*.txt")) if corpus.is_dir() else []
    parts, size = [], 0
    if files:
        source = f"the shared corpus ({len(files)} files) concatenated"
        while size < target:
            for f in files:
                text = f.read_text(encoding="utf-8-sig")
                parts.append(text)
                size += len(text.encode("utf-8"))
                if size >= target:
                    break
    else:
        source = "synthesized words"
        rng = random.Random(0)
        words = "the a of and to lighthouse ledger harbour café naïve Straße 東京 😀 don't 1908 3.14 — «quoted»".split()
        while size < target:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 20))) + rng.choice([".\n", ",\n", "\n\n"])
            parts.append(line)
            size += len(line.encode("utf-8"))
    data = "".join(parts).encode("utf-8")[:target].decode("utf-8", errors="ignore")  # whole characters only
    path.write_text(data, encoding="utf-8")
    return source


def timed(command: list[str]) -> dict:
    """Run `command` under /usr/bin/time -v: wall seconds, peak RSS (MB), its stdout."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{command[:4]} failed:\n{done.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(x) if x else 0.0 for x in wall.groups())
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) / 1024
    return {"wall": 3600 * hours + 60 * minutes + seconds, "peak_mb": peak, "stdout": done.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("needs /usr/bin/time (GNU time) for the peak memory of each process")
    python = sys.executable
    hf_embed = shutil.which("hf-embed", path=str(Path(python).parent)) or "hf-embed"
    import numpy as np

    from hf_embed.token_files import TokenFile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        text = tmp / "large.txt"
        source = make_text(text, args.megabytes, args.corpus)
        model = tmp / "model"
        subprocess.run([hf_embed, "init", "--preset", "gpt2", "--output", str(model)], check=True, capture_output=True)
        commands = {
            "tokenize": [hf_embed, "tokenize", str(text), "--output", str(tmp / "tokens.bin")],
            "create_dataloader": [python, "-c", PRELUDE + CHILD["create_dataloader"], str(text)],
            "encode": [python, "-c", PRELUDE + CHILD["encode"], str(text)],
            "embed --file": [
                *(hf_embed, "embed", str(model), "--file", str(text)),
                *("--truncate", "--output", str(tmp / "e.safetensors")),
            ],
        }
        runs: dict[str, list[dict]] = {name: [] for name in commands}
        names = list(commands)
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                runs[name].append(timed(commands[name]))
        file = TokenFile(tmp / "tokens.bin")
        reference = np.asarray(file.read(0, file.count), dtype=np.uint16)
        import hashlib

        from safetensors.numpy import load_file

        identical, call = {"tokenize": True}, {}
        for name in ("create_dataloader", "encode"):
            results = [
                json.loads(line[7:]) for r in runs[name] for line in r["stdout"].splitlines() if "RESULT" in line
            ]
            identical[name] = all(r["sha256"] == hashlib.sha256(reference).hexdigest() for r in results)
            call[name] = f"{statistics.median(r['seconds'] for r in results):.2f}"
        embedded = load_file(str(tmp / "e.safetensors"))["input_ids"][0]
        identical["embed --file"] = bool(np.array_equal(embedded, reference[: len(embedded)]))
        size = text.stat().st_size / 1e6

    base = {key: statistics.median(r[key] for r in runs["tokenize"]) for key in ("wall", "peak_mb")}
    print(f"{size:.1f} MB of text ({source}), {file.count:,} tokens; {args.rounds} rounds, fresh processes, rotated")
    print(f"{'command':18} {'wall s':>7} {'x tokenize':>10} {'peak MB':>8} {'x tokenize':>10} {'call s':>7}  identical")
    for name, results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        peak = statistics.median(r["peak_mb"] for r in results)
        print(
            f"{name:18} {wall:7.2f} {wall / base['wall']:10.2f} {peak:8.0f} {peak / base['peak_mb']:10.2f} "
            f"{call.get(name, ''):>7}  {identical[name]}"
        )
    print("wall and peak RSS: medians over the rounds, whole processes (imports included); issue 13: <= 2x tokenize")
    print("call s: the create_dataloader / encode call alone, timed inside its process")


if __name__ == "__main__":
    main()
