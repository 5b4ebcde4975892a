#!/usr/bin/env bash
# End-to-end: pstrain explain on trained models. A linear model on a typed CSV (one-hot columns)
# gets exact contributions by column, keyed by the id column, whose sums and outputs agree with
# predict's probabilities; an MLP gets integrated gradients within the printed completeness
# bound, and the same seed gives the same files; a bagging ensemble gets Kernel SHAP of its
# probability; bad models, data, methods and options are refused without leaving files behind.
# usage: explain_cli_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3

"$pstrain" train "$examples/csv_tabular.yaml" --set data.train="$data/customers.csv" --set train.epochs=20 --out "$work/lin" -q \
  >/dev/null 2>&1 || fail "train linear"
"$pstrain" predict "$work/lin/model.pst" "$data/customers.csv" -o "$work/lin_pred.csv" \
  2>/dev/null || fail "predict linear"
if "$pstrain" explain "$work/lin/model.pst" "$data/customers.csv" -o "$work/lin_x" --rows 30 \
  >"$work/lin.out" 2>&1; then
  grep -q "attributions: linear of the log-odds, 30 rows" "$work/lin.out" && pass "linear chosen" ||
    fail "linear chosen: $(cat "$work/lin.out")"
  check "linear: one row per input column sorted by mean; attributions sum to output - baseline and the output is predict's logit" "$("$py" - "$work/lin_x" "$work/lin_pred.csv" "$data/customers.csv" <<'PY'
import csv, math, sys
d, pred, src = sys.argv[1:4]
imp = list(csv.DictReader(open(d + "/importance.csv")))
cols = ["signup_date", "plan", "region", "monthly_spend", "support_calls", "autopay"]
assert sorted(r["column"] for r in imp) == sorted(cols), imp
means = [float(r["mean_drop"]) for r in imp]
assert means == sorted(means, reverse=True) and means[0] > 0, means
assert all(r["metric"] == "log_loss" for r in imp)
for r in imp:
    drops = [float(r[f"drop_{k}"]) for k in range(1, 6)]
    m = sum(drops) / 5
    assert abs(m - float(r["mean_drop"])) < 1e-6
    assert abs(math.sqrt(sum((x - m) ** 2 for x in drops) / 5) - float(r["std_drop"])) < 1e-6
att = list(csv.DictReader(open(d + "/attributions.csv")))
p = list(csv.DictReader(open(pred)))
ids = [r["customer_id"] for r in csv.DictReader(open(src, encoding="utf-8-sig"))]
assert len(att) == 30
assert list(att[0].keys()) == ["row", "customer_id", "class", "output", "baseline"] + cols, att[0].keys()
for i, r in enumerate(att):
    assert r["customer_id"] == ids[i] and r["class"] == "yes"
    s = sum(float(r[c]) for c in cols)
    assert abs(s - (float(r["output"]) - float(r["baseline"]))) < 1e-4, (s, r)
    q = float(p[i]["p_yes"])
    assert abs(float(r["output"]) - math.log(q / (1 - q))) < 1e-3 * max(1, abs(float(r["output"]))), (r["output"], q)
html = open(d + "/explain.html").read()
assert html.count("<svg") == 2 and "Permutation importance" in html
print(True)
PY
)"
else
  fail "explain linear: $(cat "$work/lin.out")"
fi

"$pstrain" train "$examples/csv_logreg.yaml" --set data.train="$data/iris.csv" --set 'model.hidden=[8]' --set train.epochs=30 \
  --out "$work/mlp" -q >/dev/null 2>&1 || fail "train mlp"
for s in a b; do
  "$pstrain" explain "$work/mlp/model.pst" "$data/iris.csv" -o "$work/mlp_$s" --rows 40 --steps 100 \
    --seed 7 >"$work/mlp_$s.out" 2>&1 || fail "explain mlp $s: $(cat "$work/mlp_$s.out")"
done
"$pstrain" explain "$work/mlp/model.pst" "$data/iris.csv" -o "$work/mlp_c" --rows 40 --steps 100 \
  --seed 8 >/dev/null 2>&1 || fail "explain mlp seed 8"
grep -q "attributions: ig of the logit, 40 rows" "$work/mlp_a.out" && pass "ig chosen for the MLP" ||
  fail "ig chosen: $(cat "$work/mlp_a.out")"
cmp -s "$work/mlp_a/importance.csv" "$work/mlp_b/importance.csv" &&
  cmp -s "$work/mlp_a/attributions.csv" "$work/mlp_b/attributions.csv" &&
  pass "same seed, same files" || fail "same seed gave different files"
cmp -s "$work/mlp_a/importance.csv" "$work/mlp_c/importance.csv" &&
  fail "another seed gave the same shuffles" || pass "another seed, other shuffles"
check "ig: the printed worst completeness error is the files' and under 1% of the largest change" "$("$py" - "$work/mlp_a" "$work/mlp_a.out" <<'PY'
import csv, re, sys
att = list(csv.DictReader(open(sys.argv[1] + "/attributions.csv")))
cols = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
errs = [abs(sum(float(r[c]) for c in cols) - (float(r["output"]) - float(r["baseline"]))) for r in att]
spread = max(abs(float(r["output"]) - float(r["baseline"])) for r in att)
printed = float(re.search(r"worst error (\S+)", open(sys.argv[2]).read()).group(1))
assert abs(printed - max(errs)) <= 1e-6 + 0.01 * printed, (printed, max(errs))
assert max(errs) < 0.01 * spread, (max(errs), spread)
print(True)
PY
)"

"$pstrain" bag "$examples/csv_tabular.yaml" --set data.train="$data/customers.csv" --members 2 --set train.epochs=5 --out "$work/bag" -q \
  >/dev/null 2>&1 || fail "bag"
"$pstrain" predict "$work/bag/model.pst" "$data/customers.csv" -o "$work/bag_pred.csv" \
  2>/dev/null || fail "predict bag"
if "$pstrain" explain "$work/bag/model.pst" "$data/customers.csv" -o "$work/bag_x" --rows 5 \
  --background 20 >"$work/bag.out" 2>&1; then
  check "ensemble: kernel_shap of the probability, predict's, every coalition" "$("$py" - "$work/bag_x" "$work/bag_pred.csv" "$work/bag.out" <<'PY'
import csv, sys
att = list(csv.DictReader(open(sys.argv[1] + "/attributions.csv")))
p = list(csv.DictReader(open(sys.argv[2])))
out = open(sys.argv[3]).read()
assert "kernel_shap of the probability" in out and "every coalition" in out, out
for r, q in zip(att, p):
    assert abs(float(r["output"]) - float(q["p_yes"])) < 1e-5, (r["output"], q["p_yes"])
print(len(att) == 5)
PY
)"
else
  fail "explain bag: $(cat "$work/bag.out")"
fi

# rows without labels: attributions only
if "$pstrain" explain "$work/lin/model.pst" "$data/new_customers.csv" -o "$work/new" --rows 5 \
  >"$work/new.out" 2>&1; then
  grep -q "permutation importance: skipped, .*new_customers.csv has no labels (column 'churned')" \
    "$work/new.out" && [ ! -e "$work/new/importance.csv" ] &&
    [ "$(cut -d, -f2 "$work/new/attributions.csv" | tr '\n' ' ')" = "customer_id C20000 C20001 C20002 C20003 C20004 " ] &&
    pass "unlabelled rows get attributions with their ids, and no importance" ||
    fail "unlabelled: $(cat "$work/new.out"; head -3 "$work/new/attributions.csv")"
else
  fail "explain unlabelled: $(cat "$work/new.out")"
fi

# the run directory's HTML report gains the importance table and plot
"$pstrain" report "$work/mlp" >/dev/null 2>&1 || fail "report"
if "$pstrain" explain "$work/mlp/model.pst" "$data/iris.csv" --rows 3 >"$work/rep.out" 2>&1; then
  grep -q "added the importance to $work/mlp/report.html" "$work/rep.out" &&
    grep -q "<h3>Permutation importance</h3>" "$work/mlp/report.html" &&
    grep -q "<td>petal_length_cm</td>" "$work/mlp/report.html" &&
    [ -f "$work/mlp/importance.csv" ] && [ -f "$work/mlp/explain.html" ] &&
    pass "explain writes beside the model and adds its importance to report.html" ||
    fail "report: $(cat "$work/rep.out")"
else
  fail "explain into the run directory: $(cat "$work/rep.out")"
fi

# pstrain report reads importance.csv's quoted names and escapes them
mkdir -p "$work/rq" && cp "$work/mlp/report.json" "$work/mlp/metrics.jsonl" "$work/rq/"
printf 'rank,column,metric,mean_drop,std_drop,drop_1\n1,"dose, ""mg""",log_loss,0.5,0.1,0.5\n2,<b>,log_loss,0.25,0,0.25\n' \
  >"$work/rq/importance.csv"
"$pstrain" report "$work/rq" >/dev/null 2>&1 &&
  grep -q '<tr><td>dose, &quot;mg&quot;</td><td>0.5</td><td>0.1</td></tr>' "$work/rq/report.html" &&
  grep -q '<tr><td>&lt;b&gt;</td><td>0.25</td><td>0</td></tr>' "$work/rq/report.html" &&
  pass "report: importance rows unquoted and escaped" || fail "report of a quoted importance.csv"

# refusals: nothing is written
printf 'not a model\n' >"$work/junk.pst"
"$pstrain" explain "$work/junk.pst" "$data/iris.csv" -o "$work/bad1" >"$work/e1.out" 2>&1
st=$?
[ $st = 1 ] && grep -q "junk.pst" "$work/e1.out" && [ ! -e "$work/bad1" ] &&
  pass "a file that is not a model is refused naming it" || fail "junk model: $st $(cat "$work/e1.out")"
"$pstrain" explain "$work/mlp/model.pst" "$data/diabetes.csv" -o "$work/bad2" >"$work/e2.out" 2>&1
st=$?
[ $st = 1 ] && grep -q "sepal" "$work/e2.out" && [ ! -e "$work/bad2" ] &&
  pass "data without the model's columns is refused naming one" || fail "shape: $st $(cat "$work/e2.out")"
"$pstrain" datagen clicks --rows 600 --features 200 --nnz 5 --seed 5 --out "$work/clicks.svm" \
  >/dev/null 2>&1 || fail "datagen"
cat >"$work/lr.yaml" <<YAML
name: lr
seed: 0
data: {train: $work/clicks.svm, format: libsvm}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1}
train: {epochs: 1, batch_size: 64}
YAML
"$pstrain" train "$work/lr.yaml" --out "$work/sparse" -q >/dev/null 2>&1 || fail "train sparse"
"$pstrain" explain "$work/sparse/model.pst" "$work/clicks.svm" -o "$work/bad0" >"$work/e0.out" 2>&1
st=$?
[ $st = 1 ] && grep -q "a sparse model" "$work/e0.out" && [ ! -e "$work/bad0" ] &&
  pass "a sparse model is refused" || fail "sparse model: $st $(cat "$work/e0.out")"
"$pstrain" explain "$work/mlp/model.pst" "$data/iris.csv" --method shapley >"$work/e3.out" 2>&1
st=$?
[ $st = 2 ] && grep -q "unknown --method 'shapley'" "$work/e3.out" &&
  pass "an unknown method is a usage error" || fail "method: $st $(cat "$work/e3.out")"
"$pstrain" explain "$work/mlp/model.pst" "$data/iris.csv" --method linear -o "$work/bad4" \
  >"$work/e4.out" 2>&1
st=$?
[ $st = 1 ] && grep -q "needs a linear model" "$work/e4.out" && [ ! -e "$work/bad4" ] &&
  pass "linear refuses an MLP" || fail "linear on mlp: $st $(cat "$work/e4.out")"
"$pstrain" explain "$work/mlp/model.pst" "$data/iris.csv" --repeats 0 >"$work/e5.out" 2>&1
st=$?
[ $st = 2 ] && pass "--repeats 0 is a usage error" || fail "repeats 0: $st $(cat "$work/e5.out")"
"$pstrain" explain "$work/mlp/model.pst" >/dev/null 2>&1
[ $? = 2 ] && pass "a missing DATA is a usage error" || fail "missing DATA"

echo "$failures checks failed"
[ "$failures" = 0 ]
