#!/usr/bin/env bash
# End-to-end tests of early stopping for sparse models (train.patience, train.restore_best):
#  - local sparse_lr stops train.patience epochs after its best validation epoch, reports the
#    best epoch, the stop and every epoch's validation figures, and its test figures are those
#    of a run that trains the best epoch's number of epochs and no more (bit for bit);
#  - the same under mpirun (1 server + 2 workers): both workers stop at the same epoch (the
#    pushes are those of a run of that many epochs), the servers shut down, and the test figures
#    come from the best epoch's rows pulled from the servers;
#  - fm and wide_deep stop and restore too; patience without validation rows is refused.
# usage: sparse_early_stop_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
mpi() { local np=$1; shift; timeout 120 mpirun --oversubscribe -np "$np" "$pstrain" "$@"; }
# same FILE1 FILE2 EXPR: "True" when EXPR over report.json d gives the same value in both
same() { python3 -c "import json,sys; a,b=(eval(sys.argv[3],{'d':json.load(open(f))}) for f in sys.argv[1:3]); print(a == b and a is not None)" "$@"; }

"$pstrain" datagen clicks --rows 60000 --features 65536 --nnz 20 --seed 3 --sigma 0.5 --zipf 0.8 \
  --click-rate 0.1 --out "$work/all.svm" >/dev/null || { echo "FAIL: datagen clicks"; exit 1; }
head -n 40000 "$work/all.svm" >"$work/train.svm"
tail -n 20000 "$work/all.svm" >"$work/test.svm"
# On these rows the validation log-loss of FTRL at alpha 0.1 falls for three epochs, then rises.
cat >"$work/lr.yaml" <<YAML
name: early-stop
seed: 0
data: {train: $work/train.svm, test: $work/test.svm, format: libsvm, val_fraction: 0.1}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1}
train: {epochs: 10, batch_size: 64, patience: 2, progress: none}
YAML

# checks_stopped RUN_DIR LABEL: the report of a run that stopped early and restored its best
checks_stopped() {
  local r=$1/report.json label=$2
  check "$label: best epoch > 1, stopped 2 epochs after it, restored" \
    "$(jexpr "$r" "d['train']['best_epoch'] > 1 and d['train']['epochs'] == d['train']['best_epoch'] + 2 and d['train']['stopped_early'] and d['train']['restored_best']")"
  check "$label: history of every epoch, the best one the lowest validation loss" \
    "$(jexpr "$r" "len(d['train']['history']) == d['train']['epochs'] and min(h['val_loss'] for h in d['train']['history']) == d['train']['history'][d['train']['best_epoch'] - 1]['val_loss'] == d['train']['best_val_loss'] == d['val']['log_loss']")"
}

# --- local ---------------------------------------------------------------------------------
if "$pstrain" train "$work/lr.yaml" --out "$work/lr" >"$work/lr.log" 2>&1; then
  checks_stopped "$work/lr" "local sparse_lr"
  grep -q "stopped early; best epoch" "$work/lr.log" && pass "local: the summary says it stopped early" ||
    fail "local: no early-stopping line in the output"
  best=$(json "$work/lr/report.json" "['train']['best_epoch']")
  if "$pstrain" train "$work/lr.yaml" --set train.epochs="$best" --set train.patience=0 \
    --out "$work/lr_ref" -q >"$work/lr_ref.log" 2>&1; then
    check "local: test figures are those of $best epochs and no more" \
      "$(same "$work/lr/report.json" "$work/lr_ref/report.json" "d['test']")"
    check "local: the reference run did not stop early nor restore" \
      "$(jexpr "$work/lr_ref/report.json" "not d['train']['stopped_early'] and not d['train']['restored_best'] and d['train']['patience'] == 0")"
  else
    fail "local reference: $(tail -3 "$work/lr_ref.log")"
  fi
  if "$pstrain" train "$work/lr.yaml" --set train.restore_best=false --out "$work/lr_last" -q \
    >"$work/lr_last.log" 2>&1; then
    check "restore_best false: stops at the same epoch, keeps the last weights" \
      "$(jexpr "$work/lr_last/report.json" "d['train']['stopped_early'] and not d['train']['restored_best'] and d['train']['epochs'] == $best + 2 and d['val']['log_loss'] > d['train']['best_val_loss']")"
  else
    fail "restore_best false: $(tail -3 "$work/lr_last.log")"
  fi
else
  fail "local sparse_lr: $(tail -3 "$work/lr.log")"
  best=0
fi

# --- mpirun: 1 server + 2 workers ----------------------------------------------------------
if mpi 3 train "$work/lr.yaml" --out "$work/mpi" -v >"$work/mpi.log" 2>&1; then
  checks_stopped "$work/mpi" "mpirun"
  mbest=$(json "$work/mpi/report.json" "['train']['best_epoch']")
  check "mpirun: the server saw both workers shut down" \
    "$([ "$(grep -c 'worker [01] shut down' "$work/mpi.log")" = 2 ] && echo True || echo False)"
  if mpi 3 train "$work/lr.yaml" --set train.epochs="$mbest" --set train.patience=0 \
    --out "$work/mpi_ref" -q >"$work/mpi_ref.log" 2>&1; then
    check "mpirun: test figures are those of $mbest epochs and no more" \
      "$(same "$work/mpi/report.json" "$work/mpi_ref/report.json" "d['test']")"
    # Training pushes only; both workers must have stopped after the same epoch for the early
    # run's pushes to be the reference's plus those of its two epochs past the best.
    check "mpirun: both workers stopped after the same epoch (pushes in proportion to epochs)" \
      "$(python3 -c "import json; a=json.load(open('$work/mpi/report.json')); b=json.load(open('$work/mpi_ref/report.json')); print(a['comm']['pushes'] * $mbest == b['comm']['pushes'] * ($mbest + 2))")"
  else
    fail "mpirun reference: $(tail -3 "$work/mpi_ref.log")"
  fi
else
  fail "mpirun: $(tail -5 "$work/mpi.log")"
fi

# --- fm and wide_deep ----------------------------------------------------------------------
if "$pstrain" train "$work/lr.yaml" --set model.type=fm --set model.factors=4 \
  --set optimizer.lr=0.1 --out "$work/fm" -q >"$work/fm.log" 2>&1; then
  check "fm: stops and restores its best epoch" \
    "$(jexpr "$work/fm/report.json" "d['train']['stopped_early'] and d['train']['restored_best'] and d['val']['log_loss'] == d['train']['best_val_loss']")"
else
  fail "fm: $(tail -3 "$work/fm.log")"
fi
"$pstrain" datagen criteo --rows 30000 --numeric 4 --categorical 8 --vocab 200 --interaction 1.5 \
  --seed 3 --out "$work/wd_all.tsv" >/dev/null || fail "datagen criteo"
head -n 24000 "$work/wd_all.tsv" >"$work/wd.tsv"
tail -n 6000 "$work/wd_all.tsv" >"$work/wd_test.tsv"
cat >"$work/wd.yaml" <<YAML
name: early-stop-wd
seed: 0
data: {train: $work/wd.tsv, test: $work/wd_test.tsv, format: criteo, numeric_columns: 4,
       categorical_columns: 8, hash_bits: 12, val_fraction: 0.1}
model: {type: wide_deep, embedding_dim: 4, hidden: [16], init_scale: 0.05}
optimizer: {name: ftrl, lr: 0.2}
train: {epochs: 12, batch_size: 128, patience: 1, progress: none}
YAML
if "$pstrain" train "$work/wd.yaml" --out "$work/wd" -q >"$work/wd.log" 2>&1; then
  check "wide_deep: stops early, the final validation figures are the best epoch's" \
    "$(jexpr "$work/wd/report.json" "d['train']['stopped_early'] and d['val']['log_loss'] == d['train']['best_val_loss'] and d['train']['epochs'] == d['train']['best_epoch'] + 1")"
else
  fail "wide_deep: $(tail -3 "$work/wd.log")"
fi

# --- refused -------------------------------------------------------------------------------
if "$pstrain" train "$work/lr.yaml" --set data.val_fraction=0 --out "$work/noval" -q \
  >"$work/noval.log" 2>&1; then
  fail "patience without validation rows was accepted"
else
  grep -q "train.patience 2: early stopping needs validation rows" "$work/noval.log" &&
    pass "patience without validation rows is refused, naming the key" ||
    fail "patience without validation rows: $(tail -2 "$work/noval.log")"
  [ ! -e "$work/noval/report.json" ] && pass "no report written" || fail "a report was written"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
