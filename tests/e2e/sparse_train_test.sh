#!/usr/bin/env bash
# End-to-end tests of sparse models (model.type sparse_lr, fm) on click data with known weights:
#  - local sparse LR (FTRL) reaches the test rows' Bayes AUC within 0.01, calibrated, and trains
#    exactly the keys the data holds; AdaGrad and the 70/20/10 split of one file work too;
#  - a factorization machine trains and beats a floor;
#  - under mpirun, 1 server + 2 workers reach the local AUC within 0.01 (2 servers too), and the
#    traffic is what pulling and pushing only each batch's keys implies;
#  - the binary cache is written on the first read, reused by the next (same model) and rebuilt
#    when the source changes; data.buffer_rows streams data.train to the whole-file AUC;
#  - bad input (a CSV file, labels other than 0/1, a malformed line, a dense optimizer) fails
#    with a clear message.
# Dense models are in cli_train_test.sh (one process) and cluster_test.sh (mpirun).
# usage: sparse_train_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
json() { "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d' + sys.argv[2]))" "$@"; }
mpi() { local np=$1; shift; timeout 120 mpirun --oversubscribe -np "$np" "$pstrain" "$@"; }
# check "description" python-expression: passes when the expression is true
check() { if "$py" -c "import sys; sys.exit(0 if ($2) else 1)"; then pass "$1"; else fail "$1 ($2)"; fi; }

# --- data ----------------------------------------------------------------------------------
# PREFIX{train,test}.svm from one click process (popularity ~ rank^-0.8, weights ~ N(0, 0.5),
# click rate 0.1); PREFIXtest_p.txt holds each test row's true click probability. With
# `pstrain datagen clicks` the program's own generator draws the rows; otherwise numpy does.
gen_clicks() { # PREFIX N_TRAIN N_TEST FEATURES NNZ SEED
  local prefix=$1 n_train=$2 n_test=$3 features=$4 nnz=$5 seed=$6
  if "$pstrain" datagen --help >/dev/null 2>&1; then
    "$pstrain" datagen clicks --rows $((n_train + n_test)) --features "$features" --nnz "$nnz" \
      --seed "$seed" --sigma 0.5 --zipf 0.8 --click-rate 0.1 --out "${prefix}all.svm" \
      --truth "${prefix}truth.json" --truth-weights "${prefix}weights.f32" >/dev/null || return 1
    head -n "$n_train" "${prefix}all.svm" >"${prefix}train.svm"
    tail -n "$n_test" "${prefix}all.svm" >"${prefix}test.svm"
    "$py" - "$prefix" <<'PY' || return 1
import json, sys, numpy as np
prefix = sys.argv[1]
w = np.fromfile(prefix + "weights.f32", "<f4").astype(np.float64)
bias = json.load(open(prefix + "truth.json"))["bias"]
with open(prefix + "test_p.txt", "w") as out:
    for line in open(prefix + "test.svm"):
        ids = [int(t.split(":")[0]) - 1 for t in line.split()[1:]]
        out.write("%.9f\n" % (1 / (1 + np.exp(-(bias + w[ids].sum())))))
PY
    return 0
  fi
  "$py" - "$prefix" "$n_train" "$n_test" "$features" "$nnz" "$seed" <<'PY'
import sys, numpy as np
prefix = sys.argv[1]
n_train, n_test, F, K, seed = map(int, sys.argv[2:])
rng = np.random.default_rng(seed)
w = rng.normal(0.0, 0.5, F)
cdf = np.cumsum((np.arange(F) + 1.0) ** -0.8)
cdf /= cdf[-1]
n = n_train + n_test
# K distinct ids per row in proportion to popularity: a repeated id is drawn again
ids = np.searchsorted(cdf, rng.random((n, K)), side="right")
while True:
    ids.sort(axis=1)
    dup = np.zeros(ids.shape, dtype=bool)
    dup[:, 1:] = ids[:, 1:] == ids[:, :-1]
    if not dup.any():
        break
    ids[dup] = np.searchsorted(cdf, rng.random(int(dup.sum())), side="right")
m = w[ids].sum(axis=1)
lo, hi = -30.0, 30.0
for _ in range(80):
    b = (lo + hi) / 2
    lo, hi = (lo, b) if (1 / (1 + np.exp(-(m + b)))).mean() > 0.1 else (b, hi)
p = 1 / (1 + np.exp(-(m + b)))
y = (rng.random(n) < p).astype(int)
def write(path, rows):
    with open(path, "w") as f:
        for i in rows:
            f.write("%d %s\n" % (y[i], " ".join("%d:1" % (j + 1) for j in ids[i])))
write(prefix + "train.svm", range(n_train))
write(prefix + "test.svm", range(n_train, n))
np.savetxt(prefix + "test_p.txt", p[n_train:], fmt="%.9f")
PY
}

# ROC-AUC (ties count one half) of scores against the labels of a LIBSVM file.
bayes_auc() { # LIBSVM P_FILE
  "$py" - "$1" "$2" <<'PY'
import sys, numpy as np
y = np.array([int(float(l.split()[0])) for l in open(sys.argv[1])])
s = np.loadtxt(sys.argv[2])
order = np.argsort(s, kind="mergesort")
ranks = np.empty(len(s))
ranks[order] = np.arange(1, len(s) + 1)
_, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
ranks = (np.bincount(inv, ranks) / counts)[inv]  # average ranks of ties
pos = y.sum()
print((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))
PY
}

# Distinct feature ids of a LIBSVM file.
distinct_keys() { "$py" -c "import sys; print(len({t.split(':')[0] for l in open(sys.argv[1]) for t in l.split()[1:]}))" "$1"; }

gen_clicks "$work/a_" 60000 20000 200 8 2 || { echo "FAIL: cannot generate click data"; exit 1; }
bayes=$(bayes_auc "$work/a_test.svm" "$work/a_test_p.txt")
echo "test rows' Bayes AUC: $bayes"

cat >"$work/lr.yaml" <<YAML
name: sparse-test
seed: 1
data: {train: $work/a_train.svm, test: $work/a_test.svm, val_fraction: 0.1}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1, ftrl_beta: 1}
train: {epochs: 5, batch_size: 32}
YAML

# --- local sparse LR -----------------------------------------------------------------------
if "$pstrain" train "$work/lr.yaml" --out "$work/lr" -q >"$work/lr.log" 2>&1; then
  auc=$(json "$work/lr/report.json" "['test']['roc_auc']")
  check "local sparse LR test AUC $auc within 0.01 of Bayes $bayes" "abs($auc - $bayes) <= 0.01"
  mean_pred=$(json "$work/lr/report.json" "['test']['calibration']['mean_pred']")
  observed=$(json "$work/lr/report.json" "['test']['calibration']['observed']")
  check "calibrated: mean prediction $mean_pred against click rate $observed" "abs($mean_pred - $observed) < 0.01"
  check "report has training time, throughput and log-loss" \
    "$(json "$work/lr/report.json" "['train']['seconds']") > 0 and $(json "$work/lr/report.json" "['train']['samples_per_s']") > 0 and 0 < $(json "$work/lr/report.json" "['test']['log_loss']") < 0.4"
  keys=$(json "$work/lr/report.json" "['sparse']['keys']")
  check "trained keys $keys are the ids of the 90% training share (<= $(distinct_keys "$work/a_train.svm"))" \
    "0.98 * $(distinct_keys "$work/a_train.svm") <= $keys <= $(distinct_keys "$work/a_train.svm")"
  check "model memory $(json "$work/lr/report.json" "['sparse']['model_bytes']") B holds key, weight, z and n of each of $keys keys" \
    "$(json "$work/lr/report.json" "['sparse']['model_bytes']") >= $keys * (8 + 3 * 4)"
  lines=$(grep -c '"val_roc_auc"' "$work/lr/metrics.jsonl")
  check "metrics.jsonl has 5 epochs with validation AUC and calibration" "$lines == 5 and $(grep -c val_mean_pred "$work/lr/metrics.jsonl") == 5"
else
  fail "local sparse LR: $(tail -3 "$work/lr.log")"
fi

# AdaGrad
if "$pstrain" train "$work/lr.yaml" --set optimizer.name=adagrad --set optimizer.lr=0.05 \
  --out "$work/ada" -q >"$work/ada.log" 2>&1; then
  auc=$(json "$work/ada/report.json" "['test']['roc_auc']")
  check "AdaGrad: test AUC $auc within 0.01 of Bayes $bayes" "abs($auc - $bayes) <= 0.01"
else
  fail "local AdaGrad: $(tail -3 "$work/ada.log")"
fi
# The default 70/20/10 split of data.train alone
if "$pstrain" train "$work/lr.yaml" --set data.test="" --set data.val_fraction=0.2 \
  --set train.epochs=1 --out "$work/split" -q >"$work/split.log" 2>&1; then
  r=$work/split/report.json
  check "70/20/10 split of 60000 rows" \
    "$(json "$r" "['data']['train_rows']") == 42000 and $(json "$r" "['data']['val_rows']") == 12000 and $(json "$r" "['test']['n']") == 6000"
else
  fail "70/20/10 split: $(tail -3 "$work/split.log")"
fi

# --- factorization machine -----------------------------------------------------------------
if "$pstrain" train "$work/lr.yaml" --set model.type=fm --set model.factors=4 --set train.epochs=3 \
  --out "$work/fm" -q >"$work/fm.log" 2>&1; then
  auc=$(json "$work/fm/report.json" "['test']['roc_auc']")
  check "FM (k=4) test AUC $auc beats the floor Bayes - 0.02" "$auc >= $bayes - 0.02"
  check "FM rows hold 5 floats" "$(json "$work/fm/report.json" "['model']['row_width']") == 5"
else
  fail "FM: $(tail -3 "$work/fm.log")"
fi

# --- distributed: 1 server + 2 workers -----------------------------------------------------
if mpi 3 train "$work/lr.yaml" --out "$work/dist" -q >"$work/dist.log" 2>&1; then
  auc=$(json "$work/dist/report.json" "['test']['roc_auc']")
  local_auc=$(json "$work/lr/report.json" "['test']['roc_auc']")
  check "1 server + 2 workers: test AUC $auc within 0.01 of local $local_auc" "abs($auc - $local_auc) <= 0.01"
  check "distributed report has comm and sparse figures" \
    "$(json "$work/dist/report.json" "['comm']['pushes']") > 0 and $(json "$work/dist/report.json" "['comm']['bytes_wire']") > 0 and $(json "$work/dist/report.json" "['sparse']['bytes_per_example']") > 0"
  rows=$(json "$work/dist/report.json" "['sparse']['server_rows']")
  bytes=$(json "$work/dist/report.json" "['sparse']['server_bytes']")
  rss=$(json "$work/dist/report.json" "['sparse']['server_peak_rss_bytes']")
  check "server holds $rows rows, the ids of the training share (<= $(distinct_keys "$work/a_train.svm"))" \
    "0.98 * $(distinct_keys "$work/a_train.svm") <= $rows <= $(distinct_keys "$work/a_train.svm")"
  check "server memory $bytes B: key, weight, FTRL state and steps of each row, within its peak RSS $rss B" \
    "$rows * (8 + 4 + 8 + 8) <= $bytes < $rss"
  # A sparse step pushes two tensors (rows and bias): the workers' pushes and the server's are
  # twice the steps; the steps' bytes are the training traffic less the set-up before step one.
  check "comm.step: $(json "$work/dist/report.json" "['comm']['step']['steps']") steps, two pushes each, and the training bytes" \
    "$(jexpr "$work/dist/report.json" "(lambda c, s: 2 * s['steps'] == c['pushes'] == c['server']['pushes'] and 0.9 * c['train_bytes_wire'] <= (s['bytes_sent'] + s['bytes_received']) * s['steps'] <= c['train_bytes_wire'])(d['comm'], d['comm']['step'])")"
else
  fail "1 server + 2 workers: $(tail -3 "$work/dist.log")"
fi
# Prefetching (transport.prefetch, on by default) sends each batch's pull while the previous batch
# computes; under BSP the server holds it until the previous clock is applied, so every figure
# that depends on the weights is the same to the last bit with it off. 3 epochs: later epochs
# reshuffle, so the look-ahead runs over gathered batches too.
same_training() { # RUN_A RUN_B: "True" when losses, metrics and the model's figures match exactly
  "$py" - "$1" "$2" <<'PY'
import json, sys
def load(run):
    r = json.load(open(run + "/report.json"))
    m = [json.loads(l) for l in open(run + "/metrics.jsonl")]
    for line in m:
        line.pop("seconds"); line.pop("samples_per_s")
    return [m, r["train"]["final_loss"], r["val"], r["test"], r["sparse"]["server_rows"],
            r["sparse"]["keys_per_step"], r["comm"]["stale_pushes"]]
a, b = load(sys.argv[1]), load(sys.argv[2])
print(a == b if a[0] else "no metrics")
PY
}
for pf in true false; do
  mpi 3 train "$work/lr.yaml" --set train.epochs=3 --set transport.prefetch=$pf \
    --out "$work/bsp-pf-$pf" -q >"$work/bsp-pf-$pf.log" 2>&1 || fail "BSP, transport.prefetch=$pf: $(tail -3 "$work/bsp-pf-$pf.log")"
done
if [ -f "$work/bsp-pf-true/report.json" ] && [ -f "$work/bsp-pf-false/report.json" ]; then
  check "BSP, 2 workers, 3 epochs: prefetching on and off train bit for bit alike (losses, AUC, rows)" \
    "$(same_training "$work/bsp-pf-true" "$work/bsp-pf-false")"
  check "the comparison tells runs apart (BSP 3 epochs against the 1-epoch run)" \
    "not $(same_training "$work/bsp-pf-true" "$work/dist")"
  # A deeper pipeline (three pulls in flight while a step computes, up to four key lists the
  # server must remember) changes nothing under BSP either.
  mpi 3 train "$work/lr.yaml" --set train.epochs=3 --set transport.prefetch_depth=3 \
    --out "$work/bsp-depth3" -q >"$work/bsp-depth3.log" 2>&1 || fail "BSP, transport.prefetch_depth=3: $(tail -3 "$work/bsp-depth3.log")"
  [ -f "$work/bsp-depth3/report.json" ] &&
    check "BSP, 2 workers, 3 epochs: prefetch depth 3 trains bit for bit as prefetching off" \
      "$(same_training "$work/bsp-depth3" "$work/bsp-pf-false")"
  r="$work/bsp-pf-true/report.json"
  check "report.json splits a step into pull wait, push wait and compute" \
    "$(json "$r" "['comm']['step_pull_wait_ms']") >= 0 and $(json "$r" "['comm']['step_push_wait_ms']") >= 0 and $(json "$r" "['comm']['step_compute_ms']") > 0"
fi
if mpi 4 train "$work/lr.yaml" --set cluster.servers=2 --set cluster.consistency=asp \
  --set train.epochs=3 --out "$work/dist2" -q >"$work/dist2.log" 2>&1; then
  auc=$(json "$work/dist2/report.json" "['test']['roc_auc']")
  check "2 servers + 2 workers (ASP): test AUC $auc within 0.01 of Bayes $bayes" "abs($auc - $bayes) <= 0.01"
  check "2 servers hold the training ids between them" \
    "0.98 * $(distinct_keys "$work/a_train.svm") <= $(json "$work/dist2/report.json" "['sparse']['server_rows']") <= $(distinct_keys "$work/a_train.svm")"
else
  fail "2 servers + 2 workers: $(tail -3 "$work/dist2.log")"
fi

# --- traffic: only each batch's keys travel -------------------------------------------------
# Wide and sparse: 20000 features, 8 per row, batches of 32 rows touch at most 256 keys. A step
# pulls its unique keys (8 bytes each up, 4 per float down) and pushes them with their gradient
# rows, plus 4 bytes each way for the bias: raw bytes per step = 2 (8 + 4 w) U + 8.
gen_clicks "$work/w_" 20000 2000 20000 8 3 || fail "cannot generate wide data"
cat >"$work/wide.yaml" <<YAML
name: sparse-wide
seed: 1
data: {train: $work/w_train.svm, test: $work/w_test.svm, val_fraction: 0}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1}
train: {epochs: 2, batch_size: 32}
YAML
if mpi 3 train "$work/wide.yaml" --out "$work/wide" -q >"$work/wide.log" 2>&1; then
  expected_keys=$("$py" - "$work/w_train.svm" <<'PY'
import sys, numpy as np
rows = [[t.split(":")[0] for t in l.split()[1:]] for l in open(sys.argv[1])]
rng = np.random.default_rng(0)
# mean unique keys of random batches of 32 training rows
print(np.mean([len({k for i in rng.choice(len(rows), 32, replace=False) for k in rows[i]}) for _ in range(3000)]))
PY
)
  per_step=$(json "$work/wide/report.json" "['sparse']['keys_per_step']")
  raw=$(json "$work/wide/report.json" "['sparse']['raw_bytes_per_example']")
  wire=$(json "$work/wide/report.json" "['sparse']['bytes_per_example']")
  check "keys per step $per_step match the data's unique keys per batch of 32 ($expected_keys) within 3%" \
    "abs($per_step - $expected_keys) <= 0.03 * $expected_keys"
  check "raw bytes per example $raw = (24 U + 8) / 32 with U = $per_step (within 1%)" \
    "abs($raw - (24 * $per_step + 8) / 32) <= 0.01 * $raw"
  # On the wire, keys travel delta-encoded once per batch (the push names the pulled list by its
  # signature), so wire bytes sit between the values alone, (8 U + 8) / 32, and the raw count.
  check "wire bytes per example $wire: at least the values (8 U + 8) / 32, below raw $raw, far below a dense pull and push (5000)" \
    "(8 * $per_step + 8) / 32 <= $wire < $raw and $wire < 0.05 * 8 * 20000 / 32"
  check "distributed sparse.keys = distinct ids of the training file" \
    "$(json "$work/wide/report.json" "['sparse']['keys']") == $(distinct_keys "$work/w_train.svm")"
else
  fail "wide data under mpirun: $(tail -3 "$work/wide.log")"
fi

# --- binary cache and streaming ----------------------------------------------------------------
# A fresh copy of the training file: the first run writes FILE.pstcache, the second reads it and
# trains the same model; a touched source (new mtime) makes the cache stale and it is rebuilt.
cp "$work/a_train.svm" "$work/c_train.svm"
cp "$work/a_test.svm" "$work/c_test.svm"
cache_run() { # NAME ARGS...
  local name=$1
  shift
  "$pstrain" train "$work/lr.yaml" --set data.train="$work/c_train.svm" \
    --set data.test="$work/c_test.svm" --set train.epochs=2 --out "$work/$name" -q "$@" \
    >"$work/$name.log" 2>&1
}
if cache_run c1 && cache_run c2; then
  r1=$work/c1/report.json r2=$work/c2/report.json
  check "first read writes the cache: from_cache False, c_train.svm.pstcache exists" \
    "'$(json "$r1" "['data']['from_cache']")' == 'False' and $([ -s "$work/c_train.svm.pstcache" ] && echo True || echo False)"
  check "second read: from_cache True, same test AUC ($(json "$r1" "['test']['roc_auc']"))" \
    "'$(json "$r2" "['data']['from_cache']")' == 'True' and $(json "$r1" "['test']['roc_auc']") == $(json "$r2" "['test']['roc_auc']")"
  # How much faster the cache loads is measured by scripts/bench/readers.sh, not asserted here.
  before=$(stat -c %i-%Y "$work/c_train.svm.pstcache")
  sleep 1
  touch "$work/c_train.svm"
  if cache_run c3; then
    check "touched source: cache rebuilt (from_cache False, new cache file), same test AUC" \
      "'$(json "$work/c3/report.json" "['data']['from_cache']")' == 'False' and '$before' != '$(stat -c %i-%Y "$work/c_train.svm.pstcache")' and $(json "$r1" "['test']['roc_auc']") == $(json "$work/c3/report.json" "['test']['roc_auc']")"
  else
    fail "run after touch: $(tail -3 "$work/c3.log")"
  fi
else
  fail "cache runs: $(tail -3 "$work/c1.log" "$work/c2.log")"
fi
cp "$work/a_train.svm" "$work/n_train.svm"
if "$pstrain" train "$work/lr.yaml" --set data.train="$work/n_train.svm" --set data.cache=false \
  --set train.epochs=1 --out "$work/nc" -q >"$work/nc.log" 2>&1; then
  check "data.cache false writes no cache" \
    "$([ -e "$work/n_train.svm.pstcache" ] && echo False || echo True) and '$(json "$work/nc/report.json" "['data']['from_cache']")' == 'False'"
else
  fail "data.cache false: $(tail -3 "$work/nc.log")"
fi
# Streaming data.train through a 2000-row shuffle buffer against reading it whole (no validation
# share in either, so both train on the same 60000 rows).
if cache_run whole --set data.val_fraction=0 --set train.epochs=3 &&
  cache_run stream --set data.val_fraction=0 --set train.epochs=3 --set data.buffer_rows=2000; then
  rw=$work/whole/report.json rs=$work/stream/report.json
  check "streamed (buffer 2000) test AUC $(json "$rs" "['test']['roc_auc']") within 0.01 of whole-file $(json "$rw" "['test']['roc_auc']")" \
    "abs($(json "$rs" "['test']['roc_auc']") - $(json "$rw" "['test']['roc_auc']")) <= 0.01"
  check "streamed: 3 x 60000 rows trained, at most 2000 held, $(json "$rw" "['data']['features']") features" \
    "$(json "$rs" "['train']['rows']") == 180000 and 0 < $(json "$rs" "['data']['max_rows_held']") <= 2000 and $(json "$rs" "['data']['features']") == $(json "$rw" "['data']['features']") and $(json "$rs" "['data']['train_rows']") == 60000"
else
  fail "whole/streamed runs: $(tail -3 "$work/whole.log" "$work/stream.log")"
fi

# --- Criteo-style TSV and wide & deep --------------------------------------------------------
# datagen criteo draws clicks from per-token weights plus pairwise interactions between fields;
# --truth-main gives each row's true probability without the interactions. The main-effects AUC
# is the AUC of those probabilities against the test rows' labels, computed here with numpy (not
# the program's AUC code, not over the training rows). A model of main effects (sparse_lr) stays
# near it; wide & deep learns part of the interactions.
"$pstrain" datagen criteo --rows 120000 --numeric 4 --categorical 8 --vocab 200 --interaction 1.5 \
  --seed 3 --out "$work/c_all.tsv" --truth "$work/c_truth.json" \
  --truth-main "$work/c_main.f32" >/dev/null
head -n 100000 "$work/c_all.tsv" >"$work/c_train.tsv"
tail -n 20000 "$work/c_all.tsv" >"$work/c_test.tsv"
"$py" - "$work/c_main.f32" "$work/c_test.tsv" >"$work/c_test_main.txt" <<'PY'
import sys, numpy as np
p = np.fromfile(sys.argv[1], "<f4")
if len(p) != 120000:
    sys.exit("main-effect probabilities: %d rows, not 120000" % len(p))
np.savetxt(sys.stdout, p[-20000:], fmt="%.9g")
PY
cut -f1 "$work/c_test.tsv" >"$work/c_test_labels.svm" # labels alone: what bayes_auc reads
main_auc=$(bayes_auc "$work/c_test_labels.svm" "$work/c_test_main.txt")
echo "test rows' main-effects AUC (numpy): $main_auc; the generator's over all rows: $(json "$work/c_truth.json" "['main_effects_auc']")"
wd_yaml=$(cd "$(dirname "$0")/../.." && pwd)/examples/clicks_wd.yaml
cwd=(--set data.train="$work/c_train.tsv" --set data.test="$work/c_test.tsv")
if "$pstrain" train "$wd_yaml" "${cwd[@]}" --out "$work/wd" -q >"$work/wd.log" 2>&1 &&
  "$pstrain" train "$wd_yaml" "${cwd[@]}" --set model.type=sparse_lr \
    --set model.hidden=[] --out "$work/clr" -q >"$work/clr.log" 2>&1 &&
  "$pstrain" train "$wd_yaml" "${cwd[@]}" --set model.type=sparse_lr \
    --set model.hidden=[] --out "$work/clr2" -q >"$work/clr2.log" 2>&1; then
  wd_auc=$(json "$work/wd/report.json" "['test']['roc_auc']")
  lr_auc=$(json "$work/clr/report.json" "['test']['roc_auc']")
  check "criteo TSV: sparse_lr test AUC $lr_auc within 0.01 of the main-effects AUC $main_auc" \
    "abs($lr_auc - $main_auc) <= 0.01"
  check "wide & deep test AUC $wd_auc beats sparse_lr's $lr_auc by >= 0.01 (learns interactions)" \
    "$wd_auc >= $lr_auc + 0.01"
  check "wide & deep report: criteo data, 12 fields, a deep part" \
    "'$(json "$work/wd/report.json" "['data']['format']")' == 'criteo' and $(json "$work/wd/report.json" "['model']['fields']") == 12 and $(json "$work/wd/report.json" "['model']['deep_parameters']") > 1000"
  check "hashing is deterministic: two sparse_lr runs give the same AUC and keys" \
    "$lr_auc == $(json "$work/clr2/report.json" "['test']['roc_auc']") and $(json "$work/clr/report.json" "['sparse']['keys']") == $(json "$work/clr2/report.json" "['sparse']['keys']")"
else
  fail "criteo TSV / wide & deep: $(tail -3 "$work/wd.log" "$work/clr.log" "$work/clr2.log")"
fi
printf '0\t1\t2\t3\t4\ta\tb\tc\td\te\tf\tg\th\n1\t1\t2\n' >"$work/short.tsv"
# --- bad input ------------------------------------------------------------------------------
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
printf 'a,b,target\n1,2,0\n3,4,1\n' >"$work/table.csv"
expect_error "a CSV file" "reads LIBSVM" "$pstrain" train "$work/lr.yaml" --set data.train="$work/table.csv" --out "$work/e1" -q
printf '1 1:1 3:1\n2 2:1\n1 4:1\n2 1:1\n' >"$work/labels12.svm"
expect_error "labels 1/2" "needs click labels 0/1" "$pstrain" train "$work/lr.yaml" --set data.train="$work/labels12.svm" --out "$work/e2" -q
printf '0 1:1\n1 2:1\n2 3:1\n' >"$work/labels012.svm"
expect_error "labels 0/1/2" "3 distinct labels" "$pstrain" train "$work/lr.yaml" --set data.test="$work/labels012.svm" --out "$work/e3" -q
printf '0 1:1 2:1\n1 3:1 x\n' >"$work/broken.svm"
expect_error "a malformed line" "broken.svm:2" "$pstrain" train "$work/lr.yaml" --set data.format=libsvm --set data.train="$work/broken.svm" --out "$work/e4" -q
expect_error "a dense optimizer" "ftrl or adagrad" "$pstrain" train "$work/lr.yaml" --set optimizer.name=adam --out "$work/e5" -q
expect_error "data.buffer_rows without data.test" "data.buffer_rows" "$pstrain" train "$work/lr.yaml" --set data.test="" --set data.val_fraction=0.2 --set data.buffer_rows=100 --out "$work/e7" -q
expect_error "data.buffer_rows under mpirun" "data.buffer_rows" mpi 3 train "$work/lr.yaml" --set data.buffer_rows=100 --out "$work/e8" -q
expect_error "labels 1/2 under mpirun" "needs click labels 0/1" mpi 3 train "$work/lr.yaml" --set data.train="$work/labels12.svm" --out "$work/e6" -q
expect_error "a TSV row with too few columns" "short.tsv:2" "$pstrain" train "$wd_yaml" --set data.train="$work/short.tsv" --set data.test="$work/short.tsv" --out "$work/e9" -q
for d in e1 e2 e3 e4 e5 e7 e9; do [ -e "$work/$d/report.json" ] && fail "$d wrote a report"; done

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
