#!/usr/bin/env bash
# The reference workload (examples/fashion_mlp.yaml) locally and under mpirun with 1 server + 2
# workers, in one run: training samples/s, test accuracy, and bytes raw / on the wire per codec.
# usage: scripts/bench/fashion_distributed.sh [--epochs N] [--codecs "raw lz4 ..."]
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=10
codecs="raw lz4 lz4shuffle fp16 int8 int8lz4"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --codecs) codecs=$2; shift 2 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# Built on every run (a no-op when up to date; a failed build stops the script): an old binary
# would time other code than the tree's.
bash scripts/build.sh >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

build/cli/pstrain train examples/fashion_mlp.yaml --set train.epochs="$epochs" --out "$work/local" -q >/dev/null
for codec in $codecs; do
  mpirun --oversubscribe -np 3 build/cli/pstrain train examples/fashion_mlp.yaml \
    --set train.epochs="$epochs" --set transport.codec="$codec" --out "$work/mpi-$codec" -q >/dev/null
done

python3 - "$work" "$codecs" <<'PY'
import json, sys
work, codecs = sys.argv[1], sys.argv[2].split()
def load(name):
    return json.load(open(f"{work}/{name}/report.json"))
local = load("local")
print()
print("Fashion-MNIST MLP 784-256-128-10, batch 64 per worker, %d epochs" % local["train"]["epochs"])
print("%-22s %11s %9s %8s %14s %14s %9s %9s" % ("run", "samples/s", "vs local", "test acc",
      "bytes raw", "bytes wire", "raw/wire", "push ms"))
ls = local["train"]["samples_per_s"]
print("%-22s %11.0f %9s %8.4f %14s %14s %9s %9s" % ("local (1 process)", ls, "1.00x",
      local["test"]["accuracy"], "-", "-", "-", "-"))
for c in codecs:
    r = load("mpi-" + c)
    cm = r["comm"]
    print("%-22s %11.0f %8.2fx %8.4f %14d %14d %9.2f %9.3f" % (
        "1 server + 2 workers, " + c, r["train"]["samples_per_s"], r["train"]["samples_per_s"] / ls,
        r["test"]["accuracy"], cm["bytes_raw"], cm["bytes_wire"], cm["bytes_raw"] / cm["bytes_wire"],
        cm["push_latency_ms"]))
print()
print("target: test accuracy >= 0.88 under mpirun. The 3 ranks share %s cores, so samples/s "
      "measures overhead, not scaling." % __import__("os").cpu_count())
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
