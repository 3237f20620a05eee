"""Many ranks: `torchrun --nproc_per_node 2` on CPU (gloo); each rank loads a disjoint shard of the windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # torchrun subprocesses

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    import torch.distributed as dist
    from hf_embed import create_dataloader

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    loader = create_dataloader(torch.arange(1000), max_length=8, stride=8, seed=7, batch_size=4, drop_last=False)
    epochs = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        epochs.append([int(x[0]) for inputs, targets in loader for x in inputs])
    with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
        json.dump({"world": dist.get_world_size(), "epochs": epochs}, f)
    dist.destroy_process_group()
    """
)


def test_torchrun_two_ranks_get_disjoint_complete_shards(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*command, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["world"] == 2 for r in ranks)
    every_window = list(range(0, 992, 8))  # starts of range(0, 1000 - 8, 8)
    for epoch in range(2):
        shard0, shard1 = (r["epochs"][epoch] for r in ranks)
        assert not set(shard0) & set(shard1)
        assert sorted(shard0 + shard1) == every_window
    assert ranks[0]["epochs"][0] != ranks[0]["epochs"][1]  # set_epoch reshuffles
