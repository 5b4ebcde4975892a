#!/usr/bin/env bash
# End-to-end: a federated site that is itself an mpirun job. pstrain fed serve (plaintext on
# loopback) runs rounds with an ordinary one-process site and a site started as
# `mpirun -np 3 pstrain fed join` (1 local parameter server, 2 workers), each on its own part of
# the digits CSV. Unlike fed_deploy_test.sh (one-process sites: CURVE, dead and reconnecting sites),
# this covers a site's own servers and workers.
#  - the run completes; the server saw 2 sites, both answered every round, none went silent
#    although the mpirun site's rounds outlast the server's heartbeat timeout;
#  - the mpirun site's report shows its workers, their rows and rounds, and that its servers
#    hold nothing once the last round's namespace is dropped;
#  - an mpirun site of W = 2 workers with batch b sends the same updates as a one-process site
#    with batch W·b on the same rows (final model and per-round losses within float rounding),
#    and visibly not those of batch b, nor those without FedProx's term;
#  - configuration and data errors: one clear message and a non-zero exit, no hang.
# usage: fed_site_mpi_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
digits=$tests/data/digits.csv
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"

# verdict DESCRIPTION PYTHON-EXPRESSION: passes when the expression is true. In it, R(path) is a
# JSON document and M(path) the list of a metrics.jsonl's lines, both under the scratch dir.
verdict() {
  local out
  out=$(python3 - "$work" "$2" <<'PY'
import json, os, sys
root = sys.argv[1]
R = lambda p: json.load(open(os.path.join(root, p)))
M = lambda p: [json.loads(l) for l in open(os.path.join(root, p))]
try:
    print(bool(eval(sys.argv[2])))
except Exception as e:
    print("error: %s" % e)
PY
)
  if [ "$out" = "True" ]; then pass "$1"; else fail "$1 ($out)"; fi
}

# Site files from the digits rows: "one" 600 rows, "many" 256 rows (a multiple of W·b for every
# batch below), and a file with a cell that is no number.
python3 - "$digits" "$work" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
head, body = lines[0], lines[1:]
def write(name, rows):
    open("%s/%s" % (sys.argv[2], name), "w").write("\n".join([head] + rows) + "\n")
write("one.csv", body[:600])
write("many.csv", body[600:856])
bad = body[900:910]
bad[3] = "x" + bad[3][1:]
write("bad.csv", bad)
PY

# serve NAME PORT ARGS...: the federated server in the background ($server_pid), on all digits
serve() {
  local name=$1 port=$2
  shift 2
  timeout 120 "$pstrain" fed serve "$config" --set data.train="$digits" --set fed.insecure=true \
    --set fed.listen=tcp://127.0.0.1:"$port" --set fed.start_timeout=30 "$@" --out "$work/$name" \
    -q >"$work/$name.log" 2>&1 &
  server_pid=$!
}
# join NAME PORT SITE CSV [mpi]: a site, one process or (mpi) mpirun -np 3
join() {
  local name=$1 port=$2 site=$3 csv=$4 how=${5:-}
  local args=(fed join "$config" --server tcp://127.0.0.1:"$port" --site "$site"
    --set data.train="$work/$csv" --set fed.insecure=true --set fed.heartbeat=0.1
    --out "$work/$name" -q)
  if [ "$how" = mpi ]; then
    mpi 3 "${args[@]}" >"$work/$name.log" 2>&1
  else
    timeout 120 "$pstrain" "${args[@]}" >"$work/$name.log" 2>&1
  fi
}

# --- 1. one ordinary site and one mpirun site, 3 rounds ---------------------------------------
# 1000 local epochs of batch 8 make each of the mpirun site's rounds last a few seconds (16 BSP
# steps an epoch per worker), more than twice the server's heartbeat timeout of 1 s: a site that
# did not keep heartbeating while its workers train would be dropped from the round.
port=$(free_port)
serve main "$port" --set fed.sites=2 --set fed.rounds=3 --set fed.local_epochs=1000 \
  --set train.batch_size=8 --set fed.heartbeat_timeout=1
join one "$port" one one.csv &
one_pid=$!
join many "$port" many many.csv mpi
many_rc=$?
wait "$one_pid"
one_rc=$?
wait "$server_pid"
server_rc=$?
if [ "$server_rc" -eq 0 ] && [ "$one_rc" -eq 0 ] && [ "$many_rc" -eq 0 ]; then
  pass "server, one-process site and mpirun site completed"
  verdict "3 rounds, 2 sites asked and 2 answered in each" \
    "[(x['round'], x['sites_asked'], x['sites_answered']) for x in M('main/metrics.jsonl')] == [(r, 2, 2) for r in (1, 2, 3)]"
  verdict "the server saw sites 'one' and 'many' only, none went silent" \
    "sorted(R('main/report.json')['fed']['site_ids']) == ['many', 'one'] and R('main/report.json')['fed']['server']['registrations'] == 2 and R('main/report.json')['fed']['server']['silent_drops'] == 0"
  verdict "each round outlasted the heartbeat timeout" \
    "min(x['seconds'] for x in M('main/metrics.jsonl')) > 1.0"
  verdict "the model learns (final validation accuracy > 0.85)" \
    "M('main/metrics.jsonl')[-1]['val_accuracy'] > 0.85"
  verdict "mpirun site report: 3 rounds trained, 1 server and 2 workers of 128 rows each" \
    "(lambda d: d['completed'] and d['rounds_trained'] == 3 and d['mpi']['rounds_trained'] == 3 and d['mpi']['servers'] == 1 and d['mpi']['workers'] == 2 and d['mpi']['worker_rows'] == [128, 128] and d['mpi']['steps_per_epoch'] == 16)(R('many/report.json'))"
  verdict "mpirun site trained every row 1000 times a round, in 3 x 1000 x 16 BSP pushes per worker" \
    "(lambda d: d['rows_trained'] == 3 * 1000 * 256 and d['mpi']['comm']['pushes'] == 2 * 3 * 1000 * 16 and d['mpi']['comm']['errors'] == 0)(R('many/report.json'))"
  verdict "the site's servers hold no tensor after the rounds (each round's namespace dropped)" \
    "R('many/report.json')['mpi']['server_tensors'] == 0 and R('many/report.json')['mpi']['server_store_bytes'] == 0"
  verdict "one-process site report: 3 rounds trained" \
    "R('one/report.json')['completed'] and R('one/report.json')['rounds_trained'] == 3"
  params "$work/one/model.pst" >"$work/one.txt"
  params "$work/many/model.pst" >"$work/many.txt"
  [ -s "$work/many.txt" ] && cmp -s "$work/one.txt" "$work/many.txt" &&
    pass "both sites wrote the final global model" || fail "the sites' model.pst differ or are missing"
else
  fail "main run: server $server_rc, one $one_rc, many $many_rc: $(tail -3 "$work/many.log") $(tail -3 "$work/main.log")"
fi

# --- 2. equivalence: W workers of batch b == one process of batch W·b ------------------------
# One site per run, so the global model after each round is that site's weights (FedProx over
# one site), and each round starts from the same global weights in both runs. With shuffling
# off, the one process's batch k is rows [32k, 32k + 32) of the site; worker w's batch k is its
# rank-strided rows 32k + 2j + w, j < 16, so the two workers' batches make up the same 32 rows,
# and the servers' average of their two mean gradients (plus the proximal term, the same on
# both) is the one process's gradient, up to float summation order. (Shuffled, each worker
# permutes its own share, and the batches differ.) Adam's state must start afresh every round
# on the servers as it does in the one process, or rounds 2 and 3 would part ways.
equiv() { # NAME BATCH AGGREGATOR [mpi]
  local name=$1 batch=$2 agg=$3 how=${4:-} port
  port=$(free_port)
  serve "$name-server" "$port" --set fed.sites=1 --set fed.rounds=3 --set fed.local_epochs=2 \
    --set train.shuffle=false --set train.batch_size="$batch" --set fed.aggregator="$agg" \
    --set fed.mu=0.5
  join "$name" "$port" site many.csv "$how" || fail "$name site: $(tail -3 "$work/$name.log")"
  wait "$server_pid" || fail "$name server: $(tail -3 "$work/$name-server.log")"
  params "$work/$name/model.pst" >"$work/$name.txt"
}
equiv mpi16 16 fedprox mpi
equiv one32 32 fedprox
equiv one16 16 fedprox
equiv avg32 32 fedavg
d=$(max_rel_diff "$work/mpi16.txt" "$work/one32.txt")
python3 -c "import sys; sys.exit(0 if $d < 1e-4 else 1)" &&
  pass "mpirun site, 2 workers x batch 16 == one process, batch 32 (max rel diff $d over 3 rounds)" ||
  fail "mpirun site 2 x 16 vs one process 32: max rel diff $d"
verdict "and so are the per-round training and validation losses (rel diff < 1e-5)" \
  "len(M('mpi16-server/metrics.jsonl')) == len(M('one32-server/metrics.jsonl')) == 3 and all(abs(a[k] - b[k]) <= 1e-5 * abs(b[k]) for a, b in zip(M('mpi16-server/metrics.jsonl'), M('one32-server/metrics.jsonl')) for k in ('train_loss', 'val_loss'))"
d16=$(max_rel_diff "$work/mpi16.txt" "$work/one16.txt")
python3 -c "import sys; sys.exit(0 if $d16 > 1e-2 else 1)" &&
  pass "and differs from one process, batch 16 (max rel diff $d16)" ||
  fail "2 x 16 is indistinguishable from batch 16 ($d16): the check is blind"
dprox=$(max_rel_diff "$work/avg32.txt" "$work/one32.txt")
python3 -c "import sys; sys.exit(0 if $dprox > 1e-2 else 1)" &&
  pass "the proximal term matters here: FedAvg differs (max rel diff $dprox)" ||
  fail "FedProx's term makes no difference ($dprox): the check cannot see it"

# --- 3. errors: one message, a non-zero exit, no hang -----------------------------------------
# expect_error NAME TEXT: the run failed and its log holds exactly one line with TEXT
expect_error() {
  local rc=$1 name=$2 text=$3 n
  n=$(grep -c -- "$text" "$work/$name.log")
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$n" -eq 1 ]; then
    pass "$name: exit $rc, one message: $(grep -- "$text" "$work/$name.log" | head -1)"
  else
    fail "$name: exit $rc, $n line(s) with '$text': $(head -5 "$work/$name.log")"
  fi
}
port=$(free_port)
mpi 3 fed join "$config" --server tcp://127.0.0.1:"$port" --site gone \
  --set data.train="$work/missing.csv" --set fed.insecure=true --out "$work/gone" >"$work/gone.log" 2>&1
expect_error $? gone "missing.csv"
mpi 2 fed join "$config" --server tcp://127.0.0.1:"$port" --site few --set data.train="$work/many.csv" \
  --set fed.insecure=true --set cluster.servers=2 --out "$work/few" >"$work/few.log" 2>&1
expect_error $? few "no worker"
# A data error every worker meets once the contract arrived: worker 0 reports it for all.
serve bad-server "$port" --set fed.sites=1 --set fed.rounds=1 --set fed.start_timeout=60
mpi 3 fed join "$config" --server tcp://127.0.0.1:"$port" --site bad --set data.train="$work/bad.csv" \
  --set fed.insecure=true --out "$work/bad" >"$work/bad.log" 2>&1
expect_error $? bad "bad.csv"
kill "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "all fed site mpi tests passed"
