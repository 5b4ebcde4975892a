#!/usr/bin/env bash
# End-to-end tests of pstrain cv and pstrain sweep, locally and under mpirun with worker groups:
#  - every row gets exactly one out-of-fold prediction per repeat; stratified folds keep ratios;
#  - 5 folds on 2 groups under mpirun give the local run's fold metrics exactly;
#  - a sweep writes its results table and a best config that trains;
#  - a sweep killed midway resumes without rerunning finished trials.
# Bag and stack, the other plans, are in bag_stack_test.sh.
# usage: cv_sweep_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"

# --- cv locally ----------------------------------------------------------------------------
cv=(cv "$examples/csv_logreg.yaml" --set data.train="$data/breast_cancer.csv" --folds 5 --stratified --repeats 2)
if "$pstrain" "${cv[@]}" --out "$work/cv-local" -q >/dev/null 2>"$work/cv-local.log"; then
  python3 - "$work/cv-local/oof_predictions.csv" "$data/breast_cancer.csv" <<'PY' && pass "cv: every row predicted once per repeat by a model that never saw it; folds stratified" || fail "cv out-of-fold file"
import collections, csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = sum(1 for _ in open(sys.argv[2])) - 1
per_repeat = collections.defaultdict(list)
for r in rows:
    per_repeat[r["repeat"]].append(int(r["row"]))
assert len(per_repeat) == 2, per_repeat.keys()
for rep, seen in per_repeat.items():
    assert sorted(seen) == list(range(n)), ("repeat", rep, len(seen), n)
# stratification: each fold's malignant share within one row of the whole set's
labels = {int(r["row"]): r["label"] for r in rows}
share = sum(1 for v in labels.values() if float(v) == 0) / n
folds = collections.defaultdict(list)
for r in rows:
    folds[(r["repeat"], r["fold"])].append(float(r["label"]) == 0)
for key, f in folds.items():
    assert abs(sum(f) - share * len(f)) <= 1.0, (key, sum(f), share * len(f))
PY
  acc=$(json "$work/cv-local/report.json" "['cv']['accuracy']['mean']")
  std=$(json "$work/cv-local/report.json" "['cv']['accuracy']['std']")
  n_values=$(python3 -c "import json; print(len(json.load(open('$work/cv-local/report.json'))['cv']['accuracy']['values']))")
  python3 -c "import sys; sys.exit(0 if $acc >= 0.95 and $n_values == 10 else 1)" \
    && pass "cv: accuracy $acc ± $std over $n_values folds" || fail "cv: accuracy $acc over $n_values folds"
else
  fail "cv local: $(tail -3 "$work/cv-local.log")"
fi

# --- cv on 2 worker groups == local ----------------------------------------------------------
cv5=(cv "$examples/csv_logreg.yaml" --set data.train="$data/wine.csv" --folds 5 --stratified)
"$pstrain" "${cv5[@]}" --out "$work/cv5-local" -q >/dev/null 2>&1 || fail "cv5 local"
if mpi 3 "${cv5[@]}" --set cluster.groups=2 --out "$work/cv5-mpi" -q >"$work/cv5-mpi.log" 2>&1; then
  a=$(json "$work/cv5-local/report.json" "['cv']['accuracy']['values']")
  b=$(json "$work/cv5-mpi/report.json" "['cv']['accuracy']['values']")
  groups=$(json "$work/cv5-mpi/report.json" "['cluster']['groups']")
  if [ "$a" = "$b" ] && [ "$groups" = 2 ] && cmp -s "$work/cv5-local/oof_predictions.csv" "$work/cv5-mpi/oof_predictions.csv"; then
    pass "cv: 5 folds on 2 worker groups give the local fold metrics exactly ($b)"
  else
    fail "cv on 2 groups: $b vs local $a (groups $groups)"
  fi
else
  fail "cv under mpirun: $(tail -3 "$work/cv5-mpi.log")"
fi

# --- cv errors -----------------------------------------------------------------------------
"$pstrain" cv "$examples/csv_logreg.yaml" --folds 1 >/dev/null 2>"$work/e1"; s1=$?
"$pstrain" cv "$examples/csv_logreg.yaml" --set data.train="$data/iris.csv" --group-column nope >/dev/null 2>"$work/e2"; s2=$?
[ $s1 = 2 ] && grep -q "folds" "$work/e1" && [ $s2 = 1 ] && grep -q "nope" "$work/e2" \
  && pass "cv: bad options are clear errors" || fail "cv errors: $s1 $(cat "$work/e1") / $s2 $(cat "$work/e2")"

# --- sweep ---------------------------------------------------------------------------------
cat > "$work/sweep.yaml" <<YAML
base: $examples/csv_logreg.yaml
method: hyperband
metric: val.accuracy
trials: 9
seed: 0
hyperband: {min_epochs: 2, max_epochs: 18, eta: 3}
space:
  optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
  model.hidden: {choice: ["[]", "[16]"]}
YAML
sw=(sweep "$work/sweep.yaml" --set data.train="$data/wine.csv" --set train.patience=0)
if "$pstrain" "${sw[@]}" --out "$work/sw" -q >/dev/null 2>"$work/sw.log"; then
  best=$(json "$work/sw/report.json" "['sweep']['best']['val_metric']")
  spent=$(json "$work/sw/report.json" "['sweep']['epochs_spent']")
  full=$(json "$work/sw/report.json" "['sweep']['full_epochs']")
  rows=$(($(wc -l < "$work/sw/sweep_results.csv") - 1))
  python3 -c "import sys; sys.exit(0 if $best >= 0.9 and $spent < $full / 2 else 1)" && [ "$rows" = 9 ] \
    && pass "sweep: best val.accuracy $best, $spent epochs of $full, 9 trials in the table" \
    || fail "sweep: best $best, epochs $spent / $full, rows $rows"
  if "$pstrain" train "$work/sw/best_config.yaml" --out "$work/best" -q >/dev/null 2>&1; then
    pass "sweep: best_config.yaml trains as it is"
  else
    fail "best_config.yaml does not train"
  fi
else
  fail "sweep: $(tail -3 "$work/sw.log")"
fi

# --- sweep killed and resumed ------------------------------------------------------------
# A slower sweep (digits, an MLP) is killed once a few jobs are recorded, then resumed; the
# resumed process must not run any job that the results table already held.
cat > "$work/slow.yaml" <<YAML
base: $examples/csv_logreg.yaml
method: random
metric: val.accuracy
trials: 12
seed: 1
space:
  optimizer.lr: {log_uniform: [1.0e-3, 1.0e-1]}
YAML
slow=(sweep "$work/slow.yaml" --set data.train="$data/digits.csv" --set train.patience=0 --set train.epochs=60 --set model.hidden=[128])
setsid "$pstrain" "${slow[@]}" --out "$work/slow" -q >"$work/slow-1.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  done_jobs=$(python3 -c "import json; print(sum(t['state'] == 'completed' for t in json.load(open('$work/slow/sweep_results.json'))['trials']))" 2>/dev/null)
  [ "${done_jobs:-0}" -ge 3 ] && break
  sleep 0.05
done
kill -KILL -- -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
before=$(python3 -c "import json; d=json.load(open('$work/slow/sweep_results.json')); print(sorted(t['trial'] for t in d['trials'] if t['state'] == 'completed'))" 2>/dev/null)
if [ -z "$before" ] || [ "$before" = "[]" ]; then
  fail "the slow sweep finished no job before it was killed"
elif "$pstrain" "${slow[@]}" --resume "$work/slow" -q >"$work/slow-2.out" 2>&1; then
  rerun=$(python3 - "$work/slow-2.out" "$before" <<'PY'
import re, sys
before = set(eval(sys.argv[2]))
ran = {int(m.group(1)) for m in re.finditer(r"^trial (\d+) @", open(sys.argv[1]).read(), re.M)}
print(sorted(before & ran))
PY
)
  after=$(python3 -c "import json; d=json.load(open('$work/slow/sweep_results.json')); print(sum(t['state'] == 'completed' for t in d['trials']))")
  [ "$rerun" = "[]" ] && [ "$after" = 12 ] \
    && pass "sweep killed after trials $before resumed: none rerun, all 12 completed" \
    || fail "sweep resume reran $rerun; completed after: $after"
else
  fail "sweep resume: $(tail -3 "$work/slow-2.out")"
fi

if [ $failures -ne 0 ]; then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
