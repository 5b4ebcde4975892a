# Helpers of the fault tests (faults_*_test.sh, elastic_test.sh): the training data and job of a
# small three-class model, finding a rank's process, and starting a job to stop one of its ranks.
# Sourced after lib.sh, not run.

# faults_job: $work/train.csv (2048 rows) and $work/job.yaml (BSP, cluster.timeout 4 s,
# heartbeat_timeout 2 s, 400 epochs unless a run sets fewer)
faults_job() {
  python3 - "$work" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1] + "/train.csv", "w") as f:
    f.write("a,b,c,d,target\n")
    for i in range(2048):
        c = i % 3
        x = [random.gauss(1.5 if j == c else 0.0, 0.7) for j in range(4)]
        f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)
PY
  cat > "$work/job.yaml" <<YAML
name: faults-test
seed: 2
data: {train: $work/train.csv, val_fraction: 0.2, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: 400, batch_size: 8, progress: none}
cluster: {timeout: 4, heartbeat_timeout: 2}
YAML
}
tag="pst-faults-$$"

# rank_pid RANK: the process of that rank of this test's job (started with PST_FAULT_TAG=$tag),
# looked for among the descendants of $job (timeout, mpirun, the ranks) when set, else everywhere
rank_pid() {
  local p candidates
  if [ -n "${job:-}" ]; then
    candidates=$(descendants "$job")
  else
    candidates=$(ls -d /proc/[0-9]* | sed 's|/proc/||')
  fi
  for p in $candidates; do
    if { tr "\0" "\n" <"/proc/$p/environ" | grep -qx "PST_FAULT_TAG=$tag"; } 2>/dev/null &&
       { tr "\0" "\n" <"/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$1"; } 2>/dev/null; then
      echo "$p"; return
    fi
  done
}

# descendants PID: the processes below PID, children first
descendants() {
  local c
  for c in $(pgrep -P "$1"); do
    echo "$c"
    descendants "$c"
  done
}

# start_and_stop NAME RANK [ARGS...]: starts `train job.yaml ARGS` on 3 ranks (1 server, 2 workers)
# into $work/NAME, and stops (SIGSTOP) RANK once the first epoch is logged. Sets job (the job's
# pid), pid (the stopped rank's, empty when not found or when the run had ended already: then it
# is not stopped) and t0 (when it was stopped). The rank is found while the job starts, so that
# the stop follows the first epoch closely on a loaded machine.
start_and_stop() {
  local name=$1 rank=$2
  shift 2
  PST_FAULT_TAG=$tag timeout 300 mpirun --oversubscribe -x PST_FAULT_TAG -np 3 "$pstrain" train \
    "$work/job.yaml" --out "$work/$name" "$@" >"$work/$name.log" 2>&1 &
  job=$! pid=""
  for _ in $(seq 1200); do
    [ -z "$pid" ] && pid=$(rank_pid "$rank")
    [ -n "$pid" ] && [ -s "$work/$name/metrics.jsonl" ] && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$pid" ] && kill -STOP "$pid"
  t0=$(date +%s.%N)
  if [ -n "$pid" ] && [ -e "$work/$name/report.json" ]; then
    echo "$name: the run had ended before rank $rank could be stopped"
    kill -CONT "$pid"
    pid=""
  fi
}

# wait_dropped NAME: waits (at most 20 s) until $work/NAME.log says the server declared worker 1
# dead
wait_dropped() {
  for _ in $(seq 400); do
    grep -q "worker 1 silent for .* declared dead" "$work/$1.log" && return
    sleep 0.05
  done
}

# rows_ok NAME: report.json's rows_not_seen of each drop equals the rows worker 1 (717 rows a
# epoch: 1434 training rows in two strided shares, 90 steps of 8, the last of 5) has in its
# clocks [dropped_at, rejoined_at or the run's end)
rows_ok() {
  python3 - "$work/$1/report.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
drops = d["elastic"]["dropped_workers"]
ok = bool(drops)
for x in drops:
    until = x["dropped_at_clock"] + x["clocks_missed"]
    rows = sum(5 if c % 90 == 89 else 8 for c in range(x["dropped_at_clock"], until))
    ok = ok and rows == x["rows_not_seen"] and x["clocks_missed"] > 0
print(ok and d["elastic"]["rows_not_seen"] == sum(x["rows_not_seen"] for x in drops))
PY
}

# since T0: seconds from T0 to now, one decimal
since() { python3 -c "import time; print(round(time.time() - $1, 1))"; }
