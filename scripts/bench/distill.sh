#!/usr/bin/env bash
# Benchmarks knowledge distillation on Fashion-MNIST: a small student alone vs distilled from the reference MLP, against PyTorch.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF2'
usage: scripts/bench/distill.sh [--epochs E] [--teacher-epochs T] [--repeats R] [--bag M]
                               [--temperatures LIST] [--alpha A]

Trains the teacher (examples/fashion_mlp.yaml, 784-256-128-10; with --bag M a bag of M of them,
'pstrain bag'), then for each of R seeds the student 784-64-10 alone and distilled from the
teacher (train.teacher), the same epochs and seed for both; and the same in PyTorch
(scripts/bench/distill_torch.py, its own teacher). Prints the median test accuracy of each, and
whether the distilled student beats the student alone. The temperature is chosen on validation:
seed 0's distilled student is trained at each temperature of LIST and the one of the best
validation accuracy is used for every seed, by both tools.

  --epochs E           student epochs (default 5)
  --teacher-epochs T   teacher epochs (default 5)
  --repeats R          seeds (default 3)
  --bag M              pstrain's teacher is a bag of M reference MLPs (default 0: one MLP)
  --temperatures L     train.distill_temperature candidates, comma-separated (default 2,3,4)
  --alpha A            train.distill_alpha (default 0.5)

Timings are not the point here; the load average is printed all the same.
EOF2
}

epochs=5 teacher_epochs=5 repeats=3 bag=0 temperatures=2,3,4 alpha=0.5
while [ $# -gt 0 ]; do
  case "$1" in
  --epochs) epochs=${2:?}; shift 2 ;;
  --teacher-epochs) teacher_epochs=${2:?}; shift 2 ;;
  --repeats) repeats=${2:?}; shift 2 ;;
  --bag) bag=${2:?}; shift 2 ;;
  --temperatures) temperatures=${2:?}; shift 2 ;;
  --alpha) alpha=${2:?}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "distill: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$epochs" "$teacher_epochs" "$repeats"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "distill: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$bag" =~ ^[0-9]+$ ]] || { echo "distill: --bag '$bag' is not a count" >&2; exit 2; }

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

run() { # $1: out dir, then pstrain arguments
  local out=$1; shift
  OPENBLAS_NUM_THREADS=1 taskset -c 0 "$pstrain" "$@" --quiet --out "$tmp/$out" >"$tmp/$out.log" 2>&1 ||
    { cat "$tmp/$out.log" >&2; echo "distill: pstrain $1 failed" >&2; exit 1; }
}
common=(--set train.progress=none)
if [ "$bag" -gt 0 ]; then
  run teacher bag examples/fashion_mlp.yaml --members "$bag" --set train.epochs="$teacher_epochs" "${common[@]}"
else
  run teacher train examples/fashion_mlp.yaml --set train.epochs="$teacher_epochs" "${common[@]}"
fi
student=(examples/fashion_mlp.yaml --set 'model.hidden=[64]' --set train.epochs="$epochs" "${common[@]}")
distilled=(--set train.teacher="$tmp/teacher/model.pst" --set train.distill_alpha="$alpha")
for t in ${temperatures//,/ }; do
  run "choose-$t" train "${student[@]}" --set seed=0 "${distilled[@]}" --set train.distill_temperature="$t"
done
temperature=$("$python" - "$tmp" "$temperatures" <<'EOF2'
import json, os, sys
ts = sys.argv[2].split(",")
val = {t: json.load(open(os.path.join(sys.argv[1], "choose-" + t, "report.json")))["val"]["accuracy"] for t in ts}
print("temperature on validation (seed 0): " + ", ".join("T=%s %.4f" % kv for kv in val.items()), file=sys.stderr)
print(max(ts, key=lambda t: (val[t], -float(t))))
EOF2
)
echo "chosen temperature: $temperature"
for seed in $(seq 0 $((repeats - 1))); do
  run "alone-$seed" train "${student[@]}" --set seed="$seed"
  run "distilled-$seed" train "${student[@]}" --set seed="$seed" "${distilled[@]}" \
    --set train.distill_temperature="$temperature"
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 1 "$python" scripts/bench/distill_torch.py --seed "$seed" \
    --epochs "$epochs" --teacher-epochs "$teacher_epochs" --temperature "$temperature" --alpha "$alpha" >>"$tmp/torch.jsonl"
done

"$python" - "$tmp" "$repeats" "$bag" "$temperature" "$alpha" <<'EOF2'
import json, os, statistics, sys
tmp, repeats, bag, t, a = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rep = lambda name: json.load(open(os.path.join(tmp, name, "report.json")))
teacher = rep("teacher")
teacher_acc = teacher["bag"]["test"]["accuracy"] if bag else teacher["test"]["accuracy"]
alone = [rep("alone-%d" % s)["test"]["accuracy"] for s in range(repeats)]
dist = [rep("distilled-%d" % s)["test"]["accuracy"] for s in range(repeats)]
torch = [json.loads(l) for l in open(os.path.join(tmp, "torch.jsonl"))]
ta = [r["alone_accuracy"] for r in torch]
td = [r["distilled_accuracy"] for r in torch]
print("\nstudent 784-64-10 on Fashion-MNIST, T=%s alpha=%s, median test accuracy of %d seeds" % (t, a, repeats))
print("%-8s %-26s %8s %8s %9s %8s  %s" % ("tool", "teacher", "teacher", "alone", "distilled", "gain", "distilled > alone"))
name = "bag of %d MLPs" % bag if bag else "MLP 784-256-128-10"
ma, md = statistics.median(alone), statistics.median(dist)
print("%-8s %-26s %8.4f %8.4f %9.4f %+8.4f  %s" % ("pstrain", name, teacher_acc, ma, md, md - ma, "yes" if md > ma else "NO"))
tt = statistics.median(r["teacher_accuracy"] for r in torch)
ma, md = statistics.median(ta), statistics.median(td)
print("%-8s %-26s %8.4f %8.4f %9.4f %+8.4f  %s" % ("pytorch", "MLP 784-256-128-10", tt, ma, md, md - ma, "yes" if md > ma else "NO"))
print("per seed pstrain alone %s distilled %s; pytorch alone %s distilled %s" % (
    ["%.4f" % v for v in alone], ["%.4f" % v for v in dist], ["%.4f" % v for v in ta], ["%.4f" % v for v in td]))
EOF2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores, shared with other builds)"
