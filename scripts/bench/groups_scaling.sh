#!/usr/bin/env bash
# Benchmarks `pstrain cv` over worker groups: T folds locally, then on G=1 and G=2 groups under mpirun.
#
# usage: scripts/bench/groups_scaling.sh [--folds T] [--epochs E] [--hidden H] [--repeats R]
#
# The claim measured: T tasks on G worker groups finish in close to T/G of the time they take on
# one group. Workload: T-fold stratified CV (default 8) of an MLP 64-H-10 (default H 256, ReLU,
# Adam lr 1e-3, batch 32, E epochs, default 100, no early stopping) on tests/data/digits.csv
# (1,797 rows), run
#   local   one process (no parameter server: the reference for one fold's compute)
#   G=1     mpirun -np 2: 1 parameter server + 1 worker, the folds one after another
#   G=2     mpirun -np 3: 1 parameter server + 2 workers in 2 groups, the folds shared out
# R times each (default 3, interleaved), and prints the median wall time (process start to exit,
# mpirun included) and fold-loop time (the report's "seconds"), the mean fit time per fold, the
# CPU seconds every rank used, and time(G=1)/time(G=2) next to the ideal 2. Both mpirun shapes
# train the same folds with the same seeds, so their accuracies must agree (checked). Both run
# with --mca mpi_yield_when_idle 1, which Open MPI picks by itself only for the oversubscribed G=2,
# so that the two shapes wait for messages alike.
# Timings depend on the machine's cores and load, both printed.
set -euo pipefail
cd "$(dirname "$0")/../.."

folds=8
epochs=100
hidden=256
repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
  --folds) folds=${2:?--folds needs a value}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --hidden) hidden=${2:?--hidden needs a value}; shift 2 ;;
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  -h | --help) sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "groups_scaling: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$folds" "$epochs" "$hidden" "$repeats"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "groups_scaling: '$v' is not a positive integer" >&2; exit 2; }
done
[ "$folds" -ge 2 ] || { echo "groups_scaling: --folds must be at least 2" >&2; exit 2; }

command -v mpirun >/dev/null || { echo "groups_scaling: mpirun is missing (bash scripts/setup.sh)" >&2; exit 1; }
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
# Built on every run unless PSTRAIN names a binary (a no-op when up to date; a failed build
# stops the script): an old binary would time other code than the tree's.
if [ -z "${PSTRAIN:-}" ]; then
  echo "groups_scaling: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3
cores=$(nproc) # before OMP_NUM_THREADS=1, which nproc obeys
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-groups-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# A private copy of the binary: a rebuild of the shared build directory mid-run cannot touch it.
cp "$pstrain" "$tmp/pstrain"
pstrain=$tmp/pstrain
"$pstrain" --help >/dev/null || { echo "$0: $pstrain does not run" >&2; exit 1; }
results=$tmp/results.jsonl

cv_args=(cv examples/csv_logreg.yaml --folds "$folds" --stratified -q
  --set data.train=tests/data/digits.csv --set model.hidden="[$hidden]" --set optimizer.lr=0.001
  --set train.batch_size=32 --set train.epochs="$epochs" --set train.patience=0
  --set train.progress=none)

# Runs one rank (or the local process) under bash's `time`, which reports the user and system
# CPU seconds of the process it waits for; the line goes to $1.RANK.
timed_rank() {
  local out=$1.${OMPI_COMM_WORLD_RANK:-0}
  shift
  local TIMEFORMAT="%U %S %R"
  { time "$@" 2>&3; } 3>&2 2>"$out"
}
export -f timed_rank

run_one() { # $1 mode (local|1|2), $2 repeat: appends one JSON line to $results
  local mode=$1 tag=$1-$2 out=$tmp/$1-$2 t0 t1 status=0
  t0=$(date +%s.%N)
  if [ "$mode" = local ]; then
    timed_rank "$tmp/cpu-$tag" "$pstrain" "${cv_args[@]}" --out "$out" >"$out.log" 2>&1 || status=$?
  else
    mpirun --oversubscribe --mca mpi_yield_when_idle 1 -np $((1 + mode)) bash -c 'timed_rank "$@"' timed_rank "$tmp/cpu-$tag" \
      "$pstrain" "${cv_args[@]}" --set cluster.groups="$mode" --out "$out" >"$out.log" 2>&1 || status=$?
  fi
  t1=$(date +%s.%N)
  if [ "$status" -ne 0 ] || [ ! -f "$out/report.json" ]; then
    cat "$out.log" >&2
    echo "groups_scaling: the $mode run failed (status $status)" >&2
    exit 1
  fi
  "$python" - "$mode" "$out/report.json" "$t0" "$t1" "$tmp/cpu-$tag" >>"$results" <<'EOF'
import glob, json, sys
mode, report, t0, t1, cpu_prefix = sys.argv[1:6]
r = json.load(open(report))
cpu = {}
for path in sorted(glob.glob(cpu_prefix + ".*")):
    user, system, _ = open(path).read().split()
    cpu[int(path.rsplit(".", 1)[1])] = float(user) + float(system)
print(json.dumps({"mode": mode, "wall": float(t1) - float(t0), "seconds": r["seconds"],
                  "fit": r["cv"]["fit_seconds"]["mean"], "accuracy": r["cv"]["accuracy"]["values"],
                  "cpu": [cpu[k] for k in sorted(cpu)], "cluster": r.get("cluster")}))
EOF
  tail -n 1 "$results" | "$python" -c 'import json, sys
r = json.loads(sys.stdin.read())
print("  %-5s wall %6.2f s  folds %6.2f s  fit/fold %5.2f s  cpu/rank %s" % (r["mode"], r["wall"],
      r["seconds"], r["fit"], " ".join("%.1f" % c for c in r["cpu"])), file=sys.stderr)'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "groups_scaling: $folds folds of MLP 64-$hidden-10 x $epochs epochs on digits, $repeats repeats;" \
  "load average $load_before on $cores cores" >&2
for r in $(seq 1 "$repeats"); do
  echo "repeat $r/$repeats" >&2
  for mode in local 1 2; do
    run_one "$mode" "$r"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$results" "$folds" "$epochs" "$hidden" "$repeats" "$cores" "$load_before" "$load_after" \
  "$(mpirun --version 2>/dev/null | head -n 1)" <<'EOF'
import json, statistics, sys

path, folds, epochs, hidden, repeats, cores, load_before, load_after, mpi = sys.argv[1:10]
T, cores = int(folds), int(cores)
runs = [json.loads(line) for line in open(path)]
by = {m: [r for r in runs if r["mode"] == m] for m in ("local", "1", "2")}


def med(mode, key):
    return statistics.median(r[key] for r in by[mode])


def rng(mode, key):
    v = [r[key] for r in by[mode]]
    return "%.2f..%.2f" % (min(v), max(v))


LABEL = {"local": "local, 1 process", "1": "G=1: 1 server + 1 worker", "2": "G=2: 1 server + 2 workers"}
RANKS = {"local": 1, "1": 2, "2": 3}

print()
print("pstrain cv: %d stratified folds of an MLP 64-%s-10 (Adam 1e-3, batch 32, %s epochs) on digits "
      "(1,797 rows);" % (T, hidden, epochs))
print("median of %s runs each, interleaved; %s" % (repeats, mpi))
print()
print("%-27s %6s %9s %13s %9s %9s %-17s %6s" % ("run", "ranks", "wall s", "wall range", "folds s",
      "fit/fold", "CPU s per rank", "cores"))
for m in ("local", "1", "2"):
    cpu = [statistics.median(r["cpu"][i] for r in by[m]) for i in range(RANKS[m])]
    busy = statistics.median(sum(r["cpu"]) / r["wall"] for r in by[m])
    print("%-27s %6d %9.2f %13s %9.2f %9.2f %-17s %6.2f" % (
        LABEL[m], RANKS[m], med(m, "wall"), rng(m, "wall"), med(m, "seconds"), med(m, "fit"),
        " ".join("%.1f" % c for c in cpu), busy))
print()
wall_ratio = med("1", "wall") / med("2", "wall")
loop_ratio = med("1", "seconds") / med("2", "seconds")
print("time(G=1) / time(G=2): %.2f on the fold loop, %.2f on wall time (mpirun start-up included);"
      " ideal 2, i.e. %.0f%% / %.0f%% of ideal" % (loop_ratio, wall_ratio, 50 * loop_ratio, 50 * wall_ratio))
print("one fold: %.2f s locally, %.2f s on G=1, %.2f s on G=2 (mean fit time per fold)"
      % (med("local", "fit"), med("1", "fit"), med("2", "fit")))
print("T/G model: G=2 should take %d/2 x %.2f s = %.2f s of fits; it took %.2f s of fold loop"
      % (T, med("1", "fit"), T / 2 * med("1", "fit"), med("2", "seconds")))
same = all(r["accuracy"] == by["1"][0]["accuracy"] for r in by["1"] + by["2"])
print("fold accuracies identical on G=1 and G=2: %s (mean %.4f; local %.4f)" % (
    "yes" if same else "NO", statistics.mean(by["1"][0]["accuracy"]),
    statistics.mean(by["local"][0]["accuracy"])))
print()
print("machine: %d cores; load average %s before, %s after (1, 5, 15 min; it counts these runs too)"
      % (cores, load_before, load_after))
print("CPU s per rank = user + system seconds of each process, rank 0 first (the parameter server")
print("thread and the fold coordinator); cores = all ranks' CPU seconds / wall seconds (median over runs).")
busy0 = {m: statistics.median(r["cpu"][0] / r["wall"] for r in by[m]) for m in ("1", "2")}
need = {m: statistics.median(sum(r["cpu"]) / r["wall"] for r in by[m]) for m in ("1", "2")}
print()
print("rank 0 kept %.2f cores busy on G=1 and %.2f on G=2;" % (busy0["1"], busy0["2"]), end=" ")
if busy0["1"] > 0.9:
    print("its coordinator waits for")
    print("the groups' results in a blocking MPI call, which Open MPI completes by polling, so rank 0")
    print("holds a core whether it has work or not (even with mpi_yield_when_idle).")
else:
    print("it was off-CPU the rest.")
if cores < 3:
    print("With %d cores, G=2's three ranks kept %.2f cores busy against G=1's %.2f: the two workers"
          % (cores, need["2"], need["1"]))
    print("share what rank 0 and the other work on the machine (load above) leave, so each fit slows")
    print("(%.2f s per fold on G=1, %.2f s on G=2) and the ratio cannot reach 2 here. T/G needs"
          % (med("1", "fit"), med("2", "fit")))
    print("G + 1 free cores (G workers and rank 0); on this %d-core machine the measured ratio is a"
          % cores)
    print("lower bound of what the groups give, not the figure for a machine with enough cores.")
EOF
