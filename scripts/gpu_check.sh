#!/usr/bin/env bash
# hf-embed's GPU checks in one command, for a machine with one NVIDIA GPU (a few minutes; each step has a time
# limit, all together under 8 minutes):
#   1. the `cuda`-marked tests: CUDA outputs equal the CPU's (every position scheme, float32/bfloat16/float16), no
#      host synchronization in the forward (torch.cuda.set_sync_debug_mode("error")), compiled equals eager, a bad
#      id is a device assert naming the vocabulary size, gradients equal the CPU's within float32 rounding;
#   2. scripts/bench_embed.py --device cuda --compile: float32 and bfloat16, forward and forward+backward, dense and
#      sparse gradients, eager and compiled, against GPT-2's stage and a device-to-device copy (GB/s); it checks
#      every output equal to GPT-2's stage and to the CPU's before timing;
#   3. one summary: the tests' result, the benchmark's table, and the CUDA target (the fused, compiled forward at
#      least 80% of the copy's bandwidth at the large shapes).
#
#   scripts/gpu_check.sh               # makes .venv-gpu, which sees the system's packages (a CUDA torch installed
#                                      # there is used), and runs pip install -e ".[dev]" into it
#   scripts/gpu_check.sh --current     # the active environment, where pip install -e ".[dev]" was already done
#   scripts/gpu_check.sh --current --device cpu   # a dry run of this script on a machine without a GPU: the same
#                                      # steps on the CPU with tiny sizes (vocabulary 99, hidden 32); the
#                                      # cuda-marked tests are then skipped, and nothing it prints is a GPU number
#
# Needs an NVIDIA driver, Python >= 3.10 and a CUDA build of torch >= 2.4, installed already (system-wide, or in the
# active environment) or reachable on the package index (pip then downloads it: several GB, allow the time). With
# no package index, .venv-gpu uses what the system has with src/ on the path, and the script names what is
# missing. Time limits: setup 120 s, tests 120 s, benchmark 210 s (450 s, under 8 minutes, in all). Writes
# gpu-check/ (the log and the benchmark's JSON; git ignores it), or the folder named by GPU_CHECK_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${GPU_CHECK_OUT:-gpu-check}  # the log and the JSON
mkdir -p "$out"
rm -f "$out/bench.json"
exec > >(tee "$out/log.txt") 2>&1
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }

usage() {
    echo "usage: scripts/gpu_check.sh [--current] [--device cuda|cpu]" >&2
    exit 2
}
current=0
device=cuda
while [[ $# -gt 0 ]]; do
    case "$1" in
        --current) current=1 ;;
        --device)
            [[ "${2:-}" == cuda || "${2:-}" == cpu ]] || usage
            device=$2
            shift
            ;;
        *) usage ;;
    esac
    shift
done

if [[ $current == 1 ]]; then
    python=${PYTHON:-python}
    echo "== using the active environment: $($python -c 'import sys; print(sys.prefix)')"
else
    if [[ ! -x .venv-gpu/bin/python ]]; then
        python3 -m venv --system-site-packages .venv-gpu
    fi
    python=.venv-gpu/bin/python
    echo "== installing the project into .venv-gpu (pip install -e \".[dev]\", at most 120 s)"
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 timeout 120 "$python" -m pip install -q -e ".[dev]"; then
        echo "pip could not install everything (no package index?): using the system's packages and src/"
        export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi

bench_args=(--compile)
if [[ $device == cpu ]]; then  # a check of the script, not a measurement: tiny sizes, few rounds
    bench_args+=(--shapes 64x128,1x16 --vocab 99 --hidden 32 --rounds 2 --block 2)
fi

"$python" - "$device" <<'EOF'
import importlib.util
import sys

needed = ["torch", "transformers", "safetensors", "tokenizers", "huggingface_hub", "accelerate", "numpy", "tqdm",
          "pytest", "hypothesis", "hf_embed"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"missing packages: {', '.join(missing)} (pip install -e '.[dev]' with a CUDA build of torch)")
import torch

if sys.argv[1] == "cpu":
    print(f"dry run on the CPU: torch {torch.__version__}")
elif not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda or 'no'})")
else:
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
EOF
echo "== setup done after $(elapsed)"

echo "== the cuda-marked tests (at most 120 s)"
tests=0
timeout 120 "$python" -m pytest -m cuda -q -rs -p no:cacheprovider tests || tests=$?
echo "== tests done after $(elapsed) (exit status $tests)"

echo "== scripts/bench_embed.py --device $device ${bench_args[*]} (at most 210 s)"
bench=0
timeout 210 "$python" scripts/bench_embed.py --device "$device" "${bench_args[@]}" --json "$out/bench.json" || bench=$?
echo "== benchmark done after $(elapsed) (exit status $bench)"

echo
echo "================================ summary ================================"
"$python" - "$out/bench.json" "$tests" "$bench" "$device" <<'EOF'
import json
import sys

path, tests, bench, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
log = path.rsplit("/", 1)[0] + "/log.txt"
dry_run = device == "cpu"
if dry_run:
    print("DRY RUN on the CPU (tiny sizes): checks this script; CUDA is unmeasured")
passed = "skipped on the CPU" if dry_run else "passed"
print(f"cuda-marked tests: {passed if tests == 0 else f'FAILED (exit status {tests}; see {log})'}")
if bench != 0:
    sys.exit(f"benchmark: FAILED (exit status {bench}; 124 is the time limit; see {log})")
result = json.load(open(path))
checked = "GPT-2's stage" + ("" if dry_run else " and the CPU's")
print(f"benchmark: outputs equal {checked} (checked before timing); {result['machine']}")
print(f"{'dtype':8} {'shape':16} {'eager ms':>9} {'%copy':>6} {'gpt2/hf':>8} {'comp ms':>8} {'%copy':>6} "
      f"{'gpt2/comp':>9} {'GB/s':>6} {'gpt2/f+b':>8} {'sparse':>6}  target")
failed = False
for row in result["rows"]:
    ms, ratios = row["ms"], row["ratios"]
    large = row["tokens"] > 256  # not the small (1, 16) call
    fused = ratios["copy/compiled"][0]
    verdict = ("met" if fused >= 0.8 else "MISSED") if large else "(small call)"
    verdict = "(dry run)" if dry_run else verdict
    failed |= large and fused < 0.8 and not dry_run
    print(f"{row['dtype']:8} {row['shape']:16} {ms['hf']:9.4f} {ratios['copy/hf'][0]:6.0%} {ratios['gpt2/hf'][0]:8.2f} "
          f"{ms['compiled']:8.4f} {fused:6.0%} {ratios['gpt2/compiled'][0]:9.2f} "
          f"{2 * row['output_bytes'] / (ms['compiled'] * 1e-3) / 1e9:6.0f} {ratios['gpt2_fb/hf_fb'][0]:8.2f} "
          f"{ratios.get('gpt2_fb/sparse_fb', [float('nan')])[0]:6.2f}  {verdict}")
print("%copy: share of a device-to-device copy's bandwidth; target: compiled forward >= 80% at the large shapes")
sys.exit(1 if failed or tests else 0)
EOF
