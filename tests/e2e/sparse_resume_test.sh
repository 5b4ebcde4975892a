#!/usr/bin/env bash
# End-to-end test of --resume for sparse runs under mpirun (1 server + 1 worker, BSP):
#  - a sparse_lr run with cluster.checkpoint_every leaves its servers' last checkpoint in the
#    middle of an epoch; --resume of its run directory restarts from that clock, continues in the
#    right epoch and step, and ends with the same model.pst rows and test metrics as the run
#    itself (the steps after the checkpoint are taken again, on the same rows in the same order);
#  - the same for fm, whose rows start from seeded random values;
#  - --resume of a run directory without checkpoints, and --resume without mpirun, are refused.
# usage: sparse_resume_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"

"$pstrain" datagen clicks --rows 6000 --features 2000 --nnz 8 --seed 9 --click-rate 0.2 \
  --out "$work/all.svm" >/dev/null
head -n 5000 "$work/all.svm" >"$work/train.svm"
tail -n 1000 "$work/all.svm" >"$work/test.svm"
# 4000 training rows (data.val_fraction 0.2) in batches of 128: 32 steps an epoch; the last
# checkpoint of 30 epochs (960 clocks) every 250 clocks is at clock 750, step 14 of epoch 24.
cat >"$work/lr.yaml" <<YAML
name: resume
seed: 3
data: {train: $work/train.svm, test: $work/test.svm, format: libsvm}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1, ftrl_l1: 0.5}
train: {epochs: 30, batch_size: 128, shuffle: true}
cluster: {checkpoint_every: 250}
YAML

# resume_case NAME ARGS...: trains, keeps the model's rows and report, resumes, compares
resume_case() {
  local name=$1 run=$work/$1
  shift
  if ! mpi 2 train "$work/lr.yaml" "$@" --out "$run" -q >"$run.log" 2>&1; then
    fail "$name: the run failed: $(tail -3 "$run.log")"
    return
  fi
  "$pstrain" info "$run/model.pst" --params >"$run.first.txt"
  cp "$run/report.json" "$run.first.json"
  if [ ! -e "$run/checkpoints/server-0.ckpt" ]; then
    fail "$name: no checkpoint was written"
    return
  fi
  if ! mpi 2 train "$work/lr.yaml" "$@" --resume "$run" -v >"$run.resume.log" 2>&1; then
    fail "$name: --resume failed: $(tail -3 "$run.resume.log")"
    return
  fi
  if grep -q "resuming at clock 750 (epoch 24, step 15)" "$run.resume.log"; then
    pass "$name: $(grep -m1 -o 'resuming at clock.*' "$run.resume.log")"
  else
    fail "$name: not resumed at clock 750: $(grep -m2 -i 'resum' "$run.resume.log")"
  fi
  "$pstrain" info "$run/model.pst" --params >"$run.second.txt"
  if [ -s "$run.first.txt" ] && cmp -s "$run.first.txt" "$run.second.txt"; then
    pass "$name: the resumed run's model.pst equals the run's ($(sed -n 's/^nonzero rows: //p' "$run.second.txt") rows, bit for bit)"
  else
    fail "$name: the resumed model differs: $(diff "$run.first.txt" "$run.second.txt" | head -4)"
  fi
  check "$name: the resumed run's test metrics are the run's" \
    "$(python3 -c "import json,sys; a=json.load(open(sys.argv[1]))['test']; b=json.load(open(sys.argv[2]))['test']; print(a == b)" "$run.first.json" "$run/report.json")"
  # Epochs 24 to 30 were trained again: their lines are the resumed run's, each epoch once.
  check "$name: metrics.jsonl holds epochs 1 to 30 once each after the resume" \
    "$(mexpr "$run/metrics.jsonl" "[l['epoch'] for l in m] == list(range(1, 31))")"
}
resume_case lr
resume_case fm --set model.type=fm --set model.factors=3

expect_error() { # DESCRIPTION PATTERN ARGS...
  local what=$1 pattern=$2
  shift 2
  if "$@" >"$work/err.log" 2>&1; then
    fail "$what: succeeded"
  elif grep -q -- "$pattern" "$work/err.log"; then
    pass "$what: $(grep -m1 -- "$pattern" "$work/err.log")"
  else
    fail "$what: message lacks '$pattern': $(tail -2 "$work/err.log")"
  fi
}
mkdir -p "$work/empty"
expect_error "--resume without checkpoints" "no checkpoint" \
  mpi 2 train "$work/lr.yaml" --resume "$work/empty" -q
expect_error "--resume without mpirun" "under mpirun" \
  "$pstrain" train "$work/lr.yaml" --resume "$work/lr" -q

echo "$failures checks failed"
[ "$failures" = 0 ]
