#!/usr/bin/env bash
# DP-SGD (train.dp.*) on a real CSV against the same DP-SGD in PyTorch, and its epsilon per epoch
# against an accountant written apart from pstrain's.
#
# usage: scripts/bench/dpsgd.sh [--data CSV | --fashion N] [--epochs E] [--seeds K] [--eps LIST]
#                              [--quick]
#
# --fashion N: the first N Fashion-MNIST training images (from /usr/share/datasets/fashion-mnist)
# and its 10,000 test images instead of a CSV split, written as CSV for both trainers.
# The CSV (default /work/shared/data/digits.csv: 1797 8x8 images, 10 classes) is split 75/25 once
# (seed 0). For each target epsilon in LIST (default 1,3,8) and without privacy, pstrain trains an
# MLP (64 hidden relu units, Adam lr 0.005, expected batch 64, E epochs, default 30) on the training
# rows for seeds 0..K-1 (default 3): DP-SGD with clip 1, delta 1e-5, Poisson-sampled batches at
# q = 64 / training rows, and the noise multiplier pstrain calibrates to spend exactly the target in
# E epochs (train.dp.noise 0). The peer, scripts/bench/dpsgd_torch.py under /usr/bin/python3, runs
# the same DP-SGD in PyTorch (per-example clipping by hand, checked against a loop of one-example
# backward passes, Poisson batches, the same sigma, clip, divisor, Adam and schedule); without
# privacy both train on shuffled batches. Every run is pinned to one core with taskset.
#
# Columns: sigma; pstrain's epsilon after the last epoch (metrics.jsonl) and the one
# scripts/bench/dp_rdp.py computes for the same (q, sigma, steps) in mpmath from the mechanism's
# definition; the largest difference over all epochs; the median test accuracy and training
# seconds of pstrain and PyTorch. Then epsilon after selected epochs, side by side.
# The machine is shared: the load average is printed before and after; accuracy is not affected
# by load, seconds are.
set -euo pipefail
cd "$(dirname "$0")/../.."

data=/work/shared/data/digits.csv
epochs=30
seeds=3
eps=1,3,8
fashion=
while [ $# -gt 0 ]; do
  case "$1" in
  --data) data=${2:?--data needs a file}; shift 2 ;;
  --fashion) fashion=${2:?--fashion needs a row count}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --seeds) seeds=${2:?--seeds needs a value}; shift 2 ;;
  --eps) eps=${2:?--eps needs a list}; shift 2 ;;
  --quick) epochs=5; seeds=1; shift ;;
  -h | --help) sed -n '4,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "dpsgd: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -r "$data" ] || { echo "dpsgd: cannot read $data" >&2; exit 1; }
/usr/bin/python3 -c "import torch, numpy, mpmath" 2>/dev/null ||
  { echo "dpsgd: /usr/bin/python3 lacks torch, numpy or mpmath (PST_SETUP_BENCH=1 scripts/setup.sh)" >&2; exit 1; }

build=${BUILD_DIR:-build}
if [ -z "${PSTRAIN:-}" ]; then
  cmake --build "$build" -j2 --target pstrain >/dev/null
  PSTRAIN=$build/cli/pstrain
fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
source=(--data "$data")
[ -z "$fashion" ] || source=(--fashion-rows "$fashion")
/usr/bin/python3 scripts/bench/dpsgd_bench.py --pstrain "$PSTRAIN" "${source[@]}" --work "$work" \
  --epochs "$epochs" --seeds "$seeds" --eps "$eps" --cpu "${PST_BENCH_CPU:-0}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
