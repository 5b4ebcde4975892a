#!/usr/bin/env bash
# End-to-end tests of TPE sweeps and sweeps at scale:
#  - 500 short TPE trials under mpirun (2 servers, 2 worker groups) all complete, and the
#    servers' peak memory is that of a 50-trial sweep: every task drops its namespace;
#  - the report gives tasks per second and each group's idle time;
#  - each trial line shows the objective and the hyperparameters, and a table of the top trials
#    ends the output;
#  - keep_models: 3 keeps the models of the top 3 trials in top_models/, the best one the same
#    file as best_model.pst;
#  - best_model.pst scored by pstrain eval on the rows the trials were scored on (val_rows.txt)
#    gives the best trial's metrics exactly;
#  - a finished TPE sweep resumed runs nothing again and keeps its results;
#  - a bad tpe key is refused with its file and line.
# usage: sweep_scale_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"

sweep_file() { # sweep_file PATH TRIALS
  cat > "$1" <<YAML
base: $examples/csv_logreg.yaml
method: tpe
metric: val.accuracy
trials: $2
seed: 3
tpe: {startup_trials: 5}
space:
  optimizer.lr: {log_uniform: [1.0e-3, 0.1]}
  train.batch_size: {choice: [32, 64]}
YAML
}

# --- 500 trials under mpirun: memory bounded by the tasks running ----------------------------
# A model of 4 x 256 x 128 x 3 (34k parameters, with Adam's two moments about 400 KiB a trial
# over the servers): 450 namespaces left behind would add about 90 MiB to each server.
scale=(--set data.train="$data/iris.csv" --set train.patience=0 --set train.epochs=1
  --set model.hidden=[256,128] --set cluster.servers=2 --set cluster.groups=2 -q)
sweep_file "$work/s50.yaml" 50
sweep_file "$work/s500.yaml" 500
if mpi 4 sweep "$work/s50.yaml" "${scale[@]}" --out "$work/s50" >"$work/s50.log" 2>&1 &&
  mpi 4 sweep "$work/s500.yaml" "${scale[@]}" --out "$work/s500" >"$work/s500.log" 2>&1; then
  done500=$(jexpr "$work/s500/sweep_results.json" "sum(t['state'] == 'completed' for t in d['trials'])")
  rss50=$(jexpr "$work/s50/report.json" "max(d['cluster']['peak_rss_mib']['servers'])")
  rss500=$(jexpr "$work/s500/report.json" "max(d['cluster']['peak_rss_mib']['servers'])")
  check "500 trials completed ($done500); servers' peak RSS $rss500 MiB after 500 trials, $rss50 MiB after 50" \
    "$(python3 -c "print($done500 == 500 and $rss500 - $rss50 < 16)")"
  check "the report gives tasks/s and each group's idle time: $(jexpr "$work/s500/report.json" "{k: d['cluster'][k] for k in ('tasks_per_second', 'group_stats')}")" \
    "$(jexpr "$work/s500/report.json" "d['cluster']['tasks_per_second'] > 0 and len(d['cluster']['group_stats']) == 2 and sum(g['tasks'] for g in d['cluster']['group_stats']) == 500 and all(g['idle_seconds'] >= 0 for g in d['cluster']['group_stats'])")"
else
  fail "sweep of 500 trials under mpirun: $(tail -3 "$work/s50.log" "$work/s500.log")"
fi

# --- trial lines, the top table, best_model.pst through eval ---------------------------------
sweep_file "$work/local.yaml" 12
echo "keep_models: 3" >>"$work/local.yaml"
local=(sweep "$work/local.yaml" --set data.train="$data/wine.csv" --set train.patience=0)
if "$pstrain" "${local[@]}" --out "$work/local" >"$work/local.out" 2>"$work/local.log"; then
  lines=$(grep -cE '^trial [0-9]+ @100 +val\.accuracy [01]\.[0-9]{4} +completed .* optimizer\.lr=[0-9.e-]+ train\.batch_size=(32|64)$' "$work/local.out")
  top=$(grep -A11 '^top 10 trials by val.accuracy:' "$work/local.out" | grep -cE '^ +[0-9]+ +[0-9]+ +100 +[01]\.[0-9]{6}  optimizer\.lr=')
  [ "$lines" = 12 ] && [ "$top" = 10 ] && pass "12 trial lines with the objective and hyperparameters; a table of the top 10" \
    || fail "trial lines $lines of 12, top rows $top of 10: $(head -3 "$work/local.out")"
  top3=$(jexpr "$work/local/report.json" "' '.join(f\"trial_{t['trial']}.pst\" for t in d['sweep']['top'][:3])")
  kept=$(cd "$work/local/top_models" && ls | sort -V | tr '\n' ' ')
  best_trial=$(json "$work/local/report.json" "['sweep']['best']['trial']")
  [ "$(echo $top3 | tr ' ' '\n' | sort -V | tr '\n' ' ')" = "$kept" ] &&
    cmp -s "$work/local/best_model.pst" "$work/local/top_models/trial_$best_trial.pst" \
    && pass "top_models/ holds the top 3 trials' models ($kept); the best is best_model.pst" \
    || fail "top_models: '$kept', top 3 '$top3'"
  python3 - "$data/wine.csv" "$work/local/val_rows.txt" "$work/val.csv" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
rows = [int(r) for r in open(sys.argv[2])]
open(sys.argv[3], "w").write("\n".join([lines[0]] + [lines[1 + r] for r in rows]) + "\n")
PY
  if "$pstrain" eval "$work/local/best_model.pst" "$work/val.csv" --json "$work/eval.json" >/dev/null 2>"$work/eval.log"; then
    best=$(json "$work/local/report.json" "['sweep']['best']['trial']")
    check "best_model.pst (trial $best) scored by eval on val_rows.txt: the trial's accuracy and log-loss exactly" \
      "$(python3 - "$work/local/metrics.jsonl" "$work/eval.json" "$best" <<'PY'
import json, sys
trial = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("task") == f"trial {sys.argv[3]} @100"]
ev = json.load(open(sys.argv[2]))
print(len(trial) == 1 and trial[0]["accuracy"] == ev["accuracy"] and trial[0]["log_loss"] == ev["log_loss"] and trial[0]["n"] == ev["n"])
PY
)"
  else
    fail "eval of best_model.pst: $(tail -3 "$work/eval.log")"
  fi
  # --- resume of a finished sweep: nothing runs again -------------------------------------
  cp "$work/local/sweep_results.csv" "$work/before.csv"
  if "$pstrain" "${local[@]}" --resume "$work/local" >"$work/resume.out" 2>"$work/resume.log"; then
    rerun=$(grep -c '^trial ' "$work/resume.out")
    [ "$rerun" = 0 ] && cmp -s "$work/before.csv" "$work/local/sweep_results.csv" \
      && pass "a finished TPE sweep resumed runs no trial again; its results table is unchanged" \
      || fail "resume ran $rerun jobs again"
  else
    fail "resume: $(tail -3 "$work/resume.log")"
  fi
else
  fail "local TPE sweep: $(tail -3 "$work/local.log")"
fi

# --- errors ------------------------------------------------------------------------------
sweep_file "$work/bad.yaml" 5
sed -i 's/^tpe: .*/tpe: {gamma: 2}/' "$work/bad.yaml"
"$pstrain" sweep "$work/bad.yaml" --set data.train="$data/wine.csv" >/dev/null 2>"$work/bad.log"; st=$?
[ $st = 1 ] && grep -q "bad.yaml:6: tpe.gamma: expected a number in (0, 1)" "$work/bad.log" \
  && pass "a bad tpe key is refused with its file and line" || fail "bad tpe key: exit $st, $(cat "$work/bad.log")"

echo "$failures checks failed"
[ "$failures" = 0 ]
