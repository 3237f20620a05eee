"""`trust_remote_code` loading in a process where `hf_embed` cannot be imported, for every position scheme."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_embed import HfEmbedConfig, HfEmbedModel

pytestmark = pytest.mark.slow  # subprocesses, a loopback server

SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]

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

    for path in sys.argv[1:]:
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        ids = load_file(path + "/ids.safetensors")["ids"]
        save_file({"out": model(ids).last_hidden_state.contiguous()}, path + "/out.safetensors")
        print(config.position_embedding_type, type(config).__name__, type(model).__name__)
    """
)


def test_trust_remote_code_without_the_package(tmp_path, tiny_ids):
    models, folders = {}, []
    for scheme in SCHEMES:
        model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, head_dim=8)).eval()
        folder = tmp_path / scheme
        model.save_pretrained(folder)
        save_file({"ids": tiny_ids}, folder / "ids.safetensors")
        models[scheme] = model
        folders.append(str(folder))
    result = subprocess.run(
        [sys.executable, "-c", LOADER, *folders],
        capture_output=True,
        text=True,
        env={"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{scheme} HfEmbedConfig HfEmbedModel" for scheme in SCHEMES]
    for scheme, model in models.items():
        out = load_file(tmp_path / scheme / "out.safetensors")["out"]
        assert torch.equal(out, model(tiny_ids).last_hidden_state), scheme
