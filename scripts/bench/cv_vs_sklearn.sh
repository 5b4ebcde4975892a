#!/usr/bin/env bash
# Benchmarks `pstrain cv` against scikit-learn: stratified k-fold accuracy and time on the test CSVs.
#
# usage: scripts/bench/cv_vs_sklearn.sh [--folds K] [--epochs E] [--seed S] [--datasets "iris wine"]
#
# For every classification CSV in tests/data (iris, wine, breast_cancer, digits; diabetes is a
# regression set) and two models, runs K-fold stratified CV (default 5) with pstrain and with
# scikit-learn (scripts/bench/cv_sklearn.py) and prints mean +- std accuracy over the folds,
# their difference, whether it is within the 0.01 target, and the time of each fold loop.
#
# Settings, fixed before any result was seen and the same for every dataset:
#   (a) logistic regression = examples/csv_logreg.yaml (standard scaler, softmax output, Adam
#       lr 0.01, batch 32) with train.patience=0 (no validation rows carved out: the model
#       trains on the whole fold, as scikit-learn does), train.epochs=E (default 200) and
#       train.l2=1/n_train, the penalty of scikit-learn's LogisticRegression(C=1.0): its
#       objective C * sum(loss) + ||w||^2/2 is n_train*C times pstrain's mean(loss) +
#       l2/2 ||w||^2. n_train = rows - rows/K, the mean fold training size (a rule, C = 1, not a
#       tuned value). Neither penalises the biases. For a binary target pstrain's 2-column
#       softmax spreads the logit difference over two weight vectors, which halves the effective
#       penalty; scikit-learn fits one sigmoid vector. scikit-learn: lbfgs, max_iter=10000.
#   (b) MLP = the same file with model.hidden=[64] (dense 64, ReLU, dense, softmax),
#       optimizer.lr=0.001, batch 32, train.epochs=E, train.patience=0 and
#       train.l2=3.125e-6 = alpha/batch: scikit-learn adds alpha/2 ||W||^2 / batch_size to each
#       mini-batch's mean loss. scikit-learn: MLPClassifier((64,), relu, adam, lr 1e-3,
#       batch_size 32, alpha 1e-4, max_iter=E with n_iter_no_change=E+1, i.e. exactly E epochs).
# Both standardise on each fold's training rows only, shuffle every epoch and run on one BLAS
# thread. The partitions differ (each tool's own seeded stratified shuffle, seed S), so a last
# column also scores scikit-learn on pstrain's own folds (from its oof_predictions.csv): the
# difference there is the trainers' alone, without the partition's noise. std is over folds,
# ddof=0 in both. Times are the fold loops (fit + score of every fold, as the report's
# "seconds"), not process start-up or the CSV read.
set -euo pipefail
cd "$(dirname "$0")/../.."

folds=5
epochs=200
seed=0
datasets="iris wine breast_cancer digits"
while [ $# -gt 0 ]; do
  case "$1" in
  --folds) folds=${2:?--folds needs a value}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --seed) seed=${2:?--seed needs a value}; shift 2 ;;
  --datasets) datasets=${2:?--datasets needs a value}; shift 2 ;;
  -h | --help) sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "cv_vs_sklearn: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$folds" "$epochs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "cv_vs_sklearn: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "cv_vs_sklearn: seed '$seed' is not a non-negative integer" >&2; exit 2; }

python=/usr/bin/python3
"$python" -c 'import sklearn' 2>/dev/null || {
  echo "cv_vs_sklearn: scikit-learn is missing (apt-get install python3-sklearn)" >&2
  exit 1
}
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
# Built on every run unless PSTRAIN names a binary (a no-op when up to date; a failed build
# stops the script): an old binary would time other code than the tree's.
if [ -z "${PSTRAIN:-}" ]; then
  echo "cv_vs_sklearn: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
cores=$(nproc) # before OMP_NUM_THREADS=1, which nproc obeys
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-cv-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# A private copy of the binary: a rebuild of the shared build directory mid-run cannot touch it.
cp "$pstrain" "$tmp/pstrain"
pstrain=$tmp/pstrain
"$pstrain" --help >/dev/null || { echo "$0: $pstrain does not run" >&2; exit 1; }
results=$tmp/results.jsonl

pstrain_settings() { # $1 model, $2 rows: prints the --set options of that model
  case "$1" in
  logreg)
    local l2
    l2=$("$python" -c 'import sys; n, k = int(sys.argv[1]), int(sys.argv[2]); print(repr(1.0 / (n - n / k)))' "$2" "$folds")
    echo "--set train.l2=$l2"
    ;;
  mlp) echo "--set model.hidden=[64] --set optimizer.lr=0.001 --set train.l2=3.125e-6" ;;
  esac
}

bench_one() { # $1 dataset, $2 model: appends one JSON line to $results
  local csv=tests/data/$1.csv out=$tmp/$1-$2 rows settings
  rows=$(($(wc -l <"$csv") - 1))
  read -r -a settings <<<"$(pstrain_settings "$2" "$rows")"
  if ! "$pstrain" cv examples/csv_logreg.yaml --folds "$folds" --stratified --out "$out" -q \
    --set data.train="$csv" --set seed="$seed" --set train.patience=0 --set train.epochs="$epochs" \
    --set train.batch_size=32 --set train.progress=none "${settings[@]}" >"$out.log" 2>&1; then
    cat "$out.log" >&2
    echo "cv_vs_sklearn: pstrain cv failed on $1 ($2)" >&2
    exit 1
  fi
  local sk
  sk=$("$python" scripts/bench/cv_sklearn.py --data "$csv" --model "$2" --folds "$folds" \
    --seed "$seed" --epochs "$epochs" --folds-from "$out/oof_predictions.csv")
  "$python" - "$1" "$out/report.json" "$sk" "${settings[*]}" >>"$results" <<'EOF'
import json, sys
name, report, sk, settings = sys.argv[1], json.load(open(sys.argv[2])), json.loads(sys.argv[3]), sys.argv[4]
acc = report["cv"]["accuracy"]
sk.update({"dataset": name, "settings": settings,
           "pstrain": {"values": acc["values"], "mean": acc["mean"], "std": acc["std"],
                       "seconds": report["seconds"],
                       "fit_mean": report["cv"]["fit_seconds"]["mean"]}})
print(json.dumps(sk))
EOF
  tail -n 1 "$results" | "$python" -c 'import json, sys
r = json.loads(sys.stdin.read())
print("  %-13s %-6s pstrain %.4f (%.2f s)  scikit-learn %.4f (%.2f s)" % (r["dataset"], r["model"],
      r["pstrain"]["mean"], r["pstrain"]["seconds"], r["stratified_kfold"]["mean"],
      r["stratified_kfold"]["seconds"]), file=sys.stderr)'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "cv_vs_sklearn: $folds folds, $epochs epochs, seed $seed; load average $load_before on $cores cores" >&2
for d in $datasets; do
  [ -f "tests/data/$d.csv" ] || { echo "cv_vs_sklearn: no tests/data/$d.csv" >&2; exit 2; }
  for m in logreg mlp; do
    bench_one "$d" "$m"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$results" "$folds" "$epochs" "$seed" "$load_before" "$load_after" "$cores" <<'EOF'
import json, sys

path, folds, epochs, seed, load_before, load_after, cores = sys.argv[1:8]
runs = [json.loads(line) for line in open(path)]
TARGET = 0.01
MODEL = {"logreg": "logreg", "mlp": "MLP 64"}


def ms(s):
    return "%.4f+-%.4f" % (s["mean"], s["std"])


print()
print("%s-fold stratified CV accuracy, pstrain vs scikit-learn %s; %s epochs, batch 32, seed %s, "
      "one BLAS thread each" % (folds, runs[0]["sklearn"], epochs, seed))
print()
print("%-13s %-7s %16s %16s %8s %-7s %9s %9s %8s %9s" % (
    "dataset", "model", "pstrain", "scikit-learn", "diff", "<=0.01", "pstrain s", "sklearn s",
    "speedup", "same-fold"))
missed = []
for r in runs:
    p, s, same = r["pstrain"], r["stratified_kfold"], r["pstrain_folds"]
    diff = p["mean"] - s["mean"]
    ok = abs(diff) <= TARGET + 1e-12
    if not ok:
        missed.append("%s %s" % (r["dataset"], MODEL[r["model"]]))
    print("%-13s %-7s %16s %16s %+8.4f %-7s %9.3f %9.3f %7.1fx %+9.4f" % (
        r["dataset"], MODEL[r["model"]], ms(p), ms(s), diff, "yes" if ok else "NO",
        p["seconds"], s["seconds"], s["seconds"] / p["seconds"], p["mean"] - same["mean"]))
print()
print("diff      = pstrain mean - scikit-learn mean (scikit-learn on StratifiedKFold(shuffle=True, "
      "random_state=%s)); target |diff| <= %.2f" % (seed, TARGET))
print("same-fold = pstrain mean - scikit-learn mean on pstrain's own folds (same train/test rows)")
print("one test row = 1/rows of a mean accuracy: %s" % ", ".join(
    "%s %.4f" % (r["dataset"], 1 / r["rows"]) for r in runs if r["model"] == "logreg"))
print("s         = seconds of the fold loop (fit + score of all %s folds); speedup = sklearn s / "
      "pstrain s" % folds)
l2s = ", ".join("%s %.3g" % (r["dataset"], float(r["settings"].split("=")[1]))
                for r in runs if r["model"] == "logreg")
mlp = next((r["settings"] for r in runs if r["model"] == "mlp"), "-").replace("--set ", "")
print("pstrain: examples/csv_logreg.yaml with train.patience=0 train.epochs=%s train.batch_size=32;" % epochs)
print("  logreg: Adam lr 0.01, train.l2 = 1/(mean fold training rows) = scikit-learn's C=1.0: %s" % l2s)
print("  MLP:    %s (Adam, ReLU)" % mlp)
print("target met on %d of %d; missed: %s" % (len(runs) - len(missed), len(runs),
                                              ", ".join(missed) if missed else "none"))
print("load average: %s before, %s after, %s cores (other work on the machine slows both tools)"
      % (load_before, load_after, cores))
EOF
