#!/usr/bin/env bash
# Elastic sparse jobs (cluster.elastic, on by default): a sparse_lr BSP job of 1 server and 2
# workers whose worker 1 is stopped (SIGSTOP) past cluster.heartbeat_timeout goes on without it.
#  - no faults: the epoch ends and the final agreement through server 0 give the MPI run's
#    (cluster.elastic=false) figures exactly and its weights bit for bit, and no drop is reported;
#  - continued (SIGCONT) once dropped: the worker rejoins at the servers' clock, the job ends with
#    rc 0, report.json and the log name it, and the test figures are close to the uninterrupted
#    run's; the same rejoin for wide_deep;
#  - never continued: the other worker finishes, report.json names worker 1 as dropped and not
#    back, and the job ends within cluster.timeout and a few seconds of the report with rc 0
#    and a message saying why (its model learnt from one share of the rows for most epochs: its
#    test figures are not held to the uninterrupted run's).
# usage: faults_sparse_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/faults_lib.sh"

"$pstrain" datagen clicks --rows 24000 --features 1024 --nnz 12 --seed 5 --sigma 0.5 --zipf 0.8 \
  --click-rate 0.2 --out "$work/all.svm" >/dev/null || { echo "FAIL: datagen clicks"; exit 1; }
# the first 20000 rows to train on, the last 4000 to test
split -l 20000 "$work/all.svm" "$work/part-" && mv "$work/part-aa" "$work/train.svm" &&
  mv "$work/part-ab" "$work/test.svm" || { echo "FAIL: splitting the rows"; exit 1; }
# start_and_stop (faults_lib.sh) runs $work/job.yaml: here a sparse job (timeouts as faults_job's)
# whose validation figures still improve at its last epoch. 18000 training rows: two shares of
# 9000, 282 steps of 32 an epoch.
cat >"$work/job.yaml" <<YAML
name: faults-sparse
model: {type: sparse_lr}
train: {epochs: 20, batch_size: 32, progress: none}
cluster: {timeout: 4, heartbeat_timeout: 2}
data: {train: $work/train.svm, test: $work/test.svm, format: libsvm, val_fraction: 0.1}
optimizer: {name: ftrl, lr: 0.05, ftrl_beta: 1}
seed: 1
YAML

# --- no faults: through server 0 or through MPI, the same run ----------------------------------
for e in true false; do
  mpi 3 train "$work/job.yaml" --set cluster.elastic=$e --out "$work/bsp-$e" -q \
    >"$work/bsp-$e.log" 2>&1 || fail "BSP, cluster.elastic=$e: $(tail -3 "$work/bsp-$e.log")"
done
check "no faults: elastic and MPI agreements give the same test and validation figures, exactly" \
  "$(python3 -c "import json; a, b = (json.load(open('$work/bsp-%s/report.json' % e)) for e in ('true', 'false')); print(a['test'] == b['test'] and a['val'] == b['val'] and a['train']['history'] == b['train']['history'] and a['test']['n'] == 4000)" 2>&1)"
# the bias and the weights, key by key (not the file's size and checksum: the file keeps the
# config, where cluster.elastic differs)
for e in true false; do
  "$pstrain" info "$work/bsp-$e/model.pst" --params | grep -v '^file size:\|^checksum:' >"$work/w-$e.txt"
done
check "no faults: the same bias and weights bit for bit (model.pst, $(grep -c "^[0-9]" "$work/w-true.txt") rows)" \
  "$([ -s "$work/w-true.txt" ] && cmp -s "$work/w-true.txt" "$work/w-false.txt" && echo True)"
check "no faults: the same pushes and rows, no drop reported" \
  "$(jexpr "$work/bsp-true/report.json" "d['comm']['pushes'] == $(json "$work/bsp-false/report.json" "['comm']['pushes']") and d['train']['rows'] == $(json "$work/bsp-false/report.json" "['train']['rows']") == 20 * 18000 and 'elastic' not in d")"
# the uninterrupted run the faulty ones are held to
ref_auc=$(json "$work/bsp-true/report.json" "['test']['roc_auc']" 2>/dev/null || echo nan)
ref_loss=$(json "$work/bsp-true/report.json" "['test']['log_loss']" 2>/dev/null || echo nan)

# --- worker 1 stopped past the heartbeat timeout, then continued: it rejoins -------------------
# back_case NAME [ARGS...]: the job (with ARGS) whose worker 1 is stopped after the first epoch
# and continued as soon as the server declared it dead, while the other still trains
back_case() {
  local name=$1
  shift
  start_and_stop "$name" 2 "$@"
  if [ -z "$pid" ]; then
    fail "$name: worker rank 2 not stopped in time: $(tail -3 "$work/$name.log")"
    wait "$job"
    return 1
  fi
  wait_dropped "$name"
  kill -CONT "$pid"
  wait "$job"; rc=$?
  check "$name: the job ends with rc 0 (got $rc)" "$([ "$rc" = 0 ] && echo True)"
  check "$name: report.json says worker 1 rejoined, at a later clock than it dropped" \
    "$(jexpr "$work/$name/report.json" "[(x['worker'], x['rejoined'], x['rejoined_at_clock'] > x['dropped_at_clock'] and x['rows_not_seen'] > 0) for x in d['elastic']['dropped_workers']] == [(1, True, True)]")"
  check "$name: every epoch is logged once" \
    "$(mexpr "$work/$name/metrics.jsonl" "[l['epoch'] for l in m] == list(range(1, 21))")"
  # trained and not-seen rows make up both shares of every epoch; the steps whose pushes came back
  # stale (computed, not applied) may count on both sides
  check "$name: the worker trained again; trained plus not seen rows are both workers' shares" \
    "$(jexpr "$work/$name/report.json" "d['train']['rows'] > 20 * 9000 and 0 <= d['train']['rows'] + d['elastic']['rows_not_seen'] - 20 * 18000 <= 4 * 32")"
  grep -q "\[worker 1\].*it rejoins at clock" "$work/$name.log" &&
    pass "$name: the worker carries on at the servers' clock" ||
    fail "$name: the worker did not say it rejoins: $(grep -i warn "$work/$name.log" | head -3)"
  grep -q "worker 1 dropped at clock [0-9]*, rejoined at clock [0-9]*" "$work/$name.log" &&
    pass "$name: $(grep -m1 -o 'worker 1 dropped at clock.*' "$work/$name.log")" ||
    fail "$name: no rejoin in the lead's log"
}
back_case back &&
  check "back: test ROC-AUC and log-loss within 0.01 of the uninterrupted run's ($ref_auc, $ref_loss)" \
    "$(jexpr "$work/back/report.json" "abs(d['test']['roc_auc'] - $ref_auc) < 0.01 and abs(d['test']['log_loss'] - $ref_loss) < 0.01")"
# wide & deep: its trainer rejoins the same way (the deep stack pulled again at the new clock)
back_case back-wd --set model.type=wide_deep --set model.fields=4

# --- worker 1 stopped for good: the other finishes, the job ends without it ---------------------
start_and_stop gone 2
if [ -z "$pid" ]; then
  fail "gone: worker rank 2 not stopped in time: $(tail -3 "$work/gone.log")"
  wait "$job"
else
  until [ -e "$work/gone/report.json" ] || ! kill -0 "$job" 2>/dev/null; do sleep 0.05; done
  t_report=$(date +%s.%N)
  wait "$job"; rc=$?
  took=$(since "$t_report")
  kill -KILL "$pid" 2>/dev/null # it never ran again: mpirun left it stopped
  check "gone: rc 0 (got $rc), ended within cluster.timeout (4 s) + 4 s of the report ($took s)" \
    "$(python3 -c "print($rc == 0 and $took < 8)")"
  check "gone: report.json names worker 1, dropped and not back; every epoch logged" \
    "$(jexpr "$work/gone/report.json" "[(x['worker'], x['rejoined'], x['dropped_at_clock'] + x['clocks_missed']) for x in d['elastic']['dropped_workers']] == [(1, False, 20 * 282)] and d['train']['epochs'] == 20")"
  grep -q "a dropped worker did not come back within 4 s: the job ends without it" "$work/gone.log" &&
    pass "gone: the message says the job ends without the dropped worker" ||
    fail "gone: no message about ending without it: $(tail -3 "$work/gone.log")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
