#!/usr/bin/env bash
# End-to-end: pstrain export writes dense models as ONNX files that the onnx package's checker
# accepts (Debian's python3-onnx) and that onnxruntime (onnxruntime-node, installed by
# scripts/setup_onnxruntime.sh) runs on the raw rows of the data file to the same predictions as
# `pstrain predict`: the same labels, probabilities and values within 1e-5 (relative to the value
# for regression values above 1), on the rows of each model's test file (a fifth of the data file,
# held out from training). Four models:
#  - logistic regression (one sigmoid output) on breast_cancer, standard scaling;
#  - an MLP (tanh, dropout, softmax) on wine with missing cells imputed by the median and min-max
#    scaling;
#  - linear regression on diabetes, standard scaling;
#  - an MLP (relu, softmax) on digits with missing cells imputed by the mean, no scaling;
#  - an MLP on digits written as IDX images (0..255), so that the pixel scaling is exported too.
# Ensemble files too, the same way: a soft-voting bag of sigmoid logistic regressions on feature
# subsets (breast_cancer), a hard-voting bag of MLPs (wine, missing cells), a stack of two bases
# under a meta model (wine) and a soft-voting bag of linear regressions (diabetes).
# Models with typed CSV columns (customers.csv, dates dropped): a one-hot MLP with outlier clipping
# and a logistic regression with ordinal codes take one graph input per column (categories as
# strings, numbers and booleans as floats) and give pstrain predict's text labels and probabilities
# within 1e-5 on the test rows, among them values unseen in training and missing cells, as do a bag
# and a stack of such models, and a linear regression on rentals.csv (text, boolean, clipped
# numbers); a hashed category and an expanded date column are refused naming the column.
# Also: a sparse model and files that are not models are refused with messages saying why, a
# failed export leaves no file, and bad options are usage errors (exit 2).
# Exits 77 (skipped) only when neither the checker nor the runtime can be installed.
# usage: onnx_export_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
root=$(cd "$tests/.." && pwd)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/onnx_lib.sh"

# with_missing SRC DST SHARE SEED: SRC with a SHARE of its feature cells replaced by "nan"
with_missing() {
  "$py" - "$@" <<'PY'
import csv, random, sys
src, dst, share, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rows = list(csv.reader(open(src)))
rng = random.Random(seed)
target = rows[0].index("target")
for r in rows[1:]:
    for j in range(len(r)):
        if j != target and rng.random() < share:
            r[j] = "nan"
csv.writer(open(dst, "w", newline=""), lineterminator="\n").writerows(rows)
PY
}
with_missing "$data/wine.csv" "$work/wine_missing.csv" 0.08 1
with_missing "$data/digits.csv" "$work/digits_missing.csv" 0.05 2

# split CSV NAME: $work/NAME_train.csv and $work/NAME_test.csv, a seeded 4:1 split of CSV's rows
split() {
  "$py" - "$1" "$work/$2" <<'PY'
import random, sys
lines = open(sys.argv[1]).read().splitlines()
rows = lines[1:]
random.Random(7).shuffle(rows)
cut = len(rows) * 4 // 5
for part, chunk in (("train", rows[:cut]), ("test", rows[cut:])):
    open(f"{sys.argv[2]}_{part}.csv", "w").write("\n".join([lines[0]] + chunk) + "\n")
PY
}

# train NAME CSV TASK SETS...: a run of examples/csv_logreg.yaml on 4/5 of CSV into $work/NAME
train() {
  local name=$1 csv=$2 task=$3; shift 3
  local sets=() s
  for s in "$@"; do sets+=(--set "$s"); done
  split "$csv" "$name"
  "$pstrain" train "$root/examples/csv_logreg.yaml" --set data.train="$work/${name}_train.csv" \
    --set data.test="$work/${name}_test.csv" --set data.task="$task" --set train.epochs=20 \
    "${sets[@]}" --out "$work/$name" -q >"$work/$name.log" 2>&1
}

# ensemble NAME CSV TASK COMMAND ARGS...: pstrain COMMAND (bag, stack) of examples/csv_logreg.yaml
# with ARGS on 4/5 of CSV into $work/NAME
ensemble() {
  local name=$1 csv=$2 task=$3 command=$4; shift 4
  split "$csv" "$name"
  "$pstrain" "$command" "$root/examples/csv_logreg.yaml" --set data.train="$work/${name}_train.csv" \
    --set data.test="$work/${name}_test.csv" --set data.task="$task" --set train.epochs=10 "$@" \
    --out "$work/$name" -q >"$work/$name.log" 2>&1
}

# matches NAME [DATA]: exports NAME's model, checks the file, runs it on the rows of DATA (default
# NAME's test CSV; an IDX images file is read as its raw bytes) in onnxruntime and compares with
# pstrain predict on the same rows
matches() {
  local name=$1
  local model=$work/$name/model.pst csv=${2:-$work/${name}_test.csv}
  if ! "$pstrain" export "$model" -o "$work/$name.onnx" 2>>"$work/$name.log"; then
    fail "$name: export failed: $(tail -2 "$work/$name.log")"; return
  fi
  if ! "$pstrain" predict "$model" "$csv" -o "$work/$name-pred.csv" 2>>"$work/$name.log"; then
    fail "$name: predict failed: $(tail -2 "$work/$name.log")"; return
  fi
  if out=$("$py" -c "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(len(m.graph.node))" "$work/$name.onnx" 2>&1); then
    pass "$name: the onnx checker accepts the file ($out nodes, shapes inferred)"
  else
    fail "$name: the onnx checker refuses the file: $out"
  fi
  "$py" - "$csv" "$work/$name-in.json" <<'PY'
import csv, json, math, struct, sys
if "idx3" in sys.argv[1]:
    raw = open(sys.argv[1], "rb").read()
    n, h, w = struct.unpack(">III", raw[4:16])
    x = [list(raw[16 + i * h * w:16 + (i + 1) * h * w]) for i in range(n)]
else:
    rows = list(csv.reader(open(sys.argv[1])))
    target = rows[0].index("target")
    def cell(v):
        return None if v.strip().lower() in ("", "na", "nan", "n/a", "?") else float(v)
    x = [[cell(v) for j, v in enumerate(r) if j != target] for r in rows[1:]]
json.dump([{"name": "input", "type": "float32", "dims": [len(x), len(x[0])], "data": sum(x, [])}],
          open(sys.argv[2], "w"))
PY
  if ! node "$(dirname "$0")/onnx_run.js" "$ort" "$work/$name.onnx" "$work/$name-in.json" \
    "$work/$name-ort.json" 2>>"$work/$name.log"; then
    fail "$name: onnxruntime failed: $(tail -2 "$work/$name.log")"; return
  fi
  out=$("$py" - "$work/$name-pred.csv" "$work/$name-ort.json" <<'PY'
import csv, json, math, sys
pred = list(csv.DictReader(open(sys.argv[1])))
ort = json.load(open(sys.argv[2]))
n = len(pred)
def finite_max(diffs):  # a NaN or missing value counts as an infinite difference
    return max((d if d is not None and math.isfinite(d) else math.inf) for d in diffs)
problems = []
if "value" in ort:
    value = ort["value"]
    if value["dims"] != [n, 1]:
        problems.append(f"value dims {value['dims']}")
    worst = finite_max(abs(float(p["prediction"]) - (v if v is not None else math.nan))
                       / max(1.0, abs(float(p["prediction"]))) for p, v in zip(pred, value["data"]))
    summary = f"max relative difference {worst:.3g}"
else:
    label, prob = ort["label"], ort["probabilities"]
    k = len([c for c in pred[0] if c.startswith("p_")])
    if label["dims"] != [n] or prob["dims"] != [n, k]:
        problems.append(f"dims {label['dims']} {prob['dims']}")
    wrong = sum(float(p["prediction"]) != l for p, l in zip(pred, label["data"]))
    if wrong:
        problems.append(f"{wrong} labels differ")
    cols = [c for c in pred[0] if c.startswith("p_")]
    worst = finite_max(abs(float(p[c]) - (prob["data"][i * k + j] if prob["data"][i * k + j] is not None else math.nan))
                       for i, p in enumerate(pred) for j, c in enumerate(cols))
    summary = f"labels equal, max probability difference {worst:.3g}"
if worst > 1e-5:
    problems.append(f"difference {worst:.3g} > 1e-5")
if n < 30:
    problems.append(f"only {n} test rows")
print("; ".join(problems) if problems else f"ok on {n} test rows: {summary}")
PY
)
  case $out in
    ok*) pass "$name: onnxruntime equals pstrain predict: ${out#ok }" ;;
    *) fail "$name: onnxruntime differs from pstrain predict: $out" ;;
  esac
}

if train bc_logistic "$data/breast_cancer.csv" classification model.output=sigmoid; then
  matches bc_logistic
else fail "bc_logistic: training failed: $(tail -3 "$work/bc_logistic.log")"; fi
if train wine_mlp "$work/wine_missing.csv" classification 'model.hidden=[16,8]' \
  model.activation=tanh model.dropout=0.2 data.impute=median data.scaler=minmax; then
  matches wine_mlp
else fail "wine_mlp: training failed: $(tail -3 "$work/wine_mlp.log")"; fi
if train diabetes_linear "$data/diabetes.csv" regression optimizer.lr=0.5 data.scaler=standard; then
  matches diabetes_linear
else fail "diabetes_linear: training failed: $(tail -3 "$work/diabetes_linear.log")"; fi
if train digits_mlp "$work/digits_missing.csv" classification 'model.hidden=[32]' \
  model.activation=relu data.impute=mean data.scaler=none train.epochs=10; then
  matches digits_mlp
else fail "digits_mlp: training failed: $(tail -3 "$work/digits_mlp.log")"; fi

# digits as IDX files (8x8 images, 16 x the CSV's 0..16 levels), 4/5 for training
"$py" - "$data/digits.csv" "$work" <<'PY'
import csv, random, struct, sys
rows = list(csv.reader(open(sys.argv[1])))
target = rows[0].index("target")
rows = rows[1:]
random.Random(3).shuffle(rows)
cut = len(rows) * 4 // 5
for prefix, part in (("dtrain", rows[:cut]), ("dtest", rows[cut:])):
    with open(f"{sys.argv[2]}/{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(part), 8, 8))
        f.write(bytes(min(255, int(float(r[j])) * 16) for r in part for j in range(len(r)) if j != target))
    with open(f"{sys.argv[2]}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(part)))
        f.write(bytes(int(float(r[target])) for r in part))
PY
if "$pstrain" train "$root/examples/csv_logreg.yaml" --set data.train="$work/dtrain-images-idx3-ubyte" \
  --set data.test="$work/dtest-images-idx3-ubyte" --set 'model.hidden=[16]' --set train.epochs=5 \
  --out "$work/digits_idx" -q >"$work/digits_idx.log" 2>&1; then
  matches digits_idx "$work/dtest-images-idx3-ubyte"
  if "$py" -c "import onnx, sys; m = onnx.load(sys.argv[1]); sys.exit(0 if m.graph.node[0].op_type == 'Mul' and m.graph.node[0].input[0] == 'input' else 1)" "$work/digits_idx.onnx"; then
    pass "digits_idx: the graph starts with the pixel scaling (Mul)"
  else fail "digits_idx: the graph does not start with the pixel scaling"; fi
else fail "digits_idx: training failed: $(tail -3 "$work/digits_idx.log")"; fi

# --- ensembles --------------------------------------------------------------------------------
if ensemble bag_bc "$data/breast_cancer.csv" classification bag --members 3 --max-features 0.5 \
  --set model.output=sigmoid; then
  matches bag_bc
else fail "bag_bc: training failed: $(tail -3 "$work/bag_bc.log")"; fi
if ensemble bag_wine_hard "$work/wine_missing.csv" classification bag --members 3 --voting hard \
  --set 'model.hidden=[8]' --set data.impute=median; then
  matches bag_wine_hard
else fail "bag_wine_hard: training failed: $(tail -3 "$work/bag_wine_hard.log")"; fi
if ensemble stack_wine "$data/wine.csv" classification stack --base 'model.hidden=[]' \
  --base 'model.hidden=[8];model.activation=tanh' --folds 3; then
  matches stack_wine
else fail "stack_wine: training failed: $(tail -3 "$work/stack_wine.log")"; fi
if ensemble bag_diabetes "$data/diabetes.csv" regression bag --members 3 --set optimizer.lr=0.5; then
  matches bag_diabetes
else fail "bag_diabetes: training failed: $(tail -3 "$work/bag_diabetes.log")"; fi

# --- typed columns: text categories, booleans, text labels ---------------------------------------
# customers.csv (a BOM, quoted commas, yes/no flags, text labels churned yes/no), its dates dropped:
# a seeded 4:1 split read as CSV (quoted fields kept), and in the test rows a plan never seen in
# training ("enterprise": the "other" slot), missing region, autopay and monthly_spend cells.
"$py" - "$data/customers.csv" "$work/cust" <<'PY'
import csv, random, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig", newline="")))
head, body = rows[0], rows[1:]
random.Random(5).shuffle(body)
cut = len(body) * 4 // 5
test = body[cut:]
col = {name: j for j, name in enumerate(head)}
test[0][col["plan"]] = "enterprise"
test[1][col["region"]] = ""
test[2][col["autopay"]] = "NA"
test[3][col["monthly_spend"]] = "?"
test[4][col["plan"]] = "enterprise"
for part, chunk in (("train", body[:cut]), ("test", test)):
    with open(f"{sys.argv[2]}_{part}.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([head] + chunk)
PY

# typed NAME SETS... [-- ARGS...]: pstrain train (with ARGS: pstrain ARGS, e.g. bag --members 3)
# of examples/csv_tabular.yaml (customer_id passed through, note dropped) on the split above into
# $work/NAME
typed() {
  local name=$1; shift
  local sets=() s command=(train)
  while [ $# -gt 0 ] && [ "$1" != -- ]; do sets+=(--set "$1"); shift; done
  [ $# -gt 0 ] && { shift; command=("$@"); }
  "$pstrain" "${command[0]}" "$root/examples/csv_tabular.yaml" "${command[@]:1}" \
    --set data.train="$work/cust_train.csv" --set data.test="$work/cust_test.csv" \
    --set train.epochs=10 "${sets[@]}" --out "$work/$name" -q >"$work/$name.log" 2>&1
}

# matches_typed NAME OPS NOT [CSV INPUTS]: exports NAME's model, checks the file and its inputs
# (one per column: float for numbers and booleans, string for categories), runs it in onnxruntime
# on the raw cells of the test rows CSV (missing cells as NaN or "", booleans as 1 or 0) and
# compares with pstrain predict: the same text labels and probabilities within 1e-5, or values
# within 1e-5 relative. The graph inputs must be INPUTS (CSV and INPUTS default to customers'),
# its operator types include each of OPS and none of NOT.
matches_typed() {
  local name=$1 model=$work/$1/model.pst csv=${4:-$work/cust_test.csv}
  local inputs=${5:-"plan:string region:string monthly_spend:float support_calls:float autopay:float"}
  if ! "$pstrain" export "$model" -o "$work/$name.onnx" 2>>"$work/$name.log"; then
    fail "$name: export failed: $(tail -2 "$work/$name.log")"; return
  fi
  if ! "$pstrain" predict "$model" "$csv" -o "$work/$name-pred.csv" 2>>"$work/$name.log"; then
    fail "$name: predict failed: $(tail -2 "$work/$name.log")"; return
  fi
  if out=$("$py" - "$work/$name.onnx" "$csv" "$work/$name-in.json" 2>&1 <<'PY'
import csv, json, onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
rows = list(csv.DictReader(open(sys.argv[2], newline="")))
missing = ("", "na", "nan", "n/a", "?")
def number(v):
    w = v.strip().lower()
    if w in missing:
        return None
    if w in ("true", "yes", "t", "y"):
        return 1.0
    if w in ("false", "no", "f", "n"):
        return 0.0
    return float(w)
feeds, kinds = [], []
for i in m.graph.input:
    string = i.type.tensor_type.elem_type == onnx.TensorProto.STRING
    kinds.append(f"{i.name}:{'string' if string else 'float'}")
    data = [("" if r[i.name].strip().lower() in missing else r[i.name]) if string else number(r[i.name])
            for r in rows]
    feeds.append({"name": i.name, "type": "string" if string else "float32",
                  "dims": [len(rows), 1], "data": data})
json.dump(feeds, open(sys.argv[3], "w"))
print(" ".join(kinds), "ops", " ".join(sorted({n.op_type for n in m.graph.node})))
PY
  ); then
    pass "$name: the onnx checker accepts the file; inputs $out"
  else
    fail "$name: the onnx checker refuses the file or its inputs: $out"; return
  fi
  local ops=" ${out#* ops } " op ok=1
  [ "${out%% ops *}" = "$inputs" ] || ok=0
  for op in $2; do case $ops in *" $op "*) ;; *) ok=0 ;; esac; done
  for op in $3; do case $ops in *" $op "*) ok=0 ;; esac; done
  if [ "$ok" = 1 ]; then pass "$name: the graph's inputs are the columns; it uses $2${3:+, not $3}"
  else fail "$name: unexpected graph inputs or operators (want $inputs, $2${3:+, not $3}): $out"; fi
  if ! node "$(dirname "$0")/onnx_run.js" "$ort" "$work/$name.onnx" "$work/$name-in.json" \
    "$work/$name-ort.json" 2>>"$work/$name.log"; then
    fail "$name: onnxruntime failed: $(tail -2 "$work/$name.log")"; return
  fi
  out=$("$py" - "$work/$name-pred.csv" "$work/$name-ort.json" <<'PY'
import csv, json, math, sys
pred = list(csv.DictReader(open(sys.argv[1], newline="")))
ort = json.load(open(sys.argv[2]))
n = len(pred)
problems = []
def diff(a, b):
    return abs(a - b) if b is not None and math.isfinite(b) else math.inf
if "value" in ort:  # regression: relative to values above 1
    value = ort["value"]
    if value["dims"] != [n, 1]:
        problems.append(f"value dims {value['dims']}")
    worst = max(diff(float(p["prediction"]), v) / max(1.0, abs(float(p["prediction"])))
                for p, v in zip(pred, value["data"]))
    if worst > 1e-5:
        problems.append(f"difference {worst:.3g} > 1e-5")
    print("; ".join(problems) if problems else
          f"ok on {n} test rows (with missing cells): max relative difference {worst:.3g}")
    sys.exit(0)
label, prob = ort["label"], ort["probabilities"]
cols = [c for c in pred[0] if c.startswith("p_")]
k = len(cols)
if label["type"] != "string" or label["dims"] != [n] or prob["dims"] != [n, k]:
    problems.append(f"label {label['type']} {label['dims']}, probabilities {prob['dims']}")
wrong = sum(p["prediction"] != l for p, l in zip(pred, label["data"]))
if wrong:
    problems.append(f"{wrong} labels differ")
if not set(label["data"]) <= {c[2:] for c in cols}:
    problems.append(f"labels {sorted(set(label['data']))} are not the classes")
worst = max(diff(float(p[c]), prob["data"][i * k + j]) for i, p in enumerate(pred)
            for j, c in enumerate(cols))
if worst > 1e-5:
    problems.append(f"difference {worst:.3g} > 1e-5")
if n < 30:
    problems.append(f"only {n} test rows")
print("; ".join(problems) if problems else
      f"ok on {n} test rows (5 with an unseen plan or a missing cell): text labels equal, "
      f"max probability difference {worst:.3g}")
PY
)
  case $out in
    ok*) pass "$name: onnxruntime equals pstrain predict: ${out#ok }" ;;
    *) fail "$name: onnxruntime differs from pstrain predict: $out" ;;
  esac
}

# one-hot (region's rarer values in "other"), outliers clipped, an MLP
if typed cust_onehot data.dates=drop data.max_categories=3 data.outliers=clip_iqr \
  'model.hidden=[8]' model.activation=tanh; then
  matches_typed cust_onehot "Greater Less LabelEncoder OneHot" ""
else fail "cust_onehot: training failed: $(tail -3 "$work/cust_onehot.log")"; fi
# ordinal codes for the columns of more than 2 values, logistic regression
if typed cust_ordinal data.dates=drop data.max_categories=2 data.high_cardinality=ordinal; then
  matches_typed cust_ordinal "LabelEncoder Cast" "OneHot Greater Less"
else fail "cust_ordinal: training failed: $(tail -3 "$work/cust_ordinal.log")"; fi
# regression on rentals.csv (city and heating as text, balcony true/false, listing date dropped),
# outliers clipped, with missing cells in the test rows
"$py" - "$data/rentals.csv" "$work/rent" <<'PY'
import csv, random, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig", newline="")))
head, body = rows[0], rows[1:]
random.Random(9).shuffle(body)
cut = len(body) * 4 // 5
test = body[cut:]
col = {name: j for j, name in enumerate(head)}
test[0][col["city"]] = "Zermatt"
test[1][col["balcony"]] = ""
test[2][col["area_m2"]] = "NA"
for part, chunk in (("train", body[:cut]), ("test", test)):
    with open(f"{sys.argv[2]}_{part}.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([head] + chunk)
PY
if "$pstrain" train "$root/examples/csv_regression.yaml" --set data.train="$work/rent_train.csv" \
  --set data.test="$work/rent_test.csv" --set data.target=rent --set data.id_column=listing \
  --set data.dates=drop --set data.outliers=clip_iqr --set optimizer.lr=20 --set train.epochs=60 \
  --out "$work/rent_linear" -q >"$work/rent_linear.log" 2>&1; then
  matches_typed rent_linear "LabelEncoder OneHot Greater Less" "" "$work/rent_test.csv" \
    "city:string heating:string balcony:float area_m2:float rooms:float"
else fail "rent_linear: training failed: $(tail -3 "$work/rent_linear.log")"; fi

# ensembles over the same typed columns: a soft-voting bag and a stack
if typed cust_bag data.dates=drop data.max_categories=3 -- bag --members 3; then
  matches_typed cust_bag "LabelEncoder OneHot" ""
else fail "cust_bag: training failed: $(tail -3 "$work/cust_bag.log")"; fi
if typed cust_stack data.dates=drop -- stack --base 'model.hidden=[]' \
  --base 'model.hidden=[4];model.activation=tanh' --folds 3; then
  matches_typed cust_stack "LabelEncoder OneHot" ""
else fail "cust_stack: training failed: $(tail -3 "$work/cust_stack.log")"; fi

# --- refusals and usage ---------------------------------------------------------------------
# refused NAME MODEL PATTERN: export of MODEL exits 1, says PATTERN, and writes nothing
refused() {
  local name=$1 model=$2 pattern=$3 status=0
  "$pstrain" export "$model" -o "$work/$name.onnx" >"$work/$name.out" 2>&1 || status=$?
  if [ "$status" = 1 ] && grep -q "$pattern" "$work/$name.out" && [ ! -e "$work/$name.onnx" ]; then
    pass "$name: refused with exit 1, no file: $(head -1 "$work/$name.out")"
  else
    fail "$name: exit $status, file $(ls "$work/$name.onnx" 2>&1), message: $(cat "$work/$name.out")"
  fi
}
"$pstrain" datagen clicks --rows 2000 --features 500 --nnz 5 --seed 3 --out "$work/clicks.svm" >/dev/null
cat >"$work/lr.yaml" <<YAML
name: lr
seed: 0
data: {train: $work/clicks.svm, format: libsvm}
model: {type: sparse_lr}
optimizer: {name: ftrl, lr: 0.1}
train: {epochs: 1, batch_size: 256}
YAML
if "$pstrain" train "$work/lr.yaml" --out "$work/sparse" -q >"$work/sparse.log" 2>&1; then
  refused sparse "$work/sparse/model.pst" "a sparse model (model.type sparse_lr, fm or wide_deep) cannot be exported"
else fail "sparse_lr: training failed: $(tail -3 "$work/sparse.log")"; fi
# a hashed category and an expanded date column: no ONNX form, refused naming the column
if typed cust_hash data.dates=drop data.max_categories=2 data.high_cardinality=hash; then
  refused cust_hash "$work/cust_hash/model.pst" "column 'plan' cannot be exported to ONNX: it is a hashed category"
else fail "cust_hash: training failed: $(tail -3 "$work/cust_hash.log")"; fi
if typed cust_dates data.dates=expand; then
  refused cust_dates "$work/cust_dates/model.pst" "column 'signup_date' cannot be exported to ONNX: it is a date column"
else fail "cust_dates: training failed: $(tail -3 "$work/cust_dates.log")"; fi
printf 'not a model' >"$work/junk.pst"
refused junk "$work/junk.pst" "junk.pst"
refused missing "$work/no-such-model.pst" "no-such-model.pst"

usage() { # DESCRIPTION ARGS...: pstrain export ARGS exits 2
  local what=$1 status=0; shift
  "$pstrain" export "$@" >"$work/usage.out" 2>&1 || status=$?
  if [ "$status" = 2 ]; then pass "export $what: usage error (exit 2)"
  else fail "export $what: exit $status: $(cat "$work/usage.out")"; fi
}
usage "without -o" "$work/bc_logistic/model.pst"
usage "without MODEL" -o "$work/x.onnx"
usage "with an unknown option" "$work/bc_logistic/model.pst" -o "$work/x.onnx" --opset 9
usage "with two models" "$work/bc_logistic/model.pst" "$work/wine_mlp/model.pst" -o "$work/x.onnx"
if "$pstrain" export --help | grep -q "probabilities  float (N, n_classes)"; then
  pass "export --help documents the outputs"
else fail "export --help does not document the outputs"; fi

echo "$failures checks failed"
[ "$failures" = 0 ]
