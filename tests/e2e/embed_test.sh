#!/usr/bin/env bash
# End-to-end: pstrain embed writes TensorBoard projector files. The last layer's embedding is the
# model's own output (the same probabilities `pstrain predict` prints); a ReLU layer's is never
# negative; metadata.tsv holds each row's label from DATA and the predicted class; the config
# names both files and the shape. Bad --layer values are refused.
# usage: embed_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3

"$pstrain" train "$examples/csv_logreg.yaml" --set data.train="$data/digits.csv" \
  --set model.hidden=[16] --set train.epochs=3 --out "$work/run" -q >/dev/null 2>&1 || fail "train"
"$pstrain" predict "$work/run/model.pst" "$data/digits.csv" >"$work/pred.csv" 2>/dev/null || fail "predict"

# layers: dense:16 relu dense:10 softmax
if "$pstrain" embed "$work/run/model.pst" "$data/digits.csv" --layer 3 --out "$work/last" >"$work/last.out" 2>&1; then
  check "the last layer's embedding is predict's probabilities; labels and predictions in metadata" "$("$py" - "$work/last" "$work/pred.csv" "$data/digits.csv" <<'PY'
import csv, sys
d, pred, src = sys.argv[1:4]
t = [[float(v) for v in l.split("\t")] for l in open(d + "/tensors.tsv")]
p = list(csv.DictReader(open(pred)))
meta = [l.rstrip("\n").split("\t") for l in open(d + "/metadata.tsv")]
labels = [r["target"] for r in csv.DictReader(open(src))]
assert meta[0] == ["label", "predicted"], meta[0]
assert len(t) == len(p) == len(meta) - 1 == len(labels), (len(t), len(p), len(meta), len(labels))
for row, pr in zip(t, p):
    assert len(row) == 10
    for k in range(10):
        assert abs(row[k] - float(pr[f"p_{k}"])) <= 1e-5 * max(1.0, abs(row[k])), (row[k], pr[f"p_{k}"])
assert [float(m[0]) for m in meta[1:]] == [float(x) for x in labels]
assert [float(m[1]) for m in meta[1:]] == [float(r["prediction"]) for r in p]
cfg = open(d + "/projector_config.pbtxt").read()
assert 'tensor_path: "tensors.tsv"' in cfg and 'metadata_path: "metadata.tsv"' in cfg
assert f"tensor_shape: {len(t)}\n  tensor_shape: 10" in cfg, cfg
print(True)
PY
)"
else
  fail "embed --layer 3: $(cat "$work/last.out")"
fi
if "$pstrain" embed "$work/run/model.pst" "$data/digits.csv" --layer 1 >"$work/relu.out" 2>&1; then
  check "--layer 1 (ReLU): 16 values a row, none negative, in MODEL's directory/projector" "$("$py" -c "
import sys
t = [[float(v) for v in l.split('\t')] for l in open('$work/run/projector/tensors.tsv')]
print(all(len(r) == 16 for r in t) and min(min(r) for r in t) >= 0 and max(max(r) for r in t) > 0)")"
else
  fail "embed --layer 1: $(cat "$work/relu.out")"
fi
"$pstrain" embed "$work/run/model.pst" "$data/digits.csv" --layer 9 >/dev/null 2>"$work/bad.err"
check "--layer 9: refused, naming the layers there are" "$([ $? = 1 ] && grep -q -- "--layer 9: .* has layers 0 to 3" "$work/bad.err" && echo True || echo False)"
"$pstrain" embed "$work/run/model.pst" "$data/digits.csv" >/dev/null 2>&1
check "no --layer: usage error" "$([ $? = 2 ] && echo True || echo False)"

echo "$failures checks failed"
[ "$failures" = 0 ]
