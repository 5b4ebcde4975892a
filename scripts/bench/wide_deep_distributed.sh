#!/usr/bin/env bash
# Wide & deep (examples/clicks_wd.yaml on its generated Criteo-style data) locally and under
# mpirun in one run: 1 server + 1 worker (distributed efficiency against the local run: the same
# steps, bit for bit) and 1 server + 2 workers at half batches (the same rows per step).
# Medians of training samples/s over repeats, test AUC, traffic per example.
# usage: scripts/bench/wide_deep_distributed.sh [--repeats N] [--rows N] [--epochs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=3
rows=120000
epochs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) repeats=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# Built on every run (a no-op when up to date): an old binary would time other code.
bash scripts/build.sh >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pst=build/cli/pstrain
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

"$pst" datagen criteo --rows "$rows" --numeric 4 --categorical 8 --vocab 200 --interaction 1.5 \
  --seed 3 --out "$work/all.tsv" >/dev/null
n_test=$((rows / 6))
head -n $((rows - n_test)) "$work/all.tsv" >"$work/train.tsv"
tail -n "$n_test" "$work/all.tsv" >"$work/test.tsv"
common=(--set data.train="$work/train.tsv" --set data.test="$work/test.tsv"
  --set train.epochs="$epochs" -q)

for i in $(seq "$repeats"); do
  taskset -c 0 "$pst" train examples/clicks_wd.yaml "${common[@]}" --out "$work/local-$i" >/dev/null
  mpirun --oversubscribe --bind-to core -np 2 "$pst" train examples/clicks_wd.yaml "${common[@]}" \
    --out "$work/one-$i" >/dev/null
  mpirun --oversubscribe -np 3 "$pst" train examples/clicks_wd.yaml "${common[@]}" \
    --set train.batch_size=64 --out "$work/two-$i" >/dev/null
done

python3 - "$work" "$repeats" <<'PY'
import json, statistics, sys
work, repeats = sys.argv[1], int(sys.argv[2])
def runs(name):
    return [json.load(open(f"{work}/{name}-{i}/report.json")) for i in range(1, repeats + 1)]
def med(rs, f):
    return statistics.median(f(r) for r in rs)
local = runs("local")
ls = med(local, lambda r: r["train"]["samples_per_s"])
r0 = local[0]
print()
print("wide & deep, %d training rows, %d fields, embedding %d, %d deep parameters, %d epochs, "
      "median of %d" % (r0["data"]["train_rows"], r0["model"]["fields"], r0["model"]["embedding_dim"],
                        r0["model"]["deep_parameters"], r0["train"]["epochs"], repeats))
print("%-34s %11s %9s %9s %11s %11s" % ("run", "samples/s", "vs local", "test AUC", "B/example",
                                        "raw B/ex"))
print("%-34s %11.0f %9s %9.4f %11s %11s" % ("local (1 process, batch 128)", ls, "1.00x",
                                            r0["test"]["roc_auc"], "-", "-"))
for name, label in (("one", "1 server + 1 worker, batch 128"),
                    ("two", "1 server + 2 workers, batch 64")):
    rs = runs(name)
    s = med(rs, lambda r: r["train"]["samples_per_s"])
    print("%-34s %11.0f %8.2fx %9.4f %11.1f %11.1f" % (
        label, s, s / ls, rs[0]["test"]["roc_auc"], med(rs, lambda r: r["sparse"]["bytes_per_example"]),
        med(rs, lambda r: r["sparse"]["raw_bytes_per_example"])))
same = all(json.load(open(f"{work}/one-{i}/report.json"))["test"]["roc_auc"] == r0["test"]["roc_auc"]
           for i in range(1, repeats + 1))
print()
print("1 server + 1 worker test AUC equals the local run's bit for bit: %s" % same)
print("The ranks share %s cores with each other (and with whatever else runs): samples/s "
      "measures the overhead of pulling and pushing every step, not scaling."
      % __import__("os").cpu_count())
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
