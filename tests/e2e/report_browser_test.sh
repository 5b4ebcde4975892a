#!/usr/bin/env bash
# End-to-end: report pages in a real browser. Headless Chromium (Debian's chromium) loads the
# pages of a train, a cv, a sweep and a fed run. Each must render: a screenshot of the window's
# size that is not blank and shows the plots' first colour; the DOM Chromium dumps after loading
# holds every plot of the page, as many as the run calls for; the browser's console stays silent
# (a control page with a deliberate script error shows the console is watched). Screenshots stay
# in the scratch directory (KEEP_SCRATCH=1 keeps it; PST_SCREENSHOTS=DIR also copies them there).
# Exits 77 (skipped) with a message when chromium is not installed or cannot start.
# usage: report_browser_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
cfg=$examples/csv_logreg.yaml
py=/usr/bin/python3
check_png=$(dirname "$0")/pngcheck.py
width=1400
height=2400

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "skip: chromium is not installed (scripts/setup.sh installs it)"
  exit 77
fi
# chrome NAME URL: loads URL headless, its DOM into NAME.dom, a screenshot into NAME.png and the
# browser's log (console messages included) into NAME.log. Root needs --no-sandbox; each run has a
# profile of its own so that several run at once.
chrome() {
  timeout 180 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-dev-shm-usage --user-data-dir="$work/profile-$1" --enable-logging=stderr --v=0 \
    --window-size=$width,$height --screenshot="$work/$1.png" --dump-dom "$2" \
    >"$work/$1.dom" 2>"$work/$1.log"
}

# --- four runs and their pages -------------------------------------------------------------------
"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=40 \
  --set train.patience=3 --out "$work/train" -q >/dev/null 2>&1 || fail "train"
"$pstrain" cv "$cfg" --set data.train="$data/wine.csv" --set train.epochs=20 --folds 3 \
  --out "$work/cv" -q >/dev/null 2>&1 || fail "cv"
cat >"$work/sweep.yaml" <<YAML
base: $cfg
method: random
metric: val.accuracy
trials: 4
seed: 3
space:
  optimizer.lr: {log_uniform: [1.0e-3, 1.0e-1]}
  optimizer.name: {choice: [adam, sgd]}
YAML
"$pstrain" sweep "$work/sweep.yaml" --set data.train="$data/wine.csv" --set train.epochs=5 \
  --out "$work/sweep" -q >/dev/null 2>&1 || fail "sweep"
"$pstrain" fed simulate "$cfg" --set data.train="$data/digits.csv" --set fed.rounds=3 \
  --out "$work/fed" -q >/dev/null 2>&1 || fail "fed"
for run in train cv sweep fed; do
  "$pstrain" report "$work/$run" -o "$work/$run.html" >/dev/null 2>&1 || fail "report $run"
done
printf '<!DOCTYPE html><html><body><p>control</p><script>no_such_function()</script></body></html>\n' \
  >"$work/control.html"

# All five pages at once: the browser mostly waits while it starts.
pids=()
for page in train cv sweep fed control; do
  chrome "$page" "file://$work/$page.html" &
  pids+=($!)
done
codes=()
for p in "${pids[@]}"; do wait "$p"; codes+=($?); done
if [ "${codes[4]}" != 0 ] || ! grep -q "<html" "$work/control.dom"; then
  echo "skip: chromium cannot start here (exit ${codes[4]}): $(grep -v dbus "$work/control.log" | tail -3)"
  exit 77
fi
[ "${codes[*]}" = "0 0 0 0 0" ] && pass "chromium loaded the five pages" || fail "chromium exit codes: ${codes[*]}"

grep -q 'CONSOLE.*Uncaught ReferenceError: no_such_function' "$work/control.log" &&
  pass "the control page's script error reaches the watched console" ||
  fail "the console is not watched: no error logged for the control page"

# expected plots of a run's epoch curves: the loss plot and one per other number of its lines
curve_plots() {
  mexpr "$work/$1/metrics.jsonl" '1 + len({k for l in m if "task" not in l and "step" not in l for k, v in l.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "round", "seconds", "train_loss", "val_loss") and not k.endswith("_raw")})'
}
# page NAME EXPECTED_PLOTS MIN_BLUE: the checks of one page; MIN_BLUE pixels at least of the
# first series' colour (a sweep's few trials are markers only, so it asks for fewer)
page() {
  local name=$1 want=$2 blue=$3
  local in_page in_dom
  in_page=$(grep -o '<svg class="plot' "$work/$name.html" | wc -l)
  in_dom=$(grep -o '<svg class="plot' "$work/$name.dom" | wc -l)
  check "$name: the DOM after loading holds the page's $in_page plots, $want expected" \
    "$([ "$in_dom" = "$in_page" ] && [ "$in_page" = "$want" ] && grep -q '</html>' "$work/$name.dom" && echo True || echo "dom $in_dom page $in_page")"
  check "$name: the console stays silent" \
    "$(grep -q 'CONSOLE' "$work/$name.log" && grep 'CONSOLE' "$work/$name.log" | head -3 || echo True)"
  local shot
  shot=$("$py" "$check_png" "$work/$name.png" '#1f77b4' 2>&1)
  check "$name: a ${width}x$height screenshot with the plots drawn ($shot)" \
    "$("$py" -c "import json,sys; s=json.loads(sys.argv[1]); print(s['width'] == $width and s['height'] == $height and s['non_white'] > 0.01 and s['colours'] > 50 and s['hits'][0] > $blue)" "$shot" 2>&1)"
}
page train "$(($(curve_plots train) + 4))" 1000
page cv 6 1000
page sweep 2 200
page fed "$(($(curve_plots fed) + 4))" 1000

if [ -n "${PST_SCREENSHOTS:-}" ]; then
  mkdir -p "$PST_SCREENSHOTS" && cp "$work"/{train,cv,sweep,fed}.png "$PST_SCREENSHOTS"/
fi
echo "$failures checks failed"
[ "$failures" = 0 ]
