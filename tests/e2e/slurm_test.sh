#!/usr/bin/env bash
# cluster/slurm.sbatch through a real Slurm: the test brings up a one-node cluster (munged,
# slurmctld and slurmd from Debian's munge and slurm-wlm, in the foreground as background
# processes) configured entirely in its scratch directory (its own slurm.conf, munge key and
# socket, free ports, state, spool, logs and job temporary files), then submits the batch script
# with sbatch and checks
#  - an end-to-end run (srun + PMIx, 1 server + 1 worker): COMPLETED with exit code 0, a model
#    file that `pstrain info` reads, every epoch once in metrics.jsonl, a test accuracy;
#  - kill -9 of the worker rank mid-run: srun ends the step, `pstrain supervise` (inside the
#    job) reruns it with --resume auto, and the job completes with Slurm's restart count still 0
#    and the same final weights as the uninterrupted run, bit for bit;
#  - `scontrol requeue` of a running job (the path a node failure or preemption takes), launched
#    with mpirun: Slurm reruns the batch script under the same job id and run directory, which
#    resumes from its checkpoint and ends with the same weights again (restart count 1).
# The daemons, their jobs and everything they write stay in the scratch directory and are
# stopped on every exit, and by a watchdog if the test itself is killed.
# Skips (exit 77) when munge or Slurm is not installed, the test does not run as root, or the
# daemons do not start.
# usage: slurm_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$(realpath "$1")
source "$(dirname "$0")/lib.sh"
sbatch_script=$(realpath "$2/../cluster/slurm.sbatch")
export PATH=$PATH:/usr/sbin:/sbin

skip() {
  echo "skipped: $*"
  exit 77
}
# slurmd starts job steps as their user, which takes root.
[ "$(id -u)" = 0 ] || skip "slurmd needs root to start jobs (this test runs as $(id -un))"
for c in munged munge slurmctld slurmd sbatch scontrol sinfo srun; do
  command -v "$c" >/dev/null ||
    skip "$c is not installed (Debian packages slurm-wlm and munge; scripts/setup.sh installs them)"
done

# The batch script refuses an unknown launcher before it starts anything.
PSTRAIN_LAUNCHER=pdsh SLURM_JOB_ID=0 bash "$sbatch_script" job.yaml >"$work/launcher.out" 2>&1
rc=$?
check "a bad PSTRAIN_LAUNCHER exits with 2 naming it (rc $rc: $(head -1 "$work/launcher.out"))" \
  "$([ "$rc" = 2 ] && grep -q "must be srun or mpirun, not 'pdsh'" "$work/launcher.out" && echo True)"

# --- a one-node cluster in $work/slurm -----------------------------------------------------------
s=$work/slurm
conf=$s/slurm.conf
node=$(hostname -s)
# Every process of this cluster (daemons, job steps, ranks) carries this variable: the clean-up
# finds them by it, and by nothing broader.
tag=PST_SLURM_TEST=$s
# munged wants its socket directory and the ones above it searchable by everyone, its key
# directory private.
chmod 755 "$work"
mkdir -p "$s"/{munge,run,state,spool,log,tmp}
chmod 700 "$s/munge"

# tagged_pids: the processes that carry this cluster's tag (one grep over every environment:
# a loop of processes per /proc entry takes seconds on a loaded machine)
tagged_pids() {
  grep -lxzF "$tag" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
}
# sweep: kills whatever of this cluster is still running
sweep() {
  local pids
  pids=$(tagged_pids)
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  return 0
}
# stop_cluster: cancels the jobs (a job's slurmstepd would outlive slurmd), stops the daemons
# and sweeps what is left; safe to call twice
stop_cluster() {
  [ -n "${reaper:-}" ] && kill "$reaper" 2>/dev/null
  reaper=""
  local p deadline
  if [ -n "${ctld_pid:-}" ] && kill -0 "$ctld_pid" 2>/dev/null; then
    timeout 5 scancel --quiet --partition=test >/dev/null 2>&1
    deadline=$((SECONDS + 10))
    while [ "$SECONDS" -lt "$deadline" ] &&
      timeout 2 squeue -h -t PD,CF,R,CG,S -o %i 2>/dev/null | grep -q .; do
      sleep 0.25
    done
  fi
  for p in ${daemons:-}; do kill -TERM "$p" 2>/dev/null; done
  deadline=$((SECONDS + 5))
  for p in ${daemons:-}; do
    while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
  sweep
}
trap 'stop_cluster; scratch_cleanup' EXIT
trap 'exit 130' INT TERM
# The watchdog: if this script dies without its traps (SIGKILL from a test runner's time
# limit), it sweeps the cluster and removes the scratch directory. Its own session, so that a
# signal to the test's process group does not take it too.
setsid bash -c "$(declare -f tagged_pids sweep); tag='$tag'
  while kill -0 $$ 2>/dev/null; do sleep 1; done
  sweep; rm -rf '$work'" >/dev/null 2>&1 </dev/null &
reaper=$!

# default_places: the files (and their times) where the packages' own daemons keep keys, state,
# logs and sockets; the test's cluster must change none of them
default_places() {
  find /etc/slurm /etc/munge /var/lib/slurm /var/log/slurm /var/spool/slurmd /var/spool/slurmctld \
    /run/slurm /run/munge /var/lib/munge /var/log/munge -printf '%p %s %T@\n' 2>/dev/null | sort
}
default_places >"$work/places.before"

dd if=/dev/urandom of="$s/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$s/munge/munge.key"
env "$tag" munged --foreground --force --socket="$s/run/munge.socket" \
  --key-file="$s/munge/munge.key" --pid-file="$s/run/munged.pid" --log-file="$s/log/munged.log" \
  --seed-file="$s/munge/munged.seed" >"$s/log/munged.out" 2>&1 &
daemons=$!
for _ in $(seq 50); do [ -S "$s/run/munge.socket" ] && break; sleep 0.1; done
munge -S "$s/run/munge.socket" -n 2>/dev/null | unmunge -S "$s/run/munge.socket" >/dev/null 2>&1 ||
  skip "munged did not start: $(tail -2 "$s/log/munged.out")"

ctld_port=$(free_port)
slurmd_port=$(free_port)
# The node declares 8 CPUs whatever the machine has (config_overrides), so that the test's
# ranks fit on a 2-core machine; the task and process-tracking plugins need no cgroups. A
# requeued job waits cred_expire seconds (120 by default) before it may start again, and the
# scheduler looks every sched_interval seconds (60): short here, so a requeue takes seconds.
cat >"$conf" <<CONF
ClusterName=psttest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$s/run/munge.socket,cred_expire=5
StateSaveLocation=$s/state
SlurmdSpoolDir=$s/spool
TmpFS=$s/tmp
SlurmctldPidFile=$s/run/slurmctld.pid
SlurmdPidFile=$s/run/slurmd.pid
SlurmctldLogFile=$s/log/slurmctld.log
SlurmdLogFile=$s/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=1,bf_interval=1
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=10 State=UP
CONF
export SLURM_CONF=$conf
env "$tag" slurmctld -D -i -f "$conf" >"$s/log/slurmctld.out" 2>&1 &
ctld_pid=$!
env "$tag" slurmd -D -N "$node" -f "$conf" >"$s/log/slurmd.out" 2>&1 &
slurmd_pid=$!
daemons="$daemons $ctld_pid $slurmd_pid"
state=""
deadline=$((SECONDS + 30))
# up: both daemons still run (a bad configuration makes them exit at once)
up() { kill -0 "$ctld_pid" 2>/dev/null && kill -0 "$slurmd_pid" 2>/dev/null; }
while [ "$SECONDS" -lt "$deadline" ] && up; do
  state=$(timeout 3 sinfo -h -n "$node" -o %T 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || skip "the Slurm node did not come up (state '$state'):
$(tail -n 3 "$s/log/slurmctld.out" "$s/log/slurmd.out")"
pass "a one-node Slurm is up ($(slurmctld -V), node $node, ports $ctld_port and $slurmd_port)"

# --- the job -------------------------------------------------------------------------------------
blobs3 7 2048 600
epochs=40
cat >"$work/job.yaml" <<YAML
name: slurm-test
seed: 2
data: {train: $work/train.csv, test: $work/test.csv, val_fraction: 0.2, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: $epochs, batch_size: 8, progress: none}
YAML

# submit NAME [VAR=VALUE]...: submits the batch script (1 server + 1 worker on the one node) from
# $work with the settings given, prints the job id. TMPDIR and Open MPI's shared-memory backing
# directory keep the ranks' session files in the scratch directory too.
submit() {
  local name=$1
  shift
  (cd "$work" && env "$tag" PSTRAIN="$pstrain" PSTRAIN_SERVERS=1 PSTRAIN_CHECKPOINT_EVERY=150 \
    PSTRAIN_RESTARTS=2 PSTRAIN_DELAY=0.5 TMPDIR="$s/tmp" \
    OMPI_MCA_btl_vader_backing_directory="$s/tmp" "$@" \
    timeout 10 sbatch --parsable -N 1 -n 2 --ntasks-per-node=2 --time=5 --job-name="$name" \
    -o "$work/$name.out" \
    "$sbatch_script" "$work/job.yaml" -v)
}
# job_field JOB FIELD: FIELD of scontrol's view of JOB (JobState, ExitCode, Restarts...)
job_field() { timeout 5 scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wait_job JOB LIMIT: waits for JOB to end, at most LIMIT seconds; prints its final state
wait_job() {
  local st=""
  for _ in $(seq $(($2 * 4))); do
    st=$(job_field "$1" JobState)
    case $st in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
        echo "$st"
        return
        ;;
    esac
    sleep 0.25
  done
  echo "still $st after $2 s"
}
# rank_pid JOB RANK: the pstrain process of task RANK of JOB's srun step
rank_pid() {
  local p
  for p in $(tagged_pids); do
    tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n 2p | grep -qx train || continue
    [ "$(grep -cxzE "SLURM_JOB_ID=$1|SLURM_PROCID=$2" "/proc/$p/environ" 2>/dev/null)" = 2 ] &&
      echo "$p" && return
  done
}
# wait_checkpoint JOB: waits (at most 60 s) until JOB is running with a checkpoint written. The
# file is looked for every 50 ms, the job's state (a round trip to slurmctld) once a second: the
# kill or requeue that follows must come well before the run's end.
wait_checkpoint() {
  local i
  for i in $(seq 1200); do
    [ -e "$work/runs/slurm-$1/checkpoints/server-0.ckpt" ] && return 0
    if [ $((i % 20)) = 0 ]; then
      case $(job_field "$1" JobState) in PENDING | RUNNING | CONFIGURING) ;; *) return 1 ;; esac
    fi
    sleep 0.05
  done
  return 1
}
# check_run NAME JOB: the checks of every finished job: COMPLETED with exit code 0:0, every
# epoch once in metrics.jsonl, 1 server and 1 worker, a model file that pstrain info reads
check_run() {
  local name=$1 job=$2 st=$3 run=$work/runs/slurm-$2 code
  code=$(job_field "$job" ExitCode)
  echo "$name: job $job $st, exit code $code, Slurm restarts $(job_field "$job" Restarts)"
  check "$name: the job COMPLETED with exit code 0:0 ($st, $code)" \
    "$([ "$st" = COMPLETED ] && [ "$code" = 0:0 ] && echo True)"
  check "$name: metrics.jsonl holds epochs 1 to $epochs once each" \
    "$(mexpr "$run/metrics.jsonl" "[l['epoch'] for l in m] == list(range(1, $epochs + 1))")"
  check "$name: the run had 1 server and 1 worker" \
    "$(jexpr "$run/report.json" "(d['comm']['servers'], d['comm']['workers']) == (1, 1)")"
  params "$run/model.pst" >"$work/$name.params" 2>/dev/null
  if [ -s "$work/$name.params" ]; then
    pass "$name: pstrain info reads the model ($(wc -l <"$work/$name.params") parameters)"
  else
    fail "$name: no model file in $run"
  fi
}
# expect_line NAME PATTERN: passes with the first line of NAME's job output matching PATTERN
expect_line() {
  local line
  line=$(grep -m1 -o -e "$2.*" "$work/$1.out")
  [ -n "$line" ] && pass "$1: $line" || fail "$1: no '$2' in: $(tail -n 3 "$work/$1.out")"
}
# same_weights NAME: NAME's final weights are the uninterrupted run's, bit for bit
same_weights() {
  if [ -s "$work/whole.params" ] && cmp -s "$work/whole.params" "$work/$1.params"; then
    pass "$1: the final weights equal the uninterrupted run's"
  else
    fail "$1: the final weights differ from the uninterrupted run's (or one is missing)"
  fi
}

# 1. End to end, uninterrupted, through srun.
t0=$SECONDS
job=$(submit whole)
[ -n "$job" ] && pass "sbatch accepted the batch script (job $job)" ||
  fail "sbatch refused the batch script"
check_run whole "$job" "$(wait_job "$job" 60)"
expect_line whole "srun, 2 ranks, 1 servers"
expect_line whole "no checkpoint yet; starting"
check "whole: test accuracy above 0.8 on three separated classes" \
  "$(jexpr "$work/runs/slurm-$job/report.json" "d['test']['accuracy'] > 0.8")"
[ -e "$work/runs/slurm-$job/checkpoints/server-0.ckpt" ] &&
  pass "whole: the server wrote checkpoints" ||
  fail "whole: no checkpoint in the run directory"

# 2. kill -9 of the worker rank: srun ends the step, pstrain supervise reruns it in the same job.
job=$(submit kill)
pid=""
wait_checkpoint "$job" && pid=$(rank_pid "$job" 1)
if [ -n "$pid" ]; then
  kill -KILL "$pid"
  echo "kill: kill -9 of rank 1 (pid $pid) of job $job"
  check_run kill "$job" "$(wait_job "$job" 60)"
  expect_line kill "supervise: restart 1 of 2"
  expect_line kill "resuming at clock"
  check "kill: recovered inside the job, not by Slurm (Restarts=$(job_field "$job" Restarts))" \
    "$([ "$(job_field "$job" Restarts)" = 0 ] && echo True)"
  same_weights kill
else
  fail "kill: no checkpoint or no rank 1 to kill in job $job: $(tail -n 3 "$work/kill.out")"
  wait_job "$job" 60 >/dev/null
fi

# 3. Slurm requeues a running job (mpirun as the launcher this time): the batch script runs
# again under the same job id, so in the same run directory.
job=$(submit requeue PSTRAIN_LAUNCHER=mpirun)
if wait_checkpoint "$job"; then
  timeout 10 scontrol requeue "$job" || fail "requeue: scontrol requeue $job failed"
  check_run requeue "$job" "$(wait_job "$job" 90)"
  check "requeue: Slurm ran the batch script again (Restarts=$(job_field "$job" Restarts))" \
    "$([ "$(job_field "$job" Restarts)" = 1 ] && echo True)"
  expect_line requeue "(restart count 1) on $node: mpirun, 2 ranks"
  expect_line requeue "resuming at clock"
  same_weights requeue
else
  fail "requeue: job $job wrote no checkpoint: $(tail -n 3 "$work/requeue.out")"
fi

# Nothing of the cluster outlives it, nor writes outside the scratch directory.
stop_cluster
left=$(tagged_pids)
[ -z "$left" ] && pass "no daemon, step or rank of the cluster is left" ||
  fail "left running: $left"
default_places >"$work/places.after"
if cmp -s "$work/places.before" "$work/places.after"; then
  pass "nothing changed in the packages' own key, state, log and socket places"
else
  fail "changed outside the scratch directory:
$(diff "$work/places.before" "$work/places.after" | head -5)"
fi
echo "jobs and checks took $((SECONDS - t0)) s"
echo "$failures checks failed"
[ "$failures" = 0 ]
