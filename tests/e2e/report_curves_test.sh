#!/usr/bin/env bash
# End-to-end: the ROC, precision-recall and reliability curves of a trained classifier. The points
# report.json keeps are checked against scikit-learn on the run's own test_predictions.csv
# (roc_curve without dropping points, precision_recall_curve, average_precision_score,
# calibration_curve, brier_score_loss; skipped with a message when scikit-learn is missing), the
# AUC against the run's roc_auc bit for bit, and the page for its plots and the printed figures,
# for a binary and a three-class task, a binary cv's folds and a sparse click model; --png writes each plot of the page as a PNG (checked for
# size and content with pngcheck.py); bad curve data is refused naming the file.
# usage: report_curves_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
cfg=$examples/csv_logreg.yaml
py=/usr/bin/python3

"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=30 \
  --out "$work/bin" -q >/dev/null 2>&1 || fail "binary train"
"$pstrain" train "$cfg" --set data.train="$data/wine.csv" --set train.epochs=30 \
  --set output.test_predictions=5 --out "$work/multi" -q >/dev/null 2>&1 || fail "three-class train"

check "the AUC stored with the curves is the run's roc_auc, bit for bit" \
  "$(jexpr "$work/bin/report.json" "d['test']['curves']['classes'][0]['auc'] == d['test']['roc_auc'] and d['val']['curves']['classes'][0]['auc'] == d['val']['roc_auc']")"
check "test_predictions.csv holds every test row (under the cap)" \
  "$(jexpr "$work/bin/report.json" "sum(1 for _ in open('$work/bin/test_predictions.csv')) - 1 == d['test']['n']")"
check "output.test_predictions caps the file" \
  "$([ "$(wc -l <"$work/multi/test_predictions.csv")" = 6 ] && head -1 "$work/multi/test_predictions.csv" | grep -qx 'label,p0,p1,p2' && echo True)"

# --- against scikit-learn ------------------------------------------------------------------------
if "$py" -c "import sklearn" 2>/dev/null; then
  out=$("$py" - "$work/bin" <<'PY'
import csv, json, sys
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (average_precision_score, brier_score_loss, precision_recall_curve,
                             roc_auc_score, roc_curve)
run = sys.argv[1]
rows = list(csv.DictReader(open(run + "/test_predictions.csv")))
y = np.array([float(r["label"]) for r in rows])
p = np.array([float(r["p1"]) for r in rows], dtype=np.float32)
c = json.load(open(run + "/report.json"))["test"]
cur = c["curves"]
k = cur["classes"][0]
assert not cur["thinned"], "a small test set keeps every point"
fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
assert np.allclose(k["roc"]["fpr"], fpr, rtol=0, atol=1e-12), (k["roc"]["fpr"], fpr)
assert np.allclose(k["roc"]["tpr"], tpr, rtol=0, atol=1e-12)
prec, rec, _ = precision_recall_curve(y, p)
assert np.allclose(k["pr"]["recall"], rec[::-1], rtol=0, atol=1e-12), (k["pr"]["recall"], rec[::-1])
assert np.allclose(k["pr"]["precision"], prec[::-1], rtol=0, atol=1e-12)
assert abs(k["average_precision"] - average_precision_score(y, p)) < 1e-12
assert abs(c["roc_auc"] - roc_auc_score(y, p)) < 1e-12
true, pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
cal = cur["calibration"]
seen = [i for i, n in enumerate(cal["count"]) if n > 0]
assert np.allclose([cal["observed"][i] for i in seen], true, rtol=0, atol=1e-12)
assert np.allclose([cal["mean_pred"][i] for i in seen], pred, rtol=0, atol=1e-6)
assert abs(cal["brier"] - brier_score_loss(y, p)) < 1e-6
counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
ece = sum(n / len(p) * abs(true[j] - pred[j]) for j, n in enumerate(m for m in counts if m > 0))
assert abs(cal["ece"] - ece) < 1e-6, (cal["ece"], ece)
print("True", len(fpr), len(rec))
PY
)
  check "binary curves equal scikit-learn's on test_predictions.csv (${out#True })" "$(echo "$out" | tail -1 | cut -d' ' -f1)"
else
  echo "skip: scikit-learn (python3-sklearn) is not installed; curves not compared with it"
fi

# --- the pages -----------------------------------------------------------------------------------
"$pstrain" report "$work/bin" -o "$work/bin.html" >/dev/null 2>&1 || fail "report binary"
"$pstrain" report "$work/multi" -o "$work/multi.html" >/dev/null 2>&1 || fail "report three-class"
page() {
  "$py" - "$1" "$2" "$3" <<'PY'
import json, re, sys
s = open(sys.argv[1]).read()
d = json.load(open(sys.argv[2]))
svgs = re.findall(r'<svg class="plot.*?</svg>', s, re.S)
title = lambda v: re.search(r'font-weight="bold">([^<]*)<', v).group(1)
plot = {title(v): v for v in svgs}
legend = lambda t: re.findall(r'font-size="11">([^<]*)</text>', plot[t])
print(eval(sys.argv[3]))
PY
}
check "binary page: ROC, PR and reliability plots with the run's AUC, AP, Brier and ECE" \
  "$(page "$work/bin.html" "$work/bin/report.json" "'class 1 AUC %.4f' % d['test']['roc_auc'] in legend('ROC curve (test)') and 'class 1 AP %.4f' % d['test']['curves']['classes'][0]['average_precision'] in legend('Precision-recall curve (test)') and ('Reliability (test): Brier %.4f, ECE %.4f' % (d['test']['curves']['calibration']['brier'], d['test']['curves']['calibration']['ece'])) in plot and plot['ROC curve (test)'].count('<polyline') == 2")"
check "three-class page: a curve per class, the macro average drawn thick, AUCs printed" \
  "$(page "$work/multi.html" "$work/multi/report.json" "all('class %d AUC %.4f' % (c['class'], c['auc']) in legend('ROC curve (test)') for c in d['test']['curves']['classes']) and 'macro AUC %.4f' % d['test']['curves']['macro']['auc'] in legend('ROC curve (test)') and plot['ROC curve (test)'].count('<polyline') == 5 and plot['Precision-recall curve (test)'].count('<polyline') == 4 and plot['ROC curve (test)'].count('stroke-width=\"3.2\"') == 1 and 'top-class probability' in plot['Reliability (test): Brier %.4f, ECE %.4f' % (d['test']['curves']['calibration']['brier'], d['test']['curves']['calibration']['ece'])]")"
check "macro AUC is the mean of the classes' AUCs" \
  "$(jexpr "$work/multi/report.json" "abs(d['test']['curves']['macro']['auc'] - sum(c['auc'] for c in d['test']['curves']['classes']) / 3) < 1e-12")"

# --- the same plots as PNG files ------------------------------------------------------------------
if "$pstrain" report "$work/bin" -o "$work/bin2.html" --png "$work/png" >"$work/png.out" 2>&1; then
  out=$("$py" - "$work/bin2.html" "$work/png" "$(dirname "$0")/pngcheck.py" <<'PY'
import json, os, re, subprocess, sys
page, d, check = sys.argv[1:4]
svgs = re.findall(r'<svg class="plot[^>]*width="(\d+)" height="(\d+)"', open(page).read())
files = sorted(os.listdir(d))
assert len(files) == len(svgs) >= 8, (files, len(svgs))
assert files[5] == "06-roc-curve-test.png" and files[7] == "08-reliability-test.png", files
for f, (w, h) in zip(files, svgs):
    s = json.loads(subprocess.run([sys.executable, check, os.path.join(d, f), "#1f77b4"],
                                  capture_output=True, text=True, check=True).stdout)
    assert (s["width"], s["height"]) == (2 * int(w), 2 * int(h)), (f, s, w, h)
    assert 0.01 < s["non_white"] < 0.9 and s["colours"] > 20, (f, s)
    assert "confusion" in f or s["hits"][0] > 100, (f, s)  # the first series' blue is drawn
print("True", len(files))
PY
)
  check "--png: a PNG per plot of the page, twice its size, drawn (${out#True })" "$(echo "$out" | tail -1 | cut -d' ' -f1)"
  grep -q "^png: $(ls "$work/png" | wc -l) plots in $work/png" "$work/png.out" && pass "--png says what it wrote" || fail "--png output: $(cat "$work/png.out")"
elif grep -q "built without librsvg" "$work/png.out"; then
  echo "skip: this pstrain was built without librsvg; --png refused as it should: $(cat "$work/png.out")"
else
  fail "--png: $(cat "$work/png.out")"
fi
touch "$work/afile"
"$pstrain" report "$work/bin" -o "$work/bin3.html" --png "$work/afile" >/dev/null 2>"$work/png.err"
rc=$?
check "--png onto a file: exit 1 naming it" "$([ $rc = 1 ] && grep -qE "$work/afile: exists and is not a directory|built without librsvg" "$work/png.err" && echo True || echo "exit $rc: $(cat "$work/png.err")")"
"$pstrain" report "$work/bin" --png >/dev/null 2>&1
check "--png without a directory: usage error" "$([ $? = 2 ] && echo True || echo False)"

# --- cv: each fold's out-of-fold curves ----------------------------------------------------------
"$pstrain" cv "$cfg" --set data.train="$data/breast_cancer.csv" --folds 4 --out "$work/cv" -q >/dev/null 2>&1 &&
  "$pstrain" report "$work/cv" -o "$work/cv.html" >/dev/null 2>&1 || fail "binary cv: run and report"
check "cv: each fold's curves carry its roc_auc bit for bit; the plot prints them and their mean" \
  "$(jexpr "$work/cv/report.json" "all(t['curves']['classes'][0]['auc'] == t['roc_auc'] for t in d['tasks']) and len(d['tasks']) == 4 and all(('fold %d AUC %.4f' % (i + 1, t['roc_auc'])) in open('$work/cv.html').read() for i, t in enumerate(d['tasks'])) and ('mean AUC %.4f' % d['cv']['roc_auc']['mean']) in open('$work/cv.html').read()")"

# --- a sparse click model -------------------------------------------------------------------------
"$pstrain" datagen clicks --rows 20000 --features 5000 --nnz 10 --seed 7 --out "$work/clicks.svm" >/dev/null 2>&1 &&
  "$pstrain" train "$examples/clicks_lr.yaml" --set data.train="$work/clicks.svm" --set train.epochs=2 \
    --out "$work/sparse" -q >/dev/null 2>&1 && "$pstrain" report "$work/sparse" -o "$work/sparse.html" >/dev/null 2>&1 ||
  fail "sparse click model: train and report"
check "sparse model: curves of every test row, their AUC the run's roc_auc, printed on the plot" \
  "$(jexpr "$work/sparse/report.json" "d['test']['curves']['classes'][0]['auc'] == d['test']['roc_auc'] and d['test']['curves']['thinned'] and len(d['test']['curves']['classes'][0]['roc']['fpr']) <= 802 and sum(d['test']['curves']['calibration']['count']) == d['test']['n'] and ('class 1 AUC %.4f' % d['test']['roc_auc']) in open('$work/sparse.html').read()")"

# --- bad curve data ------------------------------------------------------------------------------
mkdir -p "$work/bad" && cp "$work/bin/metrics.jsonl" "$work/bad/"
"$py" - "$work/bin/report.json" "$work/bad/report.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["test"]["curves"]["classes"][0]["roc"]["tpr"] = "no"
json.dump(d, open(sys.argv[2], "w"))
PY
"$pstrain" report "$work/bad" -o "$work/bad.html" >/dev/null 2>"$work/bad.err"
rc=$?
check "curves that are not number arrays: exit 1 naming the file and the key" \
  "$([ $rc = 1 ] && grep -q "$work/bad/report.json: test.curves.classes\[0\].roc.tpr: not an array of numbers" "$work/bad.err" && [ ! -e "$work/bad.html" ] && echo True || echo "exit $rc: $(cat "$work/bad.err")")"

echo "$failures checks failed"
[ "$failures" = 0 ]
