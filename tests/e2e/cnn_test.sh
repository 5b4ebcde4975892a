#!/usr/bin/env bash
# Convolutional models end to end, on the 8x8 digits of tests/data (data.image_shape [1, 8, 8]):
#  - local training of a small CNN learns (test accuracy >= 0.9 after 12 epochs) and its model file scores the
#    test file in pstrain eval to the report's own accuracy; predict writes one row per image;
#  - under mpirun (1 server + 1 worker, BSP) the weights equal local training's bit for bit,
#    with the whole model as one tensor and with weights per layer (transport.prefetch);
#  - BSP with 2 workers of batch b matches local batch 2b (float tolerance);
#  - batchnorm: BSP with 1 worker equals local (weights and running statistics); with 2 workers
#    the model file holds the workers' averaged statistics and scores like the run;
#  - data.augment: the same seed gives the same weights, another seed others; BSP with 1 worker
#    equals local training;
#  - model.init_from starts from a saved model, whole or but the output layer for another class
#    count (digits relabelled odd/even), and refuses a file whose layers differ;
#  - cv runs the same layers; a malformed layer entry or image shape is a clear error.
# usage: cnn_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
source "$(dirname "$0")/lib.sh"

# 1,536 training images (so shares and batches divide evenly) and 261 test images.
python3 - "$tests/data/digits.csv" "$work" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
head, rows = lines[0], lines[1:]
open(sys.argv[2] + "/train.csv", "w").write("\n".join([head] + rows[:1536]) + "\n")
open(sys.argv[2] + "/test.csv", "w").write("\n".join([head] + rows[1536:]) + "\n")
PY
cat > "$work/cnn.yaml" <<YAML
name: digits-cnn
seed: 3
data: {train: $work/train.csv, test: $work/test.csv, val_fraction: 0, target: target,
       image_shape: [1, 8, 8]}
model:
  layers: [conv2d:8:3:pad=1, relu, maxpool2d:2, conv2d:8:3:pad=1, tanh, avgpool2d:2:1, flatten,
           dense:10, softmax]
optimizer: {name: adam, lr: 0.01}
train: {epochs: 4, batch_size: 16}
YAML

# --- local training, eval, predict ---------------------------------------------------------------
if "$pstrain" train "$work/cnn.yaml" --set train.epochs=12 --out "$work/local" -q >"$work/local.log" 2>&1; then
  acc=$(json "$work/local/report.json" "['test']['accuracy']")
  check "a CNN learns the digits locally (test accuracy $acc >= 0.9)" "$(python3 -c "print($acc >= 0.9)")"
  "$pstrain" info "$work/local/model.pst" >"$work/info.txt" 2>&1
  grep -q "layers: input:1:8:8 conv2d:8:3:1:1 relu maxpool2d:2:2 conv2d:8:3:1:1 tanh avgpool2d:2:1 flatten dense:10 softmax" "$work/info.txt" \
    && pass "pstrain info lists every layer with its shape fields" || fail "info layers: $(grep layers "$work/info.txt")"
  if "$pstrain" eval "$work/local/model.pst" "$work/test.csv" --json "$work/eval.json" >"$work/eval.log" 2>&1; then
    check "pstrain eval of the model file gives the run's own test accuracy" \
      "$(python3 -c "import json; a=json.load(open('$work/eval.json')); b=json.load(open('$work/local/report.json'))['test']; print(abs(a['accuracy'] - b['accuracy']) < 1e-12)")"
  else
    fail "eval: $(tail -3 "$work/eval.log")"
  fi
  if "$pstrain" predict "$work/local/model.pst" "$work/test.csv" -o "$work/pred.csv" 2>"$work/pred.log"; then
    check "predict writes a header and one row per test image" "$(python3 -c "print(sum(1 for _ in open('$work/pred.csv')) == 262)")"
  else
    fail "predict: $(tail -3 "$work/pred.log")"
  fi
else
  fail "local CNN training: $(tail -3 "$work/local.log")"
fi

# --- BSP == local, bit for bit -------------------------------------------------------------------
# The dense layer after flatten makes the model 6,754 floats: over the 4,096 from which weights
# travel per layer, so prefetch=true takes the layered path and prefetch=false the one-tensor path.
big=(--set 'model.layers=[conv2d:8:3:pad=1, relu, maxpool2d:2, flatten, dense:48, relu, dense:10, softmax]')
"$pstrain" train "$work/cnn.yaml" "${big[@]}" --out "$work/blocal" -q >/dev/null 2>&1 || fail "local run, dense 48"
params "$work/blocal/model.pst" >"$work/blocal.txt"
for pf in false true; do
  mpi 2 train "$work/cnn.yaml" "${big[@]}" --set transport.prefetch=$pf --out "$work/bsp1-$pf" -q \
    >"$work/bsp1-$pf.log" 2>&1 || fail "bsp 1 worker, prefetch $pf: $(tail -3 "$work/bsp1-$pf.log")"
  params "$work/bsp1-$pf/model.pst" >"$work/bsp1-$pf.txt"
  if [ -s "$work/blocal.txt" ] && cmp -s "$work/blocal.txt" "$work/bsp1-$pf.txt"; then
    pass "BSP with 1 worker (prefetch $pf) reproduces the local CNN's weights exactly ($(wc -l <"$work/blocal.txt") parameters)"
  else
    fail "BSP with 1 worker (prefetch $pf) differs from local: max rel diff $(max_rel_diff "$work/bsp1-$pf.txt" "$work/blocal.txt")"
  fi
done
[ -f "$work/bsp1-true/report.json" ] && check "prefetching held the CNN as 3 tensors: 3 pushes a step (4 epochs of 96 steps)" \
  "$(jexpr "$work/bsp1-true/report.json" "d['comm']['pushes'] == 3 * 4 * 96")"
[ -f "$work/bsp1-false/report.json" ] && check "without prefetching, one push a step" \
  "$(jexpr "$work/bsp1-false/report.json" "d['comm']['pushes'] == 4 * 96")"

# --- BSP, two workers of batch b == local batch 2b -----------------------------------------------
"$pstrain" train "$work/cnn.yaml" --set train.shuffle=false --set train.batch_size=32 --out "$work/local32" -q >/dev/null 2>&1 || fail "local batch 32"
mpi 3 train "$work/cnn.yaml" --set train.shuffle=false --set train.batch_size=16 --out "$work/bsp2" -q >"$work/bsp2.log" 2>&1 || fail "bsp 2 workers: $(tail -3 "$work/bsp2.log")"
params "$work/local32/model.pst" >"$work/local32.txt"
params "$work/bsp2/model.pst" >"$work/bsp2.txt"
d=$(max_rel_diff "$work/bsp2.txt" "$work/local32.txt")
check "BSP 2 workers x batch 16 matches local batch 32 (max rel diff $d < 1e-3)" "$(python3 -c "print($d < 1e-3)")"
"$pstrain" train "$work/cnn.yaml" --set train.shuffle=false --set train.batch_size=16 --out "$work/local16" -q >/dev/null 2>&1
params "$work/local16/model.pst" >"$work/local16.txt"
d16=$(max_rel_diff "$work/bsp2.txt" "$work/local16.txt")
check "and differs from local batch 16 (max rel diff $d16 > 1e-2): the comparison can fail" "$(python3 -c "print($d16 > 1e-2)")"

# --- batchnorm: BSP == local, and running statistics averaged over the workers -------------------
bn=(--set 'model.layers=[conv2d:8:3:pad=1, batchnorm, relu, maxpool2d:2, flatten, dense:32, batchnorm, relu, dense:10, softmax]')
"$pstrain" train "$work/cnn.yaml" "${bn[@]}" --out "$work/bnlocal" -q >/dev/null 2>&1 || fail "local batchnorm run"
mpi 2 train "$work/cnn.yaml" "${bn[@]}" --out "$work/bnbsp1" -q >"$work/bnbsp1.log" 2>&1 || fail "batchnorm bsp 1 worker: $(tail -3 "$work/bnbsp1.log")"
params "$work/bnlocal/model.pst" >"$work/bnlocal.txt"
params "$work/bnbsp1/model.pst" >"$work/bnbsp1.txt"
if [ -s "$work/bnlocal.txt" ] && cmp -s "$work/bnlocal.txt" "$work/bnbsp1.txt" && cmp -s "$work/bnlocal/model.pst" "$work/bnbsp1/model.pst"; then
  pass "batchnorm: BSP with 1 worker reproduces local weights and running statistics exactly (identical model files)"
else
  fail "batchnorm: BSP with 1 worker differs from local: max rel diff $(max_rel_diff "$work/bnbsp1.txt" "$work/bnlocal.txt")"
fi
check "batchnorm: the local CNN learns (test accuracy >= 0.9)" "$(jexpr "$work/bnlocal/report.json" "d['test']['accuracy'] >= 0.9")"
mpi 3 train "$work/cnn.yaml" "${bn[@]}" --out "$work/bnbsp2" -q >"$work/bnbsp2.log" 2>&1 || fail "batchnorm bsp 2 workers: $(tail -3 "$work/bnbsp2.log")"
if "$pstrain" eval "$work/bnbsp2/model.pst" "$work/test.csv" --json "$work/bneval.json" >"$work/bneval.log" 2>&1; then
  check "batchnorm, 2 workers: the model file (averaged running statistics) scores the run's test accuracy ($(json "$work/bneval.json" "['accuracy']") >= 0.85)" \
    "$(python3 -c "import json; a=json.load(open('$work/bneval.json')); b=json.load(open('$work/bnbsp2/report.json'))['test']; print(abs(a['accuracy'] - b['accuracy']) < 1e-12 and a['accuracy'] >= 0.85)")"
else
  fail "eval of the 2-worker batchnorm model: $(tail -3 "$work/bneval.log")"
fi

# --- augmentation: deterministic per seed, and the same under BSP with 1 worker ------------------
aug=(--set 'data.augment=[shift:1, flip, rotate:10, cutout:3]')
"$pstrain" train "$work/cnn.yaml" "${aug[@]}" --out "$work/aug1" -q >/dev/null 2>&1 || fail "augmented run"
"$pstrain" train "$work/cnn.yaml" "${aug[@]}" --out "$work/aug2" -q >/dev/null 2>&1 || fail "augmented run again"
"$pstrain" train "$work/cnn.yaml" "${aug[@]}" --set seed=4 --out "$work/aug3" -q >/dev/null 2>&1 || fail "augmented run, seed 4"
"$pstrain" train "$work/cnn.yaml" --set seed=4 --out "$work/plain4" -q >/dev/null 2>&1 || fail "plain run, seed 4"
params "$work/aug1/model.pst" >"$work/aug1.txt"
params "$work/aug2/model.pst" >"$work/aug2.txt"
params "$work/aug3/model.pst" >"$work/aug3.txt"
params "$work/plain4/model.pst" >"$work/plain4.txt"
if [ -s "$work/aug1.txt" ] && cmp -s "$work/aug1.txt" "$work/aug2.txt" && ! cmp -s "$work/aug1.txt" "$work/aug3.txt" && ! cmp -s "$work/aug3.txt" "$work/plain4.txt"; then
  pass "augmentation: the same seed gives the same weights, another seed (or none) others"
else
  fail "augmentation is not deterministic per seed"
fi
mpi 2 train "$work/cnn.yaml" "${aug[@]}" --out "$work/augbsp" -q >"$work/augbsp.log" 2>&1 || fail "augmented bsp: $(tail -3 "$work/augbsp.log")"
params "$work/augbsp/model.pst" >"$work/augbsp.txt"
cmp -s "$work/aug1.txt" "$work/augbsp.txt" && pass "augmentation: BSP with 1 worker draws what local training draws (same weights)" \
  || fail "augmented BSP with 1 worker differs: max rel diff $(max_rel_diff "$work/augbsp.txt" "$work/aug1.txt")"
expect_error_aug() {
  "$pstrain" train "$work/cnn.yaml" --set 'data.augment=[zoom:2]' --out "$work/err" -q >"$work/err.log" 2>&1
  local rc=$?
  [ "$rc" = 1 ] && grep -qF "data.augment[0]: unknown augmentation 'zoom:2'" "$work/err.log" && pass "an unknown augmentation: exit 1, named" || fail "unknown augmentation: exit $rc, $(cat "$work/err.log")"
}
expect_error_aug

# --- fine-tuning from a model file ----------------------------------------------------------------
# Another dataset: the same digits relabelled odd/even (2 classes). With lr 0 nothing moves, so
# the run's weights show exactly where it started: the saved model's, output layer excepted.
python3 - "$work" <<'PY'
import sys
for name in ("train", "test"):
    lines = open(f"{sys.argv[1]}/{name}.csv").read().splitlines()
    out = [lines[0]] + [",".join(l.split(",")[:-1] + [str(int(l.split(",")[-1]) % 2)]) for l in lines[1:]]
    open(f"{sys.argv[1]}/{name}2.csv", "w").write("\n".join(out) + "\n")
PY
if [ -f "$work/local/model.pst" ]; then
  params "$work/local/model.pst" >"$work/from.txt"
  "$pstrain" train "$work/cnn.yaml" --set model.init_from="$work/local/model.pst" --set optimizer.name=sgd \
    --set optimizer.lr=0 --set train.epochs=1 --out "$work/same" -q >/dev/null 2>&1 || fail "fine-tuning, same classes"
  params "$work/same/model.pst" >"$work/same.txt"
  cmp -s "$work/from.txt" "$work/same.txt" && pass "model.init_from: every weight starts from the model file" \
    || fail "model.init_from: the weights did not start from the file"
  "$pstrain" train "$work/cnn.yaml" --set model.init_from="$work/local/model.pst" --set optimizer.name=sgd \
    --set optimizer.lr=0 --set train.epochs=1 --set data.train="$work/train2.csv" --set data.test="$work/test2.csv" \
    --set 'model.layers=[conv2d:8:3:pad=1, relu, maxpool2d:2, conv2d:8:3:pad=1, tanh, avgpool2d:2:1, flatten, dense:2, softmax]' \
    --out "$work/odd" -v >"$work/odd.log" 2>&1 || fail "fine-tuning, 2 classes: $(tail -3 "$work/odd.log")"
  params "$work/odd/model.pst" >"$work/odd.txt"
  # layers before the output dense: 8*9+8 + 8*72+8 = 664 values; the output layer is 10x72+10 in
  # the file and 2x72+2 here
  check "another class count: all but the output layer start from the file, and the log says so" \
    "$(python3 -c "a=open('$work/from.txt').read().split(); b=open('$work/odd.txt').read().split(); print(a[:664] == b[:664] and len(b) == 664 + 146)")"
  grep -q "starting from .* (all layers but the output layer)" "$work/odd.log" || fail "no log line for the transfer"
  "$pstrain" train "$work/cnn.yaml" --set model.init_from="$work/local/model.pst" \
    --set 'model.layers=[conv2d:8:3:pad=1, relu, flatten, dense:10, softmax]' --out "$work/err" -q >"$work/err.log" 2>&1
  rc=$?
  [ "$rc" = 1 ] && grep -q "model.init_from: .*model.pst: 5 layers in the model file\|model.init_from: .*layers in the model file" "$work/err.log" \
    && pass "a model file whose layers do not match: exit 1, named" || fail "mismatched init_from: exit $rc, $(cat "$work/err.log")"
  "$pstrain" train "$work/cnn.yaml" --set model.init_from="$work/none.pst" --out "$work/err" -q >"$work/err.log" 2>&1
  rc=$?
  [ "$rc" = 1 ] && grep -q "model.init_from: .*none.pst" "$work/err.log" && pass "a missing model file: exit 1, named" \
    || fail "missing init_from: exit $rc, $(cat "$work/err.log")"
fi

# --- cv ------------------------------------------------------------------------------------------
if "$pstrain" cv "$work/cnn.yaml" --folds 3 --out "$work/cv" -q >"$work/cv.log" 2>&1; then
  check "cv trains the CNN on 3 folds (mean accuracy >= 0.85)" \
    "$(jexpr "$work/cv/report.json" "len(d['cv']['accuracy']['values']) == 3 and d['cv']['accuracy']['mean'] >= 0.85")"
else
  fail "cv: $(tail -3 "$work/cv.log")"
fi

# --- errors --------------------------------------------------------------------------------------
expect_error() { # NAME NEEDLE ARGS...: exit status 1 and NEEDLE in the message
  local name=$1 needle=$2
  shift 2
  "$pstrain" train "$work/cnn.yaml" "$@" --out "$work/err" -q >"$work/err.log" 2>&1
  local rc=$?
  if [ "$rc" = 1 ] && grep -qF "$needle" "$work/err.log"; then pass "$name: exit 1, '$needle'"; else fail "$name: exit $rc, $(cat "$work/err.log")"; fi
}
expect_error "conv2d without a kernel" "model.layers[0]: bad fields in 'conv2d:8'" --set 'model.layers=[conv2d:8, dense:10, softmax]'
expect_error "an image shape that is not the row" "is not a 1x9x9 image" --set 'data.image_shape=[9, 9]'
expect_error "a kernel larger than the image" "conv2d kernel 9 does not fit the 8x8 input" --set 'model.layers=[conv2d:4:9, flatten, dense:10, softmax]'

echo "$failures checks failed"
[ "$failures" = 0 ]
