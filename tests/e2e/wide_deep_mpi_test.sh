#!/usr/bin/env bash
# End-to-end tests of model.type wide_deep under mpirun on `pstrain datagen clicks` data:
#  - 1 server + 1 worker (BSP) trains the local run's model bit for bit: the same loss and
#    validation scores every epoch, the same test metrics and keys (OpenBLAS on one thread, as
#    lib.sh sets it; the training rows a multiple of the power-of-two batch, see
#    tests/unit/wide_deep_remote_test.c);
#  - 1 server + 2 workers with half batches (BSP: each clock steps on as many rows as a local
#    batch) reach a test AUC within 0.01 of the local run's, and report the traffic per example
#    that pulling and pushing each batch's rows and the deep stack implies;
#  - 2 servers split the rows and the deep stack (ASP) and still learn.
# usage: wide_deep_mpi_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"

"$pstrain" datagen clicks --rows 40000 --features 400 --nnz 8 --seed 4 --sigma 0.5 --zipf 0.8 \
  --click-rate 0.1 --out "$work/all.svm" >/dev/null || { echo "FAIL: datagen clicks"; exit 1; }
head -n 31999 "$work/all.svm" >"$work/train.svm"
tail -n 8000 "$work/all.svm" >"$work/test.svm"
# 31999 rows less a stratified validation tenth: 28800 training rows, 900 batches of 32.
cat >"$work/wd.yaml" <<YAML
name: wd-clicks
seed: 2
data: {train: $work/train.svm, test: $work/test.svm, val_fraction: 0.1}
model: {type: wide_deep, fields: 4, embedding_dim: 4, hidden: [16], activation: relu,
        init_scale: 0.05}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1}
train: {epochs: 2, batch_size: 32}
YAML
r() { json "$work/$1/report.json" "$2"; }

if ! "$pstrain" train "$work/wd.yaml" --out "$work/local" -q >"$work/local.log" 2>&1; then
  fail "local wide_deep: $(tail -3 "$work/local.log")"
  echo "$failures checks failed"
  exit 1
fi
local_auc=$(r local "['test']['roc_auc']")
check "local run: 28800 training rows (900 whole batches), test AUC $local_auc above 0.6" \
  "$(jexpr "$work/local/report.json" "d['data']['train_rows'] == 28800 and d['test']['roc_auc'] > 0.6")"

# --- one worker: the local run, bit for bit ---------------------------------------------------
if mpi 2 train "$work/wd.yaml" --out "$work/one" -q >"$work/one.log" 2>&1; then
  check "1 server + 1 worker: every epoch's loss, val loss and val AUC equal the local run's" \
    "$( [ "$(mcompare "$work/local/metrics.jsonl" "$work/one/metrics.jsonl" \
      "[(l['train_loss'], l['val_loss'], l['val_roc_auc']) for l in m]")" = same ] && echo True)"
  check "1 server + 1 worker: test AUC, log-loss and keys equal the local run's ($local_auc)" \
    "$(jexpr "$work/one/report.json" "[d['test']['roc_auc'], d['test']['log_loss'], d['sparse']['keys']] == [$(r local "['test']['roc_auc']"), $(r local "['test']['log_loss']"), $(r local "['sparse']['keys']")]")"
else
  fail "1 server + 1 worker: $(tail -3 "$work/one.log")"
fi

# --- two workers ------------------------------------------------------------------------------
# Per worker and step, raw bytes: the unique keys U up and their rows of w = 1 + 4 floats down,
# the keys and their gradient rows up again, and the deep stack's D floats down and up:
# 2 (8 + 4 w) U + 8 D over 16 rows.
if mpi 3 train "$work/wd.yaml" --set train.batch_size=16 --out "$work/two" -q \
  >"$work/two.log" 2>&1; then
  auc=$(r two "['test']['roc_auc']")
  check "1 server + 2 workers: test AUC $auc within 0.01 of the local run's $local_auc" \
    "$(jexpr "$work/two/report.json" "abs(d['test']['roc_auc'] - $local_auc) <= 0.01")"
  u=$(r two "['sparse']['keys_per_step']")
  deep=$(r two "['model']['deep_parameters']")
  raw=$(r two "['sparse']['raw_bytes_per_example']")
  wire=$(r two "['sparse']['bytes_per_example']")
  check "raw bytes per example $raw = (2 (8 + 20) U + 8 D) / 16, U = $u, D = $deep (within 1%)" \
    "$(jexpr "$work/two/report.json" "abs($raw - (56 * $u + 8 * $deep) / 16) <= 0.01 * $raw")"
  check "wire bytes per example $wire: at least the values (40 U + 8 D) / 16, below raw $raw" \
    "$(jexpr "$work/two/report.json" "(40 * $u + 8 * $deep) / 16 <= $wire < $raw")"
  check "the server holds the rows of the training keys ($(r two "['sparse']['keys']"))" \
    "$(jexpr "$work/two/report.json" "d['sparse']['server_rows'] == d['sparse']['keys'] > 0")"
else
  fail "1 server + 2 workers: $(tail -3 "$work/two.log")"
fi

# --- two servers ------------------------------------------------------------------------------
if mpi 4 train "$work/wd.yaml" --set cluster.servers=2 --set cluster.consistency=asp \
  --set train.batch_size=16 --set train.epochs=1 --out "$work/asp" -q >"$work/asp.log" 2>&1; then
  auc=$(r asp "['test']['roc_auc']")
  check "2 servers + 2 workers (ASP): test AUC $auc within 0.02 of the local run's $local_auc" \
    "$(jexpr "$work/asp/report.json" "abs(d['test']['roc_auc'] - $local_auc) <= 0.02")"
else
  fail "2 servers + 2 workers: $(tail -3 "$work/asp.log")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
