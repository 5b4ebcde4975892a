#!/usr/bin/env bash
# Hyperband against the default configuration on the reference Fashion-MNIST MLP: in one run,
# trains examples/fashion_mlp.yaml as it is, runs the Hyperband sweep examples/sweep_fashion.yaml,
# then trains the sweep's best_config.yaml; prints both models' test accuracy (the 10,000 test
# images, which the sweep never saw: it chose on validation rows) and the epochs the sweep spent.
# Targets: the best configuration's test accuracy >= the default's; epochs spent <= half of
# trials x max_epochs (every sampled configuration trained fully). A synchronous Hyperband of the
# same rungs (trials / eta^k configurations at rung k, each retrained to it) is printed beside.
# usage: scripts/bench/sweep_fashion.sh [--groups G] [--quick]
#   --groups G  the sweep under mpirun, 1 server + G workers
#   --quick     a reduced run that shows the script works, not the figures: 3 trials of 1 to 3
#               epochs, the default trained for 1 epoch
set -euo pipefail
cd "$(dirname "$0")/../.."
groups=0
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --groups) groups=${2:?--groups needs a value}; shift 2 ;;
    --quick) quick=1; shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sweep_fashion: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# Built on every run (a no-op when up to date; a failed build stops the script): an old binary
# would time other code than the tree's.
bash scripts/build.sh >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

sweep_yaml=examples/sweep_fashion.yaml
default_args=()
if [ "$quick" = 1 ]; then
  sed -e "s|^base: examples/|base: $PWD/examples/|" -e 's/^trials: .*/trials: 3/' \
    -e 's/^hyperband: .*/hyperband: {min_epochs: 1, max_epochs: 3, eta: 3}/' \
    "$sweep_yaml" >"$work/quick.yaml"
  sweep_yaml=$work/quick.yaml
  default_args=(--set train.epochs=1)
fi

t0=$(date +%s.%N)
build/cli/pstrain train examples/fashion_mlp.yaml "${default_args[@]}" --out "$work/default" -q >/dev/null
t1=$(date +%s.%N)
if [ "$groups" -gt 0 ]; then
  mpirun --oversubscribe -np $((groups + 1)) build/cli/pstrain sweep "$sweep_yaml" \
    --set cluster.groups="$groups" --out "$work/sweep" -q >/dev/null
else
  build/cli/pstrain sweep "$sweep_yaml" --out "$work/sweep" -q >/dev/null
fi
t2=$(date +%s.%N)
build/cli/pstrain train "$work/sweep/best_config.yaml" --out "$work/best" -q >/dev/null
t3=$(date +%s.%N)

python3 - "$work" "$sweep_yaml" "$t0" "$t1" "$t2" "$t3" <<'PY'
import json, re, sys
work, sweep_yaml = sys.argv[1], sys.argv[2]
t0, t1, t2, t3 = map(float, sys.argv[3:7])
default = json.load(open(f"{work}/default/report.json"))
best_run = json.load(open(f"{work}/best/report.json"))
sweep = json.load(open(f"{work}/sweep/report.json"))["sweep"]
hb = re.search(r"hyperband: \{min_epochs: (\d+), max_epochs: (\d+), eta: (\d+)\}",
               open(sweep_yaml).read())
min_epochs, max_epochs, eta = map(int, hb.groups())
trials = sweep["trials"]
full = trials * max_epochs
synchronous, rung, n = 0, min_epochs, trials
while rung <= max_epochs and n >= 1:
    synchronous += n * rung
    rung, n = rung * eta, n // eta
spent = sweep["epochs_spent"]
bar, best = default["test"]["accuracy"], best_run["test"]["accuracy"]
print()
print("default config (%d epochs):  test accuracy %.4f   %.0f s"
      % (default["train"]["epochs"], bar, t1 - t0))
print("hyperband best (trial %d):    test accuracy %.4f   (val %.4f; sweep %.0f s, retrain %.0f s)"
      % (sweep["best"]["trial"], best, sweep["best"]["val_metric"], t2 - t1, t3 - t2))
print("  params:", ", ".join("%s=%s" % kv for kv in sweep["best"]["params"].items()))
print("epochs: hyperband %d; every trial to max_epochs %d (%d x %d), ratio %.3f; "
      "synchronous hyperband of the same rungs %d" % (spent, full, trials, max_epochs,
                                                      spent / full, synchronous))
print("targets: best's test accuracy >= default's: %s;  epochs <= half of trials x max_epochs: %s"
      % ("met" if best >= bar else "MISSED", "met" if spent <= full / 2 else "MISSED"))
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
