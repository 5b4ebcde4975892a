#!/usr/bin/env bash
# Benchmarks sparse logistic regression on click data: pstrain against liblinear, then pstrain
# under mpirun with the bytes each training row puts on the wire.
#
# usage: scripts/bench/clicks_vs_liblinear.sh [--rows N] [--test-rows T] [--features F] [--nnz K]
#                                             [--epochs E] [--batch B] [--seed S]
#                                             [--config FILE]
#
# Data: N training rows (default 2,000,000) and T test rows (default 500,000) drawn from one
# click process with known true weights: F features (default 2^20), K distinct per row (default
# 30) with popularity ~ rank^-1.1, weights ~ N(0, 0.25), bias set for a 3% click rate, labels
# ~ Bernoulli(sigmoid(bias + sum of the row's weights)). `pstrain datagen clicks` draws the
# N + T rows when the program has it (first N train, last T test); otherwise a numpy generator
# of the same process does. The test rows' Bayes AUC (true probabilities) is printed as the
# ceiling.
# Runs, one after another on the same files:
#   pstrain    the settings of FILE (default examples/clicks_lr.yaml: model, optimizer, batch,
#              epochs, validation share and early stopping, chosen there on validation rows)
#              with the data paths replaced; --epochs and --batch override the file's. The
#              validation share is carved from the N training rows, early stopping restores
#              the best epoch, and the test rows are scored with those weights
#   liblinear  liblinear-train -s 0 (L2-regularised logistic regression, primal trust-region
#              Newton, default tolerance) at C = 0.01, 0.1 and 1, each followed by
#              liblinear-predict -b 1 (probabilities). The peer's figures are those of the C
#              with the best test AUC: choosing C on the test rows favours the peer (pstrain
#              chooses its epoch on validation rows only), so the comparison is conservative.
#              Its wall time is that C's train plus predict
#   cache      the pstrain run three more times: the first run wrote the binary cache of both
#              files (data.cache), these read it instead of the text. The cache exists to cut
#              loading, so its target is on load time (report.json data.load_seconds): the
#              median load from the cache at most 0.2x the first run's, which parsed the text
#              (and wrote the cache). Their training rows/s are printed beside, no target: the
#              training pass does not depend on where the rows came from
#   mpirun     the same pstrain run on 1 parameter server + 2 workers (BSP, raw codec, batch B
#              per worker)
# Wall times run from process start to exit and include reading the text files (liblinear: train
# plus predict). Test AUC and log-loss: liblinear's from its prediction file by a Python helper,
# pstrain's from its report.json, with the same definitions (ties count one half; probabilities
# clipped to [1e-15, 1 - 1e-15]). Targets printed beside: pstrain's test AUC at least
# liblinear's best (over C) minus 0.002, at no more than 0.1x liblinear's wall time (at that C).
# Single-process runs are pinned to one core with taskset when it exists. The machine is shared
# and its load is printed; timings move with it.
set -euo pipefail
cd "$(dirname "$0")/../.."

rows=2000000
test_rows=500000
features=1048576
nnz=30
epochs=
batch=
seed=7
config=examples/clicks_lr.yaml
while [ $# -gt 0 ]; do
  case "$1" in
  --rows) rows=${2:?--rows needs a value}; shift 2 ;;
  --test-rows) test_rows=${2:?--test-rows needs a value}; shift 2 ;;
  --features) features=${2:?--features needs a value}; shift 2 ;;
  --nnz) nnz=${2:?--nnz needs a value}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --batch) batch=${2:?--batch needs a value}; shift 2 ;;
  --seed) seed=${2:?--seed needs a value}; shift 2 ;;
  --config) config=${2:?--config needs a value}; shift 2 ;;
  -h | --help) sed -n '4,41p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "clicks_vs_liblinear: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$config" ] || { echo "clicks_vs_liblinear: no config file $config" >&2; exit 2; }
for v in "$rows" "$test_rows" "$features" "$nnz" ${epochs:+"$epochs"} ${batch:+"$batch"} "$seed"; do
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || {
    echo "clicks_vs_liblinear: '$v' is not a positive integer" >&2
    exit 2
  }
done

command -v liblinear-train >/dev/null || PST_SETUP_BENCH=1 bash scripts/setup.sh
command -v liblinear-train >/dev/null || { echo "clicks_vs_liblinear: liblinear-train is missing" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "clicks_vs_liblinear: mpirun is missing (bash scripts/setup.sh)" >&2; exit 1; }
python=/usr/bin/python3
"$python" -c 'import numpy' || { echo "clicks_vs_liblinear: numpy is missing" >&2; exit 1; }
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
# Built on every run unless PSTRAIN names a binary (a no-op when up to date; a failed build
# stops the script): an old binary would time other code than the tree's.
if [ -z "${PSTRAIN:-}" ]; then
  echo "clicks_vs_liblinear: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
cores=$(nproc) # before OMP_NUM_THREADS=1, which nproc obeys
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-clicks-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# A private copy of the binary: a rebuild of the shared build directory mid-run cannot touch it.
cp "$pstrain" "$tmp/pstrain"
pstrain=$tmp/pstrain
"$pstrain" --help >/dev/null || { echo "$0: $pstrain does not run" >&2; exit 1; }
train=$tmp/train.svm
test=$tmp/test.svm

# ---- data -----------------------------------------------------------------------------------
# Writes $test.p (true click probability of every test row).
if "$pstrain" datagen --help >/dev/null 2>&1; then
  generator="pstrain datagen clicks"
  "$pstrain" datagen clicks --rows $((rows + test_rows)) --features "$features" --nnz "$nnz" \
    --seed "$seed" --sigma 0.25 --zipf 1.1 --click-rate 0.03 --out "$tmp/all.svm" \
    --truth "$tmp/truth.json" --truth-weights "$tmp/weights.f32" >/dev/null
  head -n "$rows" "$tmp/all.svm" >"$train"
  tail -n "$test_rows" "$tmp/all.svm" >"$test"
  rm "$tmp/all.svm"
  "$python" - "$tmp" "$test" <<'PY'
import json, sys, numpy as np
tmp, test = sys.argv[1], sys.argv[2]
w = np.fromfile(tmp + "/weights.f32", "<f4").astype(np.float64)
bias = json.load(open(tmp + "/truth.json"))["bias"]
p = [1 / (1 + np.exp(-(bias + w[[int(t.split(":")[0]) - 1 for t in line.split()[1:]]].sum())))
     for line in open(test)]
np.savetxt(test + ".p", p, fmt="%.9f")
PY
else
  generator="numpy (pstrain datagen is not in this build)"
  "$python" - "$train" "$test" "$rows" "$test_rows" "$features" "$nnz" "$seed" <<'PY'
import sys, numpy as np
train, test = sys.argv[1], sys.argv[2]
n_train, n_test, F, K, seed = map(int, sys.argv[3:])
rng = np.random.default_rng(seed)
w = rng.normal(0.0, 0.25, F)
cdf = np.cumsum((np.arange(F) + 1.0) ** -1.1)
cdf /= cdf[-1]
def draw(n):  # K distinct ids per row in proportion to popularity: a repeated id is drawn again
    ids = np.searchsorted(cdf, rng.random((n, K)), side="right")
    while True:
        ids.sort(axis=1)
        dup = np.zeros(ids.shape, dtype=bool)
        dup[:, 1:] = ids[:, 1:] == ids[:, :-1]
        if not dup.any():
            return ids
        ids[dup] = np.searchsorted(cdf, rng.random(int(dup.sum())), side="right")
pilot = w[draw(50000)].sum(axis=1)  # the bias that gives a 3% mean click probability
lo, hi = -30.0, 30.0
for _ in range(80):
    b = (lo + hi) / 2
    lo, hi = (lo, b) if (1 / (1 + np.exp(-(pilot + b)))).mean() > 0.03 else (b, hi)
token = [b"%d:1" % (j + 1) for j in range(F)]
def write(path, n):
    probs = []
    with open(path, "wb") as f:
        for start in range(0, n, 100000):
            ids = draw(min(100000, n - start))
            p = 1 / (1 + np.exp(-(w[ids].sum(axis=1) + b)))
            y = (rng.random(len(p)) < p).astype(int)
            f.write(b"".join(b"%d %s\n" % (yi, b" ".join([token[i] for i in row]))
                             for yi, row in zip(y.tolist(), ids.tolist())))
            probs.append(p)
    return np.concatenate(probs)
write(train, n_train)
np.savetxt(test + ".p", write(test, n_test), fmt="%.9f")
PY
fi

# AUC (ties count one half) and log-loss of probabilities against a LIBSVM file's labels.
cat >"$tmp/score.py" <<'PY'
import sys, numpy as np
y = np.array([float(line.split(None, 1)[0]) for line in open(sys.argv[1])]) > 0
p = np.loadtxt(sys.argv[2])
order = np.argsort(p, kind="mergesort")
ranks = np.empty(len(p))
ranks[order] = np.arange(1, len(p) + 1)
_, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
ranks = (np.bincount(inv, ranks) / counts)[inv]
pos = y.sum()
auc = (ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))
q = np.clip(p, 1e-15, 1 - 1e-15)
print("%.6f %.6f" % (auc, -np.mean(np.where(y, np.log(q), np.log(1 - q)))))
PY
read -r bayes_auc bayes_ll < <("$python" "$tmp/score.py" "$test" "$test.p")

# ---- runs -----------------------------------------------------------------------------------
# Runs a command; "$1" receives "wall_seconds cpu_seconds" (CPU of the process and its children).
timed() {
  local out=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$out.cpu" "$@"
  t1=$(date +%s.%N)
  read -r user sys <"$out.cpu"
  "$python" -c "print('%.2f %.2f' % ($t1 - $t0, $user + $sys))" >"$out"
}
load_start=$(cut -d' ' -f1 /proc/loadavg)

# The example's settings, its data paths replaced (and --epochs, --batch when given).
sets=(--set "data.train=$train" --set "data.test=$test" --set data.format=libsvm
  --set data.buffer_rows=0 --set train.progress=none)
[ -n "$epochs" ] && sets+=(--set "train.epochs=$epochs")
[ -n "$batch" ] && sets+=(--set "train.batch_size=$batch")
pin=()
command -v taskset >/dev/null && pin=(taskset -c $((cores - 1)))

timed "$tmp/t_pstrain" "${pin[@]}" "$pstrain" train "$config" "${sets[@]}" --out "$tmp/local" -q >/dev/null
for i in 1 2 3; do
  "${pin[@]}" "$pstrain" train "$config" "${sets[@]}" --out "$tmp/cache$i" -q >/dev/null
done
for c in 0.01 0.1 1; do
  timed "$tmp/t_ll_train_$c" "${pin[@]}" liblinear-train -s 0 -c "$c" "$train" "$tmp/ll_$c.model" >/dev/null
  timed "$tmp/t_ll_predict_$c" "${pin[@]}" liblinear-predict -b 1 "$test" "$tmp/ll_$c.model" "$tmp/ll_$c.pred" >/dev/null
done
timed "$tmp/t_mpi" mpirun --oversubscribe -np 3 "$pstrain" train "$config" "${sets[@]}" --out "$tmp/mpi" -q >/dev/null
load_end=$(cut -d' ' -f1 /proc/loadavg)

# liblinear-predict -b 1 writes "labels 0 1" then "label p0 p1" per row: keep P(label 1).
for c in 0.01 0.1 1; do
  "$python" - "$tmp/ll_$c.pred" "$tmp/ll_$c.p" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
col = 1 + lines[0].split()[1:].index("1")
with open(sys.argv[2], "w") as out:
    out.writelines(line.split()[col] + "\n" for line in lines[1:] if line)
PY
  "$python" "$tmp/score.py" "$test" "$tmp/ll_$c.p" >"$tmp/ll_$c.score"
done

# ---- table ----------------------------------------------------------------------------------
"$python" - "$tmp" "$bayes_auc" "$bayes_ll" <<PY
import json, sys
tmp = sys.argv[1]
bayes_auc, bayes_ll = map(float, sys.argv[2:4])
def times(name):
    return [float(x) for x in open(tmp + "/" + name).read().split()]
local, mpi = [json.load(open(tmp + "/%s/report.json" % d)) for d in ("local", "mpi")]
t_local, t_mpi = times("t_pstrain"), times("t_mpi")
cs = ("0.01", "0.1", "1")
ll = {c: [float(x) for x in open(tmp + "/ll_%s.score" % c).read().split()] for c in cs}
t_lls = {c: [a + b for a, b in zip(times("t_ll_train_" + c), times("t_ll_predict_" + c))]
         for c in cs}
best_c = max(cs, key=lambda c: ll[c][0])
ll_auc, ll_ll = ll[best_c]
t_ll = t_lls[best_c]
print("clicks: $rows training rows, $test_rows test rows, $features features, $nnz per row, "
      "click rate %.4f (generator: $generator, seed $seed)" % local["test"]["calibration"]["observed"])
print("Bayes ceiling on the test rows (true probabilities): AUC %.4f, log-loss %.4f" % (bayes_auc, bayes_ll))
print("machine: $cores cores, load average $load_start at start, $load_end at end\n")
print("%-40s %8s %8s %9s %9s %12s" % ("run", "wall s", "cpu s", "test AUC", "log-loss", "wire B/row"))
def row(name, t, auc, ll, bpe="-"):
    print("%-40s %8.1f %8.1f %9.4f %9.4f %12s" % (name, t[0], t[1], auc, ll, bpe))
lt = local["train"]
row("pstrain %s, best epoch %d of %d" % (local["model"]["type"], lt.get("best_epoch", 0),
                                        lt["epochs"]), t_local,
    local["test"]["roc_auc"], local["test"]["log_loss"])
for c in cs:
    row("liblinear -s 0 C=%s, train+predict%s" % (c, " *" if c == best_c else ""), t_lls[c],
        ll[c][0], ll[c][1])
row("pstrain mpirun 1 server + 2 workers", t_mpi, mpi["test"]["roc_auc"], mpi["test"]["log_loss"],
    "%.1f" % mpi["sparse"]["bytes_per_example"])
print()
print("pstrain local: read and split %.1fs, %d training pass(es) %.1fs (%.0f rows/s), %d keys, "
      "%d training and %d validation rows"
      % (local["data"]["load_seconds"], lt["epochs"], lt["seconds"], lt["samples_per_s"],
         local["sparse"]["keys"], local["data"]["train_rows"], local["data"]["val_rows"]))
if lt.get("history"):
    print("pstrain validation log-loss by epoch: %s (best epoch %d%s)"
          % (" ".join("%.5f" % h["val_loss"] for h in lt["history"]), lt["best_epoch"],
             ", stopped early" if lt["stopped_early"] else ""))
print("liblinear at C=%s (best test AUC, * above): train %.1fs, predict %.1fs (wall)"
      % (best_c, times("t_ll_train_" + best_c)[0], times("t_ll_predict_" + best_c)[0]))
cached = [json.load(open(tmp + "/cache%d/report.json" % i)) for i in (1, 2, 3)]
if local["data"]["from_cache"] or not all(r["data"]["from_cache"] for r in cached):
    sys.exit("clicks_vs_liblinear: the first run should parse the text and the next three read "
             "the cache (report.json data.from_cache)")
cache_loads = sorted(r["data"]["load_seconds"] for r in cached)
cache_rates = sorted(r["train"]["samples_per_s"] for r in cached)
text_load = local["data"]["load_seconds"]
print("pstrain from the binary cache: load %s s (text: %.2f s), training %s rows/s (3 runs)"
      % (" ".join("%.2f" % x for x in cache_loads), text_load,
         " ".join("%.0f" % x for x in cache_rates)))
c = mpi["comm"]
batch = mpi["train"]["batch_size"]
print("mpirun: %.1f unique keys per step (of %d entries in a batch of %d), %.1f raw / %.1f wire "
      "bytes per training row, %d pushes, %d pulls, %.0f MB on the wire in all"
      % (mpi["sparse"]["keys_per_step"], batch * $nnz, batch, mpi["sparse"]["raw_bytes_per_example"],
         mpi["sparse"]["bytes_per_example"], c["pushes"], c["pulls"], c["bytes_wire"] / 1e6))
sp = mpi["sparse"]
print("mpirun server: %d rows, store %.1f MB (%.1f B/row), peak RSS %.1f MB; local model %.1f MB"
      % (sp["server_rows"], sp["server_bytes"] / 1e6, sp["server_bytes_per_row"],
         sp["server_peak_rss_bytes"] / 1e6, local["sparse"]["model_bytes"] / 1e6))
auc_gap = local["test"]["roc_auc"] - ll_auc
ratio = t_local[0] / t_ll[0]
print()
print("target: test AUC at least liblinear's best (C=%s, %.4f) - 0.002: %.4f (%+.4f) -> %s"
      % (best_c, ll_auc, local["test"]["roc_auc"], auc_gap,
         "met" if auc_gap >= -0.002 else "NOT met"))
print("same target under mpirun: test AUC %.4f (%+.4f from liblinear's best) -> %s"
      % (mpi["test"]["roc_auc"], mpi["test"]["roc_auc"] - ll_auc,
         "met" if mpi["test"]["roc_auc"] - ll_auc >= -0.002 else "NOT met"))
print("target: wall time at most 0.1x liblinear's (C=%s): %.2fx (%.1fs / %.1fs) -> %s"
      % (best_c, ratio, t_local[0], t_ll[0], "met" if ratio <= 0.1 else "NOT met"))
load_ratio = cache_loads[1] / text_load if text_load > 0 else float("inf")
print("target: loading from the binary cache at most 0.2x parsing the text: median %.2fs / %.2fs "
      "= %.3fx -> %s" % (cache_loads[1], text_load, load_ratio,
                         "met" if load_ratio <= 0.2 else "NOT met"))
PY
