#!/usr/bin/env bash
# End-to-end: what the console says. -q and --progress none|lines|bar (or train.progress) decide
# the epoch lines; the summary says "1 epoch", says when early stopping restored an earlier
# epoch, and separates loading, training and evaluation times (also in report.json); every plan
# prints its run directory and cv's default directory is the pattern its help names; --out onto
# a non-empty directory is refused unless --force; under mpirun the epoch lines give the total
# rate and the worker count, and the servers' messages appear only with -v.
# usage: console_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tests=$(cd "$2" && pwd)
data=$tests/data
examples=$tests/../examples
source "$(dirname "$0")/lib.sh"
cfg=$examples/csv_logreg.yaml
base=(--set data.train="$data/breast_cancer.csv" --set train.epochs=4 --set train.patience=0)

# epoch_lines FILE: the number of epoch lines in FILE
epoch_lines() { grep -c '^epoch [ 0-9]*/' "$1"; }

# --- -q and --progress ---------------------------------------------------------------------
"$pstrain" train "$cfg" "${base[@]}" --out "$work/lines" --progress lines >"$work/lines.out" 2>"$work/lines.err"
check "--progress lines: an epoch line per epoch" "$([ "$(epoch_lines "$work/lines.out")" = 4 ] && echo True || echo "$(epoch_lines "$work/lines.out") lines")"
"$pstrain" train "$cfg" "${base[@]}" --out "$work/quiet" -q >"$work/quiet.out" 2>"$work/quiet.err"
check "-q: no epoch line, nothing on stderr, the summary and the run directory" \
  "$([ "$(epoch_lines "$work/quiet.out")" = 0 ] && [ ! -s "$work/quiet.err" ] && grep -q '^trained 4 epochs' "$work/quiet.out" && grep -q "^run directory: $work/quiet" "$work/quiet.out" && echo True || echo False)"
"$pstrain" train "$cfg" "${base[@]}" --out "$work/none" --progress none >"$work/none.out" 2>&1
check "--progress none: no epoch line" "$([ "$(epoch_lines "$work/none.out")" = 0 ] && grep -q '^trained' "$work/none.out" && echo True || echo False)"
"$pstrain" train "$cfg" "${base[@]}" --out "$work/none2" --set train.progress=none >"$work/none2.out" 2>&1
check "train.progress: none: no epoch line" "$([ "$(epoch_lines "$work/none2.out")" = 0 ] && echo True || echo False)"
[ "$(wc -l <"$work/none/metrics.jsonl")" = 4 ] && pass "--progress none still logs every epoch in metrics.jsonl" || fail "metrics.jsonl with --progress none"
"$pstrain" train "$cfg" "${base[@]}" --progress sometimes >/dev/null 2>"$work/badprog.err"
rc=$?
check "--progress sometimes: usage error" "$([ $rc = 2 ] && grep -q "not one of none, lines, bar, auto" "$work/badprog.err" && echo True || echo "exit $rc")"

# --- the summary ---------------------------------------------------------------------------
"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=1 --out "$work/one" >"$work/one.out" 2>&1
check "1 epoch, singular" "$(grep -q '^trained 1 epoch in' "$work/one.out" && echo True || echo "$(grep trained "$work/one.out")")"
check "the summary separates loading and evaluation" "$(grep -q 'loading [0-9.]*s, evaluation [0-9.]*s' "$work/one.out" && echo True || echo False)"
check "report.json timings: load, train and evaluation seconds" \
  "$(jexpr "$work/one/report.json" "all(d['timings'][k] >= 0 for k in ('load_seconds', 'train_seconds', 'eval_seconds')) and d['timings']['train_seconds'] == d['train']['seconds']")"
# early stopping on a high learning rate: stops, and the summary names the restored epoch
"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=200 \
  --set train.patience=3 --set optimizer.lr=0.05 --out "$work/early" >"$work/early.out" 2>&1
best=$(json "$work/early/report.json" "['train']['best_epoch']")
ran=$(json "$work/early/report.json" "['train']['epochs']")
if [ "$best" -lt "$ran" ]; then
  check "early stopping: the summary says epoch $best of $ran was restored" \
    "$(grep -q "^stopped early" "$work/early.out" && grep -q "^restored the weights of epoch $best " "$work/early.out" && echo True || echo False)"
else
  fail "early stopping did not stop before its last epoch ($best of $ran)"
fi
"$pstrain" train "$cfg" --set data.train="$data/breast_cancer.csv" --set train.epochs=200 \
  --set train.patience=3 --set optimizer.lr=0.05 --set train.restore_best=false --out "$work/early2" >"$work/early2.out" 2>&1
check "restore_best false: no restored epoch claimed" "$(grep -q '^restored' "$work/early2.out" && echo False || echo True)"

# --- run directories -----------------------------------------------------------------------
"$pstrain" cv "$cfg" --set data.train="$data/wine.csv" --folds 3 --out "$work/cv" >"$work/cv.out" 2>&1
check "cv prints its run directory" "$(grep -q "^run directory: $work/cv\$" "$work/cv.out" && echo True || echo False)"
"$pstrain" bag "$cfg" --set data.train="$data/wine.csv" --members 2 --out "$work/bag" >"$work/bag.out" 2>&1
check "bag prints its run directory" "$(grep -q "^run directory: $work/bag\$" "$work/bag.out" && echo True || echo False)"
"$pstrain" stack "$cfg" --set data.train="$data/wine.csv" --base "model.hidden=[]" --base "model.hidden=[8]" --out "$work/stack" >"$work/stack.out" 2>&1
check "stack prints its run directory" "$(grep -q "^run directory: $work/stack\$" "$work/stack.out" && echo True || echo "$(tail -2 "$work/stack.out")")"
"$pstrain" cv "$cfg" --set data.train="$data/wine.csv" --folds 3 --out "$work/cvq" -q >"$work/cvq.out" 2>&1
check "cv -q: no fold line, the summary and the run directory" "$(grep -q '^fold ' "$work/cvq.out" && echo False || { grep -q '^cv over 3 folds' "$work/cvq.out" && grep -q "^run directory: $work/cvq\$" "$work/cvq.out" && echo True || echo False; })"
# cv's default directory is the one its help names
pattern=$("$pstrain" cv --help | grep -o 'runs/NAME-[A-Z-]*')
mkdir -p "$work/cwd"
(cd "$work/cwd" && "$pstrain" cv "$cfg" --set data.train="$data/wine.csv" --set name=wine --folds 2 -q >"$work/cvdef.out" 2>&1)
made=$(cd "$work/cwd" && ls -d runs/* 2>/dev/null)
regex=$(echo "$pattern" | sed 's/NAME/wine/; s/YYYYMMDD/[0-9]{8}/; s/HHMMSS/[0-9]{6}/')
check "cv --help names $pattern and cv made $made" "$(echo "$made" | grep -Eqx "$regex" && grep -q "^run directory: $made" "$work/cvdef.out" && echo True || echo False)"

# --- --out onto a run directory ------------------------------------------------------------
sum_before=$(md5sum "$work/quiet/report.json")
"$pstrain" train "$cfg" "${base[@]}" --out "$work/quiet" -q >/dev/null 2>"$work/again.err"
rc=$?
check "--out onto a run directory: refused, nothing overwritten" \
  "$([ $rc = 1 ] && grep -q "is not empty; choose another or pass --force" "$work/again.err" && [ "$(md5sum "$work/quiet/report.json")" = "$sum_before" ] && echo True || echo "exit $rc")"
"$pstrain" cv "$cfg" --set data.train="$data/wine.csv" --folds 2 --out "$work/quiet" -q >/dev/null 2>"$work/again2.err"
check "cv --out onto a run directory: refused" "$([ $? = 1 ] && grep -q "is not empty" "$work/again2.err" && echo True || echo False)"
"$pstrain" fed simulate "$cfg" --set data.train="$data/digits.csv" --set fed.rounds=1 --out "$work/quiet" -q >/dev/null 2>"$work/again3.err"
check "fed simulate --out onto a run directory: refused" "$([ $? = 1 ] && grep -q "is not empty" "$work/again3.err" && echo True || echo False)"
mkdir -p "$work/emptydir"
"$pstrain" train "$cfg" "${base[@]}" --out "$work/emptydir" -q >/dev/null 2>&1 && pass "--out onto an empty directory is fine" || fail "--out onto an empty directory"
"$pstrain" train "$cfg" "${base[@]}" --set train.epochs=2 --out "$work/quiet" --force -q >/dev/null 2>&1
check "--force writes into it" "$([ $? = 0 ] && [ "$(json "$work/quiet/report.json" "['train']['epochs']")" = 2 ] && echo True || echo False)"

# --- mpirun -------------------------------------------------------------------------------------
mcfg=(train "$cfg" --set data.train="$data/digits.csv" --set train.epochs=2 --set cluster.servers=1 --progress lines)
if mpi 3 "${mcfg[@]}" --out "$work/mpi" >"$work/mpi.out" 2>"$work/mpi.err"; then
  check "mpirun: epoch lines give 2 workers and their total rate" \
    "$([ "$(grep -c '^epoch .*  2 workers, [0-9]* samples/s' "$work/mpi.out")" = 2 ] && echo True || echo False)"
  check "mpirun: no server messages without -v" \
    "$(grep -q 'registered\|shut down' "$work/mpi.out" "$work/mpi.err" && echo False || echo True)"
  mpi 3 "${mcfg[@]}" --out "$work/mpiv" -v >"$work/mpiv.out" 2>"$work/mpiv.err"
  check "mpirun -v: the servers' messages, on stderr only" \
    "$(grep -q 'shut down' "$work/mpiv.err" && ! grep -q 'shut down\|registered' "$work/mpiv.out" && echo True || echo False)"
else
  fail "mpirun train: $(tail -3 "$work/mpi.err")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
