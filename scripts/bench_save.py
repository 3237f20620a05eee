"""Saving speed: `HfEmbedModel.save_pretrained` (staged, fsynced, swapped in whole) against transformers' own.

A GPT-2-sized embedding model (50257 x 768 + 1024 x 768, fp32, 158 MB) is saved again and again over its
previous save, as a training loop saves checkpoints; a tokenizer file sits in the folder and must survive each
save. The reference is `PreTrainedModel.save_pretrained` called directly on another folder: transformers' save,
which writes in place and never calls fsync. Prints medians and the ratio; the difference is mostly the time
the disk takes to make the new weights durable (fsync), which the reference leaves to the kernel's writeback.

    python scripts/bench_save.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from transformers import PreTrainedModel
from transformers.utils import logging as hf_logging

from bench_embed import medians_ms  # the same rotating-block medians (scripts/ is on sys.path when run)
from hf_embed import HfEmbedConfig, HfEmbedModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--dir", help="where to save (default: a temporary folder); the disk decides the fsync cost")
    args = parser.parse_args()
    hf_logging.disable_progress_bar()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours, plain = Path(tmp) / "ours", Path(tmp) / "plain"
        model = HfEmbedModel(HfEmbedConfig.from_preset("gpt2"))
        for folder in (ours, plain):
            model.save_pretrained(folder)
            (folder / "tokenizer.json").write_text("{}")
        times = medians_ms(
            {
                "transformers": lambda: PreTrainedModel.save_pretrained(model, plain),
                "hf-embed": lambda: model.save_pretrained(ours),
            },
            "cpu",
            args.repeat,
            block=2,
        )
        assert (ours / "tokenizer.json").read_text() == "{}"
        size_mb = (ours / "model.safetensors").stat().st_size / 1e6
        leftovers = sorted(name for name in os.listdir(tmp) if name not in ("ours", "plain"))
    print(f"GPT-2-sized embedding model, {size_mb:.0f} MB fp32, torch {torch.__version__}, saved over its last save")
    print(f"PreTrainedModel.save_pretrained (in place, no fsync)   {times['transformers']:8.1f} ms")
    print(f"HfEmbedModel.save_pretrained                           {times['hf-embed']:8.1f} ms")
    print(f"ratio hf-embed / transformers: {times['hf-embed'] / times['transformers']:.2f}x")
    print(f"left beside the folders: {leftovers or 'nothing'}")


if __name__ == "__main__":
    main()
