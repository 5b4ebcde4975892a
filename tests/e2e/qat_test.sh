#!/usr/bin/env bash
# End-to-end: quantisation-aware fine-tuning (train.qat) of a digits MLP.
#  - a float model fine-tuned with train.qat, then quantised by pstrain quantize, keeps its
#    accuracy in int8: within 0.005 of its float accuracy on all 1797 rows (the issue's target);
#  - qat changes training (the weights differ from the same fine-tuning without it) and reports
#    each quantised layer's input range;
#  - BSP with one worker reproduces the local qat run's weights exactly (the fake quantisation
#    runs on the worker, around the pulled weights);
#  - train.qat with DP-SGD, and a value that is not a boolean, are refused by name.
# usage: qat_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"

base=("$examples/csv_logreg.yaml" --set data.train="$data/digits.csv" --set 'model.hidden=[64]'
  --set train.drift_profile=false --set train.progress=none)
if ! "$pstrain" train "${base[@]}" --set train.epochs=30 --out "$work/float" -q >"$work/float.log" 2>&1; then
  fail "float training: $(tail -3 "$work/float.log")"
  echo "$failures checks failed"; exit 1
fi
tune=("${base[@]}" --set model.init_from="$work/float/model.pst" --set train.epochs=4
  --set train.patience=0 --set optimizer.lr=0.001)
"$pstrain" train "${tune[@]}" --set train.qat=true --out "$work/qat" -q >"$work/qat.log" 2>&1 ||
  fail "qat fine-tuning: $(tail -3 "$work/qat.log")"
"$pstrain" train "${tune[@]}" --out "$work/plain" -q >"$work/plain.log" 2>&1 ||
  fail "plain fine-tuning: $(tail -3 "$work/plain.log")"

check "report.json: qat input ranges of the 2 quantised layers, positive" \
  "$(jexpr "$work/qat/report.json" "len(d['qat']['input_max']) == 2 and min(d['qat']['input_max']) > 0")"
params "$work/qat/model.pst" >"$work/qat.txt"
params "$work/plain/model.pst" >"$work/plain.txt"
if [ -s "$work/qat.txt" ] && ! cmp -s "$work/qat.txt" "$work/plain.txt"; then
  pass "qat fine-tuning trains other weights than plain fine-tuning"
else
  fail "qat and plain fine-tuning gave the same (or no) weights"
fi

# the int8 model of the qat run against its float model, on every row
if "$pstrain" quantize "$work/qat/model.pst" -o "$work/qat.int8.pst" --calibration "$data/digits.csv" \
  --calibration-rows 500 >"$work/q.log" 2>&1; then pass "quantize the qat model"
else fail "quantize: $(cat "$work/q.log")"; fi
"$pstrain" eval "$work/qat/model.pst" "$data/digits.csv" --json "$work/f.json" >/dev/null 2>&1
"$pstrain" eval "$work/qat.int8.pst" "$data/digits.csv" --json "$work/i.json" >/dev/null 2>&1
check "qat model: int8 accuracy within 0.005 of float (and float above 0.95)" \
  "$(python3 - "$work/f.json" "$work/i.json" <<'PY'
import json, sys
f, i = (json.load(open(p))["accuracy"] for p in sys.argv[1:])
print("float %.4f int8 %.4f" % (f, i), file=sys.stderr)
print(f > 0.95 and abs(f - i) <= 0.005)
PY
)"

# BSP with one worker: the same weights as the local run
mpi 2 train "${tune[@]}" --set train.qat=true --out "$work/bsp1" -q >"$work/bsp1.log" 2>&1 ||
  fail "qat bsp 1 worker: $(tail -3 "$work/bsp1.log")"
params "$work/bsp1/model.pst" >"$work/bsp1.txt"
if [ -s "$work/bsp1.txt" ] && cmp -s "$work/qat.txt" "$work/bsp1.txt"; then
  pass "qat BSP with 1 worker reproduces local weights exactly"
else
  fail "qat BSP with 1 worker differs: max rel diff $(max_rel_diff "$work/bsp1.txt" "$work/qat.txt")"
fi

# refusals
"$pstrain" train "${tune[@]}" --set train.qat=true --set train.dp.clip=1 --set train.dp.noise=1 --out "$work/dp" -q \
  >"$work/dp.log" 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q "train.qat does not combine with train.dp.clip" "$work/dp.log" &&
  pass "qat with DP-SGD refused (exit $rc)" || fail "qat with dp: exit $rc, $(tail -2 "$work/dp.log")"
"$pstrain" train "${tune[@]}" --set train.qat=maybe --out "$work/bad" -q >"$work/bad.log" 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q "train.qat" "$work/bad.log" && [ ! -e "$work/bad/model.pst" ] &&
  pass "train.qat=maybe refused naming the key (exit $rc)" || fail "train.qat=maybe: exit $rc, $(tail -2 "$work/bad.log")"

echo "$failures checks failed"
[ "$failures" = 0 ]
