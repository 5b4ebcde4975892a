#!/usr/bin/env bash
# A rank that hangs or is stopped ends the job with a clear error within its timeouts, never a
# hang: a stopped (SIGSTOP) parameter server within cluster.timeout + a few seconds, a stopped
# worker within cluster.timeout after the other workers reach their epoch-end reduction.
# usage: faults_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"

python3 - "$work" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1] + "/train.csv", "w") as f:
    f.write("a,b,c,d,target\n")
    for i in range(2048):
        c = i % 3
        x = [random.gauss(1.5 if j == c else 0.0, 0.7) for j in range(4)]
        f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)
PY
cat > "$work/job.yaml" <<YAML
name: faults-test
seed: 2
data: {train: $work/train.csv, val_fraction: 0.2, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: 400, batch_size: 8, progress: none}
cluster: {timeout: 4, heartbeat_timeout: 2}
YAML
tag="pst-faults-$$"

# rank_pid RANK: the process of that rank of this test's job
rank_pid() {
  local p
  for p in /proc/[0-9]*; do
    if { tr "\0" "\n" <"$p/environ" | grep -qx "PST_FAULT_TAG=$tag"; } 2>/dev/null &&
       { tr "\0" "\n" <"$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$1"; } 2>/dev/null; then
      basename "$p"; return
    fi
  done
}

# stop_rank NAME RANK LIMIT PATTERN: starts the job, stops RANK once two epochs are logged, and
# expects the job to end (rc != 0) within LIMIT seconds of the stop with PATTERN in its output.
stop_rank() {
  local name=$1 rank=$2 limit=$3 pattern=$4
  PST_FAULT_TAG=$tag timeout 300 mpirun --oversubscribe -x PST_FAULT_TAG -np 3 "$pstrain" train \
    "$work/job.yaml" --out "$work/$name" >"$work/$name.log" 2>&1 &
  local job=$! pid="" t0 t1 rc
  for _ in $(seq 600); do
    [ "$(wc -l <"$work/$name/metrics.jsonl" 2>/dev/null || echo 0)" -ge 2 ] && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  pid=$(rank_pid "$rank")
  if [ -z "$pid" ]; then
    fail "$name: rank $rank not found: $(tail -3 "$work/$name.log")"
    wait "$job"; return
  fi
  kill -STOP "$pid"
  t0=$(date +%s.%N)
  wait "$job"; rc=$?
  t1=$(date +%s.%N)
  kill -KILL "$pid" 2>/dev/null
  local took
  took=$(python3 -c "print(round($t1 - $t0, 1))")
  echo "$name: the job ended $took s after rank $rank stopped (rc $rc)"
  check "$name: the job ends with an error within $limit s of the stop (took $took s)" \
    "$(python3 -c "print($rc != 0 and $took < $limit)")"
  if grep -q -- "$pattern" "$work/$name.log"; then
    pass "$name: $(grep -m1 -- "$pattern" "$work/$name.log")"
  else
    fail "$name: no '$pattern' in the output: $(tail -4 "$work/$name.log")"
  fi
}

# A stopped server: the workers' requests time out after cluster.timeout (4 s); the watchdog then
# gives the final join 10 s.
stop_rank server 0 25 "did not happen within"
grep -q "no reply from server 0 .* within 4000 ms" "$work/server.log" && pass "server: the workers name the silent server" \
  || fail "server: no timeout message: $(grep -i error "$work/server.log" | head -3)"
# A stopped worker: the other worker waits at most cluster.timeout at the epoch-end reduction.
stop_rank worker 2 25 "did not happen within"

echo "$failures checks failed"
[ "$failures" = 0 ]
