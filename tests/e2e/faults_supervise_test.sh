#!/usr/bin/env bash
# `pstrain supervise` reruns a job whose worker or server was killed (kill -9) with --resume auto
# until it ends with rc 0 and the uninterrupted run's weights (BSP, one worker: bit for bit).
# usage: faults_supervise_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
faults_job

sup=(train "$work/job.yaml" --set train.epochs=30 --set cluster.checkpoint_every=150)
mpi 2 "${sup[@]}" --out "$work/whole" -q >"$work/whole.log" 2>&1 || fail "uninterrupted run: $(tail -3 "$work/whole.log")"
params "$work/whole/model.pst" >"$work/whole.txt"
supervised_kill() { # NAME RANK
  local name=$1 rank=$2 rc
  pid=""
  PST_FAULT_TAG=$tag timeout 300 "$pstrain" supervise --restarts 2 --delay 0.2 -- \
    mpirun --oversubscribe -x PST_FAULT_TAG -np 2 "$pstrain" "${sup[@]}" --resume auto -v \
    --out "$work/$name" >"$work/$name.log" 2>&1 &
  job=$!
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

echo "$failures checks failed"
[ "$failures" = 0 ]
