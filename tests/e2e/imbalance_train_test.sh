#!/usr/bin/env bash
# End-to-end: train.imbalance in `pstrain train`, locally and under mpirun (1 server + 2 workers),
# on breast_cancer.csv cut to 45 malignant against 357 benign rows. Each method must reach the
# trainer: report.json's train.imbalance gives the rows of each class the trainer drew from
# (balanced for over-, under-sampling and SMOTE, the real counts for class_weight, whose weights
# are n / (2 count)), and train.rows, counted by the training loop itself (summed over workers
# under mpirun), must equal epochs x the list's length; class weights must change the model.
# Per-worker files refuse resampling and sum their class counts for class_weight; federated runs
# refuse the key.
# usage: imbalance_train_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
config=$tests/../examples/csv_logreg.yaml
source "$(dirname "$0")/lib.sh"

python3 - "$data/breast_cancer.csv" "$work/imb.csv" <<'PY'
import csv, random, sys
rows = list(csv.reader(open(sys.argv[1])))
t = rows[0].index("target")
keep = [r for r in rows[1:] if r[t] == "1"] + [r for r in rows[1:] if r[t] == "0"][:45]
random.Random(3).shuffle(keep)
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows([rows[0]] + keep)
PY
epochs=4
batch=32
common=(--set data.train="$work/imb.csv" --set train.epochs=$epochs --set train.patience=0
  --set train.batch_size=$batch -q)

# local NAME METHOD / distributed NAME METHOD: a run into $work/NAME
local_run() { "$pstrain" train "$config" "${common[@]}" --set train.imbalance="$2" --out "$work/$1" >"$work/$1.log" 2>&1; }
mpi_run() { mpi 3 train "$config" "${common[@]}" --set train.imbalance="$2" --out "$work/$1" >"$work/$1.log" 2>&1; }
checksum() { "$pstrain" info "$work/$1/model.pst" | sed -n 's/^checksum: //p'; }

# What each report says against what the method promises. WORKERS 1 is the local run: every row
# of the list once per epoch; with W workers each takes its strided share for
# ceil(floor(n / W) / batch) steps of batch rows.
verify() { # NAME METHOD WORKERS
  python3 - "$work/$1/report.json" "$2" "$3" "$epochs" "$batch" "$work/none/report.json" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1])); method = sys.argv[2]; W = int(sys.argv[3])
epochs, b = int(sys.argv[4]), int(sys.argv[5])
base = json.load(open(sys.argv[6]))
tr, ib = d["train"], d["train"].get("imbalance")
n_train = base["data"]["train_rows"]
problems = []
if d["data"]["train_rows"] != n_train:
    problems.append(f"train_rows {d['data']['train_rows']} != {n_train}")
if method == "none":
    counts = None
    if ib is not None:
        problems.append(f"an imbalance section without imbalance: {ib}")
    n_list = n_train
else:
    if not ib or ib["method"] != method:
        problems.append(f"no imbalance section for {method}: {ib}")
        ib = {"class_rows": [0, 0], "synthetic_rows": 0}
    counts = ib["class_rows"]
    n_list = sum(counts)
    if method == "class_weight":
        w = ib.get("class_weights", [])
        want = [n_list / (2 * c) for c in counts]
        if n_list != n_train or len(w) != 2 or any(abs(x - y) > 1e-12 * y for x, y in zip(w, want)):
            problems.append(f"class_weight: counts {counts} of {n_train} rows, weights {w} != {want}")
        if not counts[0] < counts[1] / 4:
            problems.append(f"class_weight: the cut file's counts {counts} are not imbalanced")
    elif counts[0] != counts[1]:
        problems.append(f"{method}: classes not balanced: {counts}")
    if method == "smote" and ib["synthetic_rows"] != n_list - n_train:
        problems.append(f"smote: {ib['synthetic_rows']} synthetic rows for {n_list} - {n_train}")
    if method in ("oversample", "smote") and not n_list > 1.5 * n_train:
        problems.append(f"{method}: {n_list} rows from {n_train}")
    if method == "undersample" and not n_list < n_train / 3:
        problems.append(f"undersample: {n_list} rows from {n_train}")
if W == 1:
    per_epoch = n_list
else:
    steps = math.ceil((n_list // W) / b)
    shares = [len(range(i, n_list, W)) for i in range(W)]
    per_epoch = sum(min(s, steps * b) for s in shares)
if tr["epochs"] != epochs or tr["rows"] != epochs * per_epoch:
    problems.append(f"the trainer drew {tr['rows']} rows in {tr['epochs']} epochs, "
                    f"the list gives {epochs} x {per_epoch}")
print("; ".join(problems) if problems else "ok", counts, tr["rows"])
PY
}

local_run none none
for m in class_weight oversample undersample smote; do
  local_run "$m" "$m"
done
for m in none class_weight oversample undersample smote; do
  out=$(verify "$m" "$m" 1)
  case $out in ok*) pass "local $m: $out" ;; *) fail "local $m: $out ($(tail -2 "$work/$m.log"))" ;; esac
done
if [ "$(checksum class_weight)" != "$(checksum none)" ] && [ -n "$(checksum none)" ]; then
  pass "local class_weight trains another model than none"
else
  fail "local class_weight leaves the model as without weights"
fi

for m in none class_weight oversample; do
  mpi_run "mpi_$m" "$m"
  out=$(verify "mpi_$m" "$m" 2)
  case $out in ok*) pass "mpirun $m: $out" ;; *) fail "mpirun $m: $out ($(tail -2 "$work/mpi_$m.log"))" ;; esac
done
# The same list locally and shared out: the same class counts.
same=$(python3 -c "
import json, sys
a, b = (json.load(open(f))['train']['imbalance']['class_rows'] for f in sys.argv[1:])
print(a == b)" "$work/oversample/report.json" "$work/mpi_oversample/report.json")
check "mpirun oversample draws from the local run's list" "$same"
if [ "$(checksum mpi_class_weight)" != "$(checksum mpi_none)" ] && [ -n "$(checksum mpi_none)" ]; then
  pass "mpirun class_weight trains another model than none"
else
  fail "mpirun class_weight leaves the model as without weights"
fi

# One file per worker: resampling needs the whole set and is refused.
python3 - "$work/imb.csv" "$work/part" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
for w in range(2):
    csv.writer(open(f"{sys.argv[2]}{w}.csv", "w", newline=""), lineterminator="\n").writerows(
        [rows[0]] + rows[1 + w::2])
PY
mpi 3 train "$config" "${common[@]}" --set data.train="$work/part{worker}.csv" \
  --set data.test="$work/imb.csv" --set train.imbalance=oversample --out "$work/parts" >"$work/parts.log" 2>&1
status=$?
if [ "$status" != 0 ] && grep -q "train.imbalance: oversample resamples the whole training set" "$work/parts.log"; then
  pass "per-worker files refuse oversample (exit $status)"
else
  fail "per-worker files with oversample: exit $status, $(tail -3 "$work/parts.log")"
fi

# class_weight over per-worker files: the class counts of both workers' training rows (each
# worker carves its validation rows from its own file), and the weights from those sums (to the
# 15 digits report.json keeps).
mpi 3 train "$config" "${common[@]}" --set data.train="$work/part{worker}.csv" \
  --set data.test="$work/imb.csv" --set train.imbalance=class_weight --out "$work/parts_cw" >"$work/parts_cw.log" 2>&1
status=$?
summed=$(python3 -c "
import json, sys
d = json.load(open(sys.argv[1])); tr = d['train']; ib = tr['imbalance']
files = [0, 0]
for f in sys.argv[2:]:
    for line in list(open(f))[1:]:
        files[int(float(line.rstrip().split(',')[-1]))] += 1
c, n = ib['class_rows'], sum(ib['class_rows'])
ok = (n * tr['epochs'] == tr['rows'] and n > d['data']['train_rows'] and c[0] <= files[0] and
      c[1] <= files[1] and all(abs(w - n / (2 * k)) <= 1e-12 * w for w, k in zip(ib['class_weights'], c)))
print(ok or (c, files, tr['rows'], d['data']['train_rows'], ib['class_weights']))
" "$work/parts_cw/report.json" "$work/part0.csv" "$work/part1.csv" 2>&1)
check "per-worker files: class_weight from both workers' counts (exit $status)" "$summed"

"$pstrain" fed simulate "$config" --set data.train="$work/imb.csv" --set train.imbalance=smote \
  --out "$work/fed" >"$work/fed.log" 2>&1
status=$?
if [ "$status" = 1 ] && grep -q "train.imbalance: federated training does not apply smote" "$work/fed.log"; then
  pass "fed simulate refuses train.imbalance (exit 1)"
else
  fail "fed simulate with train.imbalance: exit $status, $(tail -3 "$work/fed.log")"
fi

echo "$failures checks failed"
[ "$failures" = 0 ]
