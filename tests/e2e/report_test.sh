#!/usr/bin/env bash
# End-to-end: pstrain report. The pages of a train, cv, bag, sweep and fed run and of two runs
# together are checked for what they draw (the plot count the run's files call for, the restored
# epoch's marker, the confusion matrix, the ROC, precision-recall and reliability plots, a line
# per fold and their mean, the fold, member and trial tables in the right order),
# for being self-contained (no script source, link, image or address but the SVG namespace), and
# bad input is refused with a message naming the place.
# Headless Chromium is not run here: the checks read the page's markup.
# usage: report_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
cfg=$examples/csv_logreg.yaml
py=/usr/bin/python3

# page_check NAME PAGE EXPR: EXPR (Python over the page text s, its plots' titles `titles`, the
# run directory's report r and metrics lines m) holds, and the page is self-contained.
page_check() {
  local name=$1 page=$2 expr=$3
  local out
  out=$("$py" - "$page" "$work/$name" "$expr" <<'PY'
import html.parser, json, os, re, sys
page, run, expr = sys.argv[1:4]
s = open(page).read()
r = json.load(open(run + "/report.json")) if os.path.exists(run + "/report.json") else {}
m = [json.loads(l) for l in open(run + "/metrics.jsonl")] if os.path.exists(run + "/metrics.jsonl") else []
titles = re.findall(r'<svg class="plot[^>]*>\s*(?:<rect[^>]*>\s*)?.*?font-weight="bold">([^<]*)<', s, re.S)
n_plots = len(re.findall(r'<svg class="plot', s))

class Balance(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.depth = {"svg": 0, "table": 0}; self.bad = []
    def handle_starttag(self, tag, attrs):
        if tag in self.depth: self.depth[tag] += 1
        for k, v in attrs:
            if k in ("src", "href") or (v and re.search(r"https?://", v) and v != "http://www.w3.org/2000/svg"):
                self.bad.append((tag, k, v))
        if tag in ("link", "img", "iframe"): self.bad.append(tag)
    def handle_endtag(self, tag):
        if tag in self.depth: self.depth[tag] -= 1
b = Balance(); b.feed(s)
assert b.depth == {"svg": 0, "table": 0}, b.depth
assert not b.bad, b.bad
assert n_plots == len(titles), (n_plots, titles)
ok = eval(expr)
print("True" if ok else f"False: {n_plots} plots {titles}")
PY
)
  check "$name: $(echo "$out" | tail -1 | cut -c1-200 | sed 's/^True$/page holds/')" "$(echo "$out" | tail -1 | cut -c1-5 | sed 's/False/False/')"
}

# expected plots of a run's curves: the loss plot and one per other number of its epoch lines
curve_plots='1 + len({k for l in m if "task" not in l and "step" not in l for k, v in l.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "round", "seconds", "train_loss", "val_loss") and not k.endswith("_raw")})'

# --- train: curves, restored epoch, confusion ----------------------------------------------
"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=200 \
  --set train.patience=3 --set optimizer.lr=0.05 --out "$work/train" -q >/dev/null 2>&1 || fail "train"
if "$pstrain" report "$work/train" >"$work/train.report.out" 2>&1; then
  grep -q "^report: $work/train/report.html" "$work/train.report.out" && pass "report names the page it wrote" || fail "report output: $(cat "$work/train.report.out")"
  page_check train "$work/train/report.html" "n_plots == $curve_plots + 4 and titles[0] == 'Loss' and 'Confusion matrix (test)' in titles and titles[-3:] == ['ROC curve (test)', 'Precision-recall curve (test)', 'Reliability (test): Brier %.4f, ECE %.4f' % (r['test']['curves']['calibration']['brier'], r['test']['curves']['calibration']['ece'])] and f'restored epoch {r[\"train\"][\"best_epoch\"]}' in s and r['train']['best_epoch'] < r['train']['epochs'] and s.count('<td>class ') == 2 and 'lr' in titles"
else
  fail "report train: $(cat "$work/train.report.out")"
fi

# --- two runs on shared axes -------------------------------------------------------------------
"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=5 \
  --set name=second --out "$work/second" -q >/dev/null 2>&1 || fail "second train"
if "$pstrain" report "$work/train" "$work/second" -o "$work/both.html" >/dev/null 2>&1; then
  page_check train "$work/both.html" "s.count('csv-logreg train_loss') == 1 and s.count('second val_loss') == 1 and 'restored epoch' not in s and s.count('<h2>') == 3"
else
  fail "report of two runs"
fi

# --- cv, bag, sweep, fed -------------------------------------------------------------------------
"$pstrain" cv "$cfg" --set data.train="$data/wine.csv" --folds 4 --out "$work/cv" -q >/dev/null 2>&1 || fail "cv"
"$pstrain" report "$work/cv" -o "$work/cv.html" >/dev/null 2>&1 || fail "report cv"
page_check cv "$work/cv.html" "n_plots == 6 and titles == ['accuracy per fold', 'train_loss per fold', 'val_loss per fold', 'val_accuracy per fold', 'ROC curve per fold', 'Precision-recall curve per fold'] and all(f'fold {i + 1} macro AUC %.4f' % t['curves']['macro']['auc'] in s for i, t in enumerate(r['tasks'])) and s.split('train_loss per fold')[1].split('</svg>')[0].count('<polyline') == 5 and all(len(t['history']['epoch']) == t['epochs'] for t in r['tasks']) and all(f'<td>fold {i}</td>' in s for i in range(1, 5)) and '<td>fold 5</td>' not in s and ('<td>%.4g</td>' % r['cv']['accuracy']['mean']) in s"

# the thick line of each fold plot is the mean over the folds at each epoch, read back from the
# plot's own scales (within the 0.1 pixel the points are written to)
out=$("$py" - "$work/cv.html" "$work/cv/report.json" "$(dirname "$0")/svgpoints.py" <<'PY'
import json, subprocess, sys
page, report, reader = sys.argv[1:4]
tasks = json.load(open(report))["tasks"]
for key in ("train_loss", "val_loss", "val_accuracy"):
    lines = json.loads(subprocess.run([sys.executable, reader, page, key + " per fold"],
                                      capture_output=True, text=True, check=True).stdout)
    mean = [l for l in lines if l["width"] == 3.2]
    assert len(lines) == len(tasks) + 1 and len(mean) == 1, (key, len(lines))
    epochs = max(len(t["history"]["epoch"]) for t in tasks)
    assert len(mean[0]["points"]) == epochs, (key, len(mean[0]["points"]), epochs)
    for e, (x, y) in enumerate(mean[0]["points"], 1):
        vals = [t["history"][key][e - 1] for t in tasks if len(t["history"]["epoch"]) >= e and t["history"][key][e - 1] is not None]
        want = sum(vals) / len(vals)
        px, py = mean[0]["per_pixel"]
        assert abs(x - e) <= 0.1 * px and abs(y - want) <= 0.1 * py, (key, e, x, y, want)
print("True")
PY
)
check "cv: each fold plot's thick line is the folds' mean at every epoch" "$(echo "$out" | tail -1)"

"$pstrain" bag "$cfg" --set data.train="$data/wine.csv" --members 3 --out "$work/bag" -q >/dev/null 2>&1 || fail "bag"
"$pstrain" report "$work/bag" -o "$work/bag.html" >/dev/null 2>&1 || fail "report bag"
page_check bag "$work/bag.html" "titles == ['accuracy per member'] and 'Members against the ensemble' in s and '>ensemble</text>' in s and s.count('<td>member ') == 3"

cat >"$work/sweep.yaml" <<YAML
base: $cfg
method: random
metric: val.accuracy
trials: 5
seed: 3
space:
  optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
  optimizer.name: {choice: [adam, sgd]}
YAML
"$pstrain" sweep "$work/sweep.yaml" --set data.train="$data/wine.csv" --set train.epochs=5 --out "$work/sweep" -q >/dev/null 2>&1 || fail "sweep"
"$pstrain" report "$work/sweep" -o "$work/sweep.html" >/dev/null 2>&1 || fail "report sweep"
page_check sweep "$work/sweep.html" "titles == ['val.accuracy against optimizer.lr', 'val.accuracy against optimizer.name'] and [float(x) for x in re.findall(r'<tr><td>\d+</td><td>([^<]*)</td>', s)] == sorted((float('%.4g' % t['final']) for t in json.load(open('$work/sweep/sweep_results.json'))['trials']), reverse=True)"

"$pstrain" fed simulate "$cfg" --set data.train="$data/digits.csv" --set fed.rounds=3 --out "$work/fed" -q >/dev/null 2>&1 || fail "fed"
"$pstrain" report "$work/fed" -o "$work/fed.html" >/dev/null 2>&1 || fail "report fed"
page_check fed "$work/fed.html" "n_plots == $curve_plots + 4 and 'ROC curve (test)' in titles and {'sites_answered', 'sites_asked', 'val_accuracy'} <= set(titles) and 'Federated rounds' in s and re.search(r'<svg class=\"plot\".*?<text[^>]*>round</text>', s, re.S)"

# --- bad input -----------------------------------------------------------------------------------
mkdir -p "$work/notarun"
"$pstrain" report "$work/notarun" >/dev/null 2>"$work/bad1.err"
rc=$?
check "a directory with no run: exit 1 naming it" "$([ $rc = 1 ] && grep -q "$work/notarun: no report.json or metrics.jsonl" "$work/bad1.err" && echo True || echo "exit $rc")"
mkdir -p "$work/broken" && printf '{"epoch": 1}\n{"epoch": 2,\n' >"$work/broken/metrics.jsonl"
"$pstrain" report "$work/broken" >/dev/null 2>"$work/bad2.err"
rc=$?
check "a broken metrics.jsonl line: exit 1 naming file:line" "$([ $rc = 1 ] && grep -q "metrics.jsonl:2: not a JSON object" "$work/bad2.err" && [ ! -e "$work/broken/report.html" ] && echo True || echo "exit $rc")"
"$pstrain" report >/dev/null 2>&1
check "no directory: usage error" "$([ $? = 2 ] && echo True || echo False)"

echo "$failures checks failed"
[ "$failures" = 0 ]
