#!/usr/bin/env bash
# The parameter servers of an mpirun job admit only the job's own ranks (cluster.security=auto,
# the default, is token on one host; curve is checked too): a stranger client
# (tests/tools/pst_stranger) gets no ZMTP handshake, not even with a guessed token, and no answer
# to STATS, PULL, INIT or SHUTDOWN sent in the workers' names, and the job it tried to disturb
# finishes normally with the weights of an undisturbed run. With cluster.security=none the same
# stranger is answered: the check can fail.
# usage: security_test.sh PSTRAIN TESTS_DIR   (PST_STRANGER: the stranger program)
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
stranger=${PST_STRANGER:-}
if [ ! -x "$stranger" ]; then
  echo "FAIL: PST_STRANGER does not name the stranger program"
  exit 1
fi

python3 - "$work" <<'PY'
import random, sys
random.seed(5)
with open(sys.argv[1] + "/train.csv", "w") as f:
    f.write("a,b,c,d,target\n")
    for i in range(4096):
        c = i % 3
        x = [random.gauss(1.5 if j == c else 0.0, 0.7) for j in range(4)]
        f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)
PY
cat > "$work/job.yaml" <<YAML
name: security-test
seed: 4
data: {train: $work/train.csv, val_fraction: 0.2, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: 60, batch_size: 8, progress: none}
YAML

# start_job NAME ARGS...: the job in the background ($job_pid); waits for its server's endpoint
start_job() {
  local name=$1; shift
  timeout 300 mpirun --oversubscribe -np 3 "$pstrain" train "$work/job.yaml" --out "$work/$name" -v "$@" \
    >"$work/$name.log" 2>&1 &
  job_pid=$!
  endpoint=""
  for _ in $(seq 600); do
    endpoint=$(grep -o 'listening on tcp://[0-9.]*:[0-9]*' "$work/$name.log" | head -1 | cut -d' ' -f3)
    [ -n "$endpoint" ] && break
    kill -0 "$job_pid" 2>/dev/null || break
    sleep 0.1
  done
}

# --- the default on one host: tokens -----------------------------------------------------------
start_job curve
check "the default on one host is token" "$(grep -q 'security token' "$work/curve.log" && echo True)"
if [ -z "$endpoint" ]; then
  fail "the job never logged its server's endpoint: $(tail -3 "$work/curve.log")"
else
  # Each attempt waits up to 1.5 s for an answer: all at once, while the job runs.
  pids=()
  for op in handshake guess stats pull init shutdown; do
    "$stranger" "$endpoint" "$op" >"$work/stranger-$op.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  cat "$work"/stranger-*.txt | tee "$work/stranger.txt"
  check "the stranger gets no handshake" "$(grep -qx 'handshake: failed' "$work/stranger.txt" && echo True)"
  check "a guessed token gets no handshake" "$(grep -qx 'guess: failed' "$work/stranger.txt" && echo True)"
  for op in stats pull init shutdown; do
    check "the stranger's $op gets no answer" "$(grep -qx "$op: no answer" "$work/stranger.txt" && echo True)"
  done
  kill -0 "$job_pid" 2>/dev/null && pass "the job still runs after the stranger's attempts" \
    || fail "the job ended before the stranger was done (make it longer)"
fi
wait "$job_pid"; rc=$?
[ "$rc" = 0 ] && pass "the job finishes normally (rc 0)" || fail "the job failed (rc $rc): $(tail -3 "$work/curve.log")"

# The same job undisturbed: the stranger changed nothing.
mpi 3 train "$work/job.yaml" --out "$work/quiet" >"$work/quiet.log" 2>&1 || fail "undisturbed run: $(tail -3 "$work/quiet.log")"
params "$work/curve/model.pst" >"$work/curve.txt"
params "$work/quiet/model.pst" >"$work/quiet.txt"
if [ -s "$work/quiet.txt" ] && cmp -s "$work/curve.txt" "$work/quiet.txt"; then
  pass "the final weights equal the undisturbed run's ($(wc -l <"$work/quiet.txt") parameters)"
else
  fail "the final weights differ from the undisturbed run's"
fi

# --- cluster.security=curve: the stranger gets no handshake either ---------------------------
start_job curvejob --set cluster.security=curve
check "cluster.security=curve is used" "$(grep -q 'security curve' "$work/curvejob.log" && echo True)"
if [ -n "$endpoint" ]; then
  "$stranger" "$endpoint" handshake guess stats >"$work/stranger-curve.txt" 2>&1
  cat "$work/stranger-curve.txt"
  check "under CURVE the stranger gets no handshake" "$(grep -qx 'handshake: failed' "$work/stranger-curve.txt" && echo True)"
  check "under CURVE a PLAIN guess gets no handshake" "$(grep -qx 'guess: failed' "$work/stranger-curve.txt" && echo True)"
  check "under CURVE the stranger's STATS gets no answer" "$(grep -qx 'stats: no answer' "$work/stranger-curve.txt" && echo True)"
else
  fail "the curve job never logged its endpoint: $(tail -3 "$work/curvejob.log")"
fi
wait "$job_pid" || fail "the curve job failed: $(tail -3 "$work/curvejob.log")"
params "$work/curvejob/model.pst" >"$work/curvejob.txt"
cmp -s "$work/curvejob.txt" "$work/quiet.txt" && pass "curve and token runs end with the same weights" \
  || fail "the curve run's weights differ from the token run's"

# --- cluster.security=none: the stranger is answered --------------------------------------------
start_job plain --set cluster.security=none
if [ -n "$endpoint" ]; then
  "$stranger" "$endpoint" handshake stats >"$work/stranger-plain.txt" 2>&1
  cat "$work/stranger-plain.txt"
  check "without CURVE the stranger's handshake succeeds" "$(grep -qx 'handshake: succeeded' "$work/stranger-plain.txt" && echo True)"
  check "without CURVE the stranger's STATS is answered" "$(grep -q '^stats: answered' "$work/stranger-plain.txt" && echo True)"
else
  fail "the plain job never logged its endpoint: $(tail -3 "$work/plain.log")"
fi
wait "$job_pid" || fail "the plain job failed: $(tail -3 "$work/plain.log")"

# --- a bad value is refused by the key table ---------------------------------------------------
"$pstrain" train "$work/job.yaml" --set cluster.security=tls >"$work/bad.log" 2>&1
rc=$?
check "cluster.security=tls is a usage error naming the key" \
  "$([ "$rc" != 0 ] && grep -q 'cluster.security' "$work/bad.log" && echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
