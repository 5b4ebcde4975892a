#!/usr/bin/env bash
# Scaling harness: pstrain's training step measured over emulated network links, and projected to
# more workers and servers than this machine can run.
#
# usage: scripts/bench/scaling.sh [--links "1 10 25"] [--latency-us 50] [--repeats R]
#                                 [--rows N] [--dense-rows N] [--keep] [--dry-run]
#
#   --links       link rates in Gbit/s, each measured and projected (default "1 10 25")
#   --latency-us  one-way latency of every link, microseconds (default 50)
#   --repeats     runs of each measured point; figures are medians over them (default 3)
#   --rows        click rows generated for the sparse model (default 200000; 70% train)
#   --dense-rows  Fashion-MNIST training rows for the dense MLP (default 12000)
#   --dry-run     set up the namespaces and links, run one tiny 1 server + 1 worker job across
#                 them, tear everything down and check nothing is left (the e2e test runs this)
#   --keep        keep the scratch directory (reports of every run)
# Exit status: 0 done, 1 failure, 2 usage, 77 skipped (no network namespaces or tc here).
#
# How ranks get links of their own. Every rank of an mpirun job runs in its own network namespace
# (pst-scaling-ID-rI): mpirun starts a per-rank wrapper that `ip netns exec`s the rank into the
# namespace of its OMPI_COMM_WORLD_RANK. Each namespace holds one veth end, pst0 (10.A.B.10+I/24);
# the other end joins a bridge in the root namespace. The servers bind pst0
# (cluster.interface=pst0), so all parameter traffic crosses the veths and the bridge. tc shapes
# both directions of every link with tbf at the link rate: on pst0 (what the rank sends) and on the
# bridge side (what it receives), so the one link of a server is shared by all of its workers, as
# on a cluster. One-way latency is netem delay on pst0 when the kernel has netem; without it the
# links carry no added latency and the latency enters the model only (the output says which).
# MPI still has to work across the namespaces: mpirun's PMIx server is told to listen on the
# bridge (PMIX_MCA_ptl_tcp_remote_connections=1, PMIX_MCA_ptl_tcp_if_include=BRIDGE) instead of
# loopback, which a rank in another namespace cannot reach; between ranks MPI uses shared memory
# (btl self,vader), which network namespaces do not separate. MPI carries only the start-up and
# the final join; the step's traffic is ZeroMQ over pst0.
# Everything is named with a unique ID (the script's pid) and removed on exit, on failure and on
# Ctrl-C (trap); two runs at once use different names and subnets.
#
# What it measures, for the sparse click model (examples/clicks_lr.yaml on `pstrain datagen
# clicks` data) and the dense reference MLP (examples/fashion_mlp.yaml, Fashion-MNIST), with
# 1 server + 1 worker and 2 servers + 2 workers at each link rate: the per-step figures of
# report.json (comm.step: step time, compute, pull wait, push wait, bytes sent and received per
# step; comm.server: server time per push and pull request, busy time per worker step). Processes
# are pinned with mpirun --bind-to core (overload allowed for 4 ranks on 2 cores).
# What it projects (scripts/bench/scaling_model.py, which prints its model beside the numbers):
# rows/s (sparse) and samples/s (dense) for W = 1..64 workers and S = 1..8 servers at each link
# rate, and the model's prediction of the measured 2 + 2 point against the measurement.
set -euo pipefail
cd "$(dirname "$0")/../.."

links="1 10 25"
latency_us=50
repeats=3
rows=200000
dense_rows=12000
dry_run=0
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
  --links) links=${2:?--links needs a value}; shift 2 ;;
  --latency-us) latency_us=${2:?--latency-us needs a value}; shift 2 ;;
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  --rows) rows=${2:?--rows needs a value}; shift 2 ;;
  --dense-rows) dense_rows=${2:?--dense-rows needs a value}; shift 2 ;;
  --dry-run) dry_run=1; shift ;;
  --keep) keep=1; shift ;;
  -h | --help) sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "scaling: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in $links; do
  [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] && [ "$v" != 0 ] ||
    { echo "scaling: --links: '$v' is not a positive rate in Gbit/s" >&2; exit 2; }
done
[ -n "$links" ] || { echo "scaling: --links is empty" >&2; exit 2; }
for v in "$latency_us" "$repeats" "$rows" "$dense_rows"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "scaling: '$v' is not a non-negative integer" >&2; exit 2; }
done
[ "$repeats" -ge 1 ] && [ "$rows" -ge 1000 ] && [ "$dense_rows" -ge 1000 ] ||
  { echo "scaling: --repeats must be >= 1, --rows and --dense-rows >= 1000" >&2; exit 2; }

skip() { echo "scaling: skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "the ip command (iproute2) is missing"
command -v tc >/dev/null || skip "the tc command (iproute2) is missing"
command -v mpirun >/dev/null || { echo "scaling: mpirun is missing (bash scripts/setup.sh)" >&2; exit 1; }

id=$$
ns_prefix=pst-scaling-$id
bridge=psb$id
subnet=10.$((100 + id % 100)).$((id / 100 % 250))
max_ranks=4

# ---- namespaces and links ---------------------------------------------------------------------

# Lists what this run created and still exists (empty when everything is gone).
leftovers() {
  ip netns list 2>/dev/null | awk -v p="$ns_prefix-" 'index($1, p) == 1 {print "namespace " $1}'
  ip -o link show 2>/dev/null | awk -F': ' -v b="$bridge" -v v="psv$id-" \
    '{sub(/@.*/, "", $2)} $2 == b || index($2, v) == 1 {print "link " $2}'
}

teardown() {
  for i in $(seq 0 $((max_ranks - 1))); do
    ip netns del "$ns_prefix-r$i" 2>/dev/null || true # takes its veth pair with it
  done
  ip link del "$bridge" 2>/dev/null || true
}

tmp=
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  teardown
  local left
  left=$(leftovers)
  [ -z "$left" ] || echo "scaling: could not remove: $left" >&2
  if [ -n "$tmp" ]; then
    if [ "$keep" = 1 ]; then echo "scaling: runs kept in $tmp" >&2; else rm -rf "$tmp"; fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "scaling: interrupted" >&2; exit 130' INT TERM

# Creates namespace I with its veth to the bridge, addressed 10.A.B.(10+I).
add_rank_ns() {
  local i=$1 ns=$ns_prefix-r$1
  ip netns add "$ns"
  ip link add "psv$id-$i" type veth peer name pst0 netns "$ns"
  ip link set "psv$id-$i" master "$bridge" up
  ip -n "$ns" addr add "$subnet.$((10 + i))/24" dev pst0
  ip -n "$ns" link set pst0 up
  ip -n "$ns" link set lo up
}

setup() {
  ip netns add "$ns_prefix-probe" 2>/dev/null || skip "cannot create network namespaces (ip netns add failed)"
  ip netns del "$ns_prefix-probe"
  ip -4 addr show | grep -q " $subnet\." && { echo "scaling: subnet $subnet.0/24 is in use" >&2; exit 1; }
  ip link add "$bridge" type bridge || skip "cannot create a bridge"
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  for i in $(seq 0 $((max_ranks - 1))); do add_rank_ns "$i"; done
  tc qdisc add dev "psv$id-0" root tbf rate 1gbit burst 256kb latency 10ms 2>/dev/null ||
    skip "tc cannot shape the links (no tbf qdisc)"
  tc qdisc del dev "psv$id-0" root
  netem=0
  if ip netns exec "$ns_prefix-r0" tc qdisc add dev pst0 root netem delay 1us 2>/dev/null; then
    netem=1
    ip netns exec "$ns_prefix-r0" tc qdisc del dev pst0 root
  fi
}

# Shapes every link to RATE Gbit/s (tbf both ways; netem delay on the rank side when available).
# The bucket holds 1 ms of traffic, and at least a 64 KiB segment (veths pass GSO
# super-packets). Measured with the dense model at 1 Gbit/s: a 2 ms bucket let the start of every
# step's burst through unshaped (steps 11% under the link's time), a 64 KiB one held TCP to half
# the rate; 1 ms came within 5%.
shape_links() {
  local rate=$1 burst
  burst=$(awk -v r="$rate" 'BEGIN { b = int(r * 1e9 / 8 * 0.001); print (b < 65536 ? 65536 : b) }')
  for i in $(seq 0 $((max_ranks - 1))); do
    local ns=$ns_prefix-r$i
    tc qdisc replace dev "psv$id-$i" root tbf rate "${rate}gbit" burst "$burst" latency 20ms
    if [ "$netem" = 1 ]; then
      ip netns exec "$ns" tc qdisc replace dev pst0 root netem delay "${latency_us}us" \
        rate "${rate}gbit" limit 100000
    else
      ip netns exec "$ns" tc qdisc replace dev pst0 root tbf rate "${rate}gbit" burst "$burst" \
        latency 20ms
    fi
  done
}

# ---- the program and the runs -----------------------------------------------------------------

build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  # Built on every run unless PSTRAIN names a binary: an old binary would time other code.
  echo "scaling: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
cores=$(nproc)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-scaling.XXXXXX")
# A private copy of the binary: a rebuild of the shared build directory mid-run cannot touch it.
cp "$pstrain" "$tmp/pstrain"
pstrain=$tmp/pstrain
"$pstrain" --help >/dev/null || { echo "scaling: $pstrain does not run" >&2; exit 1; }

cat >"$tmp/in-netns.sh" <<EOF
#!/bin/sh
# Runs one mpirun rank inside the network namespace of its rank number.
exec ip netns exec "$ns_prefix-r\${OMPI_COMM_WORLD_RANK:?not started by mpirun}" "\$@"
EOF
chmod +x "$tmp/in-netns.sh"

# run_job OUT NP SERVERS CONFIG [--set ...]: one training job across the namespaces, 300 s at most.
run_job() {
  local out=$1 np=$2 servers=$3 bind=core
  shift 3
  [ "$np" -le "$cores" ] || bind=core:overload-allowed
  PMIX_MCA_ptl_tcp_remote_connections=1 PMIX_MCA_ptl_tcp_if_include=$bridge \
    timeout 300 mpirun --oversubscribe -np "$np" --bind-to "$bind" --mca btl self,vader \
    --mca mpi_yield_when_idle 1 "$tmp/in-netns.sh" "$pstrain" train "$@" \
    --set cluster.servers="$servers" --set cluster.interface=pst0 --set train.progress=none \
    --out "$out" -q >"$out.log" 2>&1 || {
    echo "scaling: the run $out failed; its output:" >&2
    cat "$out.log" >&2
    return 1
  }
}

sparse_args() { echo "examples/clicks_lr.yaml --set data.train=$1 --set data.cache=false"; }
dense_args() {
  # val_fraction leaves dense_rows of the 60,000 training images for training.
  local val
  val=$(python3 -c "print(round(1 - $dense_rows / 60000, 4))")
  echo "examples/fashion_mlp.yaml --set train.epochs=1 --set data.val_fraction=$val"
}

setup
echo "scaling: namespaces $ns_prefix-r0..r$((max_ranks - 1)) on bridge $bridge ($subnet.0/24);" \
  "netem $([ "$netem" = 1 ] && echo "available: links delay ${latency_us} us one way" ||
    echo "missing on this kernel: links add no latency, the model adds it")"

if [ "$dry_run" = 1 ]; then
  "$pstrain" datagen clicks --rows 2000 --features 4096 --nnz 8 --seed 1 --out "$tmp/tiny.svm" >/dev/null
  shape_links 1
  # shellcheck disable=SC2046
  run_job "$tmp/dry" 2 1 $(sparse_args "$tmp/tiny.svm")
  # The server's traffic must have crossed its veth: the bridge side sent what the server
  # received and received what it sent, TCP/IP headers included.
  stats=/sys/class/net/psv$id-0/statistics
  python3 - "$tmp/dry/report.json" "$(cat "$stats/tx_bytes")" "$(cat "$stats/rx_bytes")" <<'PY'
import json, sys
comm = json.load(open(sys.argv[1]))["comm"]
into, out = int(sys.argv[2]), int(sys.argv[3])
step, server = comm["step"], comm["server"]
print("scaling: dry run: 1 server + 1 worker across namespaces: %d steps, %.0f bytes sent and "
      "%.0f received per step, %.1f us per push on the server" % (
          step["steps"], step["bytes_sent"], step["bytes_received"], server["push_us"]))
print("scaling: dry run: the server's link carried %d bytes in and %d out; pstrain counted %d "
      "in and %d out" % (into, out, server["bytes_in"], server["bytes_out"]))
if into < server["bytes_in"] or out < server["bytes_out"]:
    sys.exit("scaling: dry run: the server's traffic did not cross its link")
PY
  teardown
  left=$(leftovers)
  [ -z "$left" ] || { echo "scaling: dry run: left behind: $left" >&2; exit 1; }
  echo "scaling: dry run: namespaces and links removed, nothing left behind"
  exit 0
fi

echo "scaling: generating $rows click rows" >&2
"$pstrain" datagen clicks --rows "$rows" --features 1048576 --nnz 30 --seed 7 \
  --out "$tmp/clicks.svm" >/dev/null
# record MODEL SHAPE RATE REPEAT OUT: one line of results.jsonl for scaling_model.py
record() {
  printf '{"model": "%s", "servers": %d, "workers": %d, "gbit": %s, "repeat": %d, "report": "%s"}\n' \
    "$1" "$2" "$2" "$3" "$4" "$5/report.json" >>"$results"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=$tmp/results.jsonl
: >"$results"
for rep in $(seq 1 "$repeats"); do
  for rate in $links; do
    shape_links "$rate"
    for model in sparse dense; do
      for shape in 1 2; do
        out=$tmp/$model-$shape-$rate-$rep
        echo "scaling: $model, $shape server(s) + $shape worker(s), $rate Gbit/s, run $rep" >&2
        # shellcheck disable=SC2046
        if [ "$model" = sparse ]; then
          run_job "$out" $((2 * shape)) "$shape" $(sparse_args "$tmp/clicks.svm")
        else
          run_job "$out" $((2 * shape)) "$shape" $(dense_args)
        fi
        record "$model" "$shape" "$rate" "$rep" "$out"
      done
    done
  done
  # The servers' fixed cost per request: the same 1 + 1 sparse run with batches of 32 rows,
  # whose requests carry an eighth of the keys.
  out=$tmp/calib-$rep
  echo "scaling: sparse, batch 32, 1 server + 1 worker, $rate Gbit/s, run $rep" >&2
  # shellcheck disable=SC2046
  run_job "$out" 2 1 $(sparse_args "$tmp/clicks.svm") --set train.batch_size=32
  record sparse-batch32 1 "$rate" "$rep" "$out"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 scripts/bench/scaling_model.py "$results" --latency-us "$latency_us" --netem "$netem" \
  --cores "$cores" --load-before "$load_before" --load-after "$load_after"
