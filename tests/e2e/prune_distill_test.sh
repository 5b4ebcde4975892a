#!/usr/bin/env bash
# End-to-end: pruning (train.prune.*) and distillation (train.teacher) in pstrain train.
#  - pruned weights are exact zeros, as many as the target share of the weights;
#  - BSP with one worker reproduces local pruned training exactly, with whole-model and with
#    per-layer transfers; pruned distillation also under 2 workers;
#  - the pruned model file is smaller than the dense one and evaluates to the run's accuracy;
#  - a student learns from a model teacher and from a bag ensemble teacher, locally and under
#    mpirun; teachers that do not fit, bad keys and a damaged model file are clear errors.
# usage: prune_distill_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"

python3 - "$work" <<'PY'
import random, sys
random.seed(11)
def write(path, n, classes):
    with open(path, "w") as f:
        f.write("a,b,c,d,target\n")
        for i in range(n):
            c = i % classes
            x = [random.gauss(1.5 if j == c else 0.0, 0.7) for j in range(4)]
            f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)
write(sys.argv[1] + "/train.csv", 256, 3)
write(sys.argv[1] + "/test.csv", 90, 3)
write(sys.argv[1] + "/train4.csv", 256, 4)
PY
cat > "$work/base.yaml" <<YAML
name: prune-test
seed: 3
data: {train: $work/train.csv, test: $work/test.csv, val_fraction: 0, target: target}
model: {hidden: [8], activation: tanh}
optimizer: {name: adam, lr: 0.02}
train: {epochs: 6, batch_size: 16, prune: {sparsity: 0.75, start: 2, end: 4}}
YAML
# zeros MODEL: exact zeros among a model file's parameters
zeros() { params "$1" | awk '$1 == 0 { z++ } END { print z + 0 }'; }

# --- pruning: exact zeros, BSP 1 worker == local -------------------------------------------------
"$pstrain" train "$work/base.yaml" --out "$work/local" -q >/dev/null 2>&1 || fail "local pruned run"
mpi 2 train "$work/base.yaml" --out "$work/bsp1" -q >"$work/bsp1.log" 2>&1 || fail "bsp 1 worker: $(tail -3 "$work/bsp1.log")"
# weights 4x8 + 8x3 = 56: round(0.75 * 56) = 42 are zero (biases train away from zero)
z=$(zeros "$work/local/model.pst")
[ "$z" = 42 ] && pass "42 of 56 weights are exact zeros" || fail "pruned zeros: $z, want 42"
check "report.json: mask and zero share are 42/56" \
  "$(jexpr "$work/local/report.json" "d['prune']['mask_sparsity'] == d['prune']['zero_share'] == 42 / 56")"
params "$work/local/model.pst" >"$work/local.txt"
params "$work/bsp1/model.pst" >"$work/bsp1.txt"
if [ -s "$work/local.txt" ] && cmp -s "$work/local.txt" "$work/bsp1.txt"; then
  pass "pruned BSP with 1 worker reproduces local weights exactly"
else
  fail "pruned BSP with 1 worker differs: max rel diff $(max_rel_diff "$work/bsp1.txt" "$work/local.txt")"
fi
# per-layer transfers (a model over 4096 floats), the mask applied as each layer arrives
wide=(--set 'model.hidden=[128, 32]' --set train.prune.scope=layer)
"$pstrain" train "$work/base.yaml" "${wide[@]}" --out "$work/wlocal" -q >/dev/null 2>&1 || fail "local wide run"
mpi 2 train "$work/base.yaml" "${wide[@]}" --out "$work/wbsp1" -q >"$work/wbsp1.log" 2>&1 || fail "wide bsp 1 worker: $(tail -3 "$work/wbsp1.log")"
params "$work/wlocal/model.pst" >"$work/wlocal.txt"
params "$work/wbsp1/model.pst" >"$work/wbsp1.txt"
if [ -s "$work/wlocal.txt" ] && cmp -s "$work/wlocal.txt" "$work/wbsp1.txt"; then
  pass "per-layer pruned BSP with 1 worker reproduces local weights exactly"
else
  fail "per-layer pruned BSP differs: max rel diff $(max_rel_diff "$work/wbsp1.txt" "$work/wlocal.txt")"
fi
# layer scope: round(.75*512) + round(.75*4096) + round(.75*96) = 384 + 3072 + 72
z=$(zeros "$work/wlocal/model.pst")
[ "$z" = 3528 ] && pass "layer scope: 3528 exact zeros" || fail "layer scope zeros: $z, want 3528"

# --- the model file: compact, and it evaluates as trained -----------------------------------------
"$pstrain" train "$work/base.yaml" "${wide[@]}" --set train.prune.sparsity=0 --out "$work/wdense" -q >/dev/null 2>&1 || fail "dense wide run"
size_p=$(stat -c %s "$work/wlocal/model.pst") size_d=$(stat -c %s "$work/wdense/model.pst")
# 4704 weights, 3528 of them zero: 3528 x 4 bytes left out, a 588-byte bitmap added
check "pruned model file: $size_p bytes, dense $size_d: 3528 x 4 - 588 bytes saved (100 of framing)" \
  "$(python3 -c "print(abs(($size_d - $size_p) - (3528 * 4 - 588)) <= 100)")"
"$pstrain" eval "$work/wlocal/model.pst" "$work/test.csv" --json "$work/weval.json" >"$work/weval.log" 2>&1 || fail "eval pruned: $(tail -3 "$work/weval.log")"
check "eval of the pruned file gives the run's test accuracy" \
  "$(python3 -c "import json; a=json.load(open('$work/wlocal/report.json'))['test']['accuracy']; b=json.load(open('$work/weval.json'))['accuracy']; print(a == b and a > 0.8)")"
head -c $((size_p / 2)) "$work/wlocal/model.pst" >"$work/torn.pst"
if "$pstrain" eval "$work/torn.pst" "$work/test.csv" >"$work/torn.log" 2>&1; then
  fail "a torn model file was accepted"
else
  grep -q "torn.pst" "$work/torn.log" && pass "a torn pruned model file is refused by name" || fail "torn file message: $(tail -2 "$work/torn.log")"
fi

# --- distillation ----------------------------------------------------------------------------------
nod=(--set train.prune.sparsity=0)
"$pstrain" train "$work/base.yaml" "${nod[@]}" --set 'model.hidden=[32]' --out "$work/teacher" -q >/dev/null 2>&1 || fail "teacher run"
"$pstrain" bag "$work/base.yaml" "${nod[@]}" --members 3 --out "$work/bag" -q >/dev/null 2>&1 || fail "bag teacher run"
for t in teacher bag; do
  dis=("${nod[@]}" --set train.teacher="$work/$t/model.pst" --set train.distill_temperature=2)
  "$pstrain" train "$work/base.yaml" "${dis[@]}" --out "$work/d-$t" -q >"$work/d-$t.log" 2>&1 || fail "distilled from $t: $(tail -3 "$work/d-$t.log")"
  check "distilled from the $t: report names the teacher, accuracy above 0.8" \
    "$(jexpr "$work/d-$t/report.json" "d['distill']['teacher'].endswith('$t/model.pst') and d['distill']['temperature'] == 2 and d['test']['accuracy'] > 0.8")"
done
dis=(--set train.teacher="$work/bag/model.pst")
"$pstrain" train "$work/base.yaml" "${dis[@]}" --out "$work/dp-local" -q >/dev/null 2>&1 || fail "local pruned distilled run"
mpi 2 train "$work/base.yaml" "${dis[@]}" --out "$work/dp-bsp1" -q >"$work/dp-bsp1.log" 2>&1 || fail "pruned distilled bsp 1: $(tail -3 "$work/dp-bsp1.log")"
params "$work/dp-local/model.pst" >"$work/dp-local.txt"
params "$work/dp-bsp1/model.pst" >"$work/dp-bsp1.txt"
if [ -s "$work/dp-local.txt" ] && cmp -s "$work/dp-local.txt" "$work/dp-bsp1.txt" && ! cmp -s "$work/dp-local.txt" "$work/local.txt"; then
  pass "pruned and distilled BSP with 1 worker reproduces local weights exactly"
else
  fail "pruned distilled BSP with 1 worker differs from local (or distillation changed nothing)"
fi
mpi 3 train "$work/base.yaml" "${dis[@]}" --out "$work/dp-bsp2" -q >"$work/dp-bsp2.log" 2>&1 || fail "2 workers: $(tail -3 "$work/dp-bsp2.log")"
[ -f "$work/dp-bsp2/model.pst" ] && { z=$(zeros "$work/dp-bsp2/model.pst"); check "2 workers: 42 exact zeros, accuracy above 0.8" \
  "$(jexpr "$work/dp-bsp2/report.json" "$z == 42 and d['test']['accuracy'] > 0.8")"; }

# --- errors ------------------------------------------------------------------------------------------
# refused CASE EXIT TEXT ARGS...: pstrain ARGS exits with EXIT and prints TEXT
refused() {
  local name=$1 want=$2 text=$3; shift 3
  "$pstrain" "$@" >"$work/$name.log" 2>&1; local rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$text" "$work/$name.log"; then pass "$name refused: $text"
  else fail "$name: exit $rc, $(tail -2 "$work/$name.log")"; fi
}
split=(--set data.test= --set data.train_fraction=0.8 --set data.test_fraction=0.2)
"$pstrain" train "$work/base.yaml" "${nod[@]}" "${split[@]}" --set data.train="$work/train4.csv" --out "$work/t4" -q >/dev/null 2>&1 || fail "4-class teacher run"
refused classes 1 "the teacher has 4 classes, the model 3 outputs" train "$work/base.yaml" --set train.teacher="$work/t4/model.pst" --out "$work/e1" -q
refused missing 1 "train.teacher: $work/none.pst" train "$work/base.yaml" --set train.teacher="$work/none.pst" --out "$work/e2" -q
refused late_end 1 "train.prune.end (9) is after the last epoch (train.epochs 6)" train "$work/base.yaml" --set train.prune.end=9 --out "$work/e3" -q
refused order 1 "train.prune.start (5) is after train.prune.end (4)" train "$work/base.yaml" --set train.prune.start=5 --out "$work/e4" -q
refused full 1 "train.prune.sparsity" train "$work/base.yaml" --set train.prune.sparsity=1 --out "$work/e5" -q
refused scope 1 "train.prune.scope" train "$work/base.yaml" --set train.prune.scope=row --out "$work/e6" -q
refused regression 1 "train.teacher: distillation needs a classifier with a softmax output" train "$work/base.yaml" \
  "${split[@]}" --set data.train="$work/train4.csv" --set data.task=regression --set model.output=linear --set model.loss=mse \
  --set train.teacher="$work/t4/model.pst" --out "$work/e7" -q
refused dp 1 "train.teacher does not combine with train.dp.clip" train "$work/base.yaml" "${nod[@]}" "${dis[@]}" \
  --set train.dp.clip=1 --set train.dp.noise=1 --out "$work/e8" -q

echo "$failures checks failed"
[ "$failures" = 0 ]
