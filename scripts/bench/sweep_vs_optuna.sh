#!/usr/bin/env bash
# pstrain's TPE sweep against Optuna's TPE driving `pstrain train`, and TPE with successive-halving
# rungs against TPE alone.
#
# usage: scripts/bench/sweep_vs_optuna.sh [--trials N] [--seeds K] [--epochs E] [--data CSV]
#
# The task: an MLP on a CSV (default tests/data/digits.csv, examples/csv_logreg.yaml with one
# hidden layer), E epochs (default 10), no early stopping. The same search space on both sides:
# optimizer.lr log-uniform [1e-4, 0.1], the width model.hidden in {32, 64, 128, 256},
# model.dropout uniform [0, 0.5], train.batch_size in {16, 32, 64, 128}, optimizer.name in
# {adam, momentum, sgd}; N trials (default 50), seeds 0..K-1 (default 5). Both samplers use
# their defaults (10 random startup trials, 24 candidates, independent TPE).
#   pstrain  `pstrain sweep` (method: tpe, seed s) in one process: trials in proposal order.
#   optuna   Debian's python3-optuna 3.x (scripts/setup.sh with PST_SETUP_BENCH=1),
#            TPESampler(seed=s), whose objective runs `pstrain train` as a subprocess
#            (scripts/bench/sweep_optuna.py).
# Both score trials on the base config's validation rows (the same seeded split). Printed: the
# best validation accuracy after 10, 25 and N trials (median over the seeds), the test accuracy
# of each side's best configuration retrained once with `pstrain train` (median over seeds),
# and the wall seconds per trial beyond training: (wall time of the whole search - summed
# training time) / N, where training time is the sweep's fit_seconds per trial (preprocessing
# fit, training, prediction) and the train report's seconds (training steps) for Optuna's runs.
# Then the same pstrain sweep with rungs {min_epochs: 1, max_epochs: E', eta: 3} (E' = 9)
# against TPE alone at E' epochs: epochs spent and best validation accuracy (medians).
# Targets: pstrain's TPE not worse than Optuna's at N trials (median), and its per-trial
# overhead below Optuna-driven subprocesses'. Every process is pinned to core 0 with taskset;
# the load average is printed before and after (a shared machine makes the times noisy).
set -euo pipefail
cd "$(dirname "$0")/../.."

trials=50
seeds=5
epochs=10
data=tests/data/digits.csv
while [ $# -gt 0 ]; do
  case "$1" in
  --trials) trials=$2; shift 2 ;;
  --seeds) seeds=$2; shift 2 ;;
  --epochs) epochs=$2; shift 2 ;;
  --data) data=$2; shift 2 ;;
  -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "sweep_vs_optuna: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
"$py" -c "import optuna" 2>/dev/null ||
  { echo "sweep_vs_optuna: python3-optuna is missing (PST_SETUP_BENCH=1 scripts/setup.sh)" >&2; exit 1; }
build=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target pstrain >"$build/build.log" 2>&1 ||
    { echo "sweep_vs_optuna: building pstrain failed; see $build/build.log" >&2; exit 1; }
fi
pstrain=$(realpath "$pstrain")
export OPENBLAS_NUM_THREADS=1
runs=${KEEP_RUNS:-$(mktemp -d)}
mkdir -p "$runs"
[ -n "${KEEP_RUNS:-}" ] || trap 'rm -rf "$runs"' EXIT
base=$(realpath examples/csv_logreg.yaml)
data=$(realpath "$data")
pin=(taskset -c 0)
echo "sweep vs Optuna: $(basename "$data"), MLP, $epochs epochs, $trials trials, seeds 0..$((seeds - 1));" \
  "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

sweep_file() { # PATH SEED TRIALS EXTRA...
  local path=$1 seed=$2 n=$3; shift 3
  {
    echo "base: $base"
    echo "method: tpe"
    echo "metric: val.accuracy"
    echo "trials: $n"
    echo "seed: $seed"
    for line in "$@"; do echo "$line"; done
    echo "space:"
    echo "  optimizer.lr: {log_uniform: [1.0e-4, 0.1]}"
    echo "  model.hidden: {choice: [\"[32]\", \"[64]\", \"[128]\", \"[256]\"]}"
    echo "  model.dropout: {uniform: [0.0, 0.5]}"
    echo "  train.batch_size: {choice: [16, 32, 64, 128]}"
    echo "  optimizer.name: {choice: [adam, momentum, sgd]}"
  } >"$path"
}
common=(--set data.train="$data" --set train.patience=0)
for ((s = 0; s < seeds; s++)); do
  d=$runs/s$s
  mkdir -p "$d"
  sweep_file "$d/tpe.yaml" "$s" "$trials"
  t0=$EPOCHREALTIME
  "${pin[@]}" "$pstrain" sweep "$d/tpe.yaml" "${common[@]}" --set train.epochs="$epochs" \
    --out "$d/tpe" -q >"$d/tpe.log" 2>&1 || { echo "pstrain sweep failed: $d/tpe.log" >&2; tail -3 "$d/tpe.log" >&2; exit 1; }
  echo "$t0 $EPOCHREALTIME" >"$d/tpe.wall"
  mkdir -p "$d/optuna"
  "${pin[@]}" "$py" scripts/bench/sweep_optuna.py "$pstrain" "$base" "$data" "$epochs" "$s" \
    "$trials" "$d/optuna" >"$d/optuna.log" 2>&1 || { echo "optuna failed: $d/optuna.log" >&2; tail -3 "$d/optuna.log" >&2; exit 1; }
  # TPE with rungs against TPE alone at the top rung's epochs
  sweep_file "$d/rungs.yaml" "$s" "$trials" "rungs: {min_epochs: 1, max_epochs: 9, eta: 3}"
  sweep_file "$d/flat.yaml" "$s" "$trials"
  "${pin[@]}" "$pstrain" sweep "$d/rungs.yaml" "${common[@]}" --out "$d/rungs" -q >"$d/rungs.log" 2>&1 ||
    { echo "pstrain sweep with rungs failed: $d/rungs.log" >&2; exit 1; }
  "${pin[@]}" "$pstrain" sweep "$d/flat.yaml" "${common[@]}" --set train.epochs=9 --out "$d/flat" -q >"$d/flat.log" 2>&1 ||
    { echo "pstrain sweep at 9 epochs failed: $d/flat.log" >&2; exit 1; }
  # retrain each side's best configuration once and score it on the test rows
  "$pstrain" train "$d/tpe/best_config.yaml" "${common[@]}" --out "$d/tpe-best" -q >/dev/null 2>&1
  sets=()
  while IFS= read -r kv; do sets+=(--set "$kv"); done < <("$py" -c "
import json; d = json.load(open('$d/optuna/optuna.json'))
best = max(range(len(d['values'])), key=lambda i: d['values'][i])
for k, v in d['params'][best].items(): print(f'{k}={v}')")
  "$pstrain" train "$base" "${common[@]}" --set train.epochs="$epochs" "${sets[@]}" \
    --out "$d/optuna-best" -q >/dev/null 2>&1
done

"$py" - "$runs" "$seeds" "$trials" <<'PY'
import json, statistics, sys
runs, seeds, trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
marks = [k for k in (10, 25, trials) if k <= trials]
med = statistics.median


def pstrain_side(s):
    res = json.load(open(f"{runs}/s{s}/tpe/sweep_results.json"))
    values = [t["final"] if t["final"] is not None else float("-inf") for t in res["trials"]]
    rep = json.load(open(f"{runs}/s{s}/tpe/report.json"))
    fit = sum(t["fit_seconds"] for t in rep["tasks"] if t)
    t0, t1 = map(float, open(f"{runs}/s{s}/tpe.wall").read().split())
    test = json.load(open(f"{runs}/s{s}/tpe-best/report.json"))["test"]["accuracy"]
    return values, (t1 - t0 - fit) / trials, test


def optuna_side(s):
    d = json.load(open(f"{runs}/s{s}/optuna/optuna.json"))
    test = json.load(open(f"{runs}/s{s}/optuna-best/report.json"))["test"]["accuracy"]
    return d["values"], (d["wall_seconds"] - d["train_seconds"]) / trials, test


rows = {}
for name, side in (("pstrain tpe", pstrain_side), ("optuna tpe", optuna_side)):
    per = [side(s) for s in range(seeds)]
    best = {k: med(max(v[:k]) for v, _, _ in per) for k in marks}
    rows[name] = (best, med(o for _, o, _ in per), med(t for _, _, t in per),
                  [max(v) for v, _, _ in per])
head = " ".join(f"{'@' + str(k):>8}" for k in marks)
print(f"\n{'':<12} {'best val accuracy (median)':^{9 * len(marks)}} {'test acc':>9} {'overhead s/trial':>17}")
print(f"{'':<12} {head} {'(median)':>9} {'(median)':>17}")
for name, (best, over, test, _) in rows.items():
    print(f"{name:<12} " + " ".join(f"{best[k]:8.4f}" for k in marks) + f" {test:9.4f} {over:17.4f}")
p, o = rows["pstrain tpe"], rows["optuna tpe"]
print("best val accuracy at %d trials by seed: pstrain %s, optuna %s" % (
    trials, " ".join(f"{v:.4f}" for v in p[3]), " ".join(f"{v:.4f}" for v in o[3])))
diff = p[0][trials] - o[0][trials]
print(f"pstrain - optuna at {trials} trials (medians): {diff:+.4f} -> "
      f"{'met' if diff >= 0 else 'missed'} (target: not worse)")
print(f"overhead per trial: pstrain {p[1]:.4f} s, optuna {o[1]:.4f} s, ratio optuna/pstrain "
      f"{o[1] / p[1]:.1f}x -> {'met' if p[1] < o[1] else 'missed'} (target: below Optuna's)")

spent = {k: [] for k in ("rungs", "flat")}
best = {k: [] for k in ("rungs", "flat")}
for s in range(seeds):
    for k in ("rungs", "flat"):
        rep = json.load(open(f"{runs}/s{s}/{k}/report.json"))["sweep"]
        spent[k].append(rep["epochs_spent"])
        best[k].append(rep["best"]["val_metric"])
print(f"\nTPE + rungs (1, 3, 9 epochs, eta 3) against TPE alone at 9 epochs, {trials} trials, medians:")
for k, label in (("rungs", "tpe + rungs"), ("flat", "tpe alone")):
    print(f"  {label:<12} epochs spent {med(spent[k]):7.0f}   best val accuracy {med(best[k]):.4f}"
          f"   (by seed {' '.join(f'{v:.4f}' for v in best[k])})")
print(f"  epochs ratio tpe alone / tpe + rungs: {med(spent['flat']) / med(spent['rungs']):.2f}x")
PY
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
