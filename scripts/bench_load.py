"""Loading speed: `HfEmbedModel.from_pretrained` against `safetensors.torch.load_file` of the same file, one run.

A GPT-2-sized embedding model (50257 x 768 + 1024 x 768, fp32, 158 MB) is saved to a temporary folder, then
both loaders read it repeatedly and every weight is read once after loading (both may map the file lazily;
the file stays in the page cache, so this measures the loaders, not the disk). Prints medians and the ratio;
also checks that loading draws no random numbers (no initialization of weights that are then overwritten).

    python scripts/bench_load.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers.utils import logging as hf_logging

from hf_embed import HfEmbedConfig, HfEmbedModel


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    hf_logging.disable_progress_bar()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = HfEmbedModel(HfEmbedConfig.from_preset("gpt2"))
        model.save_pretrained(folder)
        weights = folder / "model.safetensors"

        torch.manual_seed(0)
        before = torch.rand(1)
        torch.manual_seed(0)
        loaded = HfEmbedModel.from_pretrained(folder)
        after = torch.rand(1)
        assert torch.equal(before, after), "from_pretrained drew random numbers: it initialized loaded weights"
        assert torch.equal(loaded.embeddings.wte.weight, model.embeddings.wte.weight)

        def read_all(tensors):
            return sum(float(t.detach().sum()) for t in tensors)

        raw = median_ms(lambda: read_all(load_file(weights).values()), args.repeat)
        ours = median_ms(lambda: read_all(HfEmbedModel.from_pretrained(folder).parameters()), args.repeat)
        size_mb = weights.stat().st_size / 1e6
    print(
        f"GPT-2-sized embedding model, {size_mb:.0f} MB fp32, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"safetensors load_file          {raw:8.2f} ms")
    print(f"HfEmbedModel.from_pretrained   {ours:8.2f} ms")
    print(f"ratio from_pretrained / load_file: {ours / raw:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
