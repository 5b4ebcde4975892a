#!/usr/bin/env bash
# A rank that hangs or is stopped ends the job with a clear error within its timeouts, never a
# hang: a stopped (SIGSTOP) parameter server within cluster.timeout + a few seconds (the worker
# that times out ends the job with MPI_Abort), and, with the
# workers' sums over MPI (cluster.elastic=false), a stopped worker within cluster.timeout after
# the other worker reaches its epoch-end reduction. (With cluster.elastic on, the default, a
# stopped worker is dropped instead: elastic_test.sh.)
# usage: faults_hang_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
faults_job

# stop_rank NAME RANK LIMIT PATTERN [ARGS...]: starts the job, stops RANK once the first epoch is
# logged, and expects the job to end (rc != 0) within LIMIT seconds of the stop with PATTERN in
# its output.
stop_rank() {
  local name=$1 rank=$2 limit=$3 pattern=$4 rc took
  shift 4
  start_and_stop "$name" "$rank" "$@"
  if [ -z "$pid" ]; then
    fail "$name: rank $rank not found: $(tail -3 "$work/$name.log")"
    wait "$job"; return
  fi
  wait "$job"; rc=$?
  took=$(since "$t0")
  kill -KILL "$pid" 2>/dev/null
  echo "$name: the job ended $took s after rank $rank stopped (rc $rc)"
  check "$name: the job ends with an error within $limit s of the stop (took $took s)" \
    "$(python3 -c "print($rc != 0 and $took < $limit)")"
  if grep -q -- "$pattern" "$work/$name.log"; then
    pass "$name: $(grep -m1 -- "$pattern" "$work/$name.log")"
  else
    fail "$name: no '$pattern' in the output: $(tail -4 "$work/$name.log")"
  fi
}

# A stopped server: the workers' requests time out after cluster.timeout (4 s) and the job ends
# at once (MPI_Abort).
stop_rank server 0 12 "a parameter server is silent: ending the job"
grep -q "no reply from server 0 .* within 4000 ms" "$work/server.log" && pass "server: the workers name the silent server" \
  || fail "server: no timeout message: $(grep -i error "$work/server.log" | head -3)"
# A stopped worker, sums over MPI: the other worker waits at most cluster.timeout +
# heartbeat_timeout at the epoch-end reduction.
stop_rank worker 2 25 "did not happen within" --set cluster.elastic=false

echo "$failures checks failed"
[ "$failures" = 0 ]
