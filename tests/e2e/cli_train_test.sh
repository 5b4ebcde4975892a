#!/usr/bin/env bash
# End-to-end: pstrain train/eval/predict on the small real CSVs, with accuracy floors a broken
# model cannot reach, and the bad-input cases of the command line. One process, dense models only:
# mpirun runs are in cluster_test.sh, sparse models in sparse_train_test.sh.
# usage: cli_train_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"

# at_least VALUE FLOOR
at_least() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"; }

train() { # name config-args... ; runs into $work/name
  local name=$1; shift
  "$pstrain" train "$@" --out "$work/$name" -q >"$work/$name.log" 2>&1
}

# --- classification on real data -------------------------------------------------------------
check_accuracy() { # name file floor extra-args...
  local name=$1 file=$2 floor=$3; shift 3
  if ! train "$name" "$examples/csv_logreg.yaml" --set data.train="$data/$file" "$@"; then
    fail "$name: train failed: $(tail -3 "$work/$name.log")"; return
  fi
  local acc; acc=$(json "$work/$name/report.json" "['test']['accuracy']")
  if at_least "$acc" "$floor"; then pass "$name test accuracy $acc >= $floor"
  else fail "$name test accuracy $acc < $floor"; fi
}
check_accuracy iris iris.csv 0.85
check_accuracy wine wine.csv 0.90
check_accuracy breast_cancer breast_cancer.csv 0.92
check_accuracy digits_mlp digits.csv 0.93 --set model.hidden=[64] --set train.epochs=30

# report.json carries the documented keys
for key in "['train']['epochs']" "['train']['seconds']" "['train']['samples_per_s']" \
           "['val']['accuracy']" "['test']['f1_macro']" "['test']['precision_macro']" \
           "['test']['recall_macro']" "['test']['specificity_macro']" "['test']['confusion']" \
           "['test']['roc_auc']"; do
  if json "$work/breast_cancer/report.json" "$key" >/dev/null 2>&1; then :; else fail "report.json lacks $key"; fi
done
lines=$(wc -l < "$work/breast_cancer/metrics.jsonl")
epochs=$(json "$work/breast_cancer/report.json" "['train']['epochs']")
[ "$lines" = "$epochs" ] && pass "metrics.jsonl has a line per epoch" || fail "metrics.jsonl has $lines lines for $epochs epochs"

# --- regression ----------------------------------------------------------------------------
if train diabetes "$examples/csv_regression.yaml" --set data.train="$data/diabetes.csv"; then
  r2=$(json "$work/diabetes/report.json" "['test']['r2']")
  at_least "$r2" 0.30 && pass "diabetes test r2 $r2 >= 0.30" || fail "diabetes test r2 $r2 < 0.30"
else
  fail "diabetes: train failed: $(tail -3 "$work/diabetes.log")"
fi

# --- eval and predict reproduce the run's own figures ---------------------------------------
# Evaluating the saved model on the whole file must match a fresh prediction count.
if "$pstrain" eval "$work/wine/model.pst" "$data/wine.csv" --json "$work/wine-eval.json" >"$work/eval.log" 2>&1; then
  n=$(json "$work/wine-eval.json" "['n']")
  acc=$(json "$work/wine-eval.json" "['accuracy']")
  [ "${n%.*}" = 178 ] && at_least "$acc" 0.90 && pass "eval on wine.csv: $n rows, accuracy $acc" \
    || fail "eval on wine.csv: n=$n accuracy=$acc"
else
  fail "eval failed: $(cat "$work/eval.log")"
fi
if "$pstrain" predict "$work/wine/model.pst" "$data/wine.csv" -o "$work/pred.csv" 2>"$work/pred.log"; then
  rows=$(($(wc -l < "$work/pred.csv") - 1))
  header=$(head -1 "$work/pred.csv")
  # Accuracy recomputed from the predictions file must equal eval's.
  acc2=$(python3 - "$work/pred.csv" "$data/wine.csv" <<'PY'
import csv, sys
pred = [r[0] for r in csv.reader(open(sys.argv[1]))][1:]
truth = [r[-1] for r in csv.reader(open(sys.argv[2]))][1:]
print(sum(float(p) == float(t) for p, t in zip(pred, truth)) / len(truth))
PY
)
  [ "$rows" = 178 ] && [ "$header" = "prediction,p_0,p_1,p_2" ] && python3 -c "import sys; sys.exit(abs($acc2 - $acc) > 1e-9)" \
    && pass "predict writes 178 rows whose accuracy equals eval's ($acc2)" \
    || fail "predict: rows=$rows header=$header accuracy=$acc2 vs eval $acc"
else
  fail "predict failed: $(cat "$work/pred.log")"
fi

# --- bad input: clear error naming the place, non-zero exit, no report ----------------------
expect_error() { # name pattern args...
  local name=$1 pattern=$2; shift 2
  "$pstrain" "$@" >"$work/$name.out" 2>"$work/$name.err"
  local status=$?
  if [ $status -ne 0 ] && grep -q -- "$pattern" "$work/$name.err" && [ ! -e "$work/$name/report.json" ]; then
    pass "$name: exit $status, message names '$pattern'"
  else
    fail "$name: exit $status, stderr: $(head -2 "$work/$name.err")"
  fi
}
printf 'a,b,target\n1,2,0\n3,x,1\n' > "$work/bad_cell.csv"
printf 'a,b,target\n1,2,0\n3,4\n' > "$work/ragged.csv"
printf 'a,b,label\n1,2,0\n3,4,1\n' > "$work/no_target.csv"
: > "$work/empty.csv"
printf 'train:\n  epochs: 3\n  epoks: 4\n' > "$work/typo.yaml"
# A text cell makes a column categorical; declared numeric, it is an error naming its line.
expect_error bad_cell "bad_cell.csv:3" train "$examples/csv_logreg.yaml" --set data.train="$work/bad_cell.csv" --set 'data.as_numeric=[b]' --out "$work/bad_cell"
expect_error ragged "ragged.csv:3" train "$examples/csv_logreg.yaml" --set data.train="$work/ragged.csv" --out "$work/ragged"
expect_error no_target "target" train "$examples/csv_logreg.yaml" --set data.train="$work/no_target.csv" --out "$work/no_target"
expect_error empty "empty.csv" train "$examples/csv_logreg.yaml" --set data.train="$work/empty.csv" --out "$work/empty"
expect_error unknown_key "train.epoks" train "$work/typo.yaml" --out "$work/unknown_key"
expect_error bad_value "optimizer.lr" train "$examples/csv_logreg.yaml" --set optimizer.lr=fast --out "$work/bad_value"
expect_error missing_config "nope.yaml" train "$work/nope.yaml"
expect_error bad_model "not a pstrain model" eval "$data/iris.csv" "$data/iris.csv"
expect_error unknown_command "unknown command" frobnicate
[ ! -e "$work/bad_cell" ] || [ -z "$(ls "$work/bad_cell")" ] && pass "bad data leaves no run directory" || fail "bad data left files: $(ls "$work/bad_cell")"

# --- help answers ----------------------------------------------------------------------------
help_main=$("$pstrain" --help); help_train=$("$pstrain" train --help); reference=$("$pstrain" config)
if grep -q "train" <<<"$help_main" && grep -q -- "--set" <<<"$help_train" && grep -q "optimizer.lr" <<<"$reference"; then
  pass "help texts"
else
  fail "help texts"
fi
# The README's configuration reference is the program's own, key for key.
missing=$(grep -o '^| `[a-z_.]*`' <<<"$reference" | while read -r row; do grep -qF -- "$row" "$tests/../README.md" || echo "$row"; done)
[ -z "$missing" ] && pass "README lists every configuration key" || fail "README lacks: $missing"

if [ $failures -ne 0 ]; then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
