#!/usr/bin/env bash
# Typed CSV files end to end: text categories, dates, booleans, quoted fields, a BOM and CRLF in
# train, cv, bag, eval and predict; columns matched by name (reordered and extra columns give
# byte-identical predictions, a missing column names itself), unlabelled predict with an id
# column, text labels round-tripped, outlier clipping, mpirun, and the training-file errors.
pstrain=$1
tests=$2
. "$(dirname "$0")/lib.sh"
data=$tests/data
cfg=$tests/../examples/csv_tabular.yaml
cust=$data/customers.csv

"$pstrain" train "$cfg" --set data.train="$cust" --out "$work/run" -q >"$work/train.out" 2>&1 &&
  pass "train on customers.csv" || fail "train: $(tail -3 "$work/train.out")"
r=$work/run/report.json
check "text class names in report.json" "$(jexpr "$r" "d['data']['class_names'] == ['no', 'yes']")"
# 262 of 400 customers stay: a model that learned nothing scores about 0.65
check "test accuracy above the majority share" "$(jexpr "$r" "d['test']['accuracy'] >= 0.72")"

# Rows reordered, the target removed, an extra column added: the same bytes out.
python3 - "$cust" "$work" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig", newline="")))
h = rows[0]
order = [h.index(c) for c in ["note", "autopay", "support_calls", "region", "customer_id",
                              "monthly_spend", "plan", "signup_date"]]
with open(sys.argv[2] + "/new.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([h[i] for i in order] + ["campaign"])
    for r in rows[1:]:
        w.writerow([r[i] for i in order] + ["spring"])
with open(sys.argv[2] + "/missing.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "region", "autopay", "support_calls"])
    for r in rows[1:3]:
        w.writerow([r[h.index(c)] for c in ["customer_id", "region", "autopay", "support_calls"]])
PY
m=$work/run/model.pst
"$pstrain" predict "$m" "$cust" -o "$work/p_orig.csv" 2>"$work/p1.err" &&
  "$pstrain" predict "$m" "$work/new.csv" -o "$work/p_new.csv" 2>"$work/p2.err" &&
  cmp -s "$work/p_orig.csv" "$work/p_new.csv" &&
  pass "reordered, unlabelled, extra columns: identical predictions" ||
  fail "predictions differ or failed: $(cat "$work/p2.err")"
grep -q "ignored: note, campaign" "$work/p2.err" && [ "$(grep -c ignored "$work/p2.err")" = 1 ] &&
  pass "extra columns listed once" || fail "extra columns: $(cat "$work/p2.err")"
[ "$(head -1 "$work/p_orig.csv")" = "customer_id,prediction,p_no,p_yes" ] &&
  pass "header: id column and class names" || fail "header: $(head -1 "$work/p_orig.csv")"
[ "$(wc -l <"$work/p_orig.csv")" = 401 ] && head -2 "$work/p_orig.csv" | tail -1 | grep -qE '^C10000,(yes|no),' &&
  pass "one row per customer, labelled by text" || fail "rows: $(head -2 "$work/p_orig.csv")"
"$pstrain" predict "$m" "$data/new_customers.csv" -o "$work/p_new_customers.csv" 2>/dev/null &&
  [ "$(wc -l <"$work/p_new_customers.csv")" = 21 ] && grep -qE '^C20019,(yes|no),' "$work/p_new_customers.csv" &&
  pass "unlabelled new_customers.csv predicted" || fail "new_customers.csv: $(head -3 "$work/p_new_customers.csv")"
"$pstrain" predict "$m" "$work/new.csv" --id region 2>/dev/null | head -2 | tail -1 | grep -qE '^"North, |^South,|^Central,|^Islands,' &&
  pass "--id picks the id column (quoted when it holds a comma)" || fail "--id"
"$pstrain" predict "$m" "$work/missing.csv" >/dev/null 2>"$work/miss.err"
[ $? = 1 ] && grep -q "4 columns of the model are missing: signup_date, plan, monthly_spend" "$work/miss.err" ||
  grep -q "columns of the model are missing: signup_date, plan, monthly_spend" "$work/miss.err" &&
  pass "missing columns named" || fail "missing columns: $(cat "$work/miss.err")"

# predict streams: 400k rows (about 25 MB of CSV) and 1.2M rows (75 MB) scored in bounded
# memory: the larger file must not take more memory than the smaller one (allocator noise aside),
# and neither may come near its own size
python3 - "$data/new_customers.csv" "$work/big.csv" "$work/big3.csv" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
body = "\n".join(lines[1:]) + "\n"
for path, copies in ((sys.argv[2], 20000), (sys.argv[3], 60000)):
    with open(path, "w") as f:
        f.write(lines[0] + "\n")
        for i in range(copies):
            f.write(body)
PY
/usr/bin/time -f %M -o "$work/rss" "$pstrain" predict "$m" "$work/big.csv" -o "$work/big_pred.csv" 2>/dev/null
rss=$(tail -1 "$work/rss")
/usr/bin/time -f %M -o "$work/rss3" "$pstrain" predict "$m" "$work/big3.csv" -o "$work/big3_pred.csv" 2>/dev/null
rss3=$(tail -1 "$work/rss3")
[ "$(wc -l <"$work/big_pred.csv")" = 400001 ] && [ "$(wc -l <"$work/big3_pred.csv")" = 1200001 ] &&
  [ "$rss3" -lt $((rss + 2048)) ] && [ "$rss" -lt 48000 ] &&
  pass "400k rows streamed in $rss KiB, 1.2M rows in $rss3 KiB (files of $(($(stat -c %s "$work/big.csv") / 1024)) and $(($(stat -c %s "$work/big3.csv") / 1024)) KiB)" ||
  fail "streaming: $(wc -l <"$work/big_pred.csv") and $(wc -l <"$work/big3_pred.csv") lines, max RSS $rss and $rss3 KiB"
rm -f "$work/big3.csv" "$work/big3_pred.csv"

# eval: text labels in the confusion matrix and the JSON
"$pstrain" eval "$m" "$work/new.csv" >/dev/null 2>"$work/e0.err"
[ $? = 1 ] && grep -q "no target column 'churned'" "$work/e0.err" && pass "eval without labels refused" ||
  fail "eval without labels: $(cat "$work/e0.err")"
"$pstrain" eval "$m" "$cust" --json "$work/eval.json" >"$work/eval.out" 2>/dev/null &&
  grep -qE '^  yes +[0-9]+ +[0-9]+$' "$work/eval.out" &&
  pass "eval: confusion rows named by class" || fail "eval: $(cat "$work/eval.out")"
check "eval JSON lists the classes" "$(jexpr "$work/eval.json" "d['classes'] == ['no', 'yes'] and d['n'] == 400")"
"$pstrain" info "$m" >"$work/info.txt" &&
  grep -q "class labels: 'no', 'yes'" "$work/info.txt" &&
  grep -q "signup_date: date, date parts" "$work/info.txt" &&
  grep -q "region: categorical, one-hot, 5 values: 'Central', 'Islands', 'North, East'" "$work/info.txt" &&
  grep -q "autopay: boolean" "$work/info.txt" && grep -q "test metrics" "$work/info.txt" &&
  pass "info: classes, columns, encodings, metrics" || fail "info: $(cat "$work/info.txt")"

# cv and bag fit their encoders per fold / member
"$pstrain" cv "$cfg" --set data.train="$cust" --folds 5 --stratified --out "$work/cv" -q >"$work/cv.out" 2>&1 &&
  pass "cv on customers.csv" || fail "cv: $(tail -3 "$work/cv.out")"
check "cv accuracy above the majority share" "$(jexpr "$work/cv/report.json" "d['cv']['accuracy']['mean'] >= 0.72")"
"$pstrain" bag "$cfg" --set data.train="$cust" --members 3 --out "$work/bag" -q >"$work/bag.out" 2>&1 &&
  pass "bag on customers.csv" || fail "bag: $(tail -3 "$work/bag.out")"
ens=$(ls "$work/bag"/*.pst 2>/dev/null | head -1)
[ -n "$ens" ] && "$pstrain" eval "$ens" "$cust" >"$work/bag_eval.out" 2>&1 &&
  grep -q accuracy "$work/bag_eval.out" && pass "bag ensemble evaluates the CSV" ||
  fail "bag eval: $(tail -2 "$work/bag_eval.out")"
[ -n "$ens" ] && "$pstrain" predict "$ens" "$data/new_customers.csv" -o "$work/bag_pred.csv" 2>"$work/bag_pred.err" &&
  [ "$(wc -l <"$work/bag_pred.csv")" = 21 ] && [ "$(head -1 "$work/bag_pred.csv")" = "prediction,p_no,p_yes" ] &&
  pass "bag ensemble predicts unlabelled rows by column name" || fail "bag predict: $(cat "$work/bag_pred.err")"

# Regression with outlier clipping, a boolean, a date and NA cells
"$pstrain" train "$tests/../examples/csv_regression.yaml" --set data.train="$data/rentals.csv" \
  --set data.target=rent --set data.id_column=listing --set data.outliers=clip_iqr \
  --set optimizer.lr=20 --set train.epochs=100 --out "$work/rent" -q >"$work/rent.out" 2>&1 &&
  pass "regression on rentals.csv" || fail "rentals: $(tail -3 "$work/rent.out")"
check "rentals: test r2 above 0.8" "$(jexpr "$work/rent/report.json" "d['test']['r2'] > 0.8")"
"$pstrain" info "$work/rent/model.pst" | grep "area_m2: numeric, value, clipped to" >/dev/null &&
  pass "outlier bounds stored in the model" || fail "no clip bounds in info"

# Under mpirun (1 server, 1 worker) the same file trains with the same encoding
mpi 2 train "$cfg" --set data.train="$cust" --set cluster.servers=1 --set train.epochs=5 \
  --out "$work/mpi" -q >"$work/mpi.out" 2>&1 && [ -e "$work/mpi/model.pst" ] &&
  "$pstrain" predict "$work/mpi/model.pst" "$work/new.csv" >/dev/null 2>&1 &&
  pass "mpirun train, then predict by name" || fail "mpirun: $(tail -3 "$work/mpi.out")"

# Training files that cannot make a model
printf 'a,b,y\n1,x,yes\n' >"$work/one_row.csv"
printf 'a,b,y\n1,x,yes\n2,z,yes\n' >"$work/one_class.csv"
printf 'a,a,y\n1,2,0\n3,4,1\n' >"$work/dup.csv"
expect() {
  local name=$1 pattern=$2; shift 2
  "$pstrain" train "$cfg" --set data.target=y --set data.id_column= --set 'data.drop_columns=[]' "$@" \
    --out "$work/$name" >"$work/$name.out" 2>&1
  local status=$?
  [ $status = 1 ] && grep -q -- "$pattern" "$work/$name.out" && pass "$name: $pattern" ||
    fail "$name: exit $status: $(tail -2 "$work/$name.out")"
}
expect one_row "one_row.csv: 1 data row; training needs two or more" --set data.train="$work/one_row.csv"
expect one_class "target 'y' has a single class ('yes')" --set data.train="$work/one_class.csv"
expect duplicate "column 'a' appears 2 times" --set data.train="$work/dup.csv"
expect unknown_feature "data.features column 'nope' not found" --set data.train="$cust" \
  --set data.target=churned --set 'data.features=[plan,nope]'
expect unknown_drop "data.drop_columns column 'notes' not found" --set data.train="$cust" \
  --set data.target=churned --set 'data.drop_columns=[notes]'
expect bad_dates "data.dates" --set data.train="$cust" --set data.dates=split

echo "$failures checks failed"
[ "$failures" = 0 ]
