#!/usr/bin/env bash
# The model contract of plans under mpirun: each task's group leader declares the task's namespace
# to every server over MPI before its INIT, and its DROP frees it. A cv on two worker groups gives
# the local run's out-of-fold predictions to the bit with every fold declared and freed (a bag its
# test metrics, a stack its base fits declared too); a sweep whose trials change the model's shape
# declares each trial's own; and during a plan an INIT from outside the job's ranks (an undeclared
# namespace, or a task's namespace with another size) is refused by name and counted while the
# plan finishes normally.
# cluster.security=none lets the client in: it plays a buggy worker of the job, not a stranger.
# usage: plan_contract_test.sh PSTRAIN TESTS_DIR   (PST_STRANGER: the client program)
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
client=${PST_STRANGER:-}
if [ ! -x "$client" ]; then
  echo "FAIL: PST_STRANGER does not name the client program"
  exit 1
fi

# --- cv on 2 groups: every fold declared, the local run's predictions ---------------------------
cv=(cv "$examples/csv_logreg.yaml" --set data.train="$data/wine.csv" --folds 3 --stratified)
"$pstrain" "${cv[@]}" --out "$work/cv-local" -q >/dev/null 2>&1 || fail "local cv failed"
if mpi 3 "${cv[@]}" --set cluster.groups=2 --out "$work/cv-mpi" -v >"$work/cv-mpi.log" 2>&1; then
  check "cv: the server admits INIT only in declared namespaces" \
    "$(grep -q 'server 0 accepts INIT only in the namespaces the plan.s tasks declare (at most 2 at once)' "$work/cv-mpi.log" && echo True)"
  check "cv: 3 folds declared 3 namespaces, none refused, none left" \
    "$(grep -q 'server 0: the plan.s tasks declared 3 namespaces (0 refused), 0 still declared' "$work/cv-mpi.log" && echo True)"
  if cmp -s "$work/cv-local/oof_predictions.csv" "$work/cv-mpi/oof_predictions.csv"; then
    pass "cv: the out-of-fold predictions equal the local run's to the bit"
  else
    fail "cv: the out-of-fold predictions differ from the local run's"
  fi
else
  fail "cv under mpirun: $(tail -3 "$work/cv-mpi.log")"
fi

# --- bag and stack on 2 groups: each member and base fit declared; bag equal to the local run ----
bag=(bag "$examples/csv_logreg.yaml" --set data.train="$data/breast_cancer.csv" --members 3)
"$pstrain" "${bag[@]}" --out "$work/bag-local" -q >/dev/null 2>&1 || fail "local bag failed"
if mpi 3 "${bag[@]}" --set cluster.groups=2 --out "$work/bag-mpi" -v >"$work/bag-mpi.log" 2>&1; then
  check "bag: 3 members declared 3 namespaces, none refused, none left" \
    "$(grep -q 'server 0: the plan.s tasks declared 3 namespaces (0 refused), 0 still declared' "$work/bag-mpi.log" && echo True)"
  a=$(json "$work/bag-local/report.json" "['bag']['test']")
  b=$(json "$work/bag-mpi/report.json" "['bag']['test']")
  [ -n "$b" ] && [ "$a" = "$b" ] && pass "bag: the test metrics equal the local run's" \
    || fail "bag: test metrics $b, local $a"
else
  fail "bag under mpirun: $(tail -3 "$work/bag-mpi.log")"
fi
if mpi 3 stack "$examples/csv_logreg.yaml" --set data.train="$data/wine.csv" --folds 2 \
  --base "model.hidden=[]" --base "model.hidden=[16];optimizer.lr=0.01" --set cluster.groups=2 \
  --out "$work/stack" -v >"$work/stack.log" 2>&1; then
  check "stack: 2 bases x (2 folds + 1 refit) declared 6 namespaces of their own shapes" \
    "$(grep -q 'server 0: the plan.s tasks declared 6 namespaces (0 refused), 0 still declared' "$work/stack.log" && echo True)"
else
  fail "stack under mpirun: $(tail -3 "$work/stack.log")"
fi

# --- a sweep whose trials change the model: each trial declares its own shapes ------------------
cat >"$work/sweep.yaml" <<YAML
base: $examples/csv_logreg.yaml
method: random
metric: val.accuracy
trials: 4
seed: 0
space:
  optimizer.lr: {log_uniform: [1.0e-3, 1.0e-1]}
  model.hidden: {choice: ["[]", "[16]", "[8, 4]"]}
YAML
sw=(sweep "$work/sweep.yaml" --set data.train="$data/wine.csv" --set train.epochs=4)
if mpi 4 "${sw[@]}" --set cluster.servers=2 --set cluster.groups=2 --out "$work/sw" -v \
  >"$work/sw.log" 2>&1; then
  rows=$(($(wc -l <"$work/sw/sweep_results.csv") - 1))
  [ "$rows" = 4 ] && pass "sweep: 4 trials recorded" || fail "sweep: $rows trials recorded"
  for s in 0 1; do
    check "sweep: server $s saw 4 namespaces declared, none refused, none left" \
      "$(grep -q "server $s: the plan.s tasks declared 4 namespaces (0 refused), 0 still declared" "$work/sw.log" && echo True)"
  done
  check "sweep: no INIT was refused" "$(grep -q 'not declared\|model contract declares' "$work/sw.log" || echo True)"
else
  fail "sweep under mpirun: $(tail -3 "$work/sw.log")"
fi

# --- a forged INIT during a plan --------------------------------------------------------------
blobs3 5 4096 300
cat >"$work/job.yaml" <<YAML
name: plan-contract
seed: 4
data: {train: $work/train.csv, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: 30, batch_size: 8, progress: none}
cluster: {security: none}
YAML
timeout 300 mpirun --oversubscribe -np 3 "$pstrain" cv "$work/job.yaml" --folds 3 -v \
  --out "$work/poked" >"$work/poked.log" 2>&1 &
job_pid=$!
endpoint=""
for _ in $(seq 600); do
  endpoint=$(grep -o 'listening on tcp://[0-9.]*:[0-9]*' "$work/poked.log" | head -1 | cut -d' ' -f3)
  [ -n "$endpoint" ] && break
  kill -0 "$job_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$endpoint" ]; then
  fail "the plan never logged its server's endpoint: $(tail -3 "$work/poked.log")"
else
  # wait until the first fold's tensor is in, so that the forged INITs meet a running plan
  for _ in $(seq 300); do
    "$client" "$endpoint" counters >"$work/before.txt" 2>&1
    grep -q 'tensors=1' "$work/before.txt" && break
    sleep 0.1
  done
  "$client" "$endpoint" init init1 counters >"$work/client.txt" 2>&1
  cat "$work/client.txt"
  check "an INIT of an undeclared namespace is refused by name" \
    "$(grep -q "^init: answered (.*tensor 99/0: namespace 99 is not declared (1 of at most 1 namespaces are)" "$work/client.txt" && echo True)"
  check "an INIT of the running fold's namespace with another size is refused with both sizes" \
    "$(grep -q "^init1: answered (.*namespace 1: tensor 1/0: INIT of 1048576 elements; the job's model contract declares 131" "$work/client.txt" && echo True)"
  check "both refusals are counted and no tensor was added" \
    "$(grep -qx 'counters: contract=2 tensors=1' "$work/client.txt" && echo True)"
  kill -0 "$job_pid" 2>/dev/null && pass "the plan still runs after the refused INITs" \
    || fail "the plan ended before the client was done (make it longer)"
fi
wait "$job_pid"; rc=$?
[ "$rc" = 0 ] && pass "the plan finishes normally (rc 0)" || fail "the plan failed (rc $rc): $(tail -3 "$work/poked.log")"
check "the plan's 3 folds were declared and freed" \
  "$(grep -q 'server 0: the plan.s tasks declared 3 namespaces (0 refused), 0 still declared' "$work/poked.log" && echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
