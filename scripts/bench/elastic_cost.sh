#!/usr/bin/env bash
# The cost of cluster.elastic (the workers' epoch sums and final agreement through server 0 over
# ZeroMQ) against MPI collectives (cluster.elastic=false) on a dense BSP job with short epochs,
# where the epoch-end sums weigh most: 1 server + 2 workers under mpirun, ranks bound to cores
# (overloaded on a 2-core machine), the two settings alternating in every repetition so both see
# the same moments of the machine's load. Checks that both end with the same weights, prints each
# run's training time, the medians, their ratio, the cost per epoch end, and the load average
# before and after (figures only mean something on a quiet machine). With KIND sparse the job is
# sparse_lr on click data instead (16000 training rows, batch 32: 250 steps per epoch and worker,
# where an epoch end is the workers' agreement and the lead's early-stopping decision), timed by
# the job's wall time (mpirun's start-up included), since its training time leaves epoch ends out.
# usage: scripts/bench/elastic_cost.sh [PSTRAIN] [REPS] [KIND]
#        (default build/cli/pstrain, 5, dense; KIND dense|sparse)
set -euo pipefail
cd "$(dirname "$0")/../.."
pstrain=${1:-build/cli/pstrain}
reps=${2:-5}
kind=${3:-dense}
epochs=100
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

weights() { "$pstrain" info "$1" --params | grep -v '^file size:\|^checksum:'; }
if [ "$kind" = sparse ]; then
  epochs=20
  "$pstrain" datagen clicks --rows 20000 --features 1024 --nnz 12 --seed 5 --sigma 0.5 --zipf 0.8 \
    --click-rate 0.2 --out "$work/train.svm" >/dev/null
  printf '%s\n' "name: elastic-cost-sparse" "seed: 1" "model: {type: sparse_lr}" \
    "data: {train: $work/train.svm, format: libsvm, train_fraction: 0.8, val_fraction: 0.1, test_fraction: 0.1}" \
    "optimizer: {name: ftrl, lr: 0.05, ftrl_beta: 1}" \
    "train: {epochs: $epochs, batch_size: 32, progress: none}" >"$work/job.yaml"
fi
# 2048 rows of 4 features, 3 classes; a 4-16-3 network, batch 8: 90 steps per epoch and worker.
[ "$kind" = sparse ] || python3 - "$work" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1] + "/train.csv", "w") as f:
    f.write("a,b,c,d,target\n")
    for i in range(2048):
        c = i % 3
        x = [random.gauss(1.5 if j == c else 0.0, 0.7) for j in range(4)]
        f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)
PY
[ "$kind" = sparse ] || cat >"$work/job.yaml" <<YAML
name: elastic-cost
seed: 2
data: {train: $work/train.csv, val_fraction: 0.2, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: $epochs, batch_size: 8, progress: none}
YAML

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A times
for r in $(seq "$reps"); do
  for mode in true false; do
    out="$work/$mode-$r"
    t0=$(date +%s.%N)
    mpirun --oversubscribe --bind-to core:overload-allowed -np 3 "$pstrain" train "$work/job.yaml" \
      --set cluster.elastic="$mode" --out "$out" -q >"$out.log" 2>&1 ||
      { echo "elastic_cost: the elastic=$mode run failed: $(tail -3 "$out.log")" >&2; exit 1; }
    t1=$(date +%s.%N)
    # a sparse run's train.seconds leaves its epoch ends out: the job's wall time then
    if [ "$kind" = sparse ]; then
      s=$(python3 -c "print($t1 - $t0)")
    else
      s=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['seconds'])" "$out/report.json")
    fi
    times[$mode]="${times[$mode]:-} $s"
    printf 'rep %d  elastic=%-5s  %.3f s\n' "$r" "$mode" "$s"
  done
  weights "$work/true-$r/model.pst" >"$work/a.txt"
  weights "$work/false-$r/model.pst" >"$work/b.txt"
  cmp -s "$work/a.txt" "$work/b.txt" || { echo "elastic_cost: rep $r: the weights differ" >&2; exit 1; }
done
echo "weights: equal bit for bit in every repetition"
python3 - "$epochs" "${times[true]}" "${times[false]}" <<'PY'
import statistics, sys
epochs = int(sys.argv[1])
el, mpi = ([float(x) for x in a.split()] for a in sys.argv[2:4])
me, mm = statistics.median(el), statistics.median(mpi)
print("median time: elastic %.3f s, mpi %.3f s" % (me, mm))
print("elastic/mpi %.3f (%+.1f%%); %+.3f ms per epoch end" % (me / mm, 100 * (me / mm - 1), 1e3 * (me - mm) / epochs))
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
