#!/usr/bin/env bash
# Benchmarks pstrain's LSTM against PyTorch's on the same Mackey-Glass windows, one pinned thread
# each: loss curves per epoch side by side, samples/s (medians) and their ratio, test metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF2'
usage: scripts/bench/lstm_vs_torch.sh [--repeats R] [--epochs E] [--cpu N]

Trains examples/mackey_glass_lstm.yaml (lstm:32 -> dense:1 forecasting 6 steps ahead from
windows of 24, Adam 0.005, batch 32) with pstrain and the same network with PyTorch
(scripts/bench/lstm_torch.py, Debian's python3-torch, the same windows, scaling and weight
initialisation laws), R times each (default 3), alternating, both pinned to core N (default 0)
with one thread. Prints the first repeat's loss curves side by side, the median training
samples/s of each and their ratio, and the median test MSE and R^2.

  --repeats R   runs per tool (default 3)
  --epochs E    epochs per run (default 20)
  --cpu N       core both tools are pinned to (default 0)

Builds pstrain first (BUILD_DIR overrides the build directory; PSTRAIN names a binary to
use as it is). Timings only mean something on a quiet machine: the load average is printed.
EOF2
}

repeats=3
epochs=20
cpu=0
while [ $# -gt 0 ]; do
  case "$1" in
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --cpu) cpu=${2:?--cpu needs a value}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "lstm_vs_torch: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$repeats" "$epochs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "lstm_vs_torch: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$cpu" =~ ^[0-9]+$ ]] || { echo "lstm_vs_torch: --cpu '$cpu' is not a core number" >&2; exit 2; }

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  echo "lstm_vs_torch: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3
pin=(taskset -c "$cpu")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.jsonl
torch_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)

run_pstrain() { # $1: repeat; appends a JSON line to $results, keeps the epochs in $tmp/pstrain-$1.curve
  local out=$tmp/pstrain-$1
  if ! OPENBLAS_NUM_THREADS=1 "${pin[@]}" "$pstrain" train examples/mackey_glass_lstm.yaml --quiet \
    --out "$out" --set train.epochs="$epochs" --set train.progress=none >"$out.log" 2>&1; then
    cat "$out.log" >&2
    echo "lstm_vs_torch: pstrain failed" >&2
    exit 1
  fi
  "$python" -c 'import json, sys
for l in open(sys.argv[1]):
    m = json.loads(l)
    print(json.dumps({"epoch": m["epoch"], "train_loss": m["train_loss"], "val_loss": m["val_loss"]}))' \
    "$out/metrics.jsonl" >"$tmp/pstrain-$1.curve"
  "$python" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"tool": "pstrain", "samples_per_s": r["train"]["samples_per_s"],
                  "seconds": r["train"]["seconds"], "test_mse": r["test"]["mse"], "test_r2": r["test"]["r2"]}))' \
    "$out/report.json" >>"$results"
}

run_torch() { # $1: repeat
  "${torch_env[@]}" "${pin[@]}" "$python" scripts/bench/lstm_torch.py --epochs "$epochs" >"$tmp/torch-$1.out"
  grep '"epoch"' "$tmp/torch-$1.out" | grep -v samples_per_s >"$tmp/torch-$1.curve"
  tail -n 1 "$tmp/torch-$1.out" | "$python" -c 'import json, sys
r = json.loads(sys.stdin.read()); r["tool"] = "pytorch"; print(json.dumps(r))' >>"$results"
}

say_last() {
  tail -n 1 "$results" | "$python" -c 'import json, sys
r = json.loads(sys.stdin.read())
print("  %-8s %8.0f samples/s  %6.2f s  test mse %.3g  r2 %.4f" % (r["tool"], r["samples_per_s"], r["seconds"], r["test_mse"], r["test_r2"]), file=sys.stderr)'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "lstm_vs_torch: $repeats repeats x $epochs epochs per tool on core $cpu; load average $load_before on $(nproc) cores" >&2
for r in $(seq 1 "$repeats"); do
  echo "repeat $r/$repeats" >&2
  run_pstrain "$r"
  say_last
  run_torch "$r"
  say_last
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$results" "$tmp/pstrain-1.curve" "$tmp/torch-1.curve" "$load_before" "$load_after" <<'EOF2'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pc = [json.loads(l) for l in open(sys.argv[2])]
tc = [json.loads(l) for l in open(sys.argv[3])]
print("loss curves (first repeat; MSE on standardised windows, raw target):")
print("  epoch   pstrain train    val      pytorch train    val")
for a, b in zip(pc, tc):
    print("  %5d   %12.3e %10.3e   %12.3e %10.3e" % (a["epoch"], a["train_loss"], a["val_loss"],
                                                    b["train_loss"], b["val_loss"]))
med = {}
for tool in ("pstrain", "pytorch"):
    rs = [r for r in rows if r["tool"] == tool]
    med[tool] = {k: statistics.median(r[k] for r in rs) for k in ("samples_per_s", "test_mse", "test_r2")}
    print("%-8s median of %d: %8.0f samples/s   test mse %.3e   test r2 %.4f" %
          (tool, len(rs), med[tool]["samples_per_s"], med[tool]["test_mse"], med[tool]["test_r2"]))
print("samples/s ratio pstrain / pytorch: %.2fx" % (med["pstrain"]["samples_per_s"] / med["pytorch"]["samples_per_s"]))
print("load average before %s, after %s" % (sys.argv[4], sys.argv[5]))
EOF2
