"""Embedding-stage speed: hf-embed against transformers' GPT-2 stage and the memory floors, ratios from one run.

Contenders, for each device, dtype and shape (GPT-2's V = 50257, D = 768 unless --vocab/--hidden):
  hf        `HfEmbedModel(ids)`, eager (on CPU the cache-blocked gather + add, `hf_embed.gather_add`)
  layer     its layer `model.embeddings(ids)` (no `ModelOutput`)
  compiled  `torch.compile(model, fullgraph=True)`: gather and add fused into one kernel (with --compile)
  gpt2      transformers' GPT-2 stage, `wte(ids) + wpe(arange(T))` with the same weights
  gather    the token gather alone, `torch.index_select(wte, 0, ids, out=...)` into a preallocated output: the
            floor of any lookup of rows spread over a table larger than the caches
  copy      a device-to-device copy of a tensor of the output's size into a preallocated one: the bandwidth floor
  raw       `F.embedding(ids, wte) + F.embedding(pos, wpe)`: the reference for the layer's small calls
and forward+backward (loss = output.sum(), gradients set to None first): hf with dense and with sparse token-table
gradients (`sparse_gradients=True`), gpt2, compiled.

Timing: in each round every contender runs a block of calls (the first untimed: its allocator and cache state) and
the order rotates from round to round; each ratio is taken within a round, where the machine is the same for
both, and printed as the median over rounds [lowest-highest]. Before anything is timed, every output is checked
equal, bit for bit, to the GPT-2 stage (and on CUDA to the CPU's output for the same weights and ids).

    python scripts/bench_embed.py                           # CPU (and CUDA when present), float32 and bfloat16
    python scripts/bench_embed.py --device cuda --compile   # what scripts/gpu_check.sh runs
    python scripts/bench_embed.py --device cpu --threads 1 --dtype float32 --shapes 8x1024
    python scripts/bench_embed.py --shapes 2x16 --vocab 99 --hidden 32 --rounds 2   # a smoke test in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2Model

from hf_embed import HfEmbedConfig, HfEmbedModel

SMALL_CALL_TOKENS = 256  # at most this many tokens: a small call (token-by-token generation), timed in longer blocks


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """ "8x1024,1x16" -> [(8, 1024), (1, 16)]: (batch, sequence length) pairs."""
    shapes = []
    for shape in text.split(","):
        batch, seq_len = (int(n) for n in shape.lower().split("x"))
        shapes.append((batch, seq_len))
    return shapes


def machine() -> str:
    """The CPU (or GPU), threads, torch, load and allocator settings: what every number here depends on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(("MALLOC_", "OMP_")))
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return text + f"; environment: {env or 'defaults'}"


def load() -> str:
    return "load average " + (" ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?")


class Timer:
    """Seconds per call of each contender, one median per round; calls run in blocks, contenders rotate."""

    def __init__(self, device: str, rounds: int, block: int, clock: Callable[[], float] = time.perf_counter):
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        self.clock = clock
        # On CUDA a call can take microseconds: time several between synchronizations.
        self.calls = 10 if device == "cuda" else 1
        self.rounds, self.block = rounds, block

    def run(self, fns: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
        names = list(fns)
        per_round: dict[str, list[float]] = {name: [] for name in names}
        for r in range(self.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                fn = fns[name]
                fn()  # untimed: brings this contender's allocations and caches to their state
                self.sync()
                samples = []
                for _ in range(self.block):
                    start = self.clock()
                    for _ in range(self.calls):
                        fn()
                    self.sync()
                    samples.append((self.clock() - start) / self.calls)
                per_round[name].append(statistics.median(samples))
        return per_round


def medians_ms(fns: dict[str, Callable[[], object]], device: str, repeat: int, block: int = 10) -> dict[str, float]:
    """Median ms per call of each function, `repeat` calls in rotating blocks (bench_load.py and bench_save.py)."""
    times = Timer(device, max(1, repeat // block), block).run(fns)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def ratio(times: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    """a / b within each round: (median, lowest, highest)."""
    ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def build(args, device: str, dtype: torch.dtype, *, sparse: bool = False):
    """hf-embed and transformers' GPT-2 with the same tables, seeded, eval mode, no dropout."""
    torch.manual_seed(0)
    max_len = max(seq_len for _, seq_len in args.shapes)
    layers = {"n_layer": 0, "n_head": 1, "embd_pdrop": 0.0}  # the embedding stage only
    sizes = {"vocab_size": args.vocab, "hidden_size": args.hidden, "max_position_embeddings": max(1024, max_len)}
    sizes |= {"bos_token_id": args.vocab - 1, "eos_token_id": args.vocab - 1}  # GPT-2's 50256 at its vocabulary
    config = HfEmbedConfig.from_preset("gpt2", embedding_dropout=0.0, sparse_gradients=sparse, **sizes)
    model = HfEmbedModel(config)
    sizes = {"vocab_size": args.vocab, "n_embd": args.hidden, "n_positions": config.max_position_embeddings}
    gpt2 = GPT2Model(GPT2Config(**sizes, bos_token_id=args.vocab - 1, eos_token_id=args.vocab - 1, **layers))
    model.to_gpt2(gpt2)
    return model.to(device, dtype).eval(), gpt2.to(device, dtype).eval()


def gpt2_stage(gpt2, ids):
    """transformers' GPT-2 embedding stage as `GPT2Model.forward` computes it."""
    position_ids = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
    return gpt2.wte(ids) + gpt2.wpe(position_ids)


def with_backward(forward: Callable[[], torch.Tensor], params) -> Callable[[], None]:
    """forward + backward of loss = output.sum(), gradients set to None first (no accumulation)."""
    params = list(params)

    def step():
        for p in params:
            p.grad = None
        forward().sum().backward()

    return step


def bench(args, device: str, dtype: torch.dtype) -> list[dict]:
    model, gpt2 = build(args, device, dtype)
    cpu_model = build(args, "cpu", dtype)[0] if device != "cpu" else None
    sparse_model, _ = build(args, device, dtype, sparse=True)
    # Static shapes: one compiled graph per shape and grad mode, the best code for each (what a fixed-length
    # pipeline sees). Room for all of them, or dynamo would fall back to eager after its default 8.
    torch._dynamo.config.recompile_limit = 64
    compiled = torch.compile(model, fullgraph=True, dynamic=False) if args.compile else None
    rows = []
    for batch, seq_len in args.shapes:
        generator = torch.Generator().manual_seed(batch * 100_003 + seq_len)
        ids = torch.randint(0, args.vocab, (batch, seq_len), generator=generator)
        reference = cpu_model(ids).last_hidden_state.detach() if cpu_model is not None else None
        rows.append(bench_shape(args, model, sparse_model, gpt2, compiled, ids.to(device), reference))
        print(f"  measured {device} {rows[-1]['dtype']} {rows[-1]['shape']} ({load()})", flush=True)
    return rows


def bench_shape(args, model, sparse_model, gpt2, compiled, ids, cpu_reference) -> dict:
    device = ids.device.type
    small = ids.numel() <= SMALL_CALL_TOKENS
    clock = time.process_time if args.clock == "cpu" and device == "cpu" else time.perf_counter
    timer = Timer(device, args.rounds, args.block * (20 if small and device == "cpu" else 1), clock)
    layer, wte, wpe = model.embeddings, model.embeddings.wte.weight, model.embeddings.wpe.weight
    positions = torch.arange(ids.shape[1], device=device)
    with torch.no_grad():
        ours = model(ids).last_hidden_state
        assert torch.equal(ours, gpt2_stage(gpt2, ids)), "hf-embed differs from the GPT-2 stage"
        assert torch.equal(layer(ids)[0], ours), "the layer differs from the model"
        if cpu_reference is not None:
            assert torch.equal(ours.cpu(), cpu_reference), f"hf-embed on {device} differs from the CPU"
        gathered, source = torch.empty_like(ours), torch.randn_like(ours)
        copied = torch.empty_like(ours)
        fns = {
            "hf": lambda: model(ids),
            "layer": lambda: layer(ids),
            "gpt2": lambda: gpt2_stage(gpt2, ids),
            "gather": lambda: torch.index_select(wte, 0, ids.view(-1), out=gathered.view(-1, wte.shape[1])),
            "copy": lambda: copied.copy_(source),
            "raw": lambda: F.embedding(ids, wte) + F.embedding(positions, wpe),
        }
        if compiled is not None:
            assert torch.equal(compiled(ids).last_hidden_state, ours), "the compiled model differs from eager"
            fns["compiled"] = lambda: compiled(ids)
        forward = timer.run(fns)

    steps = {
        "hf_fb": with_backward(lambda: model(ids).last_hidden_state, model.parameters()),
        "gpt2_fb": with_backward(lambda: gpt2_stage(gpt2, ids), gpt2.parameters()),
    }
    sparse_step = with_backward(lambda: sparse_model(ids).last_hidden_state, sparse_model.parameters())
    try:
        sparse_step()
        steps["sparse_fb"] = sparse_step
    except (NotImplementedError, RuntimeError) as error:  # a dtype without sparse accumulation on this device
        print(f"  sparse gradients not timed for {ours.dtype} on {device}: {str(error).splitlines()[0]}")
    if compiled is not None:
        steps["compiled_fb"] = with_backward(lambda: compiled(ids).last_hidden_state, model.parameters())
    backward = Timer(device, args.rounds, max(3, args.block // 2), clock).run(steps)

    times = forward | backward
    row = {
        "device": device,
        "dtype": str(ours.dtype).removeprefix("torch."),
        "shape": f"({ids.shape[0]}, {ids.shape[1]}, {ours.shape[-1]})",
        "ms": {name: statistics.median(t) * 1e3 for name, t in times.items()},
        "ratios": {},
        "tokens": ids.numel(),
        "output_bytes": ours.numel() * ours.element_size(),
    }
    pairs = [("hf", "gather"), ("gpt2", "hf"), ("copy", "hf"), ("layer", "raw"), ("gather", "copy")]
    pairs += [("compiled", "gather"), ("gpt2", "compiled"), ("copy", "compiled")] if compiled is not None else []
    pairs += [("gpt2_fb", "hf_fb"), ("gpt2_fb", "sparse_fb"), ("gpt2_fb", "compiled_fb")]
    for a, b in pairs:
        if a in times and b in times:
            row["ratios"][f"{a}/{b}"] = ratio(times, a, b)
    return row


def fmt(row: dict, key: str, spread: bool = False, percent: bool = False) -> str:
    if key not in row["ratios"]:
        return ""
    median, low, high = row["ratios"][key]
    scale = 100 if percent else 1
    text = f"{median * scale:.0f}%" if percent else f"{median:.2f}"
    return text + (f" [{low * scale:.2f}-{high * scale:.2f}]" if spread and not percent else "")


def report(rows: list[dict], compiled: bool) -> None:
    """One summary table: forward against the floors and GPT-2, the small-call overhead, forward+backward."""
    columns = [
        ("device", lambda r: r["device"], 6),
        ("dtype", lambda r: r["dtype"], 8),
        ("shape", lambda r: r["shape"], 16),
        ("hf ms", lambda r: f"{r['ms']['hf']:.3f}", 8),
        ("hf/gather [range]", lambda r: fmt(r, "hf/gather", spread=True), 17),
        ("gpt2/hf", lambda r: fmt(r, "gpt2/hf"), 7),
        ("%copy", lambda r: fmt(r, "copy/hf", percent=True), 5),
        ("GB/s", lambda r: f"{2 * r['output_bytes'] / (r['ms']['hf'] * 1e-3) / 1e9:.1f}", 6),
        ("lyr/raw", lambda r: fmt(r, "layer/raw"), 7),
    ]
    if compiled:
        columns += [
            ("comp ms", lambda r: f"{r['ms']['compiled']:.3f}", 8),
            ("comp/gath", lambda r: fmt(r, "compiled/gather"), 9),
            ("gpt2/comp", lambda r: fmt(r, "gpt2/compiled"), 9),
            ("c%copy", lambda r: fmt(r, "copy/compiled", percent=True), 6),
        ]
    columns += [
        ("f+b ms", lambda r: f"{r['ms']['hf_fb']:.2f}", 8),
        ("gpt2/f+b", lambda r: fmt(r, "gpt2_fb/hf_fb"), 8),
        ("gpt2/sparse", lambda r: fmt(r, "gpt2_fb/sparse_fb"), 11),
    ]
    if compiled:
        columns.append(("gpt2/c f+b", lambda r: fmt(r, "gpt2_fb/compiled_fb"), 10))
    header = " ".join(f"{name:>{width}}" for name, _, width in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(" ".join(f"{get(row):>{width}}" for _, get, width in columns))
    print(
        "\nhf ms: forward of HfEmbedModel (median). hf/gather: over the token gather alone (index_select into a "
        "preallocated\noutput), median over rounds [lowest-highest]. gpt2/hf: GPT-2's stage over hf-embed (>1: "
        "hf-embed faster). %copy: the\nshare of a device-to-device copy's bandwidth that the forward reaches; GB/s: "
        "2 x output bytes / time. lyr/raw: the\nlayer over two raw F.embedding calls plus add. comp: "
        "torch.compile(model, fullgraph=True). f+b: forward + backward\n(loss = sum); gpt2/f+b, gpt2/sparse, "
        "gpt2/c f+b: GPT-2's step over hf-embed's with dense, sparse and compiled dense gradients."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", choices=["cpu", "cuda"], help="default: cpu, and cuda if present")
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--shapes", type=parse_shapes, default=parse_shapes("8x1024,64x128,1x16"), help="BxT,...")
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of rotating blocks (default 7)")
    parser.add_argument("--block", type=int, default=8, help="timed calls per contender per round (default 8)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: CPU time of the process instead of wall time, for a loaded machine (CPU only; with more than one "
        "thread set OMP_WAIT_POLICY=PASSIVE, or waiting threads count)",
    )
    parser.add_argument("--compile", action="store_true", help="also torch.compile(model): the fused kernel")
    parser.add_argument("--json", help="also write every median and ratio to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    dtypes = [getattr(torch, name) for name in (args.dtype or ["float32", "bfloat16"])]
    print(machine() + f"; {args.clock} clock")
    print(f"start: {load()}", flush=True)
    rows = [row for device in devices for dtype in dtypes for row in bench(args, device, dtype)]
    print(f"end: {load()}\n")
    report(rows, args.compile)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "load": load(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
