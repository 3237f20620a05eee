"""`trust_remote_code` loading in a process where `hf_embed` cannot be imported, for every position scheme."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_embed import HfEmbedConfig, HfEmbedForCausalLM, HfEmbedModel

pytestmark = pytest.mark.slow  # subprocesses, a loopback server

SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]
# Every scheme, and the options of other families' stages: each config field must survive loading without hf_embed.
CASES = {scheme: {"position_embedding_type": scheme} for scheme in SCHEMES} | {
    "gemma-like": {
        "position_embedding_type": "rotary",
        "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4},
        "embedding_multiplier": "sqrt_hidden_size",
    },
    "bloom-like": {"position_embedding_type": "none", "embedding_layernorm": True, "layer_norm_epsilon": 1e-3},
    "dynamic-ntk": {"position_embedding_type": "rotary", "rope_parameters": {"rope_type": "dynamic", "factor": 2.0}},
    "padded-vocabulary": {"position_embedding_type": "absolute", "vocab_size": 128, "unpadded_vocab_size": 99},
}

LOADER = textwrap.dedent(
    """
    import sys
    sys.modules["hf_embed"] = None  # any `import hf_embed` now raises ImportError
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    try:
        import hf_embed  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_embed is importable; the test would prove nothing")

    for path in sys.argv[1:]:
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        ids = load_file(path + "/ids.safetensors")["ids"]
        base = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
        causal = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
        for model in (base, causal):
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert causal.lm_head.weight is causal.model.embeddings.wte.weight
        out = {"base": base(ids).last_hidden_state.contiguous(), "logits": causal(ids).logits.contiguous()}
        if config.position_embedding_type == "rotary":
            long_ids = ids[:1].repeat(1, 4)  # 28 positions: past a dynamic scheme's original length
            out["cos"], out["sin"] = base(long_ids[:, : config.max_position_embeddings]).position_embeddings
        out["generated"] = causal.generate(ids[:2, :3], max_new_tokens=3, do_sample=False, pad_token_id=0)
        save_file(out, path + "/out.safetensors")
        print(config.position_embedding_type, type(config).__name__, type(base).__name__, type(causal).__name__)
    """
)


def test_trust_remote_code_without_the_package(tmp_path, tiny_ids):
    """A folder of either class loads as the embedding stage (`AutoModel`) and with its head (AutoModelForCausalLM)."""
    models, folders = {}, []
    for case, overrides in CASES.items():
        for cls in (HfEmbedModel, HfEmbedForCausalLM):
            model = cls(HfEmbedConfig.from_preset("tiny", head_dim=8, **overrides)).eval()
            if overrides.get("embedding_layernorm"):
                with torch.no_grad():
                    norm = model.base_model.embeddings.norm  # not ones and zeros, so that a lost norm shows
                    norm.weight.normal_(1.0, 0.5)
                    norm.bias.normal_(0.0, 0.5)
            if case == "dynamic-ntk":
                model.resize_position_embeddings(32)  # records the original length (16) in rope_parameters
            folder = tmp_path / f"{case}-{cls.__name__}"
            model.save_pretrained(folder)
            auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
            assert auto_map["AutoModel"] == "modeling_hf_embed.HfEmbedModel"
            assert auto_map["AutoModelForCausalLM"] == "modeling_hf_embed.HfEmbedForCausalLM"
            save_file({"ids": tiny_ids}, folder / "ids.safetensors")
            causal = model if isinstance(model, HfEmbedForCausalLM) else HfEmbedForCausalLM(model.config).eval()
            if causal is not model:
                causal.model.load_state_dict(model.state_dict())
            models[folder.name] = causal
            folders.append(str(folder))
    result = subprocess.run(
        [sys.executable, "-c", LOADER, *folders],
        capture_output=True,
        text=True,
        env={"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    expected = [
        f"{overrides['position_embedding_type']} HfEmbedConfig HfEmbedModel HfEmbedForCausalLM"
        for overrides in CASES.values()
        for _ in range(2)
    ]
    assert result.stdout.splitlines() == expected
    for name, causal in models.items():
        out = load_file(tmp_path / name / "out.safetensors")
        assert torch.equal(out["base"], causal.model(tiny_ids).last_hidden_state), name
        assert torch.equal(out["logits"], causal(tiny_ids).logits), name
        if causal.config.position_embedding_type == "rotary":
            long_ids = tiny_ids[:1].repeat(1, 4)[:, : causal.config.max_position_embeddings]
            cos, sin = causal.model(long_ids).position_embeddings
            assert torch.equal(out["cos"], cos) and torch.equal(out["sin"], sin), name
        generated = causal.generate(tiny_ids[:2, :3], max_new_tokens=3, do_sample=False, pad_token_id=0)
        assert torch.equal(out["generated"], generated), name
