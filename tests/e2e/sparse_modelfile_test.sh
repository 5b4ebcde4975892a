#!/usr/bin/env bash
# End-to-end tests of sparse model files (model.pst of sparse_lr, fm, wide_deep):
#  - each model type trains locally on generated click data (LIBSVM for sparse_lr and fm, Criteo
#    TSV for wide_deep), and `pstrain eval` of its model.pst on the run's test file reproduces
#    the run's own test log-loss and AUC from report.json (to 1e-6), streaming DATA in chunks;
#  - `pstrain predict` writes one probability per test row, in input order (the mean of the
#    probabilities is the report's mean prediction), to a file or to standard output;
#  - `pstrain info` gives the nonzero rows and the file size that report.json records, and FTRL's
#    L1 leaves rows out of the file;
#  - truncated or corrupt model files, and data.* overrides, are refused with clear errors;
#  - under mpirun (1 server + 2 workers) sparse_lr and fm write a model.pst, pulled from the
#    servers, that reproduces the run's report the same way.
# usage: sparse_modelfile_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3

"$pstrain" datagen clicks --rows 12000 --features 3000 --nnz 10 --seed 5 --click-rate 0.15 \
  --out "$work/all.svm" >/dev/null
head -n 10000 "$work/all.svm" >"$work/train.svm"
tail -n 2000 "$work/all.svm" >"$work/test.svm"
"$pstrain" datagen criteo --rows 12000 --numeric 4 --categorical 8 --vocab 100 --seed 3 \
  --out "$work/c_all.tsv" >/dev/null
head -n 10000 "$work/c_all.tsv" >"$work/c_train.tsv"
tail -n 2000 "$work/c_all.tsv" >"$work/c_test.tsv"
cat >"$work/lr.yaml" <<YAML
name: lr
seed: 0
data: {train: $work/train.svm, test: $work/test.svm, format: libsvm}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1}
train: {epochs: 2, batch_size: 256}
YAML
cat >"$work/wd.yaml" <<YAML
name: wd
seed: 0
data: {train: $work/c_train.tsv, test: $work/c_test.tsv, format: criteo, numeric_columns: 4,
       categorical_columns: 8, hash_bits: 14, numeric: log}
model: {type: wide_deep, embedding_dim: 4, hidden: [16], activation: relu, init_scale: 0.05}
optimizer: {name: ftrl, lr: 0.2}
train: {epochs: 2, batch_size: 128}
YAML

# round_trip NAME RUN_DIR TEST_FILE: eval, predict and info of RUN_DIR/model.pst on TEST_FILE,
# checked against the run's report.json in one python call (python starts slowly on a busy host)
round_trip() {
  local name=$1 run=$2 data=$3 f=$work/${1// /_}
  if ! "$pstrain" eval "$run/model.pst" "$data" --json "$f.eval.json" >"$f.eval.log" 2>&1; then
    fail "$name: eval failed: $(tail -2 "$f.eval.log")"
    return
  fi
  if ! "$pstrain" predict "$run/model.pst" "$data" -o "$f.pred" 2>"$f.pred.log" ||
    ! "$pstrain" predict "$run/model.pst" "$data" >"$f.stdout"; then
    fail "$name: predict failed: $(tail -2 "$f.pred.log")"
    return
  fi
  "$pstrain" info "$run/model.pst" >"$f.info"
  local out
  out=$("$py" - "$name" "$run" "$data" "$f" <<'PY'
import json, os, sys
name, run, data, f = sys.argv[1:]
rep = json.load(open(run + "/report.json"))
ev = json.load(open(f + ".eval.json"))
pred = [float(x) for x in open(f + ".pred")]
rows = sum(1 for line in open(data) if line.strip())
info = dict(line.rstrip("\n").split(": ", 1) for line in open(f + ".info") if ": " in line)
t = rep["test"]
def check(what, ok, detail):
    print(("ok: " if ok else "FAIL: ") + "%s: %s (%s)" % (name, what, detail))
check("eval log-loss equals the run's test log-loss", abs(ev["log_loss"] - t["log_loss"]) <= 1e-6,
      "%r vs %r" % (ev["log_loss"], t["log_loss"]))
check("eval AUC equals the run's test AUC", abs(ev["roc_auc"] - t["roc_auc"]) <= 1e-6,
      "%r vs %r" % (ev["roc_auc"], t["roc_auc"]))
check("eval scored every test row", ev["n"] == rows == t["n"], "%d, %d rows, report %d" % (ev["n"], rows, t["n"]))
check("predict writes one line per row", len(pred) == rows, "%d lines" % len(pred))
mean = sum(pred) / max(len(pred), 1)
check("the predictions' mean is the run's test mean prediction",
      abs(mean - t["calibration"]["mean_pred"]) <= 1e-6, "%r vs %r" % (mean, t["calibration"]["mean_pred"]))
check("predict to standard output gives the same lines",
      open(f + ".pred").read() == open(f + ".stdout").read(), "")
size = os.path.getsize(run + "/model.pst")
nz = int(info.get("nonzero rows", -1))
fs = int(info.get("file size", "-1 bytes").split()[0])
check("info's nonzero rows and size are the report's and the file's",
      nz == rep["sparse"]["nonzero_rows"] and fs == rep["sparse"]["model_file_bytes"] == size,
      "%d rows, %d bytes" % (nz, fs))
PY
)
  echo "$out"
  failures=$((failures + $(grep -c '^FAIL' <<<"$out")))
}

if "$pstrain" train "$work/lr.yaml" --out "$work/lr" -q >"$work/lr.log" 2>&1; then
  round_trip sparse_lr "$work/lr" "$work/test.svm"
else
  fail "sparse_lr: training failed: $(tail -3 "$work/lr.log")"
fi
if "$pstrain" train "$work/lr.yaml" --set model.type=fm --set model.factors=4 --out "$work/fm" -q \
  >"$work/fm.log" 2>&1; then
  round_trip fm "$work/fm" "$work/test.svm"
else
  fail "fm: training failed: $(tail -3 "$work/fm.log")"
fi
if "$pstrain" train "$work/wd.yaml" --out "$work/wd" -q >"$work/wd.log" 2>&1; then
  round_trip wide_deep "$work/wd" "$work/c_test.tsv"
  grep -q "^input: criteo tsv, 4 numeric + 8 categorical columns, 2^14 buckets per column" \
    "$work/wide_deep.info" && pass "wide_deep: info shows the hashing" ||
    fail "wide_deep: info lacks the hashing: $(head -4 "$work/wide_deep.info")"
else
  fail "wide_deep: training failed: $(tail -3 "$work/wd.log")"
fi

# FTRL's L1 zeroes rows: the file holds fewer rows than the run trained, and still reproduces it.
if "$pstrain" train "$work/lr.yaml" --set optimizer.ftrl_l1=3 --out "$work/l1" -q \
  >"$work/l1.log" 2>&1; then
  round_trip l1 "$work/l1" "$work/test.svm"
  check "L1: $(json "$work/l1/report.json" "['sparse']")" \
    "$("$py" -c "import json; a=json.load(open('$work/l1/report.json'))['sparse']; b=json.load(open('$work/lr/report.json'))['sparse']; print(a['nonzero_rows'] < 0.8 * a['keys'] and a['model_file_bytes'] < b['model_file_bytes'])")"
else
  fail "L1: training failed: $(tail -3 "$work/l1.log")"
fi

# Under mpirun the weights live on the servers: the lead pulls the trained rows and the bias.
if mpi 3 train "$work/lr.yaml" --out "$work/mpi_lr" -q >"$work/mpi_lr.log" 2>&1; then
  round_trip "mpirun sparse_lr" "$work/mpi_lr" "$work/test.svm"
else
  fail "mpirun sparse_lr: training failed: $(tail -3 "$work/mpi_lr.log")"
fi
if mpi 3 train "$work/lr.yaml" --set model.type=fm --set model.factors=4 --out "$work/mpi_fm" -q \
  >"$work/mpi_fm.log" 2>&1; then
  round_trip "mpirun fm" "$work/mpi_fm" "$work/test.svm"
else
  fail "mpirun fm: training failed: $(tail -3 "$work/mpi_fm.log")"
fi

# --- bad files and options -----------------------------------------------------------------
expect_error() { # DESCRIPTION PATTERN ARGS...
  local what=$1 pattern=$2
  shift 2
  if "$@" >"$work/err.log" 2>&1; then
    fail "$what: succeeded"
  elif grep -q -- "$pattern" "$work/err.log"; then
    pass "$what: $(grep -m1 -- "$pattern" "$work/err.log")"
  else
    fail "$what: message lacks '$pattern': $(tail -2 "$work/err.log")"
  fi
}
if [ -f "$work/fm/model.pst" ]; then
  size=$(stat -c %s "$work/fm/model.pst")
  head -c $((size / 2)) "$work/fm/model.pst" >"$work/cut.pst"
  expect_error "a truncated model file" "cut.pst: " "$pstrain" eval "$work/cut.pst" "$work/test.svm"
  cp "$work/fm/model.pst" "$work/flip.pst"
  printf '\x55' | dd of="$work/flip.pst" bs=1 seek=$((size - 200)) conv=notrunc 2>/dev/null
  expect_error "a corrupt model file" "flip.pst: " "$pstrain" predict "$work/flip.pst" "$work/test.svm" -o "$work/flip.pred"
  check "a refused model leaves no predictions file" "$([ ! -e "$work/flip.pred" ] && echo True || echo False)"
  expect_error "data.* overrides on a sparse model" "data.\* overrides do not apply" \
    "$pstrain" eval "$work/fm/model.pst" "$work/test.svm" --set data.hash_bits=10
  expect_error "TSV data for a LIBSVM model" "test.tsv\|c_test.tsv" \
    "$pstrain" eval "$work/fm/model.pst" "$work/c_test.tsv"
fi
if [ -f "$work/lr/model.pst" ]; then
  head -c 100 "$work/lr/model.pst" >"$work/head.pst"
  expect_error "info on a truncated model file" "head.pst: " "$pstrain" info "$work/head.pst"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
