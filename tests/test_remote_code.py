"""`trust_remote_code` loading in a process where `hf_embed` cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch
from safetensors.torch import load_file, save_file

from hf_embed import HfEmbedConfig, HfEmbedModel

LOADER = textwrap.dedent(
    """
    import sys
    sys.modules["hf_embed"] = None  # any `import hf_embed` now raises ImportError
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoModel

    try:
        import hf_embed  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_embed is importable; the test would prove nothing")

    path = sys.argv[1]
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    ids = load_file(path + "/ids.safetensors")["ids"]
    save_file({"out": model(ids).last_hidden_state.contiguous()}, path + "/out.safetensors")
    print(type(config).__name__, type(model).__name__)
    """
)


def test_trust_remote_code_without_the_package(tmp_path, tiny_ids):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny")).eval()
    model.save_pretrained(tmp_path)
    save_file({"ids": tiny_ids}, tmp_path / "ids.safetensors")
    env_home = tmp_path / "hf_home"
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path)],
        capture_output=True,
        text=True,
        env={"HF_HOME": str(env_home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["HfEmbedConfig", "HfEmbedModel"]
    assert torch.equal(load_file(tmp_path / "out.safetensors")["out"], model(tiny_ids).last_hidden_state)
