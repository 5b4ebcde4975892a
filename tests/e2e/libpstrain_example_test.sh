#!/usr/bin/env bash
# End-to-end: libpstrain installed by `cmake --install` into a scratch prefix, the example program
# of examples/libpstrain built through pkg-config (shared and static), and its predictions equal to
# `pstrain predict`'s, character for character (both print the same float32 results with the same
# formats: %.6g probabilities, %.9g regression values, so the tolerance is zero), for a softmax
# regression, an MLP, a binary logistic regression (one sigmoid output), a linear regression, a
# bagging ensemble (members on feature subsets) and a stacking ensemble; a model and a bagging
# ensemble on customers.csv (text categories, yes/no booleans, dates, quoted fields, a BOM, text
# class labels, an id column), also with its columns reordered and with category values unseen in
# training; four threads predicting at once on one loaded model (customers, wine MLP) equal to one;
# the same with the columns shuffled; a missing column named; a bad date named; a file
# that is no model and a sparse model refused.
# usage: libpstrain_example_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
build=$(cd "$(dirname "$pstrain")/.." && pwd)
source "$(dirname "$0")/lib.sh"

prefix=$work/prefix
if cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 &&
  [ -f "$prefix/include/pstrain.h" ] && ls "$prefix"/lib*/libpstrain.so >/dev/null 2>&1 &&
  ls "$prefix"/lib*/libpstrain.a >/dev/null 2>&1; then
  pass "cmake --install puts the header, libpstrain.so, libpstrain.a and pstrain.pc in the prefix"
else
  fail "cmake --install ($(tail -3 "$work/install.log"))"
fi
libdir=$(dirname "$(ls "$prefix"/lib*/pkgconfig/pstrain.pc | head -1)")/..
libdir=$(cd "$libdir" && pwd)
export PKG_CONFIG_PATH=$libdir/pkgconfig
example=$work/predict
# The shared library through pkg-config; rpath only because the prefix is not a system one.
if cc -std=c11 -Wall -Wextra -Werror "$examples/libpstrain/predict.c" $(pkg-config --cflags --libs pstrain) \
  -Wl,-rpath,"$libdir" -o "$example" 2>"$work/cc.log"; then
  pass "the example builds with pkg-config --cflags --libs pstrain"
else
  fail "the example does not build: $(head -5 "$work/cc.log")"
fi
if cc -std=c11 -Wall -Wextra -Werror "$examples/libpstrain/predict.c" $(pkg-config --cflags pstrain) "$libdir/libpstrain.a" \
  $(pkg-config --static --libs pstrain | sed 's/-lpstrain//') -o "$example-static" 2>"$work/cc-static.log"; then
  pass "the example links the static library too (pkg-config --static)"
else
  fail "static link: $(head -5 "$work/cc-static.log")"
fi

train() { # NAME CONFIG DATA [--set ...]: a run directory $work/NAME
  local name=$1 cfg=$2 csv=$3; shift 3
  "$pstrain" train "$cfg" --set data.train="$csv" "$@" --out "$work/$name" -q >"$work/$name.log" 2>&1
}
# same_as_program NAME MODEL CSV: the example's output equals pstrain predict's
same_as_program() {
  local name=$1 model=$2 csv=$3
  "$pstrain" predict "$model" "$csv" -o "$work/$name.program.csv" 2>>"$work/$name.log" || { fail "$name: pstrain predict"; return; }
  for ex in "$example" "$example-static"; do
    if "$ex" "$model" "$csv" >"$work/$name.lib.csv" 2>"$work/$name.lib.err" &&
      [ "$(wc -l <"$work/$name.lib.csv")" -gt 10 ] && cmp -s "$work/$name.lib.csv" "$work/$name.program.csv"; then
      pass "$name: $(basename "$ex") prints pstrain predict's output exactly ($(($(wc -l <"$work/$name.lib.csv") - 1)) rows)"
    else
      fail "$name: $(basename "$ex") differs from pstrain predict: $(head -2 "$work/$name.lib.err"; diff "$work/$name.lib.csv" "$work/$name.program.csv" | head -4)"
    fi
  done
}

train iris "$examples/csv_logreg.yaml" "$data/iris.csv" --set train.epochs=30
train wine_mlp "$examples/csv_logreg.yaml" "$data/wine.csv" --set "model.hidden=[16]" --set train.epochs=30
train cancer "$examples/csv_logreg.yaml" "$data/breast_cancer.csv" --set train.epochs=20
train diabetes "$examples/csv_regression.yaml" "$data/diabetes.csv" --set train.epochs=30
"$pstrain" bag "$examples/csv_logreg.yaml" --set data.train="$data/iris.csv" --set train.epochs=20 \
  --members 3 --max-features 0.75 --out "$work/bag" -q >"$work/bag.log" 2>&1
"$pstrain" stack "$examples/csv_logreg.yaml" --set data.train="$data/wine.csv" --set train.epochs=15 \
  --base 'model.hidden=[]' --base 'model.hidden=[8]' --folds 3 --out "$work/stack" -q >"$work/stack.log" 2>&1
same_as_program softmax_iris "$work/iris/model.pst" "$data/iris.csv"
same_as_program mlp_wine "$work/wine_mlp/model.pst" "$data/wine.csv"
same_as_program logistic_cancer "$work/cancer/model.pst" "$data/breast_cancer.csv"
same_as_program regression_diabetes "$work/diabetes/model.pst" "$data/diabetes.csv"
if [ -f "$work/bag/model.pst" ]; then
  same_as_program bag_iris "$work/bag/model.pst" "$data/iris.csv"
else
  fail "bag did not write model.pst: $(tail -3 "$work/bag.log")"
fi

if [ -f "$work/stack/model.pst" ]; then
  same_as_program stack_wine "$work/stack/model.pst" "$data/wine.csv"
else
  fail "stack did not write model.pst: $(tail -3 "$work/stack.log")"
fi

# A table of text categories, yes/no booleans, dates, quoted fields, a BOM and text class labels:
# the library encodes the cells exactly as pstrain predict does (id column, class names and all).
train customers "$examples/csv_tabular.yaml" "$data/customers.csv"
cust_model=$work/customers/model.pst
"$pstrain" predict "$cust_model" "$data/customers.csv" -o "$work/customers.program.csv" 2>>"$work/customers.log"
# The columns reordered, the target dropped, and two copies of the rows whose plan and region
# are values the training rows never had: both copies go to the "other" categories.
python3 - "$data/customers.csv" "$work" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig", newline="")))
h = rows[0]
order = [h.index(c) for c in ["note", "autopay", "support_calls", "region", "customer_id",
                              "monthly_spend", "plan", "signup_date"]]
with open(sys.argv[2] + "/customers_shuffled.csv", "w", newline="") as f:
    csv.writer(f).writerows([[r[i] for i in order] for r in rows])
for name, plan, region in (("a", "enterprise", "Atlantis"), ("b", "platinum", "Lemuria")):
    with open(sys.argv[2] + "/unseen_" + name + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(h)
        for r in rows[1:]:
            r = list(r)
            r[h.index("plan")], r[h.index("region")] = plan, region
            w.writerow(r)
PY
for ex in "$example" "$example-static"; do
  if "$ex" "$cust_model" "$data/customers.csv" customer_id >"$work/customers.lib.csv" 2>"$work/customers.lib.err" &&
    [ "$(wc -l <"$work/customers.lib.csv")" -gt 400 ] && cmp -s "$work/customers.lib.csv" "$work/customers.program.csv" &&
    grep -q '^customer_id,prediction,p_no,p_yes$' "$work/customers.lib.csv"; then
    pass "customers (categories, booleans, dates, text labels): $(basename "$ex") prints pstrain predict's output exactly"
  else
    fail "customers: $(basename "$ex") differs from pstrain predict: $(head -2 "$work/customers.lib.err"; diff "$work/customers.lib.csv" "$work/customers.program.csv" | head -4)"
  fi
done
"$example" "$cust_model" "$work/customers_shuffled.csv" customer_id >"$work/customers_shuffled.lib.csv" 2>&1
if cmp -s "$work/customers_shuffled.lib.csv" "$work/customers.program.csv"; then
  pass "customers with reordered columns and no target: the same predictions"
else
  fail "customers reordered: $(diff "$work/customers_shuffled.lib.csv" "$work/customers.program.csv" | head -3)"
fi
"$pstrain" predict "$cust_model" "$work/unseen_a.csv" -o "$work/unseen_a.program.csv" 2>>"$work/customers.log"
"$example" "$cust_model" "$work/unseen_a.csv" customer_id >"$work/unseen_a.lib.csv" 2>&1
"$example" "$cust_model" "$work/unseen_b.csv" customer_id >"$work/unseen_b.lib.csv" 2>&1
if [ -s "$work/unseen_a.program.csv" ] && cmp -s "$work/unseen_a.lib.csv" "$work/unseen_a.program.csv" &&
  cmp -s "$work/unseen_a.lib.csv" "$work/unseen_b.lib.csv" && ! cmp -s "$work/unseen_a.lib.csv" "$work/customers.program.csv"; then
  pass "unseen plan and region values: as pstrain predict, and two different unseen values score alike"
else
  fail "unseen categories: $(diff "$work/unseen_a.lib.csv" "$work/unseen_a.program.csv" | head -3) $(diff "$work/unseen_a.lib.csv" "$work/unseen_b.lib.csv" | head -3)"
fi
# Four threads predicting at once on the one loaded customers model, and on the wine MLP: every
# result equal to the single-threaded one, bit for bit.
threads_tool=${PST_LIB_THREADS:-$build/tests/pst_lib_threads}
for pair in "customers:$cust_model:$data/customers.csv" "wine_mlp:$work/wine_mlp/model.pst:$data/wine.csv"; do
  IFS=: read -r tname tmodel tcsv <<<"$pair"
  if "$threads_tool" "$tmodel" "$tcsv" >"$work/threads_$tname.out" 2>&1 &&
    grep -q ": 0 differ from the single-threaded result" "$work/threads_$tname.out"; then
    pass "$tname, concurrent predictions: $(cat "$work/threads_$tname.out")"
  else
    fail "$tname, concurrent predictions: $(head -3 "$work/threads_$tname.out")"
  fi
done
# A bagging ensemble on the same table: its members share one encoding, and the library scores
# it as pstrain predict does (which writes no id column for ensembles).
"$pstrain" bag "$examples/csv_tabular.yaml" --set data.train="$data/customers.csv" --set train.epochs=10 \
  --members 3 --out "$work/cust_bag" -q >"$work/cust_bag.log" 2>&1
if [ -f "$work/cust_bag/model.pst" ]; then
  same_as_program bag_customers "$work/cust_bag/model.pst" "$data/customers.csv"
else
  fail "bag on customers.csv did not write model.pst: $(tail -3 "$work/cust_bag.log")"
fi
# A date column given text that is no date: the column and row are named.
python3 - "$work/customers_shuffled.csv" "$work/baddate.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[4][rows[0].index("signup_date")] = "next tuesday"
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
PY
"$example" "$cust_model" "$work/baddate.csv" >"$work/baddate.out" 2>"$work/baddate.err"
status=$?
if [ "$status" = 1 ] && grep -q "row 3: column 'signup_date': 'next tuesday' is not a date" "$work/baddate.err" &&
  [ ! -s "$work/baddate.out" ]; then
  pass "a bad date is refused: $(cat "$work/baddate.err")"
else
  fail "bad date: exit $status, $(cat "$work/baddate.err")"
fi

# Columns in another order (the target first, features reversed): the same predictions, since
# the library matches columns by name.
python3 - "$data/wine.csv" "$work/wine_shuffled.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
order = [len(rows[0]) - 1] + list(range(len(rows[0]) - 2, -1, -1))
with open(sys.argv[2], "w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows([[r[i] for i in order] for r in rows])
PY
"$example" "$work/wine_mlp/model.pst" "$work/wine_shuffled.csv" >"$work/shuffled.lib.csv" 2>&1
if cmp -s "$work/shuffled.lib.csv" "$work/mlp_wine.program.csv"; then
  pass "shuffled columns: the same predictions"
else
  fail "shuffled columns change the predictions: $(diff "$work/shuffled.lib.csv" "$work/mlp_wine.program.csv" | head -3)"
fi

# Two feature columns dropped: an error naming both, a non-zero exit, nothing on stdout.
cut -d, -f1,3,4,5,6,7,8,9,10,11,12,14 "$data/wine.csv" >"$work/wine_missing.csv"
"$example" "$work/wine_mlp/model.pst" "$work/wine_missing.csv" >"$work/missing.out" 2>"$work/missing.err"
status=$?
if [ "$status" = 1 ] && grep -q "missing input columns: 'malic_acid', 'proline'" "$work/missing.err" &&
  [ ! -s "$work/missing.out" ]; then
  pass "missing columns are named: $(cat "$work/missing.err")"
else
  fail "missing columns: exit $status, $(cat "$work/missing.err")"
fi
printf 'alcohol,malic_acid\n1,2\n' >"$work/garbage.pst"
"$example" "$work/garbage.pst" "$data/wine.csv" >/dev/null 2>"$work/garbage.err"
status=$?
if [ "$status" = 1 ] && grep -q garbage.pst "$work/garbage.err"; then
  pass "a file that is no model is refused: $(cat "$work/garbage.err")"
else
  fail "garbage model: exit $status, $(cat "$work/garbage.err")"
fi

# A sparse model: refused with its own code's message, not misread.
"$pstrain" datagen clicks --rows 600 --features 200 --nnz 5 --seed 5 --out "$work/clicks.svm" >/dev/null
printf 'name: lr\nseed: 0\ndata: {train: %s, format: libsvm}\nmodel: {type: sparse_lr}\noptimizer: {name: ftrl, lr: 0.1}\ntrain: {epochs: 1}\n' \
  "$work/clicks.svm" >"$work/sparse.yaml"
"$pstrain" train "$work/sparse.yaml" --out "$work/sparse" -q >"$work/sparse.log" 2>&1
"$example" "$work/sparse/model.pst" "$data/wine.csv" >/dev/null 2>"$work/sparse.err"
status=$?
if [ "$status" = 1 ] && grep -q "a sparse model (model.type sparse_lr, fm or wide_deep); libpstrain scores dense" "$work/sparse.err"; then
  pass "a sparse model is refused: $(cat "$work/sparse.err")"
else
  fail "sparse model: exit $status, $(cat "$work/sparse.err") $(tail -2 "$work/sparse.log")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
