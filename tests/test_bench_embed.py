"""scripts/bench_embed.py runs end to end on the CPU with tiny sizes, and reports every contender and ratio;
scripts/gpu_check.sh runs its dry run on the CPU.

The CUDA run (`--device cuda`, what scripts/gpu_check.sh starts) takes the same code path with another device.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_embed.py"


@pytest.mark.slow
def test_bench_embed_runs_and_reports_every_ratio(tmp_path):
    report = tmp_path / "bench.json"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--shapes", "3x7,1x16", "--vocab", "99"]
    command += ["--hidden", "32", "--rounds", "2", "--block", "2", "--threads", "1", "--json", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "hf/gather" in result.stdout and "gpt2/sparse" in result.stdout
    rows = json.loads(report.read_text())["rows"]
    assert [(r["dtype"], r["shape"]) for r in rows] == [
        ("float32", "(3, 7, 32)"),
        ("float32", "(1, 16, 32)"),
        ("bfloat16", "(3, 7, 32)"),
        ("bfloat16", "(1, 16, 32)"),
    ]
    for row in rows:
        assert {"hf", "layer", "gpt2", "gather", "copy", "raw", "hf_fb", "gpt2_fb"} <= set(row["ms"])
        assert all(ms > 0 for ms in row["ms"].values())
        assert {"hf/gather", "gpt2/hf", "copy/hf", "layer/raw", "gpt2_fb/hf_fb"} <= set(row["ratios"])
        for median, low, high in row["ratios"].values():
            assert 0 < low <= median <= high


GPU_CHECK = SCRIPT.parent / "gpu_check.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="scripts/gpu_check.sh is a bash script")
@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="the dry run compiles the model, and torch.compile on CPU needs a C++ compiler",
)
def test_gpu_check_dry_run_on_cpu(tmp_path):
    """`scripts/gpu_check.sh --current --device cpu`: every step runs and the summary reads the benchmark's JSON."""
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path), "PYTHON": sys.executable}
    command = ["bash", str(GPU_CHECK), "--current", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=480, check=False, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("summary", 1)[1]
    assert "DRY RUN" in summary and "CUDA is unmeasured" in summary and "skipped on the CPU" in summary
    assert summary.count("(dry run)") == 4  # float32 and bfloat16, two shapes each
    assert (tmp_path / "bench.json").is_file() and (tmp_path / "log.txt").is_file()


def test_gpu_check_refuses_unknown_arguments(tmp_path):
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(GPU_CHECK), "--device", "tpu"], capture_output=True, text=True, timeout=30, check=False, env=env
    )
    assert result.returncode == 2 and "usage: scripts/gpu_check.sh" in result.stdout + result.stderr
