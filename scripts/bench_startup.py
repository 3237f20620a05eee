"""Start-up times: the `hf-embed` command and `import hf_embed` against `hf --help` and `python -c pass`.

Each command runs in a fresh process, all of them once per round in a rotated order (so that a busy
moment on the machine does not land on one command only); the table shows the median and the fastest
run of each, and the ratios of the medians against `hf --help` (huggingface_hub's command line) and,
for the config access, against `import transformers; transformers.PretrainedConfig`, the same thing
done by transformers (issue 17: at most 1.5x).

    python scripts/bench_startup.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def commands(folder: str) -> dict[str, list[str]]:
    python = sys.executable
    bin_dir = Path(python).parent
    hf_embed = shutil.which("hf-embed", path=str(bin_dir)) or "hf-embed"
    hf = shutil.which("hf", path=str(bin_dir)) or "hf"
    return {
        "python -c pass": [python, "-c", "pass"],
        "hf --help": [hf, "--help"],
        "hf-embed --help": [hf_embed, "--help"],
        "hf-embed embed --help": [hf_embed, "embed", "--help"],
        "hf-embed tokenize --help": [hf_embed, "tokenize", "--help"],
        "hf-embed embed (bad --output suffix)": [hf_embed, "embed", folder, "--text", "x", "--output", "e.npz"],
        "hf-embed inspect (missing folder)": [hf_embed, "inspect", f"{folder}/missing"],
        "import hf_embed": [python, "-c", "import hf_embed"],
        "import hf_embed; hf_embed.HfEmbedConfig": [python, "-c", "import hf_embed; hf_embed.HfEmbedConfig"],
        "import transformers; transformers.PretrainedConfig": [
            python,
            "-c",
            "import transformers; transformers.PretrainedConfig",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = commands(folder)
        times: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                subprocess.run(runs[name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.rounds} rounds, each command in a fresh process, rotated; seconds (wall)")
    print(f"{'command':52} {'median':>7} {'fastest':>8} {'x hf --help':>11} {'x python -c pass':>17}")
    for name, t in times.items():
        print(
            f"{name:52} {median[name]:7.3f} {min(t):8.3f} {median[name] / median['hf --help']:11.2f} "
            f"{median[name] / median['python -c pass']:17.1f}"
        )
    config = median["import hf_embed; hf_embed.HfEmbedConfig"]
    reference = median["import transformers; transformers.PretrainedConfig"]
    print(f"hf_embed.HfEmbedConfig / transformers.PretrainedConfig: {config / reference:.2f}x (issue 17: at most 1.5x)")


if __name__ == "__main__":
    main()
