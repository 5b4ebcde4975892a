#!/usr/bin/env bash
# The cost of cluster.security=curve (encrypted, authenticated parameter traffic) and token
# (authenticated by a per-worker secret in a PLAIN handshake, not encrypted: auto's choice on one
# host) against none on one dense training job: 1 server + 1 worker under mpirun, each rank bound to its own core,
# the two settings alternating in every repetition so both see the same moments of the machine's
# load. Prints each run's training time, the medians, their ratio, and the load average before
# and after (figures only mean something on a quiet machine).
# usage: scripts/bench/curve_cost.sh [PSTRAIN] [REPS]   (default build/cli/pstrain, 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
pstrain=${1:-build/cli/pstrain}
reps=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

# 8192 rows of 64 features, 10 classes; a 64-256-10 network: 19k parameters pushed and pulled
# every step of batch 32.
python3 - "$work" <<'PY'
import random, sys
random.seed(11)
with open(sys.argv[1] + "/train.csv", "w") as f:
    f.write(",".join("x%d" % j for j in range(64)) + ",target\n")
    for i in range(8192):
        c = i % 10
        f.write(",".join("%.4f" % random.gauss(1.0 if j % 10 == c else 0.0, 0.8) for j in range(64)) + ",%d\n" % c)
PY
cat >"$work/job.yaml" <<YAML
name: curve-cost
seed: 1
data: {train: $work/train.csv, val_fraction: 0.2, target: target}
model: {hidden: [256], activation: relu}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: 10, batch_size: 32, progress: none}
YAML

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A times
for r in $(seq "$reps"); do
  for mode in curve token none; do
    out="$work/$mode-$r"
    mpirun --oversubscribe --bind-to core -np 2 "$pstrain" train "$work/job.yaml" \
      --set cluster.security="$mode" --out "$out" -q >"$out.log" 2>&1 ||
      { echo "curve_cost: the $mode run failed: $(tail -3 "$out.log")" >&2; exit 1; }
    s=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['seconds'])" "$out/report.json")
    times[$mode]="${times[$mode]:-} $s"
    printf 'rep %d  %-5s  %.3f s\n' "$r" "$mode" "$s"
  done
done
python3 - "${times[curve]}" "${times[token]}" "${times[none]}" <<'PY'
import statistics, sys
curve, token, none = ([float(x) for x in a.split()] for a in sys.argv[1:4])
mc, mt, mn = statistics.median(curve), statistics.median(token), statistics.median(none)
print("median training time: curve %.3f s, token %.3f s, none %.3f s" % (mc, mt, mn))
print("curve/none %.3f (%+.1f%%); token/none %.3f (%+.1f%%)" % (mc / mn, 100 * (mc / mn - 1), mt / mn, 100 * (mt / mn - 1)))
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
