#!/usr/bin/env bash
# Distributed efficiency: 1 server + 1 worker, each pinned to its own core (mpirun -np 2
# --bind-to core), against the local run pinned to one core (taskset), in one script.
#  - sparse: examples/clicks_lr.yaml on `pstrain datagen clicks` data (500k rows x 2^20 hashed
#    features x 30 per row, seed 7): rows/s, test AUC; target >= 0.8x local at AUC within 0.001;
#  - dense: the reference MLP (examples/fashion_mlp.yaml, as scripts/bench/fashion_distributed.sh):
#    samples/s, test accuracy; target >= 0.9x local at accuracy within 0.005.
# Each distributed run goes with transport.prefetch on and off (off: whole-model pulls waited
# for before each step, the pre-overlap path) and per consistency mode; medians over the repeats
# (interleaved, so a noisy minute hurts every variant alike), with the mean step's pull wait, push
# wait and compute from report.json. Sparse runs with prefetch go once per transport.prefetch_depth
# of --depths (pulls in flight while a step computes; under bsp only the first depth is run, since
# the server holds every early pull and depth changes nothing there).
# usage: scripts/bench/distributed_efficiency.sh [--repeats N] [--dense-epochs N]
#                                                [--modes "bsp asp"] [--depths "1 2 3"]
#                                                [--skip-dense] [--skip-sparse]
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=3
dense_epochs=2
modes="bsp asp"
depths="1 2 3"
run_dense=1
run_sparse=1
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) repeats=$2; shift 2 ;;
    --dense-epochs) dense_epochs=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --depths) depths=$2; shift 2 ;;
    --skip-dense) run_dense=0; shift ;;
    --skip-sparse) run_sparse=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# Built on every run (a no-op when up to date): an old binary would time other code than the tree's.
# Only the program: the tests are not needed here, and the machine may be shared.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target pstrain >build/bench-build.log 2>&1 ||
  { tail -20 build/bench-build.log >&2; echo "building pstrain failed" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
pstrain=build/cli/pstrain
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

# the sparse variants of a mode: true<depth> for each depth (the first only under bsp), and false
sparse_variants() {
  local d
  for d in $depths; do
    echo "true$d"
    [ "$1" = bsp ] && break
  done
  echo false
}
local_run() { taskset -c 0 "$pstrain" train "$@" -q >/dev/null; }
mpi_run() { mpirun --oversubscribe -np 2 --bind-to core "$pstrain" train "$@" -q >/dev/null; }

if [ "$run_sparse" = 1 ]; then
  "$pstrain" datagen clicks --rows 500000 --features 1048576 --nnz 30 --seed 7 \
    --out "$work/clicks.svm" >/dev/null
  # batch 256 and the example's other settings; the batch is fixed here because the example's
  # own batch is chosen for accuracy, and this figure is the one quoted at batch 256
  sparse=(examples/clicks_lr.yaml --set data.train="$work/clicks.svm" --set train.batch_size=256)
  local_run "${sparse[@]}" --out "$work/warm" # writes the binary cache the timed runs then read
fi
dense=(examples/fashion_mlp.yaml --set train.epochs="$dense_epochs")

for rep in $(seq 1 "$repeats"); do
  echo "repeat $rep of $repeats (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if [ "$run_sparse" = 1 ]; then
    local_run "${sparse[@]}" --out "$work/sparse-local-$rep"
    for mode in $modes; do
      for pf in $(sparse_variants "$mode"); do
        depth=1
        [ "$pf" = false ] || depth=${pf#true}
        mpi_run "${sparse[@]}" --set cluster.consistency="$mode" \
          --set transport.prefetch="${pf%%[0-9]*}" --set transport.prefetch_depth="$depth" \
          --out "$work/sparse-$mode-$pf-$rep"
      done
    done
  fi
  if [ "$run_dense" = 1 ]; then
    local_run "${dense[@]}" --out "$work/dense-local-$rep"
    for mode in $modes; do
      for pf in true false; do
        mpi_run "${dense[@]}" --set cluster.consistency="$mode" --set transport.prefetch="$pf" \
          --out "$work/dense-$mode-$pf-$rep"
      done
    done
  fi
done

python3 - "$work" "$repeats" "$modes" "$run_sparse" "$run_dense" "$depths" <<'PY'
import json, os, statistics, sys
work, repeats, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
depths = sys.argv[6].split()
def variants(kind, mode):
    if kind == "dense":
        return [("true", "prefetch on"), ("false", "prefetch off")]
    ds = depths[:1] if mode == "bsp" else depths
    return [(f"true{d}", f"prefetch {d}") for d in ds] + [("false", "prefetch off")]
kinds = [k for k, on in (("sparse", sys.argv[4]), ("dense", sys.argv[5])) if on == "1"]
def reports(name):
    return [json.load(open(f"{work}/{name}-{r}/report.json")) for r in range(1, repeats + 1)]
def med(rs, f):
    return statistics.median(f(r) for r in rs)
spec = {
    "sparse": ("rows/s", "test AUC", lambda r: r["test"]["roc_auc"], 0.8, 0.001,
               "sparse LR (FTRL), 500k click rows x 2^20 features x 30 nnz, batch 256"),
    "dense": ("samples/s", "test acc", lambda r: r["test"]["accuracy"], 0.9, 0.005,
              "Fashion-MNIST MLP 784-256-128-10, batch 64"),
}
for kind in kinds:
    unit, qname, quality, target, tol, title = spec[kind]
    local = reports(f"{kind}-local")
    lspeed = med(local, lambda r: r["train"]["samples_per_s"])
    lq = med(local, quality)
    print()
    print(f"{title}; medians of {repeats}")
    print("%-30s %11s %8s %9s %9s %10s %10s %10s  %s" % ("run", unit, "vs local", qname, "diff",
          "pull ms", "push ms", "compute ms", "target"))
    print("%-30s %11.0f %8s %9.4f %9s %10s %10s %10s" % ("local, 1 core", lspeed, "1.00x", lq, "-",
          "-", "-", "-"))
    for mode in modes:
        for pf, label in variants(kind, mode):
            rs = reports(f"{kind}-{mode}-{pf}")
            speed = med(rs, lambda r: r["train"]["samples_per_s"])
            q = med(rs, quality)
            c = lambda key: med(rs, lambda r: r["comm"][key])
            met = speed >= target * lspeed and abs(q - lq) <= tol
            print("%-30s %11.0f %7.2fx %9.4f %+9.4f %10.3f %10.3f %10.3f  %s" % (
                f"1+1 pinned, {mode}, {label}", speed,
                speed / lspeed, q, q - lq, c("step_pull_wait_ms"), c("step_push_wait_ms"),
                c("step_compute_ms"), "met" if met else "NOT met"))
    print(f"target: >= {target}x local {unit} at {qname} within {tol} of local. Per step: time "
          "blocked on pulls, on push acknowledgements, and the rest of the step.")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
