#!/usr/bin/env bash
# End-to-end: TensorBoard event files read back by an independent reader (tfevents_check.py:
# its own CRC-32C, python3-protobuf code that protoc generates from proto/ at test time) and
# checked against metrics.jsonl, for every command that writes a run directory:
#  - train (epoch lines, step records, histograms), sparse train, train under mpirun (comm/*
#    against report.json), cv (a run per fold), bag (a run per member), sweep (a run per trial
#    with HParams session start/end, the experiment at the top), fed simulate (per round);
#  - output.tensorboard: false writes none; a flipped byte fails the reader's CRC check.
# TensorBoard itself is not installable here (Debian has no package of it and PyPI is not
# reachable); when `import tensorboard` works, its own loader reads the train run as well.
# usage: tensorboard_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
check_py="$(dirname "$0")/tfevents_check.py"
proto_dir="$tests/../proto"

if ! command -v protoc >/dev/null || ! "$py" -c "import google.protobuf" 2>/dev/null; then
  echo "FAIL: protoc and python3-protobuf are needed (scripts/setup.sh installs them)"
  exit 1
fi

# tb NAME [EXPR]: reads $work/NAME back; passes when nothing disagrees with metrics.jsonl and
# EXPR (Python over the summary s) holds.
tb() {
  local name=$1 expr=${2:-True}
  if "$py" "$check_py" "$proto_dir" "$work/gen" "$work/$name" >"$work/$name.tb.json" 2>"$work/$name.tb.err"; then
    local ok
    ok=$("$py" -c "import json,sys; s=json.load(open(sys.argv[1])); print(bool($expr))" "$work/$name.tb.json")
    if [ "$ok" = True ]; then
      pass "$name: $("$py" -c "import json,sys; s=json.load(open(sys.argv[1])); print(f\"{s['records']} records in runs {s['runs']}, {s['scalars_checked']} scalars match metrics.jsonl\")" "$work/$name.tb.json")"
    else
      fail "$name: $expr does not hold: $(cut -c1-400 "$work/$name.tb.json")"
    fi
  else
    fail "$name: $(cut -c1-400 "$work/$name.tb.json") $(tail -2 "$work/$name.tb.err")"
  fi
}

# --- train: epochs, step records, histograms -----------------------------------------------
if "$pstrain" train "$examples/csv_logreg.yaml" --set data.train="$data/digits.csv" \
  --set model.hidden=[16] --set train.epochs=6 --set output.log_steps=10 \
  --set output.histograms=true --out "$work/train" -q >"$work/train.log" 2>&1; then
  tb train "s['runs'] == ['.'] and s['extra_scalars'] == 0 and {'train_loss', 'val_loss', 'val_accuracy', 'lr', 'samples_per_s', 'step/train_loss', 'step/grad_norm'} <= set(s['tags']) and s['histograms'] == 6 * 4 * 2 and s['scalars_checked'] > 6 * 6"
  ls "$work/train"/events.out.tfevents.* >/dev/null 2>&1 && pass "train: events.out.tfevents.* in the run directory" || fail "train: no event file"
  # a damaged copy: one byte of a record's data flipped
  mkdir -p "$work/damaged"
  cp "$work/train/metrics.jsonl" "$work/damaged/"
  f=$(ls "$work/train"/events.out.tfevents.*)
  cp "$f" "$work/damaged/"
  "$py" - "$work/damaged/$(basename "$f")" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x10
open(sys.argv[1], "wb").write(b)
PY
  if "$py" "$check_py" "$proto_dir" "$work/gen" "$work/damaged" >"$work/damaged.json" 2>&1; then
    fail "a flipped byte went unnoticed"
  else
    grep -q "CRC mismatch" "$work/damaged.json" && pass "the reader refuses a flipped byte: $(cut -c1-120 "$work/damaged.json")" ||
      fail "damaged file: $(cut -c1-200 "$work/damaged.json")"
  fi
  if "$py" -c "import tensorboard" 2>/dev/null; then
    "$py" - "$work/train" <<'PY' && pass "TensorBoard's own loader reads the train run's scalars" || fail "TensorBoard's loader"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1]); acc.Reload()
lines = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"step"' not in l]
got = [e.step for e in acc.Scalars("val_loss")]
assert got == [l["epoch"] for l in lines], got
PY
  else
    echo "skip: TensorBoard is not installed (no Debian package; PyPI not reachable): its loader is not run"
  fi
else
  fail "train: $(tail -3 "$work/train.log")"
fi

# --- off ---------------------------------------------------------------------------------------
if "$pstrain" train "$examples/csv_logreg.yaml" --set data.train="$data/iris.csv" \
  --set train.epochs=2 --set output.tensorboard=false --out "$work/off" -q >/dev/null 2>&1; then
  n=$(find "$work/off" -name 'events.out.tfevents.*' | wc -l)
  [ "$n" = 0 ] && pass "output.tensorboard: false writes no event file" || fail "output.tensorboard false: $n event files"
else
  fail "train with output.tensorboard false"
fi

# --- sparse train ------------------------------------------------------------------------------
"$pstrain" datagen clicks --rows 6000 --features 200 --nnz 8 --seed 1 --out "$work/c.svm" >/dev/null &&
  head -n 5000 "$work/c.svm" >"$work/ctr.svm" && tail -n 1000 "$work/c.svm" >"$work/cte.svm"
cat >"$work/lr.yaml" <<YAML
name: sparse-tb
data: {train: $work/ctr.svm, test: $work/cte.svm, val_fraction: 0.1}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1}
train: {epochs: 3, batch_size: 32}
YAML
if "$pstrain" train "$work/lr.yaml" --out "$work/sparse" -q >"$work/sparse.log" 2>&1; then
  tb sparse "s['runs'] == ['.'] and {'val_roc_auc', 'train_loss'} <= set(s['tags']) and s['scalars_checked'] == 3 * 8"
else
  fail "sparse train: $(tail -3 "$work/sparse.log")"
fi

# --- train under mpirun: comm figures ----------------------------------------------------------
if mpi 3 train "$examples/csv_logreg.yaml" --set data.train="$data/digits.csv" --set train.epochs=3 \
  --set cluster.servers=1 --out "$work/mpi" -q >"$work/mpi.log" 2>&1; then
  tb mpi "s['comm_checked'] >= 10 and {'comm/bytes_wire', 'comm/push_latency_ms', 'comm/pull_latency_ms'} <= set(s['tags'])"
else
  fail "mpirun train: $(tail -3 "$work/mpi.log")"
fi

# --- cv: a run per fold ----------------------------------------------------------------------
if "$pstrain" cv "$examples/csv_logreg.yaml" --set data.train="$data/wine.csv" --folds 3 \
  --out "$work/cv" -q >"$work/cv.log" 2>&1; then
  tb cv "s['runs'] == ['.', 'fold_1', 'fold_2', 'fold_3', 'mean'] and 'accuracy' in s['tags']"
else
  fail "cv: $(tail -3 "$work/cv.log")"
fi

# --- bag: a run per member -------------------------------------------------------------------
if "$pstrain" bag "$examples/csv_logreg.yaml" --set data.train="$data/wine.csv" --members 3 \
  --out "$work/bag" -q >"$work/bag.log" 2>&1; then
  tb bag "s['runs'] == ['.', 'member_1', 'member_2', 'member_3'] and 'oob/accuracy' in s['tags']"
else
  fail "bag: $(tail -3 "$work/bag.log")"
fi

# --- sweep: a run per trial, HParams ---------------------------------------------------------
cat >"$work/sweep.yaml" <<YAML
base: $examples/csv_logreg.yaml
method: hyperband
metric: val.accuracy
trials: 4
seed: 0
hyperband: {min_epochs: 2, max_epochs: 6, eta: 3}
space:
  optimizer.lr: {log_uniform: [1.0e-3, 1.0e-1]}
  optimizer.name: {choice: [adam, sgd]}
YAML
if "$pstrain" sweep "$work/sweep.yaml" --set data.train="$data/wine.csv" --out "$work/sweep" -q \
  >"$work/sweep.log" 2>&1; then
  tb sweep "s['runs'] == ['.', 'trial_0', 'trial_1', 'trial_2', 'trial_3'] and s['hparams']['.']['experiment'] == {'hparams': ['optimizer.lr', 'optimizer.name'], 'metrics': ['accuracy']} and all(set(s['hparams'][f'trial_{i}']['start']) == {'optimizer.lr', 'optimizer.name'} and s['hparams'][f'trial_{i}']['end'] == 1 for i in range(4))"
  # the sessions' values are the trials' own
  "$py" - "$work/sweep.tb.json" "$work/sweep/sweep_results.json" <<'PY' && pass "sweep: each trial's HParams values are its sweep_results.json parameters" || fail "sweep: HParams values differ from sweep_results.json"
import json, sys
s = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
for t in r["trials"]:
    start = s["hparams"][f"trial_{t['trial']}"]["start"]
    for k, v in t["params"].items():
        assert str(start[k]) == str(v) or abs(float(start[k]) - float(v)) == 0, (k, start[k], v)
PY
else
  fail "sweep: $(tail -3 "$work/sweep.log")"
fi

# --- fed simulate: per round -----------------------------------------------------------------
if "$pstrain" fed simulate "$examples/csv_logreg.yaml" --set data.train="$data/digits.csv" \
  --set fed.rounds=3 --out "$work/fed" -q >"$work/fed.log" 2>&1; then
  tb fed "s['runs'] == ['.'] and {'sites_asked', 'sites_answered', 'bytes_up', 'val_accuracy'} <= set(s['tags']) and s['records'] == 1 + 3"
else
  fail "fed simulate: $(tail -3 "$work/fed.log")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
