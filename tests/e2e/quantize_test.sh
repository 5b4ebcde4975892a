#!/usr/bin/env bash
# End-to-end: pstrain quantize on a digits MLP (a real dataset), the int8 model through eval,
# predict, info and info --cost, its accuracy against the float model, and the refusals: missing
# or bad options, an already quantised or damaged file, ONNX export of an int8 model.
# usage: quantize_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"

# expect_status STATUS MESSAGE-PART DESCRIPTION -- ARGS...: pstrain ARGS exits STATUS and says it
expect_status() {
  local want=$1 text=$2 what=$3; shift 4
  "$pstrain" "$@" >"$work/out.txt" 2>"$work/err.txt"
  local got=$?
  if [ "$got" = "$want" ] && grep -qF -- "$text" "$work/err.txt"; then pass "$what"
  else fail "$what: exit $got, stderr: $(head -c 300 "$work/err.txt")"; fi
}

if ! "$pstrain" train "$examples/csv_logreg.yaml" --set data.train="$data/digits.csv" \
  --set model.hidden=[64] --set train.epochs=30 --set train.drift_profile=false --out "$work/run" -q >"$work/train.log" 2>&1; then
  fail "train: $(tail -3 "$work/train.log")"
  echo "$failures checks failed"; exit 1
fi
float=$work/run/model.pst
int8=$work/int8.pst

if "$pstrain" quantize "$float" -o "$int8" --calibration "$data/digits.csv" \
  --calibration-rows 500 >"$work/q.txt" 2>&1; then pass "quantize runs"
else fail "quantize: $(cat "$work/q.txt")"; fi
grep -q "quantized 2 layers to int8" "$work/q.txt" && grep -q "on 500 rows" "$work/q.txt" &&
  pass "quantize reports the layers and rows" || fail "quantize report: $(cat "$work/q.txt")"
# (no drift profile: the size compared is the weights and what every model file holds)
check "the int8 file is under half the float one" \
  "$(python3 -c "import os,sys; print(os.path.getsize(sys.argv[1]) < 0.5 * os.path.getsize(sys.argv[2]))" "$int8" "$float")"

# accuracy on all 1797 rows: the int8 model within 0.01 of the float one (0.002 measured)
"$pstrain" eval "$float" "$data/digits.csv" --json "$work/f.json" >/dev/null 2>&1
"$pstrain" eval "$int8" "$data/digits.csv" --json "$work/q.json" >/dev/null 2>&1
check "int8 accuracy within 0.01 of float" \
  "$(python3 -c "import json,sys; a,b=(json.load(open(f))['accuracy'] for f in sys.argv[1:]); print(a > 0.9 and abs(a - b) <= 0.01)" "$work/f.json" "$work/q.json")"

# predict: one row per input, the same class as the float model on at least 98% of rows
"$pstrain" predict "$float" "$data/digits.csv" -o "$work/f.csv" 2>/dev/null
"$pstrain" predict "$int8" "$data/digits.csv" -o "$work/q.csv" 2>/dev/null
check "int8 predictions agree with float on >= 98% of 1797 rows" "$(python3 - "$work/f.csv" "$work/q.csv" <<'PY'
import csv, sys
a, b = ([r[0] for r in csv.reader(open(f))][1:] for f in sys.argv[1:])
print(len(a) == len(b) == 1797 and sum(x == y for x, y in zip(a, b)) >= 0.98 * 1797)
PY
)"
check "int8 probabilities differ from float (it ran in int8)" \
  "$(cmp -s "$work/f.csv" "$work/q.csv" && echo False || echo True)"

"$pstrain" info "$int8" >"$work/info.txt" 2>&1
grep -q "quantized: int8, 2 layers (4736 weights, per output channel), activations calibrated by max on 500 rows" \
  "$work/info.txt" && pass "info describes the quantisation" || fail "info: $(head -12 "$work/info.txt")"

# info --cost: the table's columns and two rows of positive figures, int8 smaller
if OPENBLAS_NUM_THREADS=1 "$pstrain" info --cost "$float" --data "$data/digits.csv" >"$work/cost.txt" 2>&1; then
  check "info --cost fields" "$(python3 - "$work/cost.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
head = lines[1].split()
rows = {l.split()[0]: l.split()[1:] for l in lines[2:4]}
ok = head == ["variant", "params", "bytes", "MFLOPs/row", "p50_us", "p99_us", "rows/s"]
ok = ok and set(rows) == {"float", "int8"} and all(float(v) > 0 for r in rows.values() for v in r)
ok = ok and int(rows["float"][0]) == 4810 and abs(float(rows["float"][2]) - 2 * 4736 / 1e6) < 1e-3
ok = ok and int(rows["int8"][1]) < int(rows["float"][1]) and lines[4].startswith("int8/float: bytes")
print(ok)
PY
)"
else fail "info --cost: $(cat "$work/cost.txt")"; fi

# --- refusals ------------------------------------------------------------------------------
expect_status 2 "-o OUT is missing" "quantize without -o" -- quantize "$float" --calibration "$data/digits.csv"
expect_status 1 "--calibration DATA is required" "quantize without --calibration" -- quantize "$float" -o "$work/x.pst"
expect_status 2 "--percentile takes a number in (0, 100]" "bad --percentile" -- quantize "$float" -o "$work/x.pst" --percentile 0
expect_status 2 "--calibration-rows takes a whole number" "bad --calibration-rows" -- quantize "$float" -o "$work/x.pst" --calibration-rows 0
expect_status 2 "unknown or incomplete option '--bogus'" "unknown option" -- quantize "$float" --bogus
expect_status 1 "already quantised" "quantize of an int8 file" -- quantize "$int8" -o "$work/x.pst" --calibration "$data/digits.csv"
expect_status 1 "$work/none.pst" "quantize of a missing file" -- quantize "$work/none.pst" -o "$work/x.pst" --calibration "$data/digits.csv"
expect_status 1 "ONNX export takes the float model" "export of an int8 model" -- export "$int8" -o "$work/x.onnx"
expect_status 2 "--cost and --params do not go together" "info --cost --params" -- info --cost --params "$float"
expect_status 2 "--data goes with --cost" "info --data without --cost" -- info "$float" --data "$data/digits.csv"
[ ! -e "$work/x.pst" ] && [ ! -e "$work/x.onnx" ] && pass "no output left by a refusal" || fail "a refusal left output"
# a damaged int8 file: one flipped byte in the middle is caught by the checksum
cp "$int8" "$work/bad.pst"
python3 - "$work/bad.pst" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 0x10
open(sys.argv[1], "wb").write(b)
PY
expect_status 1 "$work/bad.pst" "eval of a damaged int8 file" -- eval "$work/bad.pst" "$data/digits.csv"

echo "$failures checks failed"
[ "$failures" = 0 ]
