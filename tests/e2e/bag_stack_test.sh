#!/usr/bin/env bash
# End-to-end: pstrain bag and pstrain stack on the small real CSVs, with accuracy floors a broken
# ensemble cannot reach; their model.pst applied by eval and predict reproduces the run's own test
# figures; bad options are usage errors.
# cv and sweep, the other plans of fits, are in cv_sweep_test.sh; single fits in cli_train_test.sh.
# usage: bag_stack_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"

# at_least VALUE FLOOR
at_least() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"; }

run() { # name command args... ; runs into $work/name
  local name=$1; shift
  "$pstrain" "$@" --out "$work/$name" -q >"$work/$name.log" 2>&1
}

# Accuracy of `pstrain predict` on the rows listed in RUN/test_predictions.csv, the predicted
# label of each of those rows equal to the run's own, and `pstrain eval` on the whole file equal
# to the accuracy recomputed from the predictions.
# reproduces NAME CSV: prints "test_accuracy eval_accuracy whole_file_accuracy mismatches"
reproduces() {
  local name=$1 csv=$2
  "$pstrain" predict "$work/$name/model.pst" "$csv" -o "$work/$name-pred.csv" 2>>"$work/$name.log" || return 1
  "$pstrain" eval "$work/$name/model.pst" "$csv" --json "$work/$name-eval.json" >>"$work/$name.log" 2>&1 || return 1
  python3 - "$work/$name-pred.csv" "$csv" "$work/$name/test_predictions.csv" "$work/$name-eval.json" <<'PY'
import csv, json, sys
pred = list(csv.DictReader(open(sys.argv[1])))
truth = [r["target"] for r in csv.DictReader(open(sys.argv[2]))]
own = list(csv.DictReader(open(sys.argv[3])))
ev = json.load(open(sys.argv[4]))
rows = [int(r["row"]) for r in own]
test_acc = sum(float(pred[i]["prediction"]) == float(truth[i]) for i in rows) / len(rows)
mismatches = sum(float(pred[int(r["row"])]["prediction"]) != float(r["prediction"]) for r in own)
whole = sum(float(p["prediction"]) == float(t) for p, t in zip(pred, truth)) / len(truth)
print(test_acc, ev["accuracy"], whole, mismatches)
PY
}

check_reproduced() { # name csv report-key
  local name=$1 csv=$2 key=$3 out
  if ! out=$(reproduces "$name" "$csv"); then fail "$name: predict/eval failed: $(tail -3 "$work/$name.log")"; return; fi
  read -r test_acc eval_acc whole mismatches <<<"$out"
  local own; own=$(json "$work/$name/report.json" "$key")
  if python3 -c "import sys; sys.exit(abs($test_acc - $own) > 1e-9 or abs($eval_acc - $whole) > 1e-9 or $mismatches != 0)"; then
    pass "$name: predict on the test rows gives $test_acc = $key, eval $eval_acc = predict on the whole file"
  else
    fail "$name: predict on test rows $test_acc vs $key $own; eval $eval_acc vs predict $whole; $mismatches labels differ"
  fi
}

# --- bag --------------------------------------------------------------------------------------
if run bag_bc bag "$config" --set data.train="$data/breast_cancer.csv" --members 5; then
  acc=$(json "$work/bag_bc/report.json" "['bag']['test']['accuracy']")
  oob=$(json "$work/bag_bc/report.json" "['bag']['oob_accuracy']")
  mean=$(json "$work/bag_bc/report.json" "['bag']['member_mean']['accuracy']")
  members=$(jexpr "$work/bag_bc/report.json" "len(d['tasks'])")
  at_least "$acc" 0.92 && pass "bag breast_cancer: test accuracy $acc >= 0.92 (members' mean $mean)" \
    || fail "bag breast_cancer: test accuracy $acc < 0.92"
  at_least "$oob" 0.90 && pass "bag breast_cancer: oob accuracy $oob >= 0.90" \
    || fail "bag breast_cancer: oob accuracy $oob < 0.90"
  [ "$members" = 5 ] && pass "bag: 5 members in the report" || fail "bag: $members members in the report"
  rows=$(jexpr "$work/bag_bc/report.json" "d['bag']['oob_rows'] + d['bag']['oob_skipped'] == d['bag']['train_rows']")
  [ "$rows" = True ] && pass "bag: oob rows and skipped rows add up to the training rows" || fail "bag: oob rows do not add up"
  lines=$(wc -l <"$work/bag_bc/metrics.jsonl")
  [ "$lines" = 5 ] && pass "bag: metrics.jsonl has a line per member" || fail "bag: metrics.jsonl has $lines lines"
  check_reproduced bag_bc "$data/breast_cancer.csv" "['bag']['test']['accuracy']"
  "$pstrain" info "$work/bag_bc/model.pst" >"$work/info.txt" 2>&1
  grep -q "^ensemble: bagging" "$work/info.txt" && grep -q "^members: 5" "$work/info.txt" \
    && pass "info describes the bagging ensemble" || fail "info: $(head -3 "$work/info.txt")"
else
  fail "bag breast_cancer failed: $(tail -3 "$work/bag_bc.log")"
fi

# Feature subsets and hard voting: each member sees 15 of the 30 columns, and the saved
# ensemble applies each member's own columns.
if run bag_cols bag "$config" --set data.train="$data/breast_cancer.csv" --members 5 \
     --max-features 0.5 --max-samples 0.8 --voting hard; then
  acc=$(json "$work/bag_cols/report.json" "['bag']['test']['accuracy']")
  widths=$(jexpr "$work/bag_cols/report.json" "sorted(set(t['features'] for t in d['tasks']))")
  at_least "$acc" 0.90 && [ "$widths" = "[15]" ] \
    && pass "bag --max-features 0.5 --voting hard: test accuracy $acc, members see $widths columns" \
    || fail "bag --max-features 0.5: accuracy $acc, member widths $widths"
  "$pstrain" info "$work/bag_cols/model.pst" | grep "^  columns:" >/dev/null \
    && pass "info lists the members' columns" || fail "info lists no columns"
  check_reproduced bag_cols "$data/breast_cancer.csv" "['bag']['test']['accuracy']"
else
  fail "bag --max-features failed: $(tail -3 "$work/bag_cols.log")"
fi

# --- stack ------------------------------------------------------------------------------------
bases=(--base "model.hidden=[]" --base "model.hidden=[16];optimizer.lr=0.01")
if run stack_wine stack "$config" --set data.train="$data/wine.csv" "${bases[@]}" --folds 4; then
  acc=$(json "$work/stack_wine/report.json" "['stack']['test']['accuracy']")
  b0=$(json "$work/stack_wine/report.json" "['stack']['bases'][0]['test']['accuracy']")
  b1=$(json "$work/stack_wine/report.json" "['stack']['bases'][1]['test']['accuracy']")
  tasks=$(jexpr "$work/stack_wine/report.json" "len(d['tasks'])")
  at_least "$acc" 0.90 && pass "stack wine: test accuracy $acc >= 0.90 (bases $b0, $b1)" \
    || fail "stack wine: test accuracy $acc < 0.90"
  [ "$tasks" = 10 ] && pass "stack: 2 bases x (4 folds + 1 refit) = 10 fits" || fail "stack: $tasks fits"
  "$pstrain" info "$work/stack_wine/model.pst" | grep "^meta model:" >/dev/null \
    && pass "info shows the meta model" || fail "info shows no meta model"
  check_reproduced stack_wine "$data/wine.csv" "['stack']['test']['accuracy']"
else
  fail "stack wine failed: $(tail -3 "$work/stack_wine.log")"
fi

for method in blending soft_vote; do
  if run "stack_$method" stack "$config" --set data.train="$data/wine.csv" "${bases[@]}" --method "$method"; then
    acc=$(json "$work/stack_$method/report.json" "['stack']['test']['accuracy']")
    at_least "$acc" 0.85 && pass "stack --method $method: test accuracy $acc >= 0.85" \
      || fail "stack --method $method: test accuracy $acc < 0.85"
    check_reproduced "stack_$method" "$data/wine.csv" "['stack']['test']['accuracy']"
  else
    fail "stack --method $method failed: $(tail -3 "$work/stack_$method.log")"
  fi
done

# --- bad options --------------------------------------------------------------------------------
usage_error() { # expected-text args...
  local text=$1; shift
  "$pstrain" "$@" --out "$work/never" >"$work/usage.log" 2>&1
  local status=$?
  if [ "$status" = 2 ] && grep -q -- "$text" "$work/usage.log"; then pass "usage error: $*"
  else fail "'$*' exited $status: $(cat "$work/usage.log")"; fi
}
usage_error "--members must be" bag "$config" --members 0
usage_error "--max-samples and --max-features" bag "$config" --max-features 1.5
usage_error "--voting takes soft or hard" bag "$config" --voting most
usage_error "unknown or incomplete option '--bogus'" bag "$config" --bogus
usage_error "no CONFIG" bag --members 3
usage_error "at least two base models" stack "$config" --base "model.hidden=[]"
usage_error "--base 2: .*model.nope" stack "$config" --base "model.hidden=[]" --base "model.nope=1"
usage_error "--method takes" stack "$config" "${bases[@]}" --method boosting
usage_error "--folds must be" stack "$config" "${bases[@]}" --folds 1
usage_error "--holdout takes" stack "$config" "${bases[@]}" --holdout 0
[ -e "$work/never" ] && fail "a usage error created the run directory" || pass "usage errors write nothing"
if "$pstrain" bag "$config" --set data.train="$data/diabetes.csv" --set data.task=regression \
     --voting hard --out "$work/never" -q >"$work/usage.log" 2>&1; then
  fail "hard voting on regression was accepted"
else
  grep -q "hard needs a classification task" "$work/usage.log" && pass "hard voting on regression refused" \
    || fail "hard voting on regression: $(cat "$work/usage.log")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
