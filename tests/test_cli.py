"""The `hf-embed` command: the demo (the README's main job) and exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from hf_embed.cli import SAMPLE_TEXT, main


def test_demo_runs_offline_on_embedded_text(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "demo"
    assert main(["demo", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "first batch inputs (8, 4)" in printed
    assert "token embeddings: (8, 4) -> (8, 4, 256)" in printed
    assert "token + position embeddings: (8, 4) -> (8, 4, 256)" in printed
    assert "identical embeddings and token ids" in printed
    model = AutoModel.from_pretrained(output)
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert model.config.hidden_size == 256 and model.config.max_position_embeddings == 4
    first_ids = tokenizer(SAMPLE_TEXT)["input_ids"][:4]
    assert str(first_ids[0]) in printed and len(tokenizer) == 50257
    # the demo's model is the seeded book setup: seed 123, then nn.Embedding(50257, 256)
    torch.manual_seed(123)
    assert torch.equal(model.embeddings.wte.weight, torch.nn.Embedding(50257, 256).weight)


def test_demo_with_text_file(tmp_path, capsys):
    text_file = tmp_path / "story.txt"
    text_file.write_text("Ein kleiner Text über Bücher und Straßen. " * 10, encoding="utf-8")
    assert main(["demo", "--text-file", str(text_file), "--output", str(tmp_path / "out")]) == 0
    assert "(8, 4) -> (8, 4, 256)" in capsys.readouterr().out


def test_failure_is_one_line_with_exit_1(tmp_path, capsys):
    text_file = tmp_path / "latin1.txt"
    text_file.write_bytes("caf\xe9 ".encode("latin-1") * 50)
    assert main(["demo", "--text-file", str(text_file), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"hf-embed demo: error: {text_file}: not valid UTF-8 at byte 3"
    short = tmp_path / "short.txt"
    short.write_text("Too short.", encoding="utf-8")
    assert main(["demo", "--text-file", str(short), "--output", str(tmp_path / "out")]) == 1
    assert "too few for one window" in capsys.readouterr().err


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_console_script_is_installed(tmp_path):
    """The README's main-job command, as a user runs it, from a fresh folder."""
    executable = shutil.which("hf-embed") or str(Path(sys.executable).with_name("hf-embed"))
    result = subprocess.run(
        [executable, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_offline_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hf-embed-demo" / "model.safetensors").is_file()


def _offline_env(tmp_path):
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    return env
