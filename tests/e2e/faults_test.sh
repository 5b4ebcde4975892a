#!/usr/bin/env bash
# A rank that hangs or is stopped ends the job with a clear error within its timeouts, never a
# hang: a stopped (SIGSTOP) parameter server within cluster.timeout + a few seconds, a stopped
# worker within cluster.timeout after the other workers reach their epoch-end reduction; and
# `pstrain supervise` reruns a job whose worker or server was killed (kill -9) with --resume auto
# until it ends with rc 0 and the uninterrupted run's weights.
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
    [ "$({ wc -l <"$work/$name/metrics.jsonl"; } 2>/dev/null || echo 0)" -ge 2 ] && break
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

# --resume auto: the first run starts (no checkpoint yet), the rerun of the same command resumes.
auto=(train "$work/job.yaml" --set train.epochs=4 --set cluster.checkpoint_every=100 --resume auto --out "$work/auto" -v)
mpi 2 "${auto[@]}" >"$work/auto1.log" 2>&1 || fail "--resume auto, first run: $(tail -3 "$work/auto1.log")"
grep -q "no checkpoint yet; starting $work/auto" "$work/auto1.log" && pass "--resume auto starts a run without a checkpoint" \
  || fail "--resume auto did not say it starts: $(grep -m2 -i resume "$work/auto1.log")"
mpi 2 "${auto[@]}" >"$work/auto2.log" 2>&1 || fail "--resume auto, rerun: $(tail -3 "$work/auto2.log")"
grep -q "resuming at clock" "$work/auto2.log" && pass "--resume auto resumes: $(grep -m1 -o 'resuming at clock.*' "$work/auto2.log")" \
  || fail "--resume auto did not resume: $(grep -m2 -i resum "$work/auto2.log")"
check "after --resume auto metrics.jsonl holds epochs 1 to 4 once each" \
  "$(mexpr "$work/auto/metrics.jsonl" "[l['epoch'] for l in m] == [1, 2, 3, 4]")"

# --- pstrain supervise: kill -9 of a worker, and of a server, mid-run --------------------------
# Under supervise the job is rerun with --resume auto from its last checkpoint and ends with rc 0
# and the weights of an uninterrupted run (BSP, one worker: bit for bit).
sup=(train "$work/job.yaml" --set train.epochs=30 --set cluster.checkpoint_every=150)
mpi 2 "${sup[@]}" --out "$work/whole" -q >"$work/whole.log" 2>&1 || fail "uninterrupted run: $(tail -3 "$work/whole.log")"
params "$work/whole/model.pst" >"$work/whole.txt"
supervised_kill() { # NAME RANK
  local name=$1 rank=$2 pid="" rc
  PST_FAULT_TAG=$tag timeout 300 "$pstrain" supervise --restarts 2 --delay 0.2 -- \
    mpirun --oversubscribe -x PST_FAULT_TAG -np 2 "$pstrain" "${sup[@]}" --resume auto -v \
    --out "$work/$name" >"$work/$name.log" 2>&1 &
  local job=$!
  for _ in $(seq 600); do
    [ -e "$work/$name/checkpoints/server-0.ckpt" ] && pid=$(rank_pid "$rank")
    [ -n "$pid" ] && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$pid" ]; then
    fail "$name: no checkpoint or no rank $rank to kill: $(tail -3 "$work/$name.log")"
    wait "$job"; return
  fi
  kill -KILL "$pid"
  wait "$job"; rc=$?
  check "$name: supervise ends with rc 0 (got $rc)" "$([ "$rc" = 0 ] && echo True)"
  grep -q "supervise: restart 1 of 2" "$work/$name.log" && pass "$name: $(grep -m1 'supervise: restart' "$work/$name.log")" \
    || fail "$name: no restart logged: $(tail -3 "$work/$name.log")"
  grep -q "resuming at clock" "$work/$name.log" && pass "$name: the rerun $(grep -m1 -o 'resuming at clock.*' "$work/$name.log")" \
    || fail "$name: the rerun did not resume"
  params "$work/$name/model.pst" >"$work/$name.txt" 2>/dev/null
  if [ -s "$work/whole.txt" ] && cmp -s "$work/whole.txt" "$work/$name.txt"; then
    pass "$name: the final weights equal the uninterrupted run's ($(wc -l <"$work/whole.txt") parameters)"
  else
    fail "$name: the final weights differ from the uninterrupted run's"
  fi
}
supervised_kill kill-worker 1
supervised_kill kill-server 0
"$pstrain" supervise --restarts 1 --delay 0 -- false >"$work/false.log" 2>&1
rc=$?
check "supervise gives up after its restarts with the last status (rc $rc)" \
  "$([ "$rc" = 1 ] && grep -q 'failed 2 times' "$work/false.log" && echo True)"
"$pstrain" supervise --restarts x -- true >/dev/null 2>&1
check "supervise: a bad option is a usage error" "$([ $? = 2 ] && echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
