#!/usr/bin/env bash
# End-to-end: the settings that close federated training's gap to centralised training.
#  1. fed.local_state keep (each site continues its own Adam state across rounds) in one process
#     and under mpirun (sites on ranks 1..2): the same rounds, to the validation loss; and not the
#     rounds of fed.local_state reset.
#  2. fed.server_nesterov: not the rounds of plain FedAvgM at the same momentum.
#  3. Through fed serve and one fed join site: keep travels in the server's contract (the site's
#     rounds differ from a reset run's), and the run completes.
#     A site that is an mpirun job refuses keep with the key named.
#  4. Bad settings are refused with the key named: nesterov without momentum, keep with lookahead.
# usage: fed_local_state_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  scratch_cleanup
}
trap cleanup EXIT

fed() { # name args... ; runs into $work/name
  local name=$1; shift
  "$pstrain" fed simulate "$config" --set data.train="$data/digits.csv" --set fed.rounds=6 "$@" \
    --out "$work/$name" -q >"$work/$name.log" 2>&1
}
losses="[x['val_loss'] for x in m]"
same() { [ "$(mcompare "$work/$1/metrics.jsonl" "$work/$2/metrics.jsonl" "$losses")" = same ] && echo True || echo False; }
differ() { [ "$(mcompare "$work/$1/metrics.jsonl" "$work/$2/metrics.jsonl" "$losses")" = differ ] && echo True || echo False; }

# --- 1. keep in one process and under mpirun --------------------------------------------------
if fed reset && fed keep --set fed.local_state=keep; then
  check "keep: 6 rounds, test accuracy >= 0.88" \
    "$(jexpr "$work/keep/report.json" "d['fed']['rounds'] == 6 and d['test']['accuracy'] >= 0.88")"
  check "keep: round 1 as reset's (no state yet), later rounds not" \
    "$(python3 - "$work/reset/metrics.jsonl" "$work/keep/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l)["val_loss"] for l in open(p)] for p in sys.argv[1:])
print(a[0] == b[0] and all(x != y for x, y in zip(a[1:], b[1:])))
PY
)"
  if mpi 3 fed simulate "$config" --set data.train="$data/digits.csv" --set fed.rounds=6 \
    --set fed.local_state=keep --out "$work/mpikeep" -q >"$work/mpikeep.log" 2>&1; then
    check "keep under mpirun -np 3: the validation losses of one process" "$(same keep mpikeep)"
  else
    fail "mpirun fed simulate with keep: $(tail -3 "$work/mpikeep.log")"
  fi
else
  fail "fed simulate reset/keep: $(tail -3 "$work/reset.log" "$work/keep.log")"
fi

# --- 2. Nesterov server momentum --------------------------------------------------------------
if fed m5 --set fed.server_momentum=0.5 && fed m5n --set fed.server_momentum=0.5 \
  --set fed.server_nesterov=true; then
  check "nesterov: not plain FedAvgM's rounds" "$(differ m5 m5n)"
  check "nesterov: test accuracy >= 0.88" "$(jexpr "$work/m5n/report.json" "d['test']['accuracy'] >= 0.88")"
else
  fail "fed simulate with server momentum: $(tail -3 "$work/m5.log" "$work/m5n.log")"
fi

# --- 3. fed serve and fed join ----------------------------------------------------------------
wait_for() { # FILE TEXT SECONDS: true once FILE holds TEXT
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# serve NAME PORT ARGS...: the server in the background; join NAME PORT ARGS...: the site
serve() {
  local name=$1 port=$2
  shift 2
  "$pstrain" fed serve "$config" --set data.train="$data/digits.csv" --set fed.rounds=3 \
    --set fed.sites=1 --set fed.insecure=true --set fed.listen="tcp://127.0.0.1:$port" \
    --set fed.start_timeout=60 "$@" --out "$work/$name" >"$work/$name.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
}
join() {
  local name=$1 port=$2
  timeout 120 "$pstrain" fed join "$config" --server "tcp://127.0.0.1:$port" --site site-a \
    --set data.train="$data/digits.csv" --set fed.insecure=true --set fed.server_timeout=60 \
    --out "$work/$name" >"$work/$name.log" 2>&1
}
deploy() { # NAME ARGS...: a server and its one site; true when both exit 0
  local name=$1 port
  shift
  port=$(free_port)
  serve "$name" "$port" "$@"
  wait_for "$work/$name.log" "listening on" 20 || { fail "$name: server did not start"; return 1; }
  join "$name-site" "$port" || { fail "$name: site: $(tail -2 "$work/$name-site.log")"; return 1; }
  wait "$srv_pid" || { fail "$name: server: $(tail -2 "$work/$name.log")"; return 1; }
}
if deploy srv-reset && deploy srv-keep --set fed.local_state=keep; then
  check "serve/join with keep: 3 rounds answered" \
    "$(jexpr "$work/srv-keep/report.json" "d['fed']['sites_answered'] == 3")"
  check "serve/join: keep reaches the site (not reset's rounds)" "$(differ srv-reset srv-keep)"
fi

# A site that is an mpirun job runs its optimizer on its parameter servers: it refuses keep.
port=$(free_port)
serve srv-mpi "$port" --set fed.local_state=keep
if wait_for "$work/srv-mpi.log" "listening on" 20; then
  timeout 120 mpirun --oversubscribe -np 3 "$pstrain" fed join "$config" \
    --server "tcp://127.0.0.1:$port" --site site-m --set data.train="$data/digits.csv" \
    --set fed.insecure=true --set fed.server_timeout=30 \
    --out "$work/site-mpi" >"$work/site-mpi.log" 2>&1
  rc=$?
  check "an mpirun site refuses keep (exit $rc)" \
    "$([ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "fed.local_state: the server asks keep" "$work/site-mpi.log" && echo True || echo False)"
else
  fail "srv-mpi: server did not start"
fi
kill "$srv_pid" 2>/dev/null

# --- 4. refusals ------------------------------------------------------------------------------
fed badn --set fed.server_nesterov=true
rc=$?
check "nesterov without momentum refused: $(tail -1 "$work/badn.log")" \
  "$([ "$rc" -ne 0 ] && grep -q "fed.server_nesterov: needs fed.server_momentum > 0" "$work/badn.log" && echo True || echo False)"
fed badk --set fed.local_state=keep --set optimizer.lookahead_k=5
rc=$?
check "keep with lookahead refused: $(tail -1 "$work/badk.log")" \
  "$([ "$rc" -ne 0 ] && grep -q "fed.local_state: keep does not carry" "$work/badk.log" && echo True || echo False)"
fed badv --set fed.local_state=always
rc=$?
check "fed.local_state: unknown value refused" \
  "$([ "$rc" -ne 0 ] && grep -q "fed.local_state" "$work/badv.log" && echo True || echo False)"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all federated local-state tests passed"
