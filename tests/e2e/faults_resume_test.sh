#!/usr/bin/env bash
# Jobs that finish without a person: `--resume auto` starts a run without a checkpoint and resumes
# one with a checkpoint, metrics.jsonl holding each epoch once; `pstrain supervise` gives up after
# its restarts with the last status, and refuses a bad option; the servers keep only the last
# cluster.keep_checkpoints clock-named checkpoints.
# usage: faults_resume_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/faults_lib.sh"
faults_job

# --resume auto: the first run starts (no checkpoint yet), the rerun of the same command resumes.
auto=(train "$work/job.yaml" --set train.epochs=4 --set cluster.checkpoint_every=100 --resume auto --out "$work/auto" -v)
mpi 2 "${auto[@]}" >"$work/auto1.log" 2>&1 || fail "--resume auto, first run: $(tail -3 "$work/auto1.log")"
grep -q "no checkpoint yet; starting $work/auto" "$work/auto1.log" && pass "--resume auto starts a run without a checkpoint" \
  || fail "--resume auto did not say it starts: $(grep -m2 -i resume "$work/auto1.log")"
# 4 epochs of 180 steps (one worker, 1434 rows, batch 8): checkpoints at clocks 100..700; the
# default keep_checkpoints (3) leaves the last three beside server-0.ckpt
check "the servers keep the last 3 checkpoints: clocks 500, 600, 700" \
  "$(python3 -c "import os; print(sorted(f for f in os.listdir('$work/auto/checkpoints') if f.startswith('server-')) == ['server-0-clock-500.ckpt', 'server-0-clock-600.ckpt', 'server-0-clock-700.ckpt', 'server-0.ckpt'])")"
check "server-0.ckpt is the newest" "$(cmp -s "$work/auto/checkpoints/server-0.ckpt" "$work/auto/checkpoints/server-0-clock-700.ckpt" && echo True)"
mpi 2 "${auto[@]}" >"$work/auto2.log" 2>&1 || fail "--resume auto, rerun: $(tail -3 "$work/auto2.log")"
grep -q "resuming at clock" "$work/auto2.log" && pass "--resume auto resumes: $(grep -m1 -o 'resuming at clock.*' "$work/auto2.log")" \
  || fail "--resume auto did not resume: $(grep -m2 -i resum "$work/auto2.log")"
check "after --resume auto metrics.jsonl holds epochs 1 to 4 once each" \
  "$(mexpr "$work/auto/metrics.jsonl" "[l['epoch'] for l in m] == [1, 2, 3, 4]")"
mpi 2 train "$work/job.yaml" --set train.epochs=2 --set cluster.checkpoint_every=100 \
  --set cluster.keep_checkpoints=0 --out "$work/all" -q >"$work/all.log" 2>&1 || fail "keep all: $(tail -3 "$work/all.log")"
check "cluster.keep_checkpoints=0 keeps every checkpoint (clocks 100, 200, 300)" \
  "$(python3 -c "import os; print(sorted(f for f in os.listdir('$work/all/checkpoints') if f.startswith('server-')) == ['server-0-clock-100.ckpt', 'server-0-clock-200.ckpt', 'server-0-clock-300.ckpt', 'server-0.ckpt'])")"

"$pstrain" supervise --restarts 1 --delay 0 -- false >"$work/false.log" 2>&1
rc=$?
check "supervise gives up after its restarts with the last status (rc $rc)" \
  "$([ "$rc" = 1 ] && grep -q 'failed 2 times' "$work/false.log" && echo True)"
"$pstrain" supervise --restarts x -- true >/dev/null 2>&1
check "supervise: a bad option is a usage error" "$([ $? = 2 ] && echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
