#!/usr/bin/env bash
# The cost of declaring each plan task's namespace to the servers (app/plan/plancontract): a cv of
# many short folds under mpirun (2 servers, 2 worker groups of one worker, each rank bound to its
# own core where there are cores enough, else --oversubscribe), repeated; every group leader logs
# each declaration's round trip and every fold its fit time. Prints the medians of both over all
# repetitions, their ratio (the share of a task spent declaring it) and the load average before
# and after. The plans cannot run without their contract, so the task's own fit is the peer.
# usage: scripts/bench/plan_contract_cost.sh [PSTRAIN] [REPS]   (default build/cli/pstrain, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
pstrain=${1:-build/cli/pstrain}
reps=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
bind=(--bind-to core)
[ "$(nproc)" -ge 4 ] || bind=(--oversubscribe --bind-to none)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
  mpirun "${bind[@]}" -np 4 "$pstrain" cv examples/csv_logreg.yaml \
    --set data.train=tests/data/wine.csv --folds 20 --set cluster.servers=2 \
    --set cluster.groups=2 --out "$work/cv$r" -v >"$work/cv$r.log" 2>&1
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$work" "$reps" <<'PY'
import json, re, statistics, sys
work, reps = sys.argv[1], int(sys.argv[2])
declare, fit = [], []
for r in range(1, reps + 1):
    text = open("%s/cv%d.log" % (work, r)).read()
    declare += [float(m) for m in re.findall(r"declared to \d+ servers in ([0-9.]+) ms", text)]
    report = json.load(open("%s/cv%d/report.json" % (work, r)))
    fit += [1e3 * t["fit_seconds"] for t in report["tasks"] if t]
d, f = statistics.median(declare), statistics.median(fit)
print("declarations: %d, median %.3f ms (min %.3f, max %.3f)" % (len(declare), d, min(declare), max(declare)))
print("fits: %d, median %.1f ms" % (len(fit), f))
print("declaration / fit (medians): %.4f" % (d / f))
PY
