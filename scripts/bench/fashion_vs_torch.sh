#!/usr/bin/env bash
# Benchmarks pstrain against PyTorch on the reference Fashion-MNIST MLP, one thread each, and prints a table.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF'
usage: scripts/bench/fashion_vs_torch.sh [--repeats R] [--epochs E]

Trains examples/fashion_mlp.yaml with pstrain and the same workload with PyTorch
(scripts/bench/fashion_torch.py), R times each (default 3), alternating the two, on
one thread each, and prints the median training samples/s and test accuracy of each,
their ratio, and pstrain's share of the single-core compute ceiling.

  --repeats R   runs per tool (default 3)
  --epochs E    epochs per run, passed to both (default 10; 1 for a quick look)

Builds pstrain first (a no-op when it is up to date; BUILD_DIR overrides the build
directory; PSTRAIN names a binary to use as it is) and installs the benchmark packages if missing.
Timings only mean something on a quiet machine: the load average is printed too.
EOF
}

repeats=3
epochs=10
while [ $# -gt 0 ]; do
  case "$1" in
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  --repeats=*) repeats=${1#*=}; shift ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --epochs=*) epochs=${1#*=}; shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "fashion_vs_torch: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$repeats" "$epochs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "fashion_vs_torch: '$v' is not a positive integer" >&2; exit 2; }
done

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
# Built on every run unless PSTRAIN names a binary (a no-op when up to date; a failed build
# stops the script): an old binary would time other code than the tree's.
if [ -z "${PSTRAIN:-}" ]; then
  echo "fashion_vs_torch: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.jsonl

# PyTorch runs without any OpenBLAS kernel or cache-size override meant for pstrain.
torch_env=(env)
unset_note=""
for var in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  if [ -n "${!var+set}" ]; then
    torch_env+=(-u "$var")
    unset_note+=" $var=${!var}"
  fi
done
torch_env+=(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)

run_pstrain() { # $1: repeat number; appends one JSON line to $results
  local out=$tmp/pstrain-$1
  if ! OPENBLAS_NUM_THREADS=1 "$pstrain" train examples/fashion_mlp.yaml --quiet --out "$out" \
    --set train.epochs="$epochs" --set train.progress=none >"$out.log" 2>&1; then
    cat "$out.log" >&2
    echo "fashion_vs_torch: pstrain failed" >&2
    exit 1
  fi
  "$python" - "$out/report.json" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"tool": "pstrain", "samples_per_s": r["train"]["samples_per_s"],
                  "seconds": r["train"]["seconds"], "test_accuracy": r["test"]["accuracy"]}))
EOF
}

run_torch() { # $1: repeat number; appends one JSON line to $results
  local line
  line=$("${torch_env[@]}" "$python" scripts/bench/fashion_torch.py --epochs "$epochs" | tail -n 1)
  "$python" -c 'import json, sys; r = json.loads(sys.argv[1]); r["tool"] = "pytorch"; print(json.dumps(r))' \
    "$line" >>"$results"
}

say_last() { # one progress line on stderr for the run just recorded
  tail -n 1 "$results" | "$python" -c 'import json, sys
r = json.loads(sys.stdin.read())
print("  %-8s %8.0f samples/s  %6.1f s  test accuracy %.4f" % (r["tool"], r["samples_per_s"], r["seconds"], r["test_accuracy"]), file=sys.stderr)'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "fashion_vs_torch: $repeats repeats x $epochs epochs per tool; load average $load_before on $(nproc) cores" >&2
if [ -n "$unset_note" ]; then echo "fashion_vs_torch: unset for PyTorch only:$unset_note" >&2; fi
for r in $(seq 1 "$repeats"); do
  echo "repeat $r/$repeats" >&2
  run_pstrain "$r"
  say_last
  run_torch "$r"
  say_last
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

pst_blas=$(OPENBLAS_NUM_THREADS=1 "$python" - "$pstrain" <<'EOF'
import ctypes, subprocess, sys
# The OpenBLAS the pstrain binary links, asked in pstrain's environment which kernel it picks.
libs = [l.split()[2] for l in subprocess.run(["ldd", sys.argv[1]], capture_output=True, text=True).stdout.splitlines()
        if "openblas" in l and "=>" in l]
try:
    lib = ctypes.CDLL(libs[0])
    lib.openblas_get_corename.restype = ctypes.c_char_p
    print("OpenBLAS %s, kernel %s" % (libs[0], lib.openblas_get_corename().decode()))
except (IndexError, OSError, AttributeError):
    print("unknown")
EOF
)

"$python" - "$results" "$repeats" "$epochs" "$load_before" "$load_after" "$pst_blas" <<'EOF'
import json, statistics, sys

path, repeats, epochs, load_before, load_after, pst_blas = sys.argv[1:7]
runs = [json.loads(line) for line in open(path)]
by_tool = {t: [r for r in runs if r["tool"] == t] for t in ("pstrain", "pytorch")}

# Cost of one training sample: each of the 784*256 + 256*128 + 128*10 = 234,752 weights takes
# one multiply-add (2 flops) in the forward pass and two in the backward pass (the gradient of
# the layer's input and of the weight), so 6 flops per weight per sample. Biases, activations,
# the loss and the optimizer are left out: they are O(units), not O(weights).
WEIGHTS = 784 * 256 + 256 * 128 + 128 * 10
FLOP_PER_SAMPLE = 6 * WEIGHTS
PEAK_GFLOPS = 95.0  # one core: AVX2 FMA, 2 x 8 fp32 lanes x 2 flops per cycle at ~3 GHz
CEILING = PEAK_GFLOPS * 1e9 / FLOP_PER_SAMPLE
SPEED_TARGET, ACC_TARGET = 1.5, 0.885
# What both programs execute: no gradient for the input pixels, so the first layer's dX product
# (784*256 weights) is skipped and the backward pass costs 2W + 2*(W - 784*256).
EXECUTED_FLOP = 4 * WEIGHTS + 2 * (WEIGHTS - 784 * 256)


def med(tool, key):
    return statistics.median(r[key] for r in by_tool[tool])


def spread(tool):
    v = [r["samples_per_s"] for r in by_tool[tool]]
    return "%.0f..%.0f" % (min(v), max(v))


def verdict(ok):
    return "met" if ok else "MISSED"


print()
print("Fashion-MNIST MLP 784-256-128-10, Adam 1e-3, batch 64, %s epochs, 54,000 training rows;"
      % epochs)
print("one thread each; medians of %s runs per tool, alternating pstrain and PyTorch" % repeats)
print()
print("%-8s %12s %18s %10s %10s" % ("tool", "samples/s", "range", "train s", "test acc"))
for tool, name in (("pstrain", "pstrain"), ("pytorch", "PyTorch")):
    print("%-8s %12.0f %18s %10.2f %10.4f" % (name, med(tool, "samples_per_s"), spread(tool),
                                              med(tool, "seconds"), med(tool, "test_accuracy")))
print()
pst, pt = med("pstrain", "samples_per_s"), med("pytorch", "samples_per_s")
acc = med("pstrain", "test_accuracy")
ratio = pst / pt
print("pstrain / PyTorch samples/s : %5.2fx   target >= %.1fx     %s"
      % (ratio, SPEED_TARGET, verdict(ratio >= SPEED_TARGET)))
print("pstrain test accuracy       : %.4f   target >= %.3f   %s"
      % (acc, ACC_TARGET, verdict(acc >= ACC_TARGET)))
print("pstrain compute             : %5.1f GFLOP/s = %.0f%% of the %.0fk samples/s ceiling"
      % (pst * FLOP_PER_SAMPLE / 1e9, 100 * pst / CEILING, CEILING / 1e3))
print("  (%.2f MFLOP per sample = 6 flops x %d weights: 2 per multiply-add forward, 4 backward;"
      % (FLOP_PER_SAMPLE / 1e6, WEIGHTS))
print("   ceiling = %.0f GFLOP/s per core / %.2f MFLOP)" % (PEAK_GFLOPS, FLOP_PER_SAMPLE / 1e6))
print("PyTorch compute             : %5.1f GFLOP/s on the same count" % (pt * FLOP_PER_SAMPLE / 1e9))
print("  (executed: neither computes the input layer's dX, so a sample runs %.2f MFLOP of GEMM;"
      % (EXECUTED_FLOP / 1e6))
print("   pstrain %.1f, PyTorch %.1f GFLOP/s executed; ceiling %.0fk samples/s)"
      % (pst * EXECUTED_FLOP / 1e9, pt * EXECUTED_FLOP / 1e9, PEAK_GFLOPS * 1e6 / EXECUTED_FLOP))
print()
print("pstrain BLAS : %s" % pst_blas)
print("PyTorch BLAS : %s (torch %s, %s thread)" % (by_tool["pytorch"][0].get("blas", "?"),
                                                   by_tool["pytorch"][0].get("torch", "?"),
                                                   by_tool["pytorch"][0].get("threads", "?")))
print("load average : %s before, %s after (other work on the machine makes the numbers noisy)"
      % (load_before, load_after))
EOF
