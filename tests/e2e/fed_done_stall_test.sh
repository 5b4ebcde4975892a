#!/usr/bin/env bash
# End-to-end: the final weights (DONE) reach a site that is not running when the server finishes.
# A `fed join` site of a model too large for the sockets' buffers (~60 MB of weights, raw codec) is
# stopped (SIGSTOP) the moment the server records its last round, kept stopped until the server
# exits (at most 7 s), then continued (SIGCONT). The server must wait for the site's
# acknowledgement instead of dropping the rest of the DONE at its close: the site ends with rc 0
# and the server's final model, bit for bit, well before its fed.server_timeout; the server logs
# no site that did not acknowledge. A DONE lost at the server's close would leave the site to fail
# at its fed.server_timeout (20 s).
# usage: fed_done_stall_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"
pids=()
trap 'kill -CONT "${pids[@]}" 2>/dev/null; kill "${pids[@]}" 2>/dev/null; scratch_cleanup' EXIT

nap_fifo=$work/nap.fifo
mkfifo "$nap_fifo"
nap() { read -rt "$1" <>"$nap_fifo" || true; }
lines() { local l=(); [ -e "$1" ] && mapfile -t l <"$1"; echo "${#l[@]}"; }
wait_for() { # FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# 40 rows: the local training of the wide model stays short.
head -n 41 "$data/digits.csv" >"$work/site.csv"
# 64 inputs x 200000 hidden + 200000 x 10: about 15 M floats, 60 MB a DONE.
common=(--set fed.insecure=true --set fed.sites=1 --set fed.min_sites=1 --set fed.rounds=1
  --set fed.local_epochs=1 --set model.hidden=[200000] --set fed.codec=raw --set fed.down_codec=raw)
port=$(free_port)
nice -n 10 "$pstrain" fed serve "$config" --set data.train="$work/site.csv" "${common[@]}" \
  --set fed.listen="tcp://127.0.0.1:$port" --set fed.start_timeout=60 \
  --set fed.heartbeat_timeout=20 -v --out "$work/srv" >"$work/srv.log" 2>&1 &
srv_pid=$!
pids+=("$srv_pid")
wait_for "$work/srv.log" "listening on" 30 || fail "server did not start: $(tail -3 "$work/srv.log")"
SECONDS=0
held=0
timeout 120 nice -n 10 "$pstrain" fed join "$config" --server "tcp://127.0.0.1:$port" --site s1 \
  --set data.train="$work/site.csv" "${common[@]}" --set fed.server_timeout=20 \
  --set fed.heartbeat=0.25 --out "$work/s1" >"$work/s1.log" 2>&1 &
site_pid=$!
pids+=("$site_pid")

# The round's line in metrics.jsonl comes before the checkpoint and the DONE: polled every 10 ms
# without forking, the site is stopped before it can have read its DONE.
for ((i = 0; i < 9000; i++)); do
  [ "$(lines "$work/srv/metrics.jsonl")" -ge 1 ] && break
  kill -0 "$site_pid" 2>/dev/null || break
  nap 0.01
done
if [ "$(lines "$work/srv/metrics.jsonl")" -ge 1 ]; then
  kill -STOP "$site_pid"
  # Held until the server has exited (a server that does not wait for the acknowledgement ends
  # after its 2 s close linger), at most 7 s (longer than the connection's 6 s ZMTP heartbeat
  # timeout: the server may drop the connection and must send DONE again when the site is back).
  for ((i = 0; i < 700; i++)); do
    kill -0 "$srv_pid" 2>/dev/null || break
    nap 0.01
  done
  held=$SECONDS
  kill -CONT "$site_pid"
else
  fail "the round never ended: $(tail -3 "$work/srv.log")"
fi
wait "$site_pid"; rs=$?
took=$SECONDS
wait "$srv_pid"; rc=$?
check "the stopped site ends with rc 0 (rc $rs after ${took} s, resumed at ${held} s): $(tail -1 "$work/s1.log")" \
  "$([ "$rs" = 0 ] && echo True)"
check "the server ends with rc 0 (rc $rc)" "$([ "$rc" = 0 ] && echo True)"
check "the site has the server's final model, bit for bit" \
  "$([ -s "$work/s1/model.pst" ] && [ -s "$work/srv/model.pst" ] \
    && cmp -s <(params "$work/s1/model.pst") <(params "$work/srv/model.pst") && echo True)"
check "the server names no site that did not acknowledge" \
  "$(grep -q 'did not acknowledge' "$work/srv.log" || echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
