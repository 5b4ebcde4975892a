#!/usr/bin/env bash
# Elastic BSP (cluster.elastic, on by default): a worker stopped (SIGSTOP) past
# cluster.heartbeat_timeout is dropped, and continued (SIGCONT) it rejoins at the servers' clock:
# the job ends with rc 0, the worker trains again, and report.json and the log say which clocks
# it missed and how many of its rows were not seen. (A worker that does not come back:
# elastic_drop_test.sh.)
# usage: elastic_rejoin_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
faults_job

# --- a worker stopped, then continued: it rejoins ----------------------------------------------
start_and_stop back 2 --set train.epochs=150
if [ -z "$pid" ]; then
  fail "back: worker rank 2 not stopped in time: $(tail -3 "$work/back.log")"
  wait "$job"
else
  # once the server dropped it (heartbeat_timeout, 2 s), and while the other trains on
  wait_dropped back
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
