"""Embedding-stage speed: hf-embed against transformers' GPT-2 stage and the memory-bandwidth bound, one run.

For each device, dtype and shape it prints medians of repeated runs and the ratios that matter:
  forward          hf-embed `HfEmbedModel(ids)` and its layer `model.embeddings(ids)`, GPT-2's `wte(ids) + wpe(pos)`
                   (same weights), a plain copy of a tensor of the output's size (`clone`, which allocates like a
                   forward does), the token gather alone (`F.embedding(ids, wte)`: the floor for any gather of
                   rows spread over a table larger than the caches) and the raw two `F.embedding` calls plus add;
  forward+backward the same with loss = output.sum(); hf-embed dense and `sparse_gradients=True`;
  GB/s             2 x output bytes (rows read + output written) over the time.
Outputs are checked equal to the GPT-2 stage (bit-identical in fp32) before anything is timed.

    python scripts/bench_embed.py                      # CPU (and CUDA when present), fp32 and bf16
    python scripts/bench_embed.py --device cpu --dtype float32 --threads 1
    python scripts/bench_embed.py --compile            # also torch.compile(model), the fused gather + add
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2Model

from hf_embed import HfEmbedConfig, HfEmbedModel

V, D = 50257, 768
SHAPES = [(8, 1024), (1, 16), (64, 128)]


def medians_ms(fns: dict, device: str, repeat: int, block: int = 10) -> dict:
    """Median ms of each function. Each runs `block` times in a row (its steady state: allocator and
    caches warm for it), and the blocks rotate round-robin so that drift in the machine hits all alike."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = {name: [] for name in fns}
    for _ in range(max(1, repeat // block)):
        for name, fn in fns.items():
            fn()  # the first call of a block is not timed
            sync()
            for _ in range(block):
                start = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def build(device: str, dtype: torch.dtype, sparse: bool = False):
    torch.manual_seed(0)
    model = HfEmbedModel(HfEmbedConfig.from_preset("gpt2", embedding_dropout=0.0, sparse_gradients=sparse))
    gpt2 = GPT2Model(GPT2Config(n_layer=1, n_head=12, embd_pdrop=0.0))
    model.to_gpt2(gpt2)
    return model.to(device, dtype).eval(), gpt2.to(device, dtype).eval()


def gpt2_stage(gpt2, ids):
    """transformers' GPT-2 embedding stage as `GPT2Model.forward` computes it."""
    position_ids = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
    return gpt2.wte(ids) + gpt2.wpe(position_ids)


def with_backward(forward, params):
    """forward + backward of loss = output.sum(), gradients set to None first (no accumulation)."""
    params = list(params)

    def step():
        for p in params:
            p.grad = None
        forward().sum().backward()

    return step


def bench(device: str, dtype: torch.dtype, repeat: int, compile_: bool) -> list[dict]:
    model, gpt2 = build(device, dtype)
    sparse_model, _ = build(device, dtype, sparse=True)
    # torch.compile fuses the gather and the add into one kernel (one pass over the output); dynamic shapes
    # compile once for all three shapes. The first call pays the compile (tens of seconds on a small CPU).
    compiled = torch.compile(model, fullgraph=True, dynamic=True) if compile_ else None
    return [bench_shape(model, sparse_model, gpt2, compiled, batch, seq, dtype, repeat) for batch, seq in SHAPES]


def bench_shape(model, sparse_model, gpt2, compiled, batch: int, seq: int, dtype: torch.dtype, repeat: int) -> dict:
    device = model.device.type
    ids = torch.randint(0, V, (batch, seq), device=device)
    n = repeat * 20 if batch * seq <= 16 else repeat
    with torch.no_grad():
        ours, reference = model(ids).last_hidden_state, gpt2_stage(gpt2, ids)
        if dtype == torch.float32:
            assert torch.equal(ours, reference), "hf-embed differs from the GPT-2 stage"
        else:  # within one rounding of the reduced-precision sum
            torch.testing.assert_close(ours, reference)
        fns = {}
        if compiled is not None:
            assert torch.equal(compiled(ids).last_hidden_state, ours), "the compiled model differs from eager"
            fns["compiled_fwd"] = lambda: compiled(ids)
        source = torch.empty_like(ours).normal_()
        layer, wte, wpe = model.embeddings, model.embeddings.wte.weight, model.embeddings.wpe.weight
        positions = torch.arange(seq, device=device)
        forward = medians_ms(
            fns
            | {
                "hf_fwd": lambda: model(ids),
                "layer_fwd": lambda: layer(ids),
                "gpt2_fwd": lambda: gpt2_stage(gpt2, ids),
                "copy_fwd": source.clone,
                "gather_fwd": lambda: F.embedding(ids, wte),
                "raw_fwd": lambda: F.embedding(ids, wte) + F.embedding(positions, wpe),
            },
            device,
            n,
        )
    source.requires_grad_(True)
    steps = {
        "hf_bwd": with_backward(lambda: model(ids).last_hidden_state, model.parameters()),
        "gpt2_bwd": with_backward(lambda: gpt2_stage(gpt2, ids), gpt2.parameters()),
        "copy_bwd": with_backward(source.clone, [source]),
    }
    sparse_step = with_backward(lambda: sparse_model(ids).last_hidden_state, sparse_model.parameters())
    try:
        sparse_step()
        steps["hf_sparse_bwd"] = sparse_step
    except NotImplementedError:  # a dtype without sparse accumulation on this device
        pass
    row = {"device": device, "dtype": str(dtype).removeprefix("torch."), "shape": f"({batch}, {seq}, {D})"}
    row.update(forward)
    row.update(medians_ms(steps, device, max(5, n // 4)))
    row.setdefault("hf_sparse_bwd", float("nan"))
    row["gbps"] = 2 * ours.numel() * ours.element_size() / (row["hf_fwd"] * 1e-3) / 1e9
    return row


def report(rows: list[dict]) -> None:
    header = (
        f"{'device':6} {'dtype':8} {'shape':17} | {'fwd ms':>8} {'gpt2':>8} {'copy':>8} | {'hf/gpt2':>7} "
        f"{'hf/copy':>7} {'hf/gath':>7} {'hf/raw':>6} {'lyr/raw':>7} {'GB/s':>6} | {'f+b ms':>8} {'sparse':>8} "
        f"{'gpt2':>8} {'copy':>8} | {'gpt2/hf':>7} {'gpt2/sp':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['device']:6} {r['dtype']:8} {r['shape']:17} | {r['hf_fwd']:8.3f} {r['gpt2_fwd']:8.3f} "
            f"{r['copy_fwd']:8.3f} | {r['hf_fwd'] / r['gpt2_fwd']:7.2f} {r['hf_fwd'] / r['copy_fwd']:7.2f} "
            f"{r['hf_fwd'] / r['gather_fwd']:7.2f} {r['hf_fwd'] / r['raw_fwd']:6.2f} "
            f"{r['layer_fwd'] / r['raw_fwd']:7.2f} {r['gbps']:6.1f} | {r['hf_bwd']:8.2f} {r['hf_sparse_bwd']:8.2f} "
            f"{r['gpt2_bwd']:8.2f} {r['copy_bwd']:8.2f} | {r['gpt2_bwd'] / r['hf_bwd']:7.2f} "
            f"{r['gpt2_bwd'] / r['hf_sparse_bwd']:7.2f}"
        )
    print(
        "\nfwd: forward ms of HfEmbedModel (median). hf/gpt2, hf/copy, hf/gath, hf/raw: its time over GPT-2's stage, "
        "over a clone of the\noutput's size, over the token gather alone (F.embedding(ids, wte)), over two raw "
        "F.embedding calls plus add. lyr/raw: the\nembedding layer (model.embeddings, no ModelOutput) over the raw "
        "calls. f+b: forward+backward ms (dense, sparse token gradients);\ngpt2/hf, gpt2/sp: speed-ups over GPT-2's "
        "stage."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", choices=["cpu", "cuda"], help="default: cpu, and cuda if present")
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model): the fused kernel")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    dtypes = [getattr(torch, name) for name in (args.dtype or ["float32", "bfloat16"])]
    malloc = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, glibc malloc: {malloc or 'defaults'}")
    rows = [row for device in devices for dtype in dtypes for row in bench(device, dtype, args.repeat, args.compile)]
    report(rows)
    if args.compile:
        print(f"\n{'torch.compile':32} | {'fwd ms':>8} {'c/copy':>7} {'c/gpt2':>7} {'c/eager':>7} {'GB/s':>6}")
        for r in rows:
            gbps = r["gbps"] * r["hf_fwd"] / r["compiled_fwd"]
            print(
                f"{r['device']:6} {r['dtype']:8} {r['shape']:17} | {r['compiled_fwd']:8.3f} "
                f"{r['compiled_fwd'] / r['copy_fwd']:7.2f} {r['compiled_fwd'] / r['gpt2_fwd']:7.2f} "
                f"{r['compiled_fwd'] / r['hf_fwd']:7.2f} {gbps:6.1f}"
            )


if __name__ == "__main__":
    main()
