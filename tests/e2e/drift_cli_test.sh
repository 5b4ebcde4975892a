#!/usr/bin/env bash
# pstrain drift and predict.drift_warn end to end on a real CSV (breast cancer): a model trained
# on two rows in three keeps its training distributions; the others as they are show no major
# drift, the same rows with two columns scaled and offset flag exactly those two (and the table,
# the JSON and --fail-on say so); predict warns once on the shifted rows and not on the others
# or with predict.drift_warn=0; a model without distributions (as older files) gets a clear
# message; per-worker files under mpirun store the profile of their union; bad options exit
# with 2.
# usage: drift_cli_test.sh PSTRAIN TESTS_DIR
pstrain=$1
tests=$2
. "$(dirname "$0")/lib.sh"

data=$tests/data/breast_cancer.csv
# Every third row is held out (the file's order is the collection order).
awk 'NR == 1 || NR % 3 != 1' "$data" >"$work/train.csv"
awk 'NR == 1 || NR % 3 == 1' "$data" >"$work/plain.csv"
# mean_radius (column 1) x 1.3 + 4, worst_area (column 24) x 1.3 + 300
awk -F, 'BEGIN { OFS = "," } NR > 1 { $1 = $1 * 1.3 + 4; $24 = $24 * 1.3 + 300 } { print }' \
  "$work/plain.csv" >"$work/shifted.csv"

"$pstrain" train "$tests/../examples/csv_logreg.yaml" --out "$work/run" -q \
  --set data.train="$work/train.csv" --set data.test="$work/plain.csv" \
  --set data.val_fraction=0 --set train.epochs=20 \
  --set train.patience=0 >/dev/null 2>"$work/train.err" || fail "training: $(cat "$work/train.err")"
model=$work/run/model.pst
"$pstrain" info "$model" | grep -q "^drift profile: 30 of 30 inputs (30 numeric, 0 categorical), predictions on the training rows, labels$" &&
  pass "info describes the stored distributions" || fail "info: $("$pstrain" info "$model" | grep drift)"

"$pstrain" drift "$model" "$work/plain.csv" --json "$work/plain.json" >"$work/plain.txt" 2>&1
rc=$?
[ "$rc" = 0 ] && pass "drift on the unshifted rows exits 0" || fail "drift exit $rc: $(cat "$work/plain.txt")"
check "the unshifted rows flag no input" "$(jexpr "$work/plain.json" "d['flagged'] == 0 and len(d['inputs']) == 30")"
check "the unshifted rows show no major input" \
  "$(jexpr "$work/plain.json" "all(r['severity'] != 'major' for r in d['inputs'])")"
check "labels were checked (the file has the target)" "$(jexpr "$work/plain.json" "d['label'] is not None")"
grep -q "PSI: < 0.10 stable, 0.10-0.25 moderate, > 0.25 major" "$work/plain.txt" &&
  pass "the thresholds are stated" || fail "no thresholds line: $(head -3 "$work/plain.txt")"

"$pstrain" drift "$model" "$work/shifted.csv" --json "$work/shifted.json" --fail-on major \
  >"$work/shifted.txt" 2>&1
rc=$?
[ "$rc" = 3 ] && pass "--fail-on major exits 3 on the shifted rows" || fail "exit $rc, not 3"
check "exactly the two shifted columns are flagged" \
  "$(jexpr "$work/shifted.json" "sorted(r['name'] for r in d['inputs'] if r['flagged']) == ['mean_radius', 'worst_area']")"
check "the table is sorted by PSI, shifted columns first" \
  "$(jexpr "$work/shifted.json" "[r['name'] for r in d['inputs'][:2]] in (['mean_radius', 'worst_area'], ['worst_area', 'mean_radius']) and all(d['inputs'][i]['psi'] >= d['inputs'][i + 1]['psi'] for i in range(len(d['inputs']) - 1))")"
check "KS of a shifted column is large with a tiny p-value and within its bound" \
  "$(jexpr "$work/shifted.json" "all(r['ks'] > 0.3 and r['ks_p'] < 1e-6 and r['ks'] <= r['ks_upper'] for r in d['inputs'] if r['flagged'])")"
grep -q "^flagged 2 of 30 inputs: " "$work/shifted.txt" && pass "the summary names the flagged inputs" ||
  fail "summary: $(grep flagged "$work/shifted.txt")"
"$pstrain" drift "$model" "$work/plain.csv" --fail-on major >/dev/null 2>&1
rc=$?
[ "$rc" = 0 ] && pass "--fail-on major exits 0 without major drift" || fail "exit $rc"

# The training file itself, read by name at drift time, counts exactly as training counted it
# (dates, text categories, quoted commas, missing cells, a BOM): every figure is exactly 0.
cust=$tests/data/customers.csv
"$pstrain" train "$tests/../examples/csv_tabular.yaml" --out "$work/same" -q --set data.train="$cust" \
  --set data.test="$cust" --set data.val_fraction=0 --set train.epochs=2 >/dev/null 2>&1
"$pstrain" drift "$work/same/model.pst" "$cust" --json "$work/same.json" >/dev/null 2>&1
check "the training file gives the training counts exactly (PSI, KS, chi-square 0)" \
  "$(jexpr "$work/same.json" "all(r['psi'] == 0 and r.get('ks', 0) == 0 and r.get('chi2', 0) == 0 and r['rows'] + r.get('missing', 0) == 400 for r in d['inputs'] + [d['prediction'], d['label']]) and len(d['inputs']) == 6")"

# One file per worker under mpirun: the workers' counts add up to the profile of the union.
awk 'NR == 1 || NR % 2 == 0' "$work/train.csv" >"$work/part0.csv"
awk 'NR == 1 || (NR > 1 && NR % 2 == 1)' "$work/train.csv" >"$work/part1.csv"
if mpi 3 train "$tests/../examples/csv_logreg.yaml" --out "$work/shard" -q \
  --set data.train="$work/part{worker}.csv" --set data.test="$work/plain.csv" \
  --set data.val_fraction=0 --set train.epochs=2 >"$work/shard.log" 2>&1; then
  "$pstrain" drift "$work/shard/model.pst" "$work/train.csv" --json "$work/shard.json" >/dev/null 2>&1
  check "per-worker files: the union of the files gives the stored counts exactly" \
    "$(jexpr "$work/shard.json" "all(r['psi'] == 0 and r['ks'] == 0 and r['rows'] == r['rows_train'] for r in d['inputs']) and d['label']['psi'] == 0 and d['label']['rows_train'] == d['rows']")"
  "$pstrain" drift "$work/shard/model.pst" "$work/shifted.csv" --json "$work/shard2.json" >/dev/null 2>&1
  check "per-worker files: the shifted columns are flagged" \
    "$(jexpr "$work/shard2.json" "sorted(r['name'] for r in d['inputs'] if r['flagged']) == ['mean_radius', 'worst_area']")"
else
  fail "training on per-worker files: $(tail -5 "$work/shard.log")"
fi

# predict.drift_warn: one warning on drifted rows, none otherwise.
"$pstrain" predict "$model" "$work/shifted.csv" -o "$work/p.csv" 2>"$work/warn.err"
n=$(grep -c "drift from the training data" "$work/warn.err")
[ "$n" = 1 ] && pass "predict warns once on the shifted rows" || fail "$n warnings: $(cat "$work/warn.err")"
grep -q "worst: mean_radius\|worst: worst_area" "$work/warn.err" && pass "the warning names the worst input" ||
  fail "warning: $(cat "$work/warn.err")"
[ "$(wc -l <"$work/p.csv")" = "$(wc -l <"$work/plain.csv")" ] && pass "predictions are written as before" || fail "$(wc -l <"$work/p.csv") lines"
"$pstrain" predict "$model" "$work/plain.csv" -o "$work/p.csv" 2>"$work/warn.err"
grep -q "drift" "$work/warn.err" && fail "a warning on unshifted rows: $(cat "$work/warn.err")" ||
  pass "no warning on the unshifted rows"
"$pstrain" predict "$model" "$work/shifted.csv" -o "$work/p.csv" --set predict.drift_warn=0 2>"$work/warn.err"
grep -q "drift" "$work/warn.err" && fail "predict.drift_warn=0 still warns" || pass "predict.drift_warn=0 turns it off"

# A model file without distributions, as files written before them.
"$pstrain" train "$tests/../examples/csv_logreg.yaml" --out "$work/old" -q \
  --set data.train="$work/train.csv" --set train.epochs=2 --set train.drift_profile=false >/dev/null 2>&1
"$pstrain" info "$work/old/model.pst" | grep -q "^drift profile: none" && pass "info says a model has none" ||
  fail "info of a model without distributions"
"$pstrain" drift "$work/old/model.pst" "$work/shifted.csv" >"$work/old.txt" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "holds no training distributions" "$work/old.txt" &&
  pass "a model without distributions is refused clearly" || fail "exit $rc: $(cat "$work/old.txt")"
"$pstrain" predict "$work/old/model.pst" "$work/shifted.csv" -o "$work/p.csv" 2>"$work/warn.err"
rc=$?
[ "$rc" = 0 ] && ! grep -q drift "$work/warn.err" && pass "predict with such a model runs without a check" ||
  fail "exit $rc: $(cat "$work/warn.err")"

# Bad input and options.
"$pstrain" drift "$model" "$work/missing.csv" >/dev/null 2>"$work/err.txt"
[ $? = 1 ] && pass "a missing data file fails with 1" || fail "missing file"
cut -d, -f2- "$work/plain.csv" >"$work/nocol.csv"
"$pstrain" drift "$model" "$work/nocol.csv" >/dev/null 2>"$work/err.txt"
[ $? = 1 ] && grep -q "column 'mean_radius' of the model is missing" "$work/err.txt" &&
  pass "a missing column is named" || fail "missing column: $(cat "$work/err.txt")"
sed '3s/^[^,]*,/abc,/' "$work/plain.csv" >"$work/badcell.csv"
"$pstrain" drift "$model" "$work/badcell.csv" >/dev/null 2>"$work/err.txt"
[ $? = 1 ] && grep -q "badcell.csv:3: column 'mean_radius': 'abc' is not a numeric" "$work/err.txt" &&
  pass "a bad cell is named by file:line and column" || fail "bad cell: $(cat "$work/err.txt")"
head -n 1 "$work/plain.csv" >"$work/header.csv"
"$pstrain" drift "$model" "$work/header.csv" >/dev/null 2>"$work/err.txt"
[ $? = 1 ] && grep -q "header.csv: no data rows to compare" "$work/err.txt" &&
  pass "a file without rows is refused" || fail "header only: $(cat "$work/err.txt")"
for args in "--fail-on stable" "--fail-on huge" "--threshold abc" "--threshold -1" "--bogus" ""; do
  # shellcheck disable=SC2086
  "$pstrain" drift "$model" $( [ -n "$args" ] && echo "$work/plain.csv" ) $args >/dev/null 2>&1
  rc=$?
  [ "$rc" = 2 ] && pass "usage error exits 2: '$args'" || fail "'$args' exits $rc"
done

echo "$failures checks failed"
[ "$failures" = 0 ]
