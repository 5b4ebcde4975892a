#!/usr/bin/env bash
# The namespace set-up of scripts/bench/scaling.sh, which the benchmark itself is too long to run
# here: its --dry-run puts a 1 server + 1 worker job in two network namespaces joined by
# tc-shaped veths and must
#  - train across them (the server's veth carried at least the bytes pstrain counted),
#  - remove its namespaces, veths and bridge afterwards, and also when interrupted mid-run
#    (SIGINT to its process group, as Ctrl-C sends), leaving nothing of its own behind;
#  - refuse bad options with exit status 2.
# Skips (exit 77) where network namespaces or tc cannot be used (not root, no iproute2).
# usage: scaling_netns_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
script=$2/../scripts/bench/scaling.sh

# leftovers ID: the namespaces and links of run ID that still exist
leftovers() {
  { ip netns list; ip -o link show; } 2>/dev/null | grep -E "pst-scaling-$1-|psb$1\b|psv$1-" || true
}

PSTRAIN=$pstrain timeout 120 bash "$script" --dry-run >"$work/dry.out" 2>&1
status=$?
cat "$work/dry.out"
if [ "$status" = 77 ]; then
  echo "skipped: $(grep -m1 'skipped' "$work/dry.out")"
  exit 77
fi
[ "$status" = 0 ] && pass "dry run exits 0" || fail "dry run exits $status"
id=$(sed -n 's/.*namespaces pst-scaling-\([0-9]*\)-r0.*/\1/p' "$work/dry.out" | head -1)
[ -n "$id" ] && pass "dry run names its namespaces (id $id)" || fail "no namespace line"
grep -q "the server's link carried [1-9][0-9]* bytes in" "$work/dry.out" &&
  ! grep -q "did not cross" "$work/dry.out" &&
  pass "the job's traffic crossed the server's veth" || fail "no traffic over the veth"
grep -q "nothing left behind" "$work/dry.out" && pass "dry run reports a clean teardown" ||
  fail "dry run did not report its teardown"
left=$(leftovers "${id:-none}")
[ -z "$left" ] && pass "no namespace or link of the dry run is left" || fail "left behind: $left"

# Ctrl-C in the middle: the job is running across the namespaces when the signal comes. A
# background job starts with SIGINT ignored (and a script cannot trap a signal ignored on entry):
# the run gets it back at its default, in a process group of its own to signal as a terminal would.
PSTRAIN=$pstrain setsid python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' bash "$script" --dry-run >"$work/int.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  grep -q "namespaces pst-scaling" "$work/int.out" && break
  sleep 0.1
done
present=$(leftovers "$pid")
[ -n "$present" ] && pass "namespaces exist while the run is in progress" ||
  fail "no namespaces of run $pid seen mid-run"
kill -INT -- "-$pid" 2>/dev/null
wait "$pid"
status=$?
cat "$work/int.out"
[ "$status" -ne 0 ] && pass "an interrupted run exits non-zero ($status)" ||
  fail "an interrupted run exits 0"
for _ in $(seq 1 50); do # ranks still exiting keep their namespace's veth a moment
  [ -z "$(leftovers "$pid")" ] && break
  sleep 0.1
done
left=$(leftovers "$pid")
[ -z "$left" ] && pass "an interrupted run leaves nothing behind" || fail "left behind: $left"

for bad in "--links 0" "--links fast" "--repeats 0" "--latency-us -3" "--nonsense"; do
  # shellcheck disable=SC2086
  PSTRAIN=$pstrain bash "$script" $bad >"$work/bad.out" 2>&1
  status=$?
  [ "$status" = 2 ] && grep -q "scaling:" "$work/bad.out" && pass "'$bad' is a usage error" ||
    fail "'$bad' exits $status: $(cat "$work/bad.out")"
done

echo "$failures checks failed"
[ "$failures" = 0 ]
