#!/usr/bin/env bash
# Benchmarks `pstrain cv` on CSV files with text columns against scikit-learn's
# ColumnTransformer(OneHotEncoder + StandardScaler) + LogisticRegression / Ridge.
#
# usage: scripts/bench/tabular_vs_sklearn.sh [--folds K] [--seed S]
#
# Files (tests/data): customers.csv (classification, churned: dates, text categories with
# quoted commas, yes/no, missing cells, a BOM and CRLF), rentals.csv (regression, rent: text
# city and heating, a date, true/false, NA cells) and grunfeld.csv (regression, invest: the
# Grunfeld (1950) investment panel of 11 firms, firm as text; public domain, from Debian's
# python3-statsmodels). Target: accuracy within 0.01, MSE within 5%.
#
# Settings, fixed before any result was seen, the same rule for every file:
#   pstrain: linear model (model.hidden=[]), standard scaler, Adam, batch 32,
#     train.patience=0 (no validation rows carved out: each fold trains on all its training
#     rows, as scikit-learn does), 200 epochs (classification, lr 0.01) or 300 (regression,
#     lr = 0.01 x the target's standard deviation: Adam moves a weight by about lr per step and
#     the targets are not scaled, so the step follows their scale; a first run at lr 1 left
#     rentals' rents, around 1500, under-fitted), and the penalty of the peer: train.l2 = 1/n_train for LogisticRegression(C=1)
#     (C * sum(loss) + ||w||^2/2 is n_train * C times mean(loss) + l2/2 ||w||^2) and
#     train.l2 = 2 * alpha / n_train for Ridge(alpha=1) (||y - Xw||^2 + alpha ||w||^2 is
#     n_train times mse + l2/2 ||w||^2 with mse = mean squared error), n_train = rows - rows/K.
#     Categories are one-hot encoded on each fold's training rows (data.max_categories 32).
#   scikit-learn: scripts/bench/tabular_sklearn.py (OneHotEncoder(handle_unknown="ignore"),
#     SimpleImputer(mean) + StandardScaler on numbers, dates split as pstrain splits them).
# The partitions differ (each tool's own seeded shuffle), so the table also scores
# scikit-learn on pstrain's own folds (from its oof_predictions.csv): the gap there is the
# trainers' alone; the verdict is taken on it. std is over folds (ddof 0).
set -euo pipefail
cd "$(dirname "$0")/../.."

folds=5
seed=0
while [ $# -gt 0 ]; do
  case "$1" in
  --folds) folds=${2:?--folds needs a value}; shift 2 ;;
  --seed) seed=${2:?--seed needs a value}; shift 2 ;;
  -h | --help) sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "tabular_vs_sklearn: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$folds" =~ ^[2-9][0-9]*$|^[1-9][0-9]+$ ]] || { echo "tabular_vs_sklearn: --folds must be >= 2" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "tabular_vs_sklearn: bad seed '$seed'" >&2; exit 2; }

python=/usr/bin/python3
"$python" -c 'import sklearn' 2>/dev/null || {
  echo "tabular_vs_sklearn: scikit-learn is missing (PST_SETUP_BENCH=1 bash scripts/setup.sh)" >&2
  exit 1
}
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  echo "tabular_vs_sklearn: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
cores=$(nproc) # before OMP_NUM_THREADS=1, which nproc obeys
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-tabular-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$pstrain" "$tmp/pstrain"
pstrain=$tmp/pstrain

# name file target task drop-columns
datasets=(
  "customers tests/data/customers.csv churned classification customer_id,note"
  "rentals tests/data/rentals.csv rent regression listing"
  "grunfeld tests/data/grunfeld.csv invest regression -"
)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $cores cores (a shared machine: other builds run beside this)"
printf '%-10s %-8s %-20s %-20s %-14s %-9s %s\n' file metric "pstrain cv" "sklearn cv" \
  "sklearn(same)" "gap" "target"
status=0
for spec in "${datasets[@]}"; do
  read -r name file target task drop <<<"$spec"
  rows=$("$python" -c "import csv,sys; print(sum(1 for r in csv.reader(open(sys.argv[1], encoding='utf-8-sig', newline='')) if any(c.strip() for c in r)) - 1)" "$file")
  n_train=$((rows - rows / folds))
  sets=(--set data.train="$file" --set data.target="$target" --set data.task="$task"
    --set data.scaler=standard --set model.hidden=[] --set optimizer.name=adam
    --set train.batch_size=32 --set train.patience=0 --set data.id_column= --set 'data.drop_columns=[]')
  if [ "$drop" != - ]; then sets+=(--set "data.drop_columns=[$drop]"); fi
  if [ "$task" = classification ]; then
    l2=$("$python" -c "print(1 / $n_train)")
    sets+=(--set optimizer.lr=0.01 --set train.epochs=200 --set train.l2="$l2" --stratified)
  else
    l2=$("$python" -c "print(2 * 1.0 / $n_train)")
    lr=$("$python" -c "import csv, statistics, sys; r = csv.DictReader(open(sys.argv[1], encoding='utf-8-sig', newline='')); print(round(0.01 * statistics.pstdev(float(x[sys.argv[2]]) for x in r), 3))" "$file" "$target")
    sets+=(--set optimizer.lr="$lr" --set train.epochs=300 --set train.l2="$l2")
  fi
  "$pstrain" cv examples/csv_tabular.yaml --folds "$folds" --set seed="$seed" "${sets[@]}" \
    --out "$tmp/$name" -q >"$tmp/$name.log" 2>&1 || { echo "$name: pstrain cv failed:"; tail -3 "$tmp/$name.log"; status=1; continue; }
  sk=$("$python" scripts/bench/tabular_sklearn.py "$file" --target "$target" --task "$task" \
    --drop "${drop/#-/}" --folds "$folds" --seed "$seed" --folds-from "$tmp/$name/oof_predictions.csv")
  "$python" - "$tmp/$name/report.json" "$sk" "$name" <<'PY' || status=1
import json, sys
rep = json.load(open(sys.argv[1]))["cv"]
sk = json.loads(sys.argv[2])
metric = sk["metric"]
p = rep[metric]
if metric == "accuracy":
    gap = p["mean"] - sk["same_folds_mean"]
    ok = abs(gap) <= 0.01
    gap_text = f"{gap:+.4f}"
    fmt = lambda m, s: f"{m:.4f} +- {s:.4f}"
else:
    gap = p["mean"] / sk["same_folds_mean"] - 1
    ok = abs(gap) <= 0.05
    gap_text = f"{100 * gap:+.2f}%"
    fmt = lambda m, s: f"{m:.1f} +- {s:.1f}"
same = f"{sk['same_folds_mean']:.4f}" if metric == "accuracy" else f"{sk['same_folds_mean']:.1f}"
print(f"{sys.argv[3]:<10} {metric:<8} {fmt(p['mean'], p['std']):<20} {fmt(sk['mean'], sk['std']):<20} "
      f"{same:<14} {gap_text:<9} {'met' if ok else 'NOT met'}")
sys.exit(0 if ok else 1)
PY
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gap: pstrain minus scikit-learn on the same folds (accuracy) or pstrain/scikit-learn - 1 (MSE);"
echo "target: |gap| <= 0.01 accuracy, <= 5% MSE"
exit $status
