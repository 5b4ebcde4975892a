#!/usr/bin/env bash
# Benchmarks knowledge distillation on Fashion-MNIST: a small student alone vs distilled from the reference MLP, against PyTorch.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF2'
usage: scripts/bench/distill.sh [--teacher cnn|bag] [--epochs E] [--teacher-epochs T]
                               [--repeats R] [--bag M] [--temperatures LIST] [--alphas LIST]

Splits the 60,000 training images as distill_torch.py does (a 10% validation share per class,
seed 0) and trains the teacher once on the other 90%: with --teacher bag (the default) the
reference MLP (examples/fashion_mlp.yaml, 784-256-128-10) or a bag of M of them ('pstrain bag',
--bag M), with --teacher cnn the CNN of examples/fashion_cnn.yaml (a single model file): the
teacher never sees the validation rows, which would otherwise reach the student through it. Then chooses the student's
temperature and alpha on the validation rows: seed 0's distilled student 784-64-10 is trained at
every (T, alpha) of the grid and the pair of the best validation accuracy is kept (the test
rows are never looked at). Then for each of R seeds
the student alone and distilled (train.teacher) with that pair, the same epochs and seed for
both. PyTorch (scripts/bench/distill_torch.py) follows the same protocol with its own teacher of
the same kind, its own grid search on its validation rows, and the same seeds, on the other core
at the same time. Prints the grids, the median test accuracy of each, the spread over seeds, and
whether the distilled student beats the student alone (median and seed by seed). Both score each
training row with the fixed teacher once (pstrain's teacher cache, distill_torch.py's table).

  --teacher K          cnn or bag (default bag)
  --epochs E           student epochs (default 15)
  --teacher-epochs T   teacher epochs (default 15; 5 with --teacher cnn)
  --repeats R          seeds (default 5)
  --bag M              the teacher is a bag of M reference MLPs (default 3; 0: one MLP)
  --temperatures L     train.distill_temperature candidates, comma-separated (default 2,4)
  --alphas L           train.distill_alpha candidates, comma-separated (default 0.5,0.9)

Timings are not the point here; the load average is printed all the same.
EOF2
}

epochs=15 teacher_epochs= repeats=5 bag=3 temperatures=2,4 alphas=0.5,0.9 teacher_kind=bag
while [ $# -gt 0 ]; do
  case "$1" in
  --teacher) teacher_kind=${2:?}; shift 2 ;;
  --epochs) epochs=${2:?}; shift 2 ;;
  --teacher-epochs) teacher_epochs=${2:?}; shift 2 ;;
  --repeats) repeats=${2:?}; shift 2 ;;
  --bag) bag=${2:?}; shift 2 ;;
  --temperatures) temperatures=${2:?}; shift 2 ;;
  --alphas) alphas=${2:?}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "distill: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$teacher_kind" =~ ^(cnn|bag)$ ]] || { echo "distill: --teacher takes cnn or bag, not '$teacher_kind'" >&2; exit 2; }
[ -n "$teacher_epochs" ] || teacher_epochs=$([ "$teacher_kind" = cnn ] && echo 5 || echo 15)
[ "$teacher_kind" = bag ] || bag=0
for v in "$epochs" "$teacher_epochs" "$repeats"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "distill: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$bag" =~ ^[0-9]+$ ]] || { echo "distill: --bag '$bag' is not a count" >&2; exit 2; }
for l in "$temperatures" "$alphas"; do
  [[ "$l" =~ ^[0-9.]+(,[0-9.]+)*$ ]] || { echo "distill: '$l' is not a comma-separated list of numbers" >&2; exit 2; }
done

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-bench.XXXXXX")
trap 'kill "${torch_pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# PyTorch runs its whole protocol on core 1 while pstrain runs on core 0.
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 1 "$python" scripts/bench/distill_torch.py \
  --epochs "$epochs" --teacher-epochs "$teacher_epochs" --bag "$bag" --temperatures "$temperatures" \
  --alphas "$alphas" --repeats "$repeats" $([ "$teacher_kind" = cnn ] && echo --cnn) >"$tmp/torch.json" 2>"$tmp/torch.log" &
torch_pid=$!

run() { # $1: out dir, then pstrain arguments
  local out=$1; shift
  OPENBLAS_NUM_THREADS=1 taskset -c 0 "$pstrain" "$@" --quiet --out "$tmp/$out" >"$tmp/$out.log" 2>&1 ||
    { cat "$tmp/$out.log" >&2; echo "distill: pstrain $1 failed" >&2; exit 1; }
}
# The validation rows must be rows the teacher never saw (a teacher that learnt them passes them
# on to a student that mimics it): the 60,000 training images are split as distill_torch.py
# splits them (10% per class, seed 0) into two IDX files; the teacher and the students train on
# the first, the (T, alpha) grid is scored on the second with pstrain eval.
"$python" - "$tmp/split" <<'EOF2'
import gzip, os, struct, sys
sys.path.insert(0, "scripts/bench")
import numpy as np
from fashion_torch import DATA_DIR, read_idx, stratified_holdout
out = sys.argv[1]
os.makedirs(out)
x, y = read_idx(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz")), read_idx(os.path.join(DATA_DIR, "train-labels-idx1-ubyte.gz"))
train_idx, val_idx = stratified_holdout(y, 0.1, 0)
for name, idx in (("fit", train_idx), ("holdout", val_idx)):
    idx = np.sort(np.asarray(idx))
    with gzip.open(os.path.join(out, name + "-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(idx), 28, 28) + x[idx].astype(np.uint8).tobytes())
    with gzip.open(os.path.join(out, name + "-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(idx)) + y[idx].astype(np.uint8).tobytes())
EOF2
common=(--set train.progress=none --set data.train="$tmp/split/fit-images-idx3-ubyte.gz" --set data.val_fraction=0)
if [ "$teacher_kind" = cnn ]; then
  run teacher train examples/fashion_cnn.yaml --set train.epochs="$teacher_epochs" "${common[@]}"
elif [ "$bag" -gt 0 ]; then
  run teacher bag examples/fashion_mlp.yaml --members "$bag" --set train.epochs="$teacher_epochs" "${common[@]}"
else
  run teacher train examples/fashion_mlp.yaml --set train.epochs="$teacher_epochs" "${common[@]}"
fi
student=(examples/fashion_mlp.yaml --set 'model.hidden=[64]' --set train.epochs="$epochs" "${common[@]}")
teacher=(--set train.teacher="$tmp/teacher/model.pst")
for t in ${temperatures//,/ }; do
  for a in ${alphas//,/ }; do
    run "choose-$t-$a" train "${student[@]}" --set seed=0 "${teacher[@]}" \
      --set train.distill_temperature="$t" --set train.distill_alpha="$a"
    "$pstrain" eval "$tmp/choose-$t-$a/model.pst" "$tmp/split/holdout-images-idx3-ubyte.gz" \
      --json "$tmp/choose-$t-$a/holdout.json" >/dev/null
  done
done
read -r temperature alpha < <("$python" - "$tmp" "$temperatures" "$alphas" <<'EOF2'
import json, os, sys
grid = [(t, a) for t in sys.argv[2].split(",") for a in sys.argv[3].split(",")]
val = {g: json.load(open(os.path.join(sys.argv[1], "choose-%s-%s" % g, "holdout.json")))["accuracy"] for g in grid}
print("pstrain validation accuracy (seed 0): " + ", ".join("T=%s a=%s %.4f" % (g + (v,)) for g, v in val.items()), file=sys.stderr)
print("%s %s" % max(grid, key=lambda g: (val[g], -float(g[0]), -float(g[1]))))
EOF2
)
echo "pstrain chose T=$temperature alpha=$alpha on validation"
for seed in $(seq 0 $((repeats - 1))); do
  run "alone-$seed" train "${student[@]}" --set seed="$seed"
  run "distilled-$seed" train "${student[@]}" --set seed="$seed" "${teacher[@]}" \
    --set train.distill_temperature="$temperature" --set train.distill_alpha="$alpha"
done
# table TOOL: TOOL's row of the final table (pstrain's printed while PyTorch may still run)
table() {
  "$python" - "$tmp" "$repeats" "$bag" "$temperature" "$alpha" "$1" "$teacher_kind" <<'EOF2'
import json, os, statistics, sys
tmp, repeats, bag, t, a, tool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
rep = lambda name: json.load(open(os.path.join(tmp, name, "report.json")))
name = "CNN (fashion_cnn)" if sys.argv[7] == "cnn" else "bag of %d MLPs" % bag if bag else "MLP 784-256-128-10"
if tool == "pstrain":
    teacher = rep("teacher")
    tacc = teacher["bag"]["test"]["accuracy"] if bag else teacher["test"]["accuracy"]
    al = [rep("alone-%d" % s)["test"]["accuracy"] for s in range(repeats)]
    di = [rep("distilled-%d" % s)["test"]["accuracy"] for s in range(repeats)]
    chosen = "%s, %s" % (t, a)
    print("\nstudent 784-64-10 on Fashion-MNIST, median test accuracy of %d seeds (spread: min..max)" % repeats)
    print("%-8s %-22s %-12s %8s %8s %9s %8s %8s  %s" % ("tool", "teacher", "T, alpha", "teacher", "alone",
                                                        "distilled", "gain", "wins", "distilled > alone"))
else:
    torch = json.load(open(os.path.join(tmp, "torch.json")))
    print("pytorch validation accuracy (seed 0): " + ", ".join("%s %.4f" % kv for kv in torch["grid"].items()))
    tacc = torch["teacher_accuracy"]
    al = [r["alone_accuracy"] for r in torch["seeds"]]
    di = [r["distilled_accuracy"] for r in torch["seeds"]]
    chosen = "%g, %g" % (torch["temperature"], torch["alpha"])
ma, md = statistics.median(al), statistics.median(di)
wins = sum(d > x for d, x in zip(di, al))
print("%-8s %-22s %-12s %8.4f %8.4f %9.4f %+8.4f %5d/%-2d  %s" % (tool, name, chosen, tacc, ma, md, md - ma, wins,
                                                           len(al), "met" if md > ma else "NOT met"))
print("%-8s alone %.4f..%.4f, distilled %.4f..%.4f; per-seed gains %s" % (
    "", min(al), max(al), min(di), max(di), " ".join("%+.4f" % (d - x) for d, x in zip(di, al))))
EOF2
}
table pstrain
wait "$torch_pid" || { cat "$tmp/torch.log" >&2; echo "distill: distill_torch.py failed" >&2; exit 1; }
table pytorch
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores, shared with other builds)"
