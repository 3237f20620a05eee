"""Loading speed: `HfEmbedModel.from_pretrained` against `safetensors.torch.load_file` of the same file, one run.

A GPT-2-sized embedding model (50257 x 768 + 1024 x 768, fp32, 158 MB) is saved to a temporary folder, then
both loaders read it repeatedly and every weight is read once after loading (both may map the file lazily;
the file stays in the page cache, so this measures the loaders, not the disk). Prints medians and the ratio;
also checks that loading draws no random numbers (no initialization of weights that are then overwritten).

    python scripts/bench_load.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers.utils import logging as hf_logging

from bench_embed import medians_ms  # the same rotating-block medians (scripts/ is on sys.path when run)
from hf_embed import HfEmbedConfig, HfEmbedModel


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

        times = medians_ms(
            {
                "load_file": lambda: read_all(load_file(weights).values()),
                "from_pretrained": lambda: read_all(HfEmbedModel.from_pretrained(folder).parameters()),
                "load_file_only": lambda: load_file(weights),
                "from_pretrained_only": lambda: HfEmbedModel.from_pretrained(folder),
                "config_only": lambda: HfEmbedConfig.from_pretrained(folder),
            },
            "cpu",
            args.repeat,
            block=3,
        )
        raw, ours = times["load_file"], times["from_pretrained"]
        size_mb = weights.stat().st_size / 1e6
    print(
        f"GPT-2-sized embedding model, {size_mb:.0f} MB fp32, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"safetensors load_file          {raw:8.2f} ms")
    print(f"HfEmbedModel.from_pretrained   {ours:8.2f} ms")
    print(f"ratio from_pretrained / load_file: {ours / raw:.2f}x (target <= 1.5x)")
    print(
        f"without reading the weights: load_file {times['load_file_only']:.2f} ms, from_pretrained "
        f"{times['from_pretrained_only']:.2f} ms (of which loading config.json {times['config_only']:.2f} ms)"
    )


if __name__ == "__main__":
    main()
