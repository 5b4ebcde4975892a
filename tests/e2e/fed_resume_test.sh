#!/usr/bin/env bash
# End-to-end: `pstrain fed serve` killed with SIGKILL between rounds and started again on the same
# --out carries on from its checkpoint (registry, round, global weights, server momentum): the two
# `fed join` sites keep running, reconnect on their own, and the run ends with the same final
# weights, bit for bit, as an uninterrupted run, and with each round once in metrics.jsonl. A
# server stopped after its last round but before the sites had the final weights hands them over
# when started again; a finished run started again ends at once. A damaged checkpoint is refused
# by name, and a finished run's checkpoint holds its last round.
# usage: fed_resume_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; scratch_cleanup' EXIT

# nap SECONDS: a sleep without a new process, so polling keeps up on a loaded machine
nap_fifo=$work/nap.fifo
mkfifo "$nap_fifo"
nap() { read -rt "$1" <>"$nap_fifo" || true; }
# lines FILE: its number of lines, without a new process
lines() { local l=(); [ -e "$1" ] && mapfile -t l <"$1"; echo "${#l[@]}"; }

wait_for() { # FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

python3 - "$data/digits.csv" "$work" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
for k, s in enumerate("ab"):
    with open(f"{sys.argv[2]}/site-{s}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        w.writerows(rows[1 + k::2])
PY

# Both sites every round (min_sites 2), FedAvgM: the momentum must survive the restart too.
common=(--set fed.insecure=true --set fed.sites=2 --set fed.min_sites=2 --set fed.rounds=8
  --set fed.server_momentum=0.5 --set fed.local_epochs=20 --set model.hidden=[32])
# The server and the sites run at a lower priority than this script, so its polling below keeps up.
serve() { # NAME PORT
  nice -n 10 "$pstrain" fed serve "$config" --set data.train="$data/digits.csv" "${common[@]}" \
    --set fed.listen="tcp://127.0.0.1:$2" --set fed.start_timeout=60 -v \
    --out "$work/$1" >>"$work/$1.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
}
join() { # NAME SITE PORT
  timeout 200 nice -n 10 "$pstrain" fed join "$config" --server "tcp://127.0.0.1:$3" --site "$2" \
    --set data.train="$work/$2.csv" "${common[@]}" --set fed.server_timeout=60 \
    --set fed.heartbeat=0.25 --out "$work/$1" >"$work/$1.log" 2>&1
}
run_sites() { # NAME PORT: both sites in the background; sets a_pid b_pid
  join "$1-a" site-a "$2" & a_pid=$!
  join "$1-b" site-b "$2" & b_pid=$!
  pids+=("$a_pid" "$b_pid")
}

# --- the uninterrupted run -----------------------------------------------------------------------
port=$(free_port)
serve whole "$port"
wait_for "$work/whole.log" "listening on" 20 || fail "server did not start: $(tail -3 "$work/whole.log")"
run_sites whole "$port"
wait "$srv_pid" || fail "uninterrupted server failed: $(tail -3 "$work/whole.log")"
wait "$a_pid" && wait "$b_pid" || fail "uninterrupted sites failed"
params "$work/whole/model.pst" >"$work/whole.txt"
check "a finished run's checkpoint holds its rounds" \
  "$([ -s "$work/whole/checkpoints/fed-server.ckpt" ] && echo True)"

# --- killed after round 2, started again ------------------------------------------------------------
# The server is stopped (SIGSTOP) the moment metrics.jsonl has 2 rounds, so it cannot run ahead
# however late the SIGKILL comes; the file is polled every 10 ms without forking.
port=$(free_port)
serve res "$port"
wait_for "$work/res.log" "listening on" 20 || fail "server did not start: $(tail -3 "$work/res.log")"
run_sites res "$port"
for ((i = 0; i < 12000; i++)); do
  [ "$(lines "$work/res/metrics.jsonl")" -ge 2 ] && break
  kill -0 "$srv_pid" 2>/dev/null || break
  nap 0.01
done
if [ "$(lines "$work/res/metrics.jsonl")" -ge 2 ]; then
  kill -STOP "$srv_pid" 2>/dev/null
  kill -9 "$srv_pid" 2>/dev/null
  wait "$srv_pid" 2>/dev/null
  killed=$(grep -c . "$work/res/metrics.jsonl")
  check "the server was killed mid-run (after round $killed of 8, no model written)" \
    "$([ "$killed" -lt 8 ] && [ ! -e "$work/res/model.pst" ] && echo True)"
  sleep 1
  serve res "$port"
  wait "$srv_pid"; rc=$?
  [ "$rc" = 0 ] && pass "the restarted server finishes (rc 0)" || fail "restarted server rc $rc: $(tail -3 "$work/res.log")"
  check "it resumed from its checkpoint" "$(grep -q 'resuming after round' "$work/res.log" && echo True)"
else
  fail "round 2 never ended: $(tail -3 "$work/res.log")"
fi
wait "$a_pid"; ra=$?
wait "$b_pid"; rb=$?
check "both sites finish after the restart (rc 0)" "$([ "$ra" = 0 ] && [ "$rb" = 0 ] && echo True)"
params "$work/res/model.pst" >"$work/res.txt" 2>/dev/null
if [ -s "$work/whole.txt" ] && cmp -s "$work/whole.txt" "$work/res.txt"; then
  pass "the restarted run ends with the uninterrupted run's weights, bit for bit ($(wc -l <"$work/whole.txt") parameters)"
else
  fail "the restarted run's weights differ (max rel diff $(max_rel_diff "$work/res.txt" "$work/whole.txt"))"
fi
check "metrics.jsonl holds rounds 1 to 8 once each" \
  "$(mexpr "$work/res/metrics.jsonl" "[l['round'] for l in m] == list(range(1, 9))")"

# --- stopped after its last round, before the sites had the final weights ---------------------------
# The final checkpoint is written before the sites are sent the final weights and model.pst after:
# a checkpoint of the last round without model.pst is such a run. Sites that come back get them.
cp -r "$work/whole" "$work/late"
rm "$work/late/model.pst"
port=$(free_port)
serve late "$port"
wait_for "$work/late.log" "listening on" 20 || fail "server did not start: $(tail -3 "$work/late.log")"
run_sites late "$port"
wait "$srv_pid"; rc=$?
wait "$a_pid"; ra=$?
wait "$b_pid"; rb=$?
params "$work/late-a/model.pst" >"$work/late-a.txt" 2>/dev/null
params "$work/late-b/model.pst" >"$work/late-b.txt" 2>/dev/null
check "a server started again after its last round hands its sites the final weights (rc $rc, sites $ra $rb)" \
  "$([ "$rc" = 0 ] && [ "$ra" = 0 ] && [ "$rb" = 0 ] && cmp -s "$work/whole.txt" "$work/late-a.txt" \
    && cmp -s "$work/whole.txt" "$work/late-b.txt" && echo True)"
# a run whose model.pst was written owes its sites nothing: started again, it ends at once
cp -r "$work/whole" "$work/over"
SECONDS=0
timeout 30 "$pstrain" fed serve "$config" --set data.train="$data/digits.csv" "${common[@]}" \
  --set fed.listen="tcp://127.0.0.1:$(free_port)" --set fed.start_timeout=60 --out "$work/over" \
  >"$work/over.log" 2>&1
rc=$?
check "a finished run started again ends at once (rc $rc after ${SECONDS} s)" \
  "$([ "$rc" = 0 ] && [ "$SECONDS" -lt 30 ] && echo True)"

# --- a damaged checkpoint is refused by name --------------------------------------------------------
cp -r "$work/whole" "$work/bad"
printf 'X' | dd of="$work/bad/checkpoints/fed-server.ckpt" bs=1 seek=100 conv=notrunc 2>/dev/null
"$pstrain" fed serve "$config" --set data.train="$data/digits.csv" "${common[@]}" \
  --set fed.listen="tcp://127.0.0.1:$(free_port)" --out "$work/bad" >"$work/bad.log" 2>&1
rc=$?
check "a damaged checkpoint is an error naming the file" \
  "$([ "$rc" != 0 ] && grep -q 'fed-server.ckpt: checksum mismatch' "$work/bad.log" && echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
