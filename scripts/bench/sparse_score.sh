#!/usr/bin/env bash
# Benchmarks scoring with a sparse model file: `pstrain eval` and `pstrain predict` stream DATA in
# chunks, so their memory must not grow with the file beyond eval's 8 bytes a row (a probability
# and a label for the exact ROC-AUC), and predict's not at all.
#
# usage: scripts/bench/sparse_score.sh [--rows N] [--features F] [--nnz K] [--repeats R]
#
# Data: `pstrain datagen clicks` draws 200,000 training rows and N scoring rows (default
# 2,000,000) of K features (default 30) among F (default 2^20); a sparse_lr model (FTRL, one pass)
# is trained on the training rows and written to model.pst. The peer is the same command on a
# tenth of the scoring rows (the first N/10), in the same run: each command runs R times
# (default 3) on both files, pinned to one core (taskset), and the medians are printed: wall
# seconds, rows/s, peak RSS (GNU time's maximum resident set), and the RSS growth from the small
# file to the large one per added row. Targets printed beside: eval grows by at most 8 bytes a
# row plus 4 MiB, predict by at most 4 MiB, both far below the file's size; and eval on the
# training run's own test file reproduces the run's test log-loss and AUC. The machine is shared
# and its load average is printed; timings move with it.
set -euo pipefail
cd "$(dirname "$0")/../.."

rows=2000000
features=1048576
nnz=30
repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
  --rows) rows=${2:?--rows needs a value}; shift 2 ;;
  --features) features=${2:?--features needs a value}; shift 2 ;;
  --nnz) nnz=${2:?--nnz needs a value}; shift 2 ;;
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  -h | --help) sed -n '4,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "sparse_score: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
pstrain=${PSTRAIN:-build/cli/pstrain}
[ -x "$pstrain" ] || { echo "sparse_score: build pstrain first ($pstrain)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "sparse_score: needs GNU time (/usr/bin/time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$pstrain" datagen clicks --rows $((200000 + rows)) --features "$features" --nnz "$nnz" --seed 11 \
  --out "$work/all.svm" >/dev/null
head -n 200000 "$work/all.svm" >"$work/train.svm"
tail -n "$rows" "$work/all.svm" >"$work/big.svm"
head -n $((rows / 10)) "$work/big.svm" >"$work/small.svm"
rm "$work/all.svm"
cat >"$work/lr.yaml" <<YAML
name: score-bench
data: {train: $work/train.svm, test: $work/small.svm, format: libsvm, val_fraction: 0, cache: false}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1, ftrl_l1: 1}
train: {epochs: 1, batch_size: 64}
YAML
"$pstrain" train "$work/lr.yaml" --out "$work/run" -q >/dev/null
model=$work/run/model.pst

# measure NAME FILE ARGS...: R runs on one core; prints "median_seconds median_rss_kib"
measure() {
  local name=$1 file=$2
  shift 2
  for _ in $(seq 1 "$repeats"); do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" taskset -c 0 "$pstrain" "$@" >/dev/null
    cat "$work/time.txt"
  done | python3 -c "
import statistics, sys
v = [l.split() for l in sys.stdin if l.strip()]
print(statistics.median(float(a) for a, _ in v), statistics.median(int(b) for _, b in v))"
}
read -r eval_small_s eval_small_kib < <(measure eval "$work/small.svm" eval "$model" "$work/small.svm" --json "$work/small.json")
read -r eval_big_s eval_big_kib < <(measure eval "$work/big.svm" eval "$model" "$work/big.svm")
read -r pred_small_s pred_small_kib < <(measure predict "$work/small.svm" predict "$model" "$work/small.svm" -o "$work/p_small.txt")
read -r pred_big_s pred_big_kib < <(measure predict "$work/big.svm" predict "$model" "$work/big.svm" -o "$work/p_big.txt")

python3 - "$rows" "$(stat -c %s "$work/big.svm")" "$model" "$work/run/report.json" "$work/small.json" \
  "$eval_small_s" "$eval_small_kib" "$eval_big_s" "$eval_big_kib" \
  "$pred_small_s" "$pred_small_kib" "$pred_big_s" "$pred_big_kib" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(wc -l <"$work/p_big.txt")" <<'PY'
import json, os, sys
(rows, big_bytes, model, report, small_json, es, ek, eb, ebk, ps, pk, pb, pbk, load,
 pred_lines) = sys.argv[1:]
rows, big_bytes = int(rows), int(big_bytes)
small = rows // 10
added = rows - small
rep = json.load(open(report))
run = json.load(open(small_json))
print("sparse model scoring: %d rows (%.0f MB of LIBSVM), peer: the first %d rows" %
      (rows, big_bytes / 1e6, small))
print("model.pst: %d bytes, %s nonzero rows; load average %s (shared machine: timings move)" %
      (os.path.getsize(model), rep["sparse"]["nonzero_rows"], load))
def line(cmd, s_small, k_small, s_big, k_big, allowed_per_row):
    growth = (int(k_big) - int(k_small)) * 1024
    per_row = growth / added
    limit = allowed_per_row * added + 4 * 2**20
    print("%-8s small: %6.2fs %9.0f rows/s %7.1f MiB | big: %6.2fs %9.0f rows/s %7.1f MiB | "
          "growth %.2f bytes/row, %.1f MiB (target <= %.1f MiB: %s); big RSS / file %.3f" %
          (cmd, float(s_small), small / max(float(s_small), 1e-9), int(k_small) / 1024,
           float(s_big), rows / max(float(s_big), 1e-9), int(k_big) / 1024, per_row,
           growth / 2**20, limit / 2**20, "met" if growth <= limit else "NOT MET",
           int(k_big) * 1024 / big_bytes))
line("eval", es, ek, eb, ebk, 8)
line("predict", ps, pk, pb, pbk, 0)
print("predict wrote %s lines for %d rows: %s" % (pred_lines, rows, "met" if int(pred_lines) == rows else "NOT MET"))
same = abs(run["log_loss"] - rep["test"]["log_loss"]) <= 1e-6 and abs(run["roc_auc"] - rep["test"]["roc_auc"]) <= 1e-6
print("eval on the run's test file: log-loss %.9f AUC %.9f, the run's %.9f %.9f: %s" %
      (run["log_loss"], run["roc_auc"], rep["test"]["log_loss"], rep["test"]["roc_auc"],
       "met" if same else "NOT MET"))
PY
