#!/usr/bin/env bash
# End-to-end: a federated deployment over loopback, every side a separate process: `pstrain fed
# serve` and one-process `pstrain fed join` sites. fed_simulate_test.sh covers fed simulate, where
# one program plays every site; fed_site_mpi_test.sh, a site that is an mpirun job.
#  1. CURVE: `fed serve` and three `fed join` sites complete their rounds; each site ends with the
#     server's final model; a site with a key the server does not list is refused, and so is a
#     listed key speaking as another site; a capture of one site's traffic (through a relay)
#     holds none of the plaintext that the same exchange shows without CURVE.
#  2. A site killed in the middle of a round does not stall it: the round closes with the others
#     once the site has been silent for fed.heartbeat_timeout, and the run completes.
#  3. A site whose connection drops (the relay it uses is killed, then restarted) reconnects and
#     answers the rounds after it.
# usage: fed_deploy_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; scratch_cleanup' EXIT

# wait_for FILE PATTERN SECONDS: until FILE holds PATTERN
wait_for() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# relay NAME PORT TARGET: starts tcprelay.py (beside this script), capturing into $work/NAME.cap; sets relay_pid
relay() {
  python3 "$(dirname "$0")/tcprelay.py" "$2" "$3" "$work/$1.cap" >"$work/$1.relay.log" 2>&1 &
  relay_pid=$!
  pids+=("$relay_pid")
  wait_for "$work/$1.relay.log" listening 10 || fail "relay $1 did not start"
}

# The digits rows dealt to three site files.
python3 - "$data/digits.csv" "$work" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
for k, s in enumerate("abc"):
    with open(f"{sys.argv[2]}/site-{s}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        w.writerows(rows[1 + k::3])
PY

# Keys: the server's, three listed sites (each .pub bound to its file name) and an outsider.
mkdir -p "$work/keys/allowed"
for k in server site-a site-b site-c outsider; do
  "$pstrain" fed keygen "$work/keys/$k" >/dev/null || fail "keygen $k"
done
for s in a b c; do cp "$work/keys/site-$s.pub" "$work/keys/allowed/"; done

# serve NAME PORT ARGS...: the server in the background, into $work/NAME; sets srv_pid
serve() {
  local name=$1 port=$2
  shift 2
  "$pstrain" fed serve "$config" --set data.train="$data/digits.csv" \
    --set fed.listen="tcp://127.0.0.1:$port" --set fed.start_timeout=60 "$@" \
    --out "$work/$name" >"$work/$name.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
}
# join NAME SITE PORT ARGS...: a site in the foreground, into $work/NAME
join() {
  local name=$1 site=$2 port=$3
  shift 3
  timeout 120 "$pstrain" fed join "$config" --server "tcp://127.0.0.1:$port" --site "$site" \
    --set data.train="$work/$site.csv" --set fed.server_timeout=60 "$@" --out "$work/$name" \
    >"$work/$name.log" 2>&1
}
curve() { # the CURVE settings of site $1 (the key file name)
  echo --set fed.key="$work/keys/$1.key" --set fed.server_key="$work/keys/server.pub"
}
# wait_server NAME SECONDS: waits for the server; true when it exited 0
wait_server() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$srv_pid" 2>/dev/null; then
    kill "$srv_pid"
    fail "$1: server still running after $2 s: $(tail -3 "$work/$1.log")"
    return 1
  fi
  wait "$srv_pid"
}

# --- 1. CURVE deployment ---------------------------------------------------------------------
port=$(free_port) rport=$(free_port)
serve srv "$port" --set fed.rounds=3 --set fed.sites=3 --set fed.key="$work/keys/server.key" \
  --set fed.allowed_keys="$work/keys/allowed"
wait_for "$work/srv.log" "listening on" 20 || fail "server did not start: $(cat "$work/srv.log")"
relay c1 "$rport" "$port"

# A key the server does not list, and a listed key speaking as another site: both refused.
if join outsider site-x "$port" $(curve outsider) --set data.train="$work/site-a.csv"; then
  fail "a site with an unknown key was admitted"
else
  check "unknown key refused: $(grep -o "refused this site's key" "$work/outsider.log" | head -1)" \
    "$(grep -q "refused this site's key" "$work/outsider.log" && echo True || echo False)"
fi
if join impostor site-z "$port" $(curve site-a) --set data.train="$work/site-a.csv"; then
  fail "site-a's key registered as site-z"
else
  check "a key bound to site-a cannot register as site-z" \
    "$(grep -q "may only speak as 'site-a'" "$work/impostor.log" && echo True || echo False)"
fi

join site-a site-a "$port" $(curve site-a) & a_pid=$!
join site-b site-b "$port" $(curve site-b) & b_pid=$!
join site-c site-c "$rport" $(curve site-c) & c_pid=$!
wait "$a_pid" && wait "$b_pid" && wait "$c_pid" && pass "three CURVE sites completed" ||
  fail "a CURVE site failed: $(tail -2 "$work"/site-?.log)"
if wait_server srv 60; then
  r=$work/srv/report.json
  check "3 rounds, 3 of 3 sites each" \
    "$(mexpr "$work/srv/metrics.jsonl" "[(x['sites_asked'], x['sites_answered']) for x in m] == [(3, 3)] * 3")"
  check "server report: 9 updates, 3 admitted handshakes or more, refusals counted" \
    "$(jexpr "$r" "d['fed']['sites_answered'] == 9 and d['fed']['server']['auth_admitted'] >= 3 and d['fed']['server']['auth_refused'] >= 1 and d['fed']['server']['impostors'] >= 1")"
  check "test accuracy of the federated model >= 0.9" "$(jexpr "$r" "d['test']['accuracy'] >= 0.9")"
  check "sites report 3 rounds trained and bytes each way" \
    "$(python3 -c "
import json, sys
ok = True
for s in 'abc':
    d = json.load(open(f'$work/site-{s}/report.json'))
    ok &= d['completed'] and d['rounds_trained'] == 3 and d['bytes_up_wire'] > 0 and d['bytes_down_wire'] > 0
print(ok)")"
  "$pstrain" predict "$work/srv/model.pst" "$data/digits.csv" -o "$work/p_srv.csv" >/dev/null 2>&1
  "$pstrain" predict "$work/site-c/model.pst" "$data/digits.csv" -o "$work/p_c.csv" >/dev/null 2>&1
  cmp -s "$work/p_srv.csv" "$work/p_c.csv" && [ -s "$work/p_c.csv" ] &&
    pass "site-c's final model predicts exactly as the server's" ||
    fail "site-c's model differs from the server's"
else
  fail "CURVE server: $(tail -3 "$work/srv.log")"
fi
kill "$relay_pid" 2>/dev/null

# The same exchange without CURVE, through a relay too: what a capture of it shows.
port=$(free_port) rport=$(free_port)
serve plain "$port" --set fed.rounds=1 --set fed.sites=1 --set fed.insecure=true
wait_for "$work/plain.log" "listening on" 20
relay c2 "$rport" "$port"
join plain-c site-c "$rport" --set fed.insecure=true || fail "plaintext site: $(tail -2 "$work/plain-c.log")"
wait_server plain 60 || fail "plaintext server"
kill "$relay_pid" 2>/dev/null
# Plaintext markers: the site id, the contract's configuration text, and 32-byte pieces of the
# final model file (its parameters travel in the last message).
leaks() { # CAPTURE MODEL: how many markers the capture shows
  python3 - "$1" "$2" <<'PY'
import sys
cap, model = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
markers = [b"site-c", b"aggregator: fedavg", b"optimizer:"]
markers += [model[i:i + 32] for i in range(0, len(model) - 32, 32)]
print(sum(m in cap for m in markers))
PY
}
plain=$(leaks "$work/c2.cap" "$work/plain-c/model.pst")
sealed=$(leaks "$work/c1.cap" "$work/site-c/model.pst")
check "plaintext capture shows the site id, the contract and the weights ($plain markers)" \
  "$([ "$plain" -ge 20 ] && echo True || echo False)"
check "CURVE capture ($(stat -c %s "$work/c1.cap") bytes) shows none of them ($sealed markers)" \
  "$([ "$sealed" -eq 0 ] && [ "$(stat -c %s "$work/c1.cap")" -gt 10000 ] && echo True || echo False)"

# --- 2. A site killed in the middle of a round -------------------------------------------------
# A wide model and 10 local epochs make a round last seconds, so the kill lands inside one.
port=$(free_port)
slow=(--set "model.hidden=[1024, 1024]" --set fed.local_epochs=10 --set fed.heartbeat=0.25
  --set fed.heartbeat_timeout=2 --set fed.rounds=3 --set fed.sites=3 --set fed.insecure=true)
serve kill "$port" "${slow[@]}"
wait_for "$work/kill.log" "listening on" 20
join kill-a site-a "$port" --set fed.insecure=true --set fed.heartbeat=0.25 & a_pid=$!
join kill-b site-b "$port" --set fed.insecure=true --set fed.heartbeat=0.25 & b_pid=$!
"$pstrain" fed join "$config" --server "tcp://127.0.0.1:$port" --site site-c \
  --set data.train="$work/site-c.csv" --set fed.insecure=true --set fed.heartbeat=0.25 \
  --set log_level=debug --out "$work/kill-c" >"$work/kill-c.log" 2>&1 &
c_pid=$!
pids+=("$c_pid")
t0=$SECONDS
# Killed 0.3 s into its training of round 1 (which takes more than a second).
wait_for "$work/kill-c.log" "training round 1" 60 && sleep 0.3
kill -9 "$c_pid" 2>/dev/null
wait "$a_pid" && wait "$b_pid" || fail "sites a and b: $(tail -2 "$work"/kill-[ab].log)"
if wait_server kill 120; then
  m=$work/kill/metrics.jsonl
  check "round 1, open at the kill, closed with the 2 others; later rounds asked 2 ($((SECONDS - t0)) s)" \
    "$(mexpr "$m" "len(m) == 3 and (m[0]['sites_asked'], m[0]['sites_answered'], m[0]['closed_by']) == (3, 2, 'all') and m[-1]['sites_asked'] == 2")"
  check "the server dropped the silent site, it did not wait for the round timeout" \
    "$(python3 -c "import json; m = [json.loads(l) for l in open('$m')]; d = json.load(open('$work/kill/report.json')); print(d['fed']['server']['silent_drops'] >= 1 and max(x['seconds'] for x in m) < 60)")"
else
  fail "server with a killed site: $(tail -3 "$work/kill.log")"
fi

# --- 3. A dropped connection --------------------------------------------------------------------
# fed.min_sites 3: after a round without site-c the next one waits until it is back.
port=$(free_port) rport=$(free_port)
# Rounds of a fraction of a second: the run is far from over when the network drops.
drop=(--set "model.hidden=[512, 512]" --set fed.local_epochs=2 --set fed.heartbeat=0.25
  --set fed.heartbeat_timeout=1 --set fed.rounds=20 --set fed.sites=3 --set fed.min_sites=3
  --set fed.insecure=true)
serve drop "$port" "${drop[@]}"
wait_for "$work/drop.log" "listening on" 20
relay c3 "$rport" "$port"
join drop-a site-a "$port" --set fed.insecure=true --set fed.heartbeat=0.25 & a_pid=$!
join drop-b site-b "$port" --set fed.insecure=true --set fed.heartbeat=0.25 & b_pid=$!
join drop-c site-c "$rport" --set fed.insecure=true --set fed.heartbeat=0.25 & c_pid=$!
# After two rounds the network drops for 2.5 s.
for ((i = 0; i < 600; i++)); do
  [ "$(wc -l <"$work/drop/metrics.jsonl" 2>/dev/null || echo 0)" -ge 2 ] && break
  sleep 0.1
done
kill "$relay_pid"
sleep 2.5
relay c3 "$rport" "$port"
wait "$a_pid" && wait "$b_pid" || fail "sites a and b: $(tail -2 "$work"/drop-[ab].log)"
wait "$c_pid" && pass "site-c completed after the drop" || fail "site-c: $(tail -3 "$work/drop-c.log")"
if wait_server drop 120; then
  m=$work/drop/metrics.jsonl
  check "a round went on without site-c, and site-c answered again afterwards" \
    "$(mexpr "$m" "len(m) == 20 and any(x['sites_answered'] == 2 for x in m) and m[-1]['sites_answered'] == 3")"
  check "the server noticed site-c was gone" \
    "$(grep -q 'round [0-9]*: site-c left out\|goes on without site-c' "$work/drop.log" && echo True || echo False)"
  check "site-c reconnected and trained after the drop" \
    "$(jexpr "$work/drop-c/report.json" "d['reconnects'] >= 1 and d['completed'] and d['rounds_trained'] >= 3")"
else
  fail "server with a dropped site: $(tail -3 "$work/drop.log")"
fi

# --- 4. Bad settings and input: clear errors, non-zero exits --------------------------------------
bad() { # description expected-text command...
  local what=$1 text=$2
  shift 2
  if timeout 60 "$@" >"$work/bad.log" 2>&1; then
    fail "$what: accepted"
  elif grep -q -- "$text" "$work/bad.log"; then
    pass "$what: $(grep -m1 -- "$text" "$work/bad.log" | cut -c1-110)"
  else
    fail "$what: no '$text' in: $(cat "$work/bad.log")"
  fi
}
bad "serve without keys" "fed.key and fed.allowed_keys" \
  "$pstrain" fed serve "$config" --set data.train="$data/digits.csv" --out "$work/bad1"
bad "serve with a missing allowed-key directory" "$work/nokeys" \
  "$pstrain" fed serve "$config" --set data.train="$data/digits.csv" \
  --set fed.key="$work/keys/server.key" --set fed.allowed_keys="$work/nokeys" --out "$work/bad2"
bad "join without a server" "no server" \
  "$pstrain" fed join "$config" --set data.train="$work/site-a.csv" --set fed.insecure=true
bad "join with a bad site id" "fed.site" \
  "$pstrain" fed join "$config" --server tcp://127.0.0.1:1 --site "a/b" --set fed.insecure=true
bad "join without its key pair" "fed.key and fed.server_key" \
  "$pstrain" fed join "$config" --server tcp://127.0.0.1:1 --set data.train="$work/site-a.csv"
bad "serve under mpirun" "runs as one process" \
  mpirun --oversubscribe -np 2 "$pstrain" fed serve "$config" --set fed.insecure=true
# A site whose data does not fit the server's model: its error names the file.
port=$(free_port)
serve shape "$port" --set fed.rounds=1 --set fed.sites=1 --set fed.insecure=true \
  --set fed.start_timeout=2 --set fed.round_timeout=3
wait_for "$work/shape.log" "listening on" 20
cut -d, -f1-10,65 "$work/site-a.csv" >"$work/narrow.csv"
bad "a site's data with 10 of the 64 features" "narrow.csv" \
  "$pstrain" fed join "$config" --server "tcp://127.0.0.1:$port" --site site-n \
  --set data.train="$work/narrow.csv" --set fed.insecure=true --out "$work/narrow"
kill "$srv_pid" 2>/dev/null
# Ctrl-C on a server: it stops, and still writes its report and model for the rounds run.
port=$(free_port)
serve intr "$port" --set fed.rounds=5 --set fed.sites=2 --set fed.insecure=true
wait_for "$work/intr.log" "listening on" 20
kill -INT "$srv_pid"
if wait_server intr 20; then
  fail "an interrupted server exited 0"
else
  check "an interrupted server writes report.json (stopped_early) and model.pst" \
    "$(jexpr "$work/intr/report.json" "d['fed']['stopped_early'] and d['fed']['rounds'] == 0 and __import__('os').path.getsize('$work/intr/model.pst') > 0")"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all federated network tests passed"
