"""scripts/bench_embed.py runs end to end on the CPU with tiny sizes, and reports every contender and ratio.

The CUDA run (`--device cuda`, what scripts/gpu_check.sh starts) takes the same code path with another device.
"""

from __future__ import annotations

import json
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
