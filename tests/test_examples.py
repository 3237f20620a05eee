"""The examples run, and say what they claim."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from hf_embed import HfEmbeddings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gpt_with_hf_embed_gives_the_original_logits():
    example = load("gpt_with_hf_embed")
    assert example.main() == {"eval": True, "train, same seed (dropout)": True}
    torch.manual_seed(0)
    gpt = example.GPT(example.GPTConfig())
    ours = example.HfEmbedGPT.from_gpt(gpt).eval()
    assert isinstance(ours.embeddings, HfEmbeddings) and not hasattr(ours, "wpe")
    assert ours.lm_head.weight is ours.embeddings.wte.weight
    idx = torch.randint(0, 99, (2, 16))
    with torch.no_grad():
        assert torch.equal(ours(idx), gpt.eval()(idx))
        ours.embeddings.wpe.weight[3] += 1e-3  # the comparison sees one position row
        assert not torch.equal(ours(idx), gpt(idx))
