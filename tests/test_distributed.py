"""Many ranks: `torchrun --nproc_per_node 2` on CPU (gloo) with DistributedDataParallel doing backward every step.

Every rank must run the same number of steps (a rank with one more waits forever in its gradient all-reduce), and
the ranks must share one permutation per epoch: the one a single process draws for the same seed, generator or
`torch.manual_seed`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from hf_embed import SlidingWindowDataset

pytestmark = pytest.mark.slow  # torchrun subprocesses

WORLD, BATCH, EPOCHS = 2, 4, 2
WINDOW_COUNTS = [16, 17, 18, 5]  # divides ranks x batch; odd; even but not a multiple of 8; fewer than 8
MODES = ["seed", "generator", "global"]

WORKER = textwrap.dedent(
    """
    import datetime, json, sys
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from hf_embed import create_dataloader

    # A rank that ran one step more would wait here for a gradient all-reduce; the timeout turns that into an error.
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Embedding(4 * 18 + 4, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    results = []
    for mode in %(modes)r:
        for windows in %(counts)r:
            for drop_last in (False, True):
                options = {}
                if mode == "seed":
                    options["seed"] = 7
                elif mode == "generator":
                    options["generator"] = torch.Generator().manual_seed(11 + rank)  # differs by rank on purpose
                torch.manual_seed(100 + rank)  # nanoGPT seeds each rank differently
                ids = torch.arange(4 * windows + 4)
                try:
                    loader = create_dataloader(
                        ids, batch_size=%(batch)d, max_length=4, stride=4, drop_last=drop_last, **options
                    )
                except ValueError as error:
                    results.append({"mode": mode, "windows": windows, "drop_last": drop_last, "error": str(error)})
                    continue
                epochs = []
                for epoch in range(%(epochs)d):
                    loader.sampler.set_epoch(epoch)
                    seen = []
                    for inputs, targets in loader:
                        loss = model(inputs).pow(2).mean()
                        loss.backward()  # all-reduces the gradients with the other rank
                        optimizer.step()
                        optimizer.zero_grad()
                        seen.append([int(x[0]) // 4 for x in inputs])
                    epochs.append(seen)
                results.append({"mode": mode, "windows": windows, "drop_last": drop_last, "epochs": epochs})
    with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
        json.dump({"world": dist.get_world_size(), "results": results}, f)
    dist.destroy_process_group()
    """
) % {"modes": MODES, "counts": WINDOW_COUNTS, "batch": BATCH, "epochs": EPOCHS}


def one_process_orders(mode: str, windows: int, drop_last: bool) -> list[list[int]]:
    """Each epoch's permutation of the windows as torch's own samplers draw it in one process."""
    dataset = SlidingWindowDataset(torch.arange(4 * windows + 4), max_length=4, stride=4)
    if mode == "seed":
        orders = []
        for epoch in range(EPOCHS):
            sampler = DistributedSampler(dataset, num_replicas=1, rank=0, seed=7)
            sampler.set_epoch(epoch)
            orders.append(list(sampler))
        return orders
    torch.manual_seed(100)  # rank 0's seed: the ranks' shared order is rank 0's draw
    generator = torch.Generator().manual_seed(11) if mode == "generator" else None
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=drop_last, generator=generator)
    return [[int(x[0]) // 4 for inputs, _ in loader for x in inputs] for _ in range(EPOCHS)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("ddp")
    script = folder / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD)]
    result = subprocess.run([*command, str(script), str(folder)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(WORLD)]


def test_ddp_ranks_run_equal_steps_and_never_hang(ranks):
    assert all(r["world"] == WORLD for r in ranks)
    cases = list(zip(*(r["results"] for r in ranks), strict=True))
    assert len(cases) == len(MODES) * len(WINDOW_COUNTS) * 2
    for per_rank in cases:
        if "error" in per_rank[0]:  # refused alike on every rank, from the global count
            assert per_rank[0]["windows"] == 5 and per_rank[0]["drop_last"]
            assert all(r.get("error") == per_rank[0]["error"] for r in per_rank)
            assert "5 windows over 2 ranks give 2 per rank, fewer than batch_size=4" in per_rank[0]["error"]
            continue
        for epoch in range(EPOCHS):
            steps = [len(r["epochs"][epoch]) for r in per_rank]
            sizes = [[len(batch) for batch in r["epochs"][epoch]] for r in per_rank]
            assert len(set(steps)) == 1 and steps[0] >= 1, per_rank[0]
            assert sizes[0] == sizes[1]  # the same batch shapes, step by step


@pytest.mark.parametrize("mode", MODES)
def test_ddp_ranks_share_the_one_process_order(ranks, mode):
    """Interleaved, the ranks' windows are the one-process permutation, padded (or cut) to equal shares."""
    for per_rank in zip(*(r["results"] for r in ranks), strict=True):
        case = per_rank[0]
        if case["mode"] != mode or "error" in case:
            continue
        expected_orders = one_process_orders(mode, case["windows"], drop_last=False)  # the same permutations
        for epoch in range(EPOCHS):
            shares = [[i for batch in r["epochs"][epoch] for i in batch] for r in per_rank]
            interleaved = [shares[i % WORLD][i // WORLD] for i in range(WORLD * len(shares[0]))]
            padded = (expected_orders[epoch] * 2)[: len(interleaved)]
            assert interleaved == padded, (mode, case["windows"], case["drop_last"], epoch)
            if case["drop_last"]:
                assert len(set(interleaved)) == len(interleaved)  # cut, never repeated
            else:
                assert set(interleaved) == set(range(case["windows"]))  # padded, every window seen
        if case["windows"] >= 16:
            assert case["epochs"][0] != case["epochs"][1]  # each epoch its own order
