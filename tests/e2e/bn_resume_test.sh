#!/usr/bin/env bash
# Batchnorm running statistics across a crash: under mpirun (1 server + 2 workers, BSP) a run
# checkpointing every 12 clocks (8 steps an epoch: checkpoints inside epochs and at their ends)
# is killed once a checkpoint exists and resumed; each worker's running moments come back from
# checkpoints/worker-W.state, so the resumed model's weights and its predictions (which use the
# moments) equal the uninterrupted run's bit for bit. A damaged state file is a clear error.
# usage: bn_resume_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"

blobs3 2 256 90
cat > "$work/bn.yaml" <<YAML
name: bn-resume
seed: 5
data: {train: $work/train.csv, test: $work/test.csv, val_fraction: 0, target: target}
model: {layers: ['dense:16', batchnorm, relu, 'dense:3', softmax]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 150, batch_size: 16}
cluster: {checkpoint_every: 12}
YAML

mpi 3 train "$work/bn.yaml" --out "$work/whole" -q >"$work/whole.log" 2>&1 || fail "uninterrupted run: $(tail -3 "$work/whole.log")"
[ -e "$work/whole/checkpoints/worker-0.state" ] && [ -e "$work/whole/checkpoints/worker-1.state" ] \
  && pass "each worker saved its running statistics beside the checkpoints" || fail "no worker state files: $(ls "$work/whole/checkpoints")"
setsid timeout 300 mpirun --oversubscribe -np 3 "$pstrain" train "$work/bn.yaml" --out "$work/killed" -q >"$work/killed.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -e "$work/killed/checkpoints/server-0.ckpt" ] && [ -e "$work/killed/checkpoints/worker-1.state.prev" ] && break
  sleep 0.05
done
kill -KILL -- -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
killed_at=$(wc -l < "$work/killed/metrics.jsonl" 2>/dev/null || echo 0)
if [ ! -e "$work/killed/checkpoints/server-0.ckpt" ] || [ -e "$work/killed/model.pst" ]; then
  fail "the kill did not land between a checkpoint and the end ($killed_at of 150 epochs logged)"
else
  pass "killed after $killed_at of 150 epochs, with a checkpoint"
  mpi 3 train "$work/bn.yaml" --resume "$work/killed" -q >"$work/resume.log" 2>&1 || fail "resume: $(tail -3 "$work/resume.log")"
  grep -q "start afresh" "$work/resume.log" && fail "the resumed run lost its statistics: $(grep afresh "$work/resume.log")"
  params "$work/whole/model.pst" >"$work/whole.txt"
  params "$work/killed/model.pst" >"$work/resumed.txt" 2>/dev/null
  if [ -s "$work/whole.txt" ] && cmp -s "$work/whole.txt" "$work/resumed.txt"; then
    pass "resumed weights equal the uninterrupted run's"
  else
    fail "resumed weights differ: $(max_rel_diff "$work/resumed.txt" "$work/whole.txt")"
  fi
  "$pstrain" predict "$work/whole/model.pst" "$work/test.csv" -o "$work/p-whole.csv" 2>/dev/null
  "$pstrain" predict "$work/killed/model.pst" "$work/test.csv" -o "$work/p-resumed.csv" 2>/dev/null
  if [ -s "$work/p-whole.csv" ] && cmp -s "$work/p-whole.csv" "$work/p-resumed.csv"; then
    pass "predictions (through the running moments) equal the uninterrupted run's"
  else
    fail "predictions differ after the resume: the running moments were not restored"
  fi
fi

# --- resumed at its last checkpoint: the moments are all the resumed run has of its own --------
# 6 epochs of 8 steps end on the checkpoint of clock 48: the resumed run trains nothing, and its
# model file holds the restored (and averaged) moments, which must be the finished run's.
short=(--set train.epochs=6)
mpi 3 train "$work/bn.yaml" "${short[@]}" --out "$work/short" -q >"$work/short.log" 2>&1 || fail "short run: $(tail -3 "$work/short.log")"
"$pstrain" predict "$work/short/model.pst" "$work/test.csv" -o "$work/p-short.csv" 2>/dev/null
cp -r "$work/short" "$work/again"
rm -f "$work/again/model.pst" "$work/again/report.json"
mpi 3 train "$work/bn.yaml" "${short[@]}" --resume "$work/again" -q >"$work/again.log" 2>&1 || fail "resume at the end: $(tail -3 "$work/again.log")"
"$pstrain" predict "$work/again/model.pst" "$work/test.csv" -o "$work/p-again.csv" 2>/dev/null
if [ -s "$work/p-short.csv" ] && cmp -s "$work/p-short.csv" "$work/p-again.csv"; then
  pass "resumed at the last checkpoint, the model predicts exactly as the finished run (moments restored)"
else
  fail "resumed at the last checkpoint, predictions differ: the running moments were not restored"
fi

# a damaged state file is refused by name
if [ -e "$work/killed/checkpoints/server-0.ckpt" ]; then
  cp -r "$work/killed" "$work/damaged"
  rm -f "$work/damaged/model.pst" "$work/damaged/report.json"
  printf 'garbage' > "$work/damaged/checkpoints/worker-0.state"
  if mpi 3 train "$work/bn.yaml" --resume "$work/damaged" -q >"$work/damaged.log" 2>&1; then
    fail "a damaged state file was accepted"
  else
    grep -q "worker-0.state: not the running statistics of this model" "$work/damaged.log" \
      && pass "a damaged state file is an error naming it" || fail "damaged state: $(tail -2 "$work/damaged.log")"
  fi
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
