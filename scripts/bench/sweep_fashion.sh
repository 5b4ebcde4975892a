#!/usr/bin/env bash
# Hyperband against the default configuration and a full grid, on the reference Fashion-MNIST MLP:
# in one run, trains examples/fashion_mlp.yaml as it is (its validation accuracy after 10 epochs
# is the bar), then runs the Hyperband sweep examples/sweep_fashion.yaml, and prints the best
# trial's validation accuracy and the epochs it spent beside the epochs a full grid over the same
# space would spend (grid points x max_epochs; the grid takes 3 points of each continuous range).
# usage: scripts/bench/sweep_fashion.sh [--groups G]   (G > 0: under mpirun, 1 server + G workers)
set -euo pipefail
cd "$(dirname "$0")/../.."
groups=0
case "${1:-}" in --groups) groups=$2 ;; -h|--help) sed -n '2,7p' "$0"; exit 0 ;; esac
# Built on every run (a no-op when up to date; a failed build stops the script): an old binary
# would time other code than the tree's.
bash scripts/build.sh >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

t0=$(date +%s.%N)
build/cli/pstrain train examples/fashion_mlp.yaml --out "$work/default" -q >/dev/null
t1=$(date +%s.%N)
if [ "$groups" -gt 0 ]; then
  mpirun --oversubscribe -np $((groups + 1)) build/cli/pstrain sweep examples/sweep_fashion.yaml \
    --set cluster.groups="$groups" --out "$work/sweep" -q >/dev/null
else
  build/cli/pstrain sweep examples/sweep_fashion.yaml --out "$work/sweep" -q >/dev/null
fi
t2=$(date +%s.%N)

# The same space with grid points, to count a full grid's epochs.
sed -e 's/optimizer.lr: {log_uniform: \[\(.*\)\]}/optimizer.lr: {log_uniform: [\1], grid: 3}/' \
    -e 's/model.dropout: {uniform: \[\(.*\)\]}/model.dropout: {uniform: [\1], grid: 3}/' \
    -e 's/^method: hyperband/method: grid/' -e '/^trials:/d' -e '/^hyperband:/d' \
    examples/sweep_fashion.yaml > "$work/grid.yaml"
grid_points=$(python3 - "$work/grid.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
n = 1
for line in text.splitlines():
    m = re.search(r"choice: \[(.*)\]", line)
    if m:
        n *= len(re.findall(r'"[^"]*"|[^,\s][^,]*', m.group(1)))
    elif "grid: " in line:
        n *= int(re.search(r"grid: (\d+)", line).group(1))
print(n)
PY
)
python3 - "$work" "$grid_points" "$t0" "$t1" "$t2" <<'PY'
import json, sys
work, grid_points = sys.argv[1], int(sys.argv[2])
t0, t1, t2 = map(float, sys.argv[3:6])
default = json.load(open(f"{work}/default/report.json"))
sweep = json.load(open(f"{work}/sweep/report.json"))["sweep"]
bar = default["val"]["accuracy"]
best = sweep["best"]["val_metric"]
max_epochs = sweep["full_epochs"] // sweep["trials"]
grid_epochs = grid_points * max_epochs
print()
print("default config (10 epochs):   val accuracy %.4f   %.0f s" % (bar, t1 - t0))
print("hyperband best (trial %d):     val accuracy %.4f   %.0f s" % (sweep["best"]["trial"], best, t2 - t1))
print("  params:", ", ".join("%s=%s" % kv for kv in sweep["best"]["params"].items()))
print("epochs: hyperband %d, full grid %d (%d points x %d epochs), ratio %.3f"
      % (sweep["epochs_spent"], grid_epochs, grid_points, max_epochs, sweep["epochs_spent"] / grid_epochs))
print("targets: best >= default: %s;  epochs <= half the grid's: %s"
      % ("met" if best >= bar else "MISSED", "met" if sweep["epochs_spent"] <= grid_epochs / 2 else "MISSED"))
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
