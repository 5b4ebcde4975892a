#!/usr/bin/env bash
# Elastic BSP (cluster.elastic, on by default): a worker stopped (SIGSTOP) past
# cluster.heartbeat_timeout is dropped and the other finishes the job with rc 0, report.json and
# the log naming the dropped worker, its clocks and the rows it did not see; without faults the
# weights equal the MPI-collective run's (cluster.elastic=false) bit for bit. (A worker that comes
# back: elastic_rejoin_test.sh.)
# usage: elastic_drop_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
faults_job

# --- no faults: elastic and MPI reductions give the same run, bit for bit ---------------------
for e in true false; do
  mpi 3 train "$work/job.yaml" --set train.epochs=6 --set cluster.elastic=$e --out "$work/bsp-$e" -q \
    >"$work/bsp-$e.log" 2>&1 || fail "BSP, cluster.elastic=$e: $(tail -3 "$work/bsp-$e.log")"
  params "$work/bsp-$e/model.pst" >"$work/bsp-$e.txt"
done
if [ -s "$work/bsp-true.txt" ] && cmp -s "$work/bsp-true.txt" "$work/bsp-false.txt"; then
  pass "2 workers, BSP: reductions through server 0 give the MPI run's weights bit for bit ($(wc -l <"$work/bsp-true.txt") parameters)"
else
  fail "2 workers, BSP: the weights differ between cluster.elastic true and false"
fi
check "and the same metrics, epoch by epoch" \
  "$(mcompare "$work/bsp-true/metrics.jsonl" "$work/bsp-false/metrics.jsonl" "[(l['train_loss'], l['val_loss'], l['val_accuracy']) for l in m]" | sed 's/^same$/True/')"
check "the same communication figures, no drop reported" \
  "$(jexpr "$work/bsp-true/report.json" "d['comm']['pushes'] == $(json "$work/bsp-false/report.json" "['comm']['pushes']") and d['train']['rows'] == $(json "$work/bsp-false/report.json" "['train']['rows']") == 6 * 1434 and 'elastic' not in d")"

# --- a worker stopped for good: the other finishes, rc 0 ------------------------------------
start_and_stop gone 2 --set train.epochs=60
if [ -z "$pid" ]; then
  fail "gone: worker rank 2 not stopped in time: $(tail -3 "$work/gone.log")"
  wait "$job"
else
  wait "$job"; rc=$?
  took=$(since "$t0")
  kill -KILL "$pid" 2>/dev/null
  echo "gone: the job ended $took s after worker 1 stopped (rc $rc)"
  check "gone: the job ends with rc 0 (got $rc) within 60 s (took $took s)" \
    "$(python3 -c "print($rc == 0 and $took < 60)")"
  check "gone: every epoch is logged" "$(mexpr "$work/gone/metrics.jsonl" "[l['epoch'] for l in m] == list(range(1, 61))")"
  check "gone: report.json names worker 1, dropped and not back" \
    "$(jexpr "$work/gone/report.json" "[(x['worker'], x['rejoined'], x['rejoined_at_clock']) for x in d['elastic']['dropped_workers']] == [(1, False, None)]")"
  check "gone: its rows not seen are those of its clocks from the drop to the end" "$(rows_ok gone)"
  check "gone: the drop is the run's end minus the clocks missed" \
    "$(jexpr "$work/gone/report.json" "d['elastic']['dropped_workers'][0]['dropped_at_clock'] + d['elastic']['dropped_workers'][0]['clocks_missed'] == 60 * 90")"
  grep -q "worker 1 dropped at clock [0-9]*, did not rejoin: [0-9]* of its rows not seen" "$work/gone.log" &&
    pass "gone: $(grep -m1 -o 'worker 1 dropped at clock.*' "$work/gone.log")" ||
    fail "gone: no drop in the log: $(grep -i warn "$work/gone.log" | head -3)"
  grep -q "declared dead; the others go on" "$work/gone.log" &&
    pass "gone: the server says it goes on without the worker" || fail "gone: no 'declared dead' line"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
