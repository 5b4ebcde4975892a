#!/usr/bin/env bash
# Elastic BSP (cluster.elastic, on by default): a worker stopped (SIGSTOP) past
# cluster.heartbeat_timeout is dropped and the other finishes the job with rc 0, report.json and
# the log naming the dropped worker, its clocks and the rows it did not see; stopped then
# continued (SIGCONT), it rejoins at the servers' clock and the report says so; without faults
# the weights equal the MPI-collective run's (cluster.elastic=false) bit for bit.
# usage: elastic_test.sh PSTRAIN TESTS_DIR
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

# rows_ok NAME: report.json's rows_not_seen of each drop equals the rows worker 1 (717 rows a
# epoch: 1434 training rows in two strided shares, 90 steps of 8, the last of 5) has in its
# clocks [dropped_at, rejoined_at or the run's end)
rows_ok() {
  python3 - "$work/$1/report.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
drops = d["elastic"]["dropped_workers"]
ok = bool(drops)
for x in drops:
    until = x["dropped_at_clock"] + x["clocks_missed"]
    rows = sum(5 if c % 90 == 89 else 8 for c in range(x["dropped_at_clock"], until))
    ok = ok and rows == x["rows_not_seen"] and x["clocks_missed"] > 0
print(ok and d["elastic"]["rows_not_seen"] == sum(x["rows_not_seen"] for x in drops))
PY
}

# --- a worker stopped for good: the other finishes, rc 0 ------------------------------------
start_and_stop gone 2 --set train.epochs=80
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
  check "gone: every epoch is logged" "$(mexpr "$work/gone/metrics.jsonl" "[l['epoch'] for l in m] == list(range(1, 81))")"
  check "gone: report.json names worker 1, dropped and not back" \
    "$(jexpr "$work/gone/report.json" "[(x['worker'], x['rejoined'], x['rejoined_at_clock']) for x in d['elastic']['dropped_workers']] == [(1, False, None)]")"
  check "gone: its rows not seen are those of its clocks from the drop to the end" "$(rows_ok gone)"
  check "gone: the drop is the run's end minus the clocks missed" \
    "$(jexpr "$work/gone/report.json" "d['elastic']['dropped_workers'][0]['dropped_at_clock'] + d['elastic']['dropped_workers'][0]['clocks_missed'] == 80 * 90")"
  grep -q "worker 1 dropped at clock [0-9]*, did not rejoin: [0-9]* of its rows not seen" "$work/gone.log" &&
    pass "gone: $(grep -m1 -o 'worker 1 dropped at clock.*' "$work/gone.log")" ||
    fail "gone: no drop in the log: $(grep -i warn "$work/gone.log" | head -3)"
  grep -q "declared dead; the others go on" "$work/gone.log" &&
    pass "gone: the server says it goes on without the worker" || fail "gone: no 'declared dead' line"
fi

# --- a worker stopped, then continued: it rejoins ----------------------------------------------
start_and_stop back 2 --set train.epochs=150
if [ -z "$pid" ]; then
  fail "back: worker rank 2 not stopped in time: $(tail -3 "$work/back.log")"
  wait "$job"
else
  # once the server dropped it (heartbeat_timeout, 2 s), and while the other trains on
  for _ in $(seq 200); do
    grep -q "worker 1 silent for .* declared dead" "$work/back.log" && break
    sleep 0.1
  done
  sleep 1
  kill -CONT "$pid"
  wait "$job"; rc=$?
  check "back: the job ends with rc 0 (got $rc)" "$([ "$rc" = 0 ] && echo True)"
  check "back: report.json says worker 1 rejoined, at a later clock than it dropped" \
    "$(jexpr "$work/back/report.json" "[(x['worker'], x['rejoined'], x['rejoined_at_clock'] > x['dropped_at_clock']) for x in d['elastic']['dropped_workers']] == [(1, True, True)]")"
  check "back: its rows not seen are those of the clocks it missed" "$(rows_ok back)"
  # The rows trained and the rows not seen make up both shares of every epoch; the step whose push
  # came back stale (the one that told the worker it had been dropped) was computed but not
  # applied, so it may count on both sides: at most one batch.
  check "back: the worker trained again, and trained plus not seen rows are both workers' shares" \
    "$(jexpr "$work/back/report.json" "d['train']['rows'] > 150 * 717 and 0 <= d['train']['rows'] + d['elastic']['rows_not_seen'] - 2 * 150 * 717 <= 8")"
  grep -q "worker 1 dropped at clock [0-9]*, rejoined at clock [0-9]*" "$work/back.log" &&
    pass "back: $(grep -m1 -o 'worker 1 dropped at clock.*' "$work/back.log")" ||
    fail "back: no rejoin in the lead's log: $(grep -i warn "$work/back.log" | head -3)"
  grep -q "\[worker 1\].*it rejoins at clock" "$work/back.log" &&
    pass "back: the worker carries on at the servers' clock" || fail "back: the worker did not say it rejoins"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
