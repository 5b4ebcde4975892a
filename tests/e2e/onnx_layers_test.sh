#!/usr/bin/env bash
# End-to-end: pstrain export of the convolutional, batch-normalised and recurrent layers. Each model
# is trained one epoch on small data, exported, accepted by the onnx checker (Debian's
# python3-onnx, full check: shapes inferred) with the operators its layers map to, and run in
# onnxruntime (onnxruntime-node, scripts/setup_onnxruntime.sh) on real rows of its test file: the
# labels equal `pstrain predict`'s and the probabilities agree within 1e-4 (values within 1e-4,
# relative above 1). The models:
#  - cnn: conv2d - relu - maxpool2d (the fused block) - conv2d - relu - avgpool2d - flatten -
#    dense - softmax on digits.csv as 1x8x8 images, standard scaling in front;
#  - cnn_gap: a stride-2 padded conv2d, a 2x2 maxpool of stride 1 (overlapping windows), conv2d,
#    global_avgpool, then dense straight on its (C, 1, 1) output;
#  - cnn_idx: a CNN on digits written as IDX images, the pixel scaling (Mul) in front;
#  - cnn_bag: a bag of two CNNs (the members' graphs, then the soft vote);
#  - cnn_bn: batchnorm after a conv2d and after a dense layer, whose running statistics after an
#    epoch are checked to be far from the identity (mean 0, variance 1) in the exported file;
#  - mlp_bn: dense - batchnorm - tanh - dense - softmax on wine.csv;
#  - lstm: an LSTM forecaster (the last state) on windows of the Mackey-Glass series;
#  - gru: a GRU returning its sequence into a second GRU, two step columns, on the same series;
#  - seq_class: sequence classification (is the series rising), an LSTM's sequence normalised per
#    step by batchnorm into a GRU and a softmax.
# Windowed models take one window per row: (window, step columns) flattened row-major, one row per
# window of the file as `pstrain predict` cuts them.
# Exits 77 (skipped) only when neither the checker nor the runtime can be installed.
# usage: onnx_layers_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
data=$tests/data
root=$(cd "$tests/.." && pwd)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/onnx_lib.sh"

# split CSV NAME: $work/NAME_train.csv and $work/NAME_test.csv, a seeded 4:1 split of CSV's rows
split() {
  "$py" - "$1" "$work/$2" <<'PY'
import random, sys
lines = open(sys.argv[1]).read().splitlines()
rows = lines[1:]
random.Random(11).shuffle(rows)
cut = len(rows) * 4 // 5
for part, chunk in (("train", rows[:cut]), ("test", rows[cut:])):
    open(f"{sys.argv[2]}_{part}.csv", "w").write("\n".join([lines[0]] + chunk) + "\n")
PY
}
split "$data/digits.csv" digits
split "$data/wine.csv" wine
# The series: its first 1200 rows train, 150 later rows are the file predict and onnxruntime read.
head -1201 "$root/examples/data/mackey_glass.csv" >"$work/mg_train.csv"
{ head -1 "$root/examples/data/mackey_glass.csv"; sed -n 1502,1651p "$root/examples/data/mackey_glass.csv"; } >"$work/mg_test.csv"

# train NAME CONFIG SETS... [-- COMMAND ARGS...]: pstrain train (or COMMAND with ARGS, e.g. bag
# --members 2) of CONFIG (from examples/) for one epoch into $work/NAME
train() {
  local name=$1 config=$2; shift 2
  local sets=() s command=(train)
  while [ $# -gt 0 ] && [ "$1" != -- ]; do sets+=(--set "$1"); shift; done
  [ $# -gt 0 ] && { shift; command=("$@"); }
  "$pstrain" "${command[0]}" "$root/examples/$config" "${command[@]:1}" --set train.epochs=1 \
    --set train.patience=0 "${sets[@]}" --out "$work/$name" -q >"$work/$name.log" 2>&1
}

# inputs NAME CSV [WINDOW COLUMNS]: $work/NAME-in.json, the graph input for the rows of CSV (the
# target column left out), or for its windows of WINDOW rows of the comma-separated COLUMNS; an
# IDX images file gives each image's bytes
inputs() {
  "$py" - "$2" "$work/$1-in.json" "${3:-0}" "${4:-}" <<'PY'
import csv, json, struct, sys
window, columns = int(sys.argv[3]), sys.argv[4].split(",")
if "idx3" in sys.argv[1]:  # an IDX images file: each image's bytes
    raw = open(sys.argv[1], "rb").read()
    n, h, w = struct.unpack(">III", raw[4:16])
    x = [list(raw[16 + i * h * w:16 + (i + 1) * h * w]) for i in range(n)]
elif window:
    rows = list(csv.DictReader(open(sys.argv[1])))
    steps = [[float(r[c]) for c in columns] for r in rows]
    x = [sum(steps[i:i + window], []) for i in range(len(steps) - window + 1)]
else:
    rows = list(csv.DictReader(open(sys.argv[1])))
    x = [[float(v) for k, v in r.items() if k != "target"] for r in rows]
json.dump([{"name": "input", "type": "float32", "dims": [len(x), len(x[0])], "data": sum(x, [])}],
          open(sys.argv[2], "w"))
PY
}

# agrees NAME CSV OPS [WINDOW COLUMNS]: exports NAME's model; the checker accepts it and its
# operators include every one of OPS; onnxruntime on the rows (or windows) of CSV gives pstrain
# predict's labels and probabilities (values) within 1e-4
agrees() {
  local name=$1 csv=$2 ops=$3 model=$work/$1/model.pst out
  if ! "$pstrain" export "$model" -o "$work/$name.onnx" >>"$work/$name.log" 2>&1; then
    fail "$name: export failed: $(tail -2 "$work/$name.log")"; return 1
  fi
  if ! "$pstrain" predict "$model" "$csv" -o "$work/$name-pred.csv" >>"$work/$name.log" 2>&1; then
    fail "$name: predict failed: $(tail -2 "$work/$name.log")"; return 1
  fi
  if out=$("$py" - "$work/$name.onnx" "$ops" <<'PY' 2>&1
import onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
have = {n.op_type for n in m.graph.node}
missing = [op for op in sys.argv[2].split() if op not in have]
if missing:
    sys.exit(f"no {' '.join(missing)} among {' '.join(sorted(have))}")
print(f"{len(m.graph.node)} nodes, with {sys.argv[2]}")
PY
  ); then
    pass "$name: the onnx checker accepts the file ($out)"
  else
    fail "$name: the onnx checker refuses the file: $out"; return 1
  fi
  inputs "$name" "$csv" "${4:-0}" "${5:-}"
  if ! node "$(dirname "$0")/onnx_run.js" "$ort" "$work/$name.onnx" "$work/$name-in.json" \
    "$work/$name-ort.json" >>"$work/$name.log" 2>&1; then
    fail "$name: onnxruntime failed: $(tail -2 "$work/$name.log")"; return 1
  fi
  out=$("$py" - "$work/$name-pred.csv" "$work/$name-ort.json" <<'PY'
import csv, json, math, sys
pred = list(csv.DictReader(open(sys.argv[1])))
ort = json.load(open(sys.argv[2]))
n = len(pred)
def diff(a, b):  # a NaN or missing value counts as an infinite difference
    return abs(a - b) if b is not None and math.isfinite(b) else math.inf
problems = []
if "value" in ort:
    value = ort["value"]
    if value["dims"] != [n, 1]:
        problems.append(f"value dims {value['dims']} for {n} predictions")
    worst = max(diff(float(p["prediction"]), v) / max(1.0, abs(float(p["prediction"])))
                for p, v in zip(pred, value["data"]))
    summary = f"max relative value difference {worst:.3g}"
else:
    label, prob = ort["label"], ort["probabilities"]
    cols = [c for c in pred[0] if c.startswith("p_")]
    k = len(cols)
    if label["dims"] != [n] or prob["dims"] != [n, k]:
        problems.append(f"dims {label['dims']} {prob['dims']} for {n} predictions")
    wrong = sum(float(p["prediction"]) != l for p, l in zip(pred, label["data"]))
    if wrong:
        problems.append(f"{wrong} labels differ")
    worst = max(diff(float(p[c]), prob["data"][i * k + j]) for i, p in enumerate(pred)
                for j, c in enumerate(cols))
    summary = f"labels equal, max probability difference {worst:.3g}"
if worst > 1e-4:
    problems.append(f"difference {worst:.3g} > 1e-4")
if n < 30:
    problems.append(f"only {n} rows")
print("; ".join(problems) if problems else f"ok on {n} rows: {summary}")
PY
)
  case $out in
    ok*) pass "$name: onnxruntime equals pstrain predict: ${out#ok }" ;;
    *) fail "$name: onnxruntime differs from pstrain predict: $out"; return 1 ;;
  esac
}

digits=(data.train="$work/digits_train.csv" data.test="$work/digits_test.csv" 'data.image_shape=[1,8,8]')
if train cnn csv_logreg.yaml "${digits[@]}" \
  'model.layers=[conv2d:4:3:pad=1, relu, maxpool2d:2, conv2d:6:3:pad=1, relu, avgpool2d:2, flatten, dense:10, softmax]'; then
  agrees cnn "$work/digits_test.csv" "Reshape Conv Relu MaxPool AveragePool Flatten Gemm Softmax"
else fail "cnn: training failed: $(tail -3 "$work/cnn.log")"; fi

if train cnn_gap csv_logreg.yaml "${digits[@]}" \
  'model.layers=[conv2d:4:3:2:1, relu, maxpool2d:2:1, conv2d:8:3:pad=1, tanh, global_avgpool, dense:10, softmax]'; then
  agrees cnn_gap "$work/digits_test.csv" "Conv MaxPool GlobalAveragePool Flatten Gemm"
else fail "cnn_gap: training failed: $(tail -3 "$work/cnn_gap.log")"; fi

# digits as IDX images (16 x the CSV's 0..16 levels): the 1x8x8 shape is inferred from the square
# rows, and the graph starts with the pixel scaling
"$py" - "$work/digits_train.csv" "$work/digits_test.csv" "$work" <<'PY'
import csv, struct, sys
for src, prefix in ((sys.argv[1], "dtrain"), (sys.argv[2], "dtest")):
    rows = list(csv.reader(open(src)))
    target = rows[0].index("target")
    rows = rows[1:]
    with open(f"{sys.argv[3]}/{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(rows), 8, 8))
        f.write(bytes(min(255, int(float(r[j])) * 16) for r in rows for j in range(len(r)) if j != target))
    with open(f"{sys.argv[3]}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(rows)))
        f.write(bytes(int(float(r[target])) for r in rows))
PY
if train cnn_idx csv_logreg.yaml data.train="$work/dtrain-images-idx3-ubyte" \
  data.test="$work/dtest-images-idx3-ubyte" data.scaler=none \
  'model.layers=[conv2d:4:3:pad=1, relu, maxpool2d:2, dense:10, softmax]'; then
  agrees cnn_idx "$work/dtest-images-idx3-ubyte" "Mul Reshape Conv MaxPool Flatten Gemm"
else fail "cnn_idx: training failed: $(tail -3 "$work/cnn_idx.log")"; fi

# an ensemble of CNNs: every member's graph over the one input, then the soft vote
if train cnn_bag csv_logreg.yaml "${digits[@]}" \
  'model.layers=[conv2d:3:3, relu, maxpool2d:2, dense:10, softmax]' -- bag --members 2; then
  agrees cnn_bag "$work/digits_test.csv" "Conv MaxPool Gemm Softmax Add"
else fail "cnn_bag: training failed: $(tail -3 "$work/cnn_bag.log")"; fi

if train cnn_bn csv_logreg.yaml "${digits[@]}" \
  'model.layers=[conv2d:4:3:pad=1, batchnorm, relu, maxpool2d:2, flatten, dense:16, batchnorm, relu, dense:10, softmax]'; then
  if agrees cnn_bn "$work/digits_test.csv" "Conv BatchNormalization MaxPool Gemm Softmax"; then
    out=$("$py" - "$work/cnn_bn.onnx" <<'PY'
import onnx, onnx.numpy_helper as nh, sys
m = onnx.load(sys.argv[1])
init = {t.name: nh.to_array(t) for t in m.graph.initializer}
bns = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
far = [max(abs(init[n.input[3]]).max(), abs(init[n.input[4]] - 1).max()) for n in bns]
eps = [a.f for n in bns for a in n.attribute if a.name == "epsilon"]
print(len(bns) == 2 and min(far) > 0.05 and all(abs(e - 1e-5) < 1e-12 for e in eps),
      f"{len(bns)} nodes, running statistics at least {min(far):.3g} from the identity, epsilon {eps}")
PY
)
    check "cnn_bn: the exported running statistics are trained ones, epsilon pstrain's: ${out#* }" "${out%% *}"
  fi
else fail "cnn_bn: training failed: $(tail -3 "$work/cnn_bn.log")"; fi

if train mlp_bn csv_logreg.yaml data.train="$work/wine_train.csv" data.test="$work/wine_test.csv" \
  train.batch_size=16 'model.layers=[dense:8, batchnorm, tanh, dense:3, softmax]'; then
  agrees mlp_bn "$work/wine_test.csv" "Gemm Reshape BatchNormalization Flatten Tanh Softmax"
else fail "mlp_bn: training failed: $(tail -3 "$work/mlp_bn.log")"; fi

series=(data.train="$work/mg_train.csv" data.window=12 data.horizon=3)
if train lstm mackey_glass_lstm.yaml "${series[@]}" 'model.layers=[lstm:8, dense:1]'; then
  if agrees lstm "$work/mg_test.csv" "Reshape Transpose LSTM Squeeze Gemm" 12 value; then
    out=$("$py" -c "import onnx, sys; m = onnx.load(sys.argv[1]); print({p.key: p.value for p in m.metadata_props}.get('window'), m.graph.input[0].doc_string)" "$work/lstm.onnx")
    case $out in
      "12 one window of the series per row"*) pass "lstm: the input is documented as windows of 12 steps" ;;
      *) fail "lstm: the input's window metadata or doc: $out" ;;
    esac
  fi
else fail "lstm: training failed: $(tail -3 "$work/lstm.log")"; fi

if train gru mackey_glass_lstm.yaml "${series[@]}" 'data.sequence_columns=[t, value]' \
  'model.layers=[gru:6:seq, gru:5, dense:1]'; then
  agrees gru "$work/mg_test.csv" "Transpose GRU Squeeze Gemm" 12 t,value
else fail "gru: training failed: $(tail -3 "$work/gru.log")"; fi

# sequence classification: is the series rising at a window's last row (horizon 0), from an lstm
# sequence normalised per step by batchnorm into a gru, softmax over the two classes
"$py" - "$work/mg_train.csv" "$work/mg_test.csv" <<'PY'
import csv, sys
for path in sys.argv[1:]:
    rows = list(csv.DictReader(open(path)))
    with open(path.replace(".csv", "_up.csv"), "w") as f:
        f.write("t,value,up\n")
        for prev, r in zip(rows, rows[1:]):
            f.write(f"{r['t']},{r['value']},{int(float(r['value']) > float(prev['value']))}\n")
PY
if train seq_class mackey_glass_lstm.yaml data.train="$work/mg_train_up.csv" data.window=8 \
  data.horizon=0 data.target=up data.task=classification 'data.sequence_columns=[value]' \
  'model.layers=[lstm:6:seq, batchnorm, gru:4, dense:2, softmax]'; then
  agrees seq_class "$work/mg_test_up.csv" "LSTM BatchNormalization GRU Softmax ArgMax" 8 value
else fail "seq_class: training failed: $(tail -3 "$work/seq_class.log")"; fi

echo "$failures checks failed"
[ "$failures" = 0 ]
