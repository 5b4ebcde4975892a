#!/usr/bin/env bash
# Benchmarks pstrain against PyTorch on examples/fashion_cnn.yaml, one pinned thread each, with the
# sgemm ceiling measured in the same run, and prints a table of medians.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF'
usage: scripts/bench/cnn_vs_torch.sh [--repeats R] [--epochs E] [--cpu N]

Trains examples/fashion_cnn.yaml with pstrain and the same network with PyTorch
(scripts/bench/fashion_cnn_torch.py, Debian's python3-torch), R times each (default 3),
alternating the two, both pinned to core N (default 0) with one thread, and prints the
median training samples/s and test accuracy of each, their ratio against the targets
(>= 1.3x PyTorch's samples/s; accuracy >= 0.91 after 5 epochs and not below PyTorch's by
more than 0.005), and pstrain's GFLOP/s against the single-thread sgemm rate measured on
the same core in the same run.

  --repeats R   runs per tool (default 3)
  --epochs E    epochs per run, passed to both (default 5; the accuracy target is for 5)
  --cpu N       core both tools are pinned to (default 0)

Builds pstrain first (BUILD_DIR overrides the build directory; PSTRAIN names a binary to
use as it is). Timings only mean something on a quiet machine: the load average is printed.
EOF
}

repeats=3
epochs=5
cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --cpu) cpu=${2:?--cpu needs a value}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "cnn_vs_torch: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$repeats" "$epochs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "cnn_vs_torch: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$cpu" =~ ^[0-9]+$ ]] || { echo "cnn_vs_torch: --cpu '$cpu' is not a core number" >&2; exit 2; }

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  echo "cnn_vs_torch: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3
pin=(taskset -c "$cpu")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.jsonl

# PyTorch runs without any OpenBLAS kernel or cache-size override meant for pstrain.
torch_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)

run_pstrain() { # $1: repeat number; appends one JSON line to $results
  local out=$tmp/pstrain-$1
  if ! OPENBLAS_NUM_THREADS=1 "${pin[@]}" "$pstrain" train examples/fashion_cnn.yaml --quiet \
    --out "$out" --set train.epochs="$epochs" --set train.progress=none >"$out.log" 2>&1; then
    cat "$out.log" >&2
    echo "cnn_vs_torch: pstrain failed" >&2
    exit 1
  fi
  "$python" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"tool": "pstrain", "samples_per_s": r["train"]["samples_per_s"],
                  "seconds": r["train"]["seconds"], "test_accuracy": r["test"]["accuracy"]}))' \
    "$out/report.json" >>"$results"
}

run_torch() { # $1: repeat number; appends one JSON line to $results
  local line
  line=$("${torch_env[@]}" "${pin[@]}" "$python" scripts/bench/fashion_cnn_torch.py --epochs "$epochs" | tail -n 1)
  "$python" -c 'import json, sys; r = json.loads(sys.argv[1]); r["tool"] = "pytorch"; print(json.dumps(r))' \
    "$line" >>"$results"
}

say_last() {
  tail -n 1 "$results" | "$python" -c 'import json, sys
r = json.loads(sys.stdin.read())
print("  %-8s %8.0f samples/s  %7.1f s  test accuracy %.4f" % (r["tool"], r["samples_per_s"], r["seconds"], r["test_accuracy"]), file=sys.stderr)'
}

# The single-thread sgemm rate of the OpenBLAS pstrain links, on the same core: square products
# of the sizes the CNN's largest GEMM has in common (k = 288), median of 5.
sgemm_ceiling() {
  OPENBLAS_NUM_THREADS=1 "${pin[@]}" "$python" - "$pstrain" <<'EOF'
import ctypes, statistics, subprocess, sys, time
libs = [l.split()[2] for l in subprocess.run(["ldd", sys.argv[1]], capture_output=True, text=True).stdout.splitlines()
        if "openblas" in l and "=>" in l]
lib = ctypes.CDLL(libs[0])
m, n, k = 64, 12544, 288  # the second convolution's forward GEMM for a batch of 64
a = (ctypes.c_float * (m * k))(*([0.5] * (m * k)))
b = (ctypes.c_float * (k * n))(*([0.25] * (k * n)))
c = (ctypes.c_float * (m * n))()
lib.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int,
                            ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
rates = []
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(20):
        lib.cblas_sgemm(101, 111, 111, m, n, k, 1.0, a, k, b, n, 0.0, c, n)
    rates.append(20 * 2.0 * m * n * k / (time.perf_counter() - t0) / 1e9)
print("%.1f" % statistics.median(rates))
EOF
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "cnn_vs_torch: $repeats repeats x $epochs epochs per tool on core $cpu; load average $load_before on $(nproc) cores" >&2
ceilings=()
for r in $(seq 1 "$repeats"); do
  echo "repeat $r/$repeats" >&2
  ceilings+=("$(sgemm_ceiling)")
  run_pstrain "$r"
  say_last
  run_torch "$r"
  say_last
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# Where pstrain's step goes, layer group by layer group, in thread CPU time (so that other work on
# the core does not count), against an sgemm rate it measures in CPU time too.
layers_bin=$build_dir/scripts/bench/cnn_layers
layers_out=$tmp/layers.txt
if [ -x "$layers_bin" ]; then
  OPENBLAS_NUM_THREADS=1 "${pin[@]}" "$layers_bin" 200 >"$layers_out" 2>&1 || true
fi

"$python" - "$results" "$repeats" "$epochs" "$load_before" "$load_after" "${ceilings[@]}" <<'EOF'
import json, statistics, sys

path, repeats, epochs, load_before, load_after = sys.argv[1:6]
ceiling = statistics.median(float(v) for v in sys.argv[6:])
runs = [json.loads(line) for line in open(path)]
by_tool = {t: [r for r in runs if r["tool"] == t] for t in ("pstrain", "pytorch")}

# GEMM work per training sample as pstrain executes it (multiply-add = 2 flops): forward
# conv1 2*32*9*784, conv2 2*64*288*196, dense 2*3136*128 and 2*128*10; backward twice each (the
# weight gradient and the input gradient) except conv1, whose input gradient is not needed.
CONV1, CONV2 = 2 * 32 * 9 * 784, 2 * 64 * 288 * 196
DENSE = 2 * 3136 * 128 + 2 * 128 * 10
FLOP = 2 * CONV1 + 3 * (CONV2 + DENSE)
SPEED_TARGET, ACC_TARGET, ACC_GAP = 1.3, 0.91, 0.005

def med(tool, key):
    return statistics.median(r[key] for r in by_tool[tool])

def verdict(ok):
    return "met" if ok else "MISSED"

print()
print("Fashion-MNIST CNN (examples/fashion_cnn.yaml), Adam 1e-3, batch 64, %s epochs, 54,000 rows;" % epochs)
print("one thread each, pinned to one core; medians of %s runs per tool, alternating" % repeats)
print()
print("%-8s %12s %10s %10s" % ("tool", "samples/s", "train s", "test acc"))
for tool, name in (("pstrain", "pstrain"), ("pytorch", "PyTorch")):
    print("%-8s %12.1f %10.1f %10.4f" % (name, med(tool, "samples_per_s"), med(tool, "seconds"),
                                        med(tool, "test_accuracy")))
print()
pst, pt = med("pstrain", "samples_per_s"), med("pytorch", "samples_per_s")
acc, acc_pt = med("pstrain", "test_accuracy"), med("pytorch", "test_accuracy")
print("pstrain / PyTorch samples/s : %5.2fx   target >= %.1fx   %s" % (pst / pt, SPEED_TARGET, verdict(pst / pt >= SPEED_TARGET)))
acc_ok = acc >= ACC_TARGET and acc >= acc_pt - ACC_GAP and epochs == "5"
print("pstrain test accuracy       : %.4f (PyTorch %.4f)   target >= %.2f after 5 epochs and >= PyTorch - %.3f   %s"
      % (acc, acc_pt, ACC_TARGET, ACC_GAP, verdict(acc_ok) if epochs == "5" else "not judged (%s epochs)" % epochs))
print("pstrain GEMM rate           : %5.1f GFLOP/s = %.0f%% of the sgemm rate measured on the core, %.1f GFLOP/s"
      % (pst * FLOP / 1e9, 100 * pst * FLOP / 1e9 / ceiling, ceiling))
print("PyTorch on the same count   : %5.1f GFLOP/s (torch %s, mkldnn %s)"
      % (pt * FLOP / 1e9, by_tool["pytorch"][0].get("torch"), by_tool["pytorch"][0].get("mkldnn")))
print("  (%.2f MFLOP of GEMM per sample)" % (FLOP / 1e6))
print("load average : %s before, %s after (other work on the machine makes the numbers noisy)"
      % (load_before, load_after))
EOF
if [ -s "$layers_out" ]; then
  echo
  echo "pstrain per layer group ($layers_bin, random data, pinned to core $cpu):"
  cat "$layers_out"
fi
