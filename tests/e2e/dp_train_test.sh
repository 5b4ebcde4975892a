#!/usr/bin/env bash
# End-to-end tests of DP-SGD in pstrain train (train.dp.*), locally and under mpirun:
#  - a private run logs epsilon per epoch (console and metrics.jsonl) and train.dp in report.json;
#  - BSP with one worker reproduces the local private run's weights bit for bit (same seed);
#  - two workers of batch b spend exactly the epsilon per epoch of a local run of batch 2b (same
#    sampling rate and steps), and their noise shares still let the model learn;
#  - a budget stops the run before the epoch that would pass it, and says so;
#  - inconsistent keys, other consistency modes, lossy codecs, sparse models and plans are
#    refused with the key named.
# usage: dp_train_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"

blobs3 1 512 90
cat > "$work/base.yaml" <<YAML
name: dpsgd-test
seed: 3
data: {train: $work/train.csv, test: $work/test.csv, val_fraction: 0, target: target}
model: {hidden: [8], activation: tanh, dropout: 0.1}
optimizer: {name: adam, lr: 0.02}
train: {epochs: 4, batch_size: 16, dp: {clip: 1.0, noise: 1.1}}
YAML

# --- a local private run -----------------------------------------------------------------------
"$pstrain" train "$work/base.yaml" --out "$work/local" >"$work/local.log" 2>&1 || fail "local private run: $(tail -3 "$work/local.log")"
check "metrics.jsonl has a rising epsilon for each of the 4 epochs" \
  "$(mexpr "$work/local/metrics.jsonl" "len(m) == 4 and all(0 < a['epsilon'] < b['epsilon'] for a, b in zip(m, m[1:]))")"
check "the console prints each epoch's epsilon and the total" \
  "$(python3 -c "import sys; t=open(sys.argv[1]).read(); print(t.count('epsilon ') >= 5 and 'dp-sgd: epsilon' in t)" "$work/local.log")"
check "report.json train.dp: Poisson sampling at q = 16/512, sigma 1.1, the last epoch's epsilon" \
  "$(python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))['train']['dp']
m = [json.loads(l) for l in open(sys.argv[2])]
print(d['sampling'] == 'poisson' and d['sampling_rate'] == 16 / 512 and d['noise_multiplier'] == 1.1
      and d['epsilon'] == m[-1]['epsilon'] and d['stopped_at_budget'] is False)" "$work/local/report.json" "$work/local/metrics.jsonl")"
check "the private model still learns (test accuracy > 0.7)" "$(jexpr "$work/local/report.json" "d['test']['accuracy'] > 0.7")"

# --- BSP, one worker == local, bit for bit -----------------------------------------------------
mpi 2 train "$work/base.yaml" --out "$work/bsp1" -q >"$work/bsp1.log" 2>&1 || fail "bsp 1 worker: $(tail -3 "$work/bsp1.log")"
params "$work/local/model.pst" > "$work/local.txt"
params "$work/bsp1/model.pst" > "$work/bsp1.txt"
if [ -s "$work/local.txt" ] && cmp -s "$work/local.txt" "$work/bsp1.txt"; then
  pass "private BSP with 1 worker reproduces the local weights exactly ($(wc -l < "$work/local.txt") parameters)"
else
  fail "private BSP with 1 worker differs from local: max rel diff $(max_rel_diff "$work/bsp1.txt" "$work/local.txt")"
fi
check "and logs the same epsilon per epoch" "$(mcompare "$work/local/metrics.jsonl" "$work/bsp1/metrics.jsonl" "[e['epsilon'] for e in m]" | sed 's/^same$/True/')"

# --- two workers of batch 16 == a local batch of 32 in privacy ---------------------------------
"$pstrain" train "$work/base.yaml" --set train.batch_size=32 --out "$work/local32" -q >/dev/null 2>&1 || fail "local batch 32"
mpi 3 train "$work/base.yaml" --out "$work/bsp2" -q >"$work/bsp2.log" 2>&1 || fail "bsp 2 workers: $(tail -3 "$work/bsp2.log")"
check "2 workers x batch 16 spend the epsilon per epoch of a local batch of 32 (q = 32/512)" \
  "$(mcompare "$work/local32/metrics.jsonl" "$work/bsp2/metrics.jsonl" "[e['epsilon'] for e in m]" | sed 's/^same$/True/')"
check "2 workers: q = 32/512 in report.json, and the model learns (test accuracy > 0.7)" \
  "$(jexpr "$work/bsp2/report.json" "d['train']['dp']['sampling_rate'] == 32 / 512 and d['test']['accuracy'] > 0.7")"

# --- the noise of a real 2-worker step: variance sigma^2 C^2 ---------------------------------
# One SGD step (lr 1) with q = 1 (2 workers x batch 256 = all 512 rows), so the clipped sum S is
# the same in every run; a run with sigma 1e-12 gives w0 - S / 512, one with sigma 1000 gives
# w0 - (S + Z) / 512: 512 times their difference is the applied noise Z, over 515 weights.
# Z's variance must be (sigma C)^2 = 1e6 (relative sd of the estimate sqrt(2/515) = 6%); noise of
# sigma C per worker instead of sigma C / sqrt(2) would give 2e6.
one=(--set model.hidden=[64] --set model.dropout=0 --set optimizer.name=sgd --set optimizer.lr=1
     --set train.epochs=1 --set train.batch_size=256 -q)
mpi 3 train "$work/base.yaml" "${one[@]}" --set train.dp.noise=1e-12 --out "$work/quiet" >"$work/quiet.log" 2>&1 || fail "sigma 1e-12 step: $(tail -3 "$work/quiet.log")"
mpi 3 train "$work/base.yaml" "${one[@]}" --set train.dp.noise=1000 --out "$work/loud" >"$work/loud.log" 2>&1 || fail "sigma 1000 step: $(tail -3 "$work/loud.log")"
params "$work/quiet/model.pst" > "$work/quiet.txt"
params "$work/loud/model.pst" > "$work/loud.txt"
check "2 workers: the applied noise has variance sigma^2 C^2 (within 25%), not 2 sigma^2 C^2" \
  "$(python3 - "$work/quiet.txt" "$work/loud.txt" <<'PY'
import sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
z = [512 * (x - y) for x, y in zip(a, b)]
mean = sum(z) / len(z)
var = sum((v - mean) ** 2 for v in z) / len(z)
print(len(z) == 515 and abs(var / 1e6 - 1) < 0.25 and abs(mean) < 4 * 1000 / len(z) ** 0.5)
PY
)"

# --- CNN layers: each example through conv2d and pooling on its own ---------------------------
cat > "$work/cnn.yaml" <<YAML
name: dpsgd-cnn
seed: 1
data: {train: $2/data/digits.csv, val_fraction: 0, test_fraction: 0.2, train_fraction: 0.8, target: target, image_shape: [8, 8]}
model: {layers: [conv2d:4:3:pad=1, relu, maxpool2d:2, flatten, dense:10, softmax]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 3, batch_size: 32, dp: {clip: 1.0, epsilon_budget: 8}}
YAML
"$pstrain" train "$work/cnn.yaml" --out "$work/cnn" -q >"$work/cnn.log" 2>&1 || fail "private CNN: $(tail -3 "$work/cnn.log")"
check "a private CNN spends at most its budget of 8 in 3 epochs and learns digits (test accuracy > 0.6)" \
  "$(jexpr "$work/cnn/report.json" "7.99 < d['train']['dp']['epsilon'] <= 8 and d['train']['epochs'] == 3 and d['test']['accuracy'] > 0.6")"

# --- the budget --------------------------------------------------------------------------------
budget=$(mexpr "$work/local/metrics.jsonl" "(m[1]['epsilon'] + m[2]['epsilon']) / 2")
"$pstrain" train "$work/base.yaml" --set train.epochs=10 --set train.dp.epsilon_budget="$budget" --out "$work/budget" >"$work/budget.log" 2>&1 || fail "budget run: $(tail -3 "$work/budget.log")"
check "a budget between epoch 2's and epoch 3's epsilon stops after epoch 2" \
  "$(jexpr "$work/budget/report.json" "d['train']['epochs'] == 2 and d['train']['dp']['stopped_at_budget'] and d['train']['dp']['epsilon'] <= $budget < d['train']['dp']['epsilon_next_epoch']")"
check "and says so" "$(grep -c 'stopped at the privacy budget' "$work/budget.log" | sed 's/^1$/True/')"
"$pstrain" train "$work/base.yaml" --set train.dp.noise=0 --set train.dp.epsilon_budget=2 --out "$work/calib" -q >/dev/null 2>&1 || fail "calibrated run"
check "noise 0 with a budget of 2: sigma calibrated so that the 4 epochs spend just under 2" \
  "$(jexpr "$work/calib/report.json" "d['train']['epochs'] == 4 and 1.999 < d['train']['dp']['epsilon'] <= 2")"

# --- refusals ----------------------------------------------------------------------------------
# refused DESCRIPTION PATTERN ARGS...: the command fails with a message matching PATTERN
refused() {
  local what=$1 pattern=$2; shift 2
  if "$@" >"$work/refused.log" 2>&1; then
    fail "$what: accepted"
  elif grep -q -- "$pattern" "$work/refused.log"; then
    pass "$what: refused ($(grep -m1 -- "$pattern" "$work/refused.log" | cut -c1-110))"
  else
    fail "$what: wrong message: $(tail -2 "$work/refused.log")"
  fi
}
t=(train "$work/base.yaml" --force --out "$work/refused")
refused "noise without clip" "train.dp.noise needs train.dp.clip" "$pstrain" "${t[@]}" --set train.dp.clip=0
refused "budget without clip" "train.dp.epsilon_budget needs train.dp.clip" "$pstrain" "${t[@]}" --set train.dp.clip=0 --set train.dp.noise=0 --set train.dp.epsilon_budget=1
refused "clip without noise or budget" "train.dp.clip without noise" "$pstrain" "${t[@]}" --set train.dp.noise=0
refused "delta out of range" "train.dp.delta" "$pstrain" "${t[@]}" --set train.dp.delta=1.5
refused "a budget one epoch already passes" "train.dp.epsilon_budget 0.01" "$pstrain" "${t[@]}" --set train.dp.epsilon_budget=0.01
refused "batch clipping beside per-example clipping" "train.clip_norm" "$pstrain" "${t[@]}" --set train.clip_norm=1
refused "oversampling" "train.imbalance oversample" "$pstrain" "${t[@]}" --set train.imbalance=oversample
sed 's/^model: .*/model: {layers: [dense:8, batchnorm, relu, dense:3, softmax]}/' "$work/base.yaml" > "$work/bn.yaml"
refused "batchnorm" "layer 2 (batchnorm)" "$pstrain" train "$work/bn.yaml" --out "$work/refused_bn"
refused "a sparse model" "model.type sparse_lr" "$pstrain" "${t[@]}" --set model.type=sparse_lr
refused "cv" "DP-SGD runs in pstrain train only" "$pstrain" cv "$work/base.yaml" --folds 2 --out "$work/refused_cv"
refused "ssp under mpirun" "cluster.consistency bsp" mpi 3 "${t[@]}" --set cluster.consistency=ssp
refused "a lossy codec under mpirun" "lossless transport.codec" mpi 3 "${t[@]}" --set transport.codec=int8

echo "$failures checks failed"
[ "$failures" = 0 ]
