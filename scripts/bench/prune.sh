#!/usr/bin/env bash
# Benchmarks magnitude pruning of the reference Fashion-MNIST MLP against PyTorch's global magnitude pruning.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF2'
usage: scripts/bench/prune.sh [--epochs E] [--start S] [--end N] [--sparsities LIST] [--repeats R]

Trains examples/fashion_mlp.yaml dense and with train.prune at each sparsity of LIST (default
0.5,0.8,0.9; global scope, the cubic schedule over epochs S..N, then fine-tuning to epoch E),
and PyTorch's torch.nn.utils.prune.global_unstructured on the same schedule
(scripts/bench/prune_torch.py). Prints per sparsity: the model file's size, single-row latency
p50/p99 and batch throughput of pstrain's inference (the path it chooses, dense sgemm, and
compressed sparse rows for every row; median of R runs of scripts/bench/prune_latency pinned to
one core with taskset), and the test accuracy of pstrain and of PyTorch against their dense models.

  --epochs E        epochs of every training (default 6)
  --start S         first pruning epoch (default 2)
  --end N           epoch the target sparsity is reached (default 4)
  --sparsities L    comma-separated targets (default 0.5,0.8,0.9)
  --repeats R       latency runs per model (default 5)

Timings only mean something on a quiet machine: the load average is printed too.
EOF2
}

epochs=6 start=2 end=4 sparsities=0.5,0.8,0.9 repeats=5
while [ $# -gt 0 ]; do
  case "$1" in
  --epochs) epochs=${2:?}; shift 2 ;;
  --start) start=${2:?}; shift 2 ;;
  --end) end=${2:?}; shift 2 ;;
  --sparsities) sparsities=${2:?}; shift 2 ;;
  --repeats) repeats=${2:?}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "prune: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$epochs" "$start" "$end" "$repeats"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "prune: '$v' is not a positive integer" >&2; exit 2; }
done

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
cmake --build "$build_dir" --target prune_latency >/dev/null
latency=$build_dir/scripts/bench/prune_latency
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

train() { # $1: name, $2: sparsity
  local prune=(--set train.prune.sparsity="$2" --set train.prune.start="$start" --set train.prune.end="$end")
  OPENBLAS_NUM_THREADS=1 taskset -c 0 "$pstrain" train examples/fashion_mlp.yaml --quiet --out "$tmp/$1" \
    --set train.epochs="$epochs" --set train.progress=none "${prune[@]}" >"$tmp/$1.log" 2>&1 ||
    { cat "$tmp/$1.log" >&2; echo "prune: pstrain training failed" >&2; exit 1; }
  for r in $(seq "$repeats"); do
    OPENBLAS_NUM_THREADS=1 taskset -c 0 "$latency" "$tmp/$1/model.pst" >>"$tmp/$1.lat"
  done
}
train dense 0
for s in ${sparsities//,/ }; do train "s$s" "$s"; done
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 1 "$python" scripts/bench/prune_torch.py --epochs "$epochs" \
  --start "$start" --end "$end" --sparsities "0,$sparsities" >"$tmp/torch.jsonl"

"$python" - "$tmp" "$sparsities" <<'EOF2'
import json, os, statistics, sys
tmp, sparsities = sys.argv[1], [float(s) for s in sys.argv[2].split(",")]
torch = {r["sparsity"]: r for r in map(json.loads, open(os.path.join(tmp, "torch.jsonl")))}
def row(name, s):
    rep = json.load(open(os.path.join(tmp, name, "report.json")))
    lat = [json.loads(l) for l in open(os.path.join(tmp, name + ".lat"))]
    med = lambda k: statistics.median(r[k] for r in lat)
    return {"s": s, "bytes": os.path.getsize(os.path.join(tmp, name, "model.pst")),
            "acc": rep["test"]["accuracy"], "zero": rep.get("prune", {}).get("zero_share", 0.0),
            "auto_layers": lat[0]["auto_sparse_layers"],
            **{k: med(k) for k in lat[0] if k.endswith(("_us", "_per_s"))}}
rows = [row("dense", 0.0)] + [row("s%s" % s, s) for s in sparsities]
d = rows[0]
print("\nreference MLP 784-256-128-10, Fashion-MNIST; latency: median of runs, one core (taskset)")
print("%-8s %9s %6s %7s | %-26s | %-9s %-9s %-9s | %-9s %-9s %-9s | %8s %8s %8s %8s" % (
    "sparsity", "bytes", "size", "zeros", "single row p50/p99 us (auto)", "dense p50", "csr p50", "csr/dense",
    "auto r/s", "dense r/s", "csr r/s", "acc", "d acc", "torch", "d torch"))
for r in rows:
    t = torch.get(r["s"], {})
    print("%-8.2f %9d %5.2fx %7.4f | %9.1f / %-8.1f (%d csr) | %-9.1f %-9.1f %-9.2f | %-9.0f %-9.0f %-9.0f | %8.4f %+8.4f %8.4f %+8.4f" % (
        r["s"], r["bytes"], r["bytes"] / d["bytes"], r["zero"], r["auto_p50_us"], r["auto_p99_us"],
        r["auto_layers"], r["dense_p50_us"], r["sparse_p50_us"], r["sparse_p50_us"] / r["dense_p50_us"],
        r["auto_rows_per_s"], r["dense_rows_per_s"], r["sparse_rows_per_s"], r["acc"], r["acc"] - d["acc"],
        t.get("test_accuracy", float("nan")), t.get("test_accuracy", float("nan")) - torch[0.0]["test_accuracy"]))
print("csr/dense < 1: skipping the zeros is faster for single rows; batches of 256 always run dense (sgemm)")
EOF2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores, shared with other builds)"
