#!/usr/bin/env bash
# Benchmarks `pstrain explain` against scikit-learn on the same fitted models: permutation
# importance rankings (Spearman's rho, target >= 0.9) and, for linear models, pstrain's exact
# contributions and Kernel SHAP against the exact values computed by scripts/bench/explain_sklearn.py.
#
# usage: scripts/bench/explain_vs_sklearn.sh [--repeats R] [--seed S]
#
# Data (/work/shared/data, or tests/data): breast_cancer.csv (569 rows, 30 numeric columns,
# binary) with a logistic regression and a 30-16-2 ReLU MLP, wine.csv (178 rows, 13 columns,
# 3 classes) with a softmax regression, diabetes.csv (442 rows, 10 columns) with a linear
# regression. pstrain trains each model and exports it to ONNX; the scikit-learn
# pipeline (SimpleImputer + StandardScaler + LogisticRegression / LinearRegression /
# MLPClassifier) gets the exported numbers as its fitted attributes, and the largest gap between
# its predictions and `pstrain predict` is printed first, so that both sides score one model.
# Both sides use the whole file, the same metric (log-loss, or MSE) and R repeats; their shuffles
# differ (each its own generator). Timing: each side pinned to core 0 (taskset), median of 3;
# pstrain's figure is the whole `pstrain explain` process (loading included, one attributed
# row), scikit-learn's the permutation_importance call alone.
set -euo pipefail
cd "$(dirname "$0")/../.."

repeats=10
seed=0
while [ $# -gt 0 ]; do
  case "$1" in
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  --seed) seed=${2:?--seed needs a value}; shift 2 ;;
  -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "explain_vs_sklearn: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "explain_vs_sklearn: --repeats must be >= 1" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "explain_vs_sklearn: bad seed '$seed'" >&2; exit 2; }

python=/usr/bin/python3
"$python" -c 'import sklearn, scipy, onnx' 2>/dev/null || {
  echo "explain_vs_sklearn: scikit-learn, scipy or onnx is missing (PST_SETUP_BENCH=1 bash scripts/setup.sh)" >&2
  exit 1
}
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  echo "explain_vs_sklearn: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
cores=$(nproc)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-explain-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
data_dir=/work/shared/data
[ -f "$data_dir/breast_cancer.csv" ] || data_dir=tests/data

# name file config kind hidden
models=(
  "bc_logistic breast_cancer.csv examples/csv_logreg.yaml logistic []"
  "bc_mlp breast_cancer.csv examples/csv_logreg.yaml mlp [16]"
  "wine_logistic wine.csv examples/csv_logreg.yaml logistic []"
  "diabetes_linear diabetes.csv examples/csv_regression.yaml linear []"
)
# median_seconds CMD...: the median wall time and CPU time (user + system) of three runs of CMD
# pinned to core 0
median_seconds() {
  "$python" - "$@" <<'PY'
import resource, statistics, subprocess, sys, time
t, cpu = [], []
for _ in range(3):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(["taskset", "-c", "0"] + sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
    t.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
print(f"{statistics.median(t):.3f},{statistics.median(cpu):.3f}")
PY
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $cores cores (a shared machine: other builds run beside this)"
status=0
for spec in "${models[@]}"; do
  read -r name file config kind hidden <<<"$spec"
  d=$tmp/$name
  file=$data_dir/$file
  rows=$("$python" -c "import csv,sys; print(sum(1 for _ in csv.DictReader(open(sys.argv[1]))))" "$file")
  "$pstrain" train "$config" --set data.train="$file" --set data.target=target --set seed="$seed" \
    --set "model.hidden=$hidden" --set train.epochs=100 --out "$d" -q >"$d.log" 2>&1 ||
    { echo "$name: pstrain train failed"; tail -3 "$d.log"; status=1; continue; }
  "$pstrain" export "$d/model.pst" -o "$d/model.onnx" >/dev/null
  "$pstrain" predict "$d/model.pst" "$file" -o "$d/predictions.csv"
  "$pstrain" explain "$d/model.pst" "$file" -o "$d" --repeats "$repeats" --seed "$seed" --rows 1 \
    >"$d/explain.out"
  pst_s=$(median_seconds "$pstrain" explain "$d/model.pst" "$file" -o "$d/timed" \
    --repeats "$repeats" --seed "$seed" --rows 1)
  if [ "$kind" != mlp ]; then
    "$pstrain" explain "$d/model.pst" "$file" -o "$d/lin" --method linear --rows 100 --repeats 1 \
      >"$d/lin.out"
    "$pstrain" explain "$d/model.pst" "$file" -o "$d/ks" --method kernel_shap --rows 20 \
      --background "$rows" --repeats 1 --seed "$seed" >"$d/ks.out"
    cp "$d/lin/attributions.csv" "$d/linear.csv"
    cp "$d/ks/attributions.csv" "$d/kernel.csv"
  fi
  sk=$(taskset -c 0 "$python" scripts/bench/explain_sklearn.py "$d/model.onnx" "$file" target "$d" \
    --kind "$kind" --repeats "$repeats" --seed "$seed" | tail -1)
  "$python" - "$name" "$sk" "$pst_s" "$d" <<'PY' || status=1
import json, re, sys
name, r, d = sys.argv[1], json.loads(sys.argv[2]), sys.argv[4]
pst_s, pst_cpu = (float(v) for v in sys.argv[3].split(","))
metric = "log-loss" if r["scoring"] == "neg_log_loss" else "mse"
print(f"\n== {name}: permutation importance, rise in {metric} (both sides on one fitted model: "
      f"largest prediction gap {r['pred_diff']:.2e})")
print(f"  {'rank':>4}  {'pstrain':<26} {'mean':>10} {'std':>9}   {'scikit-learn':<26} {'mean':>10} {'std':>9}")
for i, (p, s) in enumerate(zip(r["pstrain"], r["sklearn"])):
    print(f"  {i + 1:>4}  {p[0]:<26.26} {p[1]:>10.4g} {p[2]:>9.2g}   {s[0]:<26.26} {s[1]:>10.4g} {s[2]:>9.2g}")
ok = r["rho"] >= 0.9
print(f"  Spearman rho {r['rho']:.4f} (target >= 0.9: {'met' if ok else 'NOT met'})")
print(f"  time: pstrain explain {pst_s:.3f} s wall, {pst_cpu:.3f} s CPU (whole process, files "
      f"fsynced), scikit-learn permutation_importance {r['sklearn_seconds']:.3f} s wall (median of "
      f"3, core 0); scikit-learn / pstrain wall {r['sklearn_seconds'] / pst_s:.1f}x")
for key, what, out in (("linear_diff", "exact contributions (--method linear, baseline = training mean)", "lin.out"),
                       ("kernel_diff", "Kernel SHAP (every row as background) vs exact Shapley values", "ks.out")):
    if key in r:
        gap, scale, n = r[key]
        worst = re.search(r"worst error (\S+)", open(f"{d}/{out}").read()).group(1)
        sampled = "sampled coalitions" in open(f"{d}/{out}").read()
        print(f"  {what}: {n} rows, max |pstrain - exact| {gap:.2e} (largest |value| {scale:.3g})"
              f"{'; coalitions sampled' if sampled else ''}; completeness worst error {worst}")
sys.exit(0 if ok else 1)
PY
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
