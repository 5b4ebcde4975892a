#!/usr/bin/env bash
# Recurrent models and sequence windows end to end, on the first 600 values of the Mackey-Glass
# series (examples/data/mackey_glass.csv):
#  - data.window cuts each time-ordered part into its own windows: train, validation and test hold
#    n_part - window - horizon + 1 samples, so no window or target crosses a split;
#  - an LSTM forecasting 6 steps ahead learns (test r2 >= 0.9); pstrain eval of its model file cuts
#    the file into windows and scores them, predict forecasts past the file's end too; export
#    writes it with an ONNX LSTM node;
#  - under mpirun (1 server + 1 worker, BSP) lstm and gru stacks equal local training bit for bit,
#    with the whole model as one tensor and with weights per layer;
#  - train.freeze: a model fine-tuned from a saved one with its lstm frozen keeps that layer's
#    weights exactly, locally and under mpirun, where the frozen layer never reaches the servers
#    (one push per step, for the dense layer alone) and the result equals local training;
#  - sequence classification (data.horizon 0): a GRU labels windows by their last row's target;
#  - bad window settings and sequence columns are clear errors.
# usage: recurrent_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
pstrain=$1
tests=$2
source "$(dirname "$0")/lib.sh"

head -601 "$tests/../examples/data/mackey_glass.csv" >"$work/mg.csv"
cat > "$work/lstm.yaml" <<YAML
name: mg-lstm
seed: 4
data: {train: $work/mg.csv, target: value, task: regression, window: 16, horizon: 6,
       sequence_columns: [value], train_fraction: 0.7, val_fraction: 0.15, test_fraction: 0.15}
model: {layers: ['lstm:16', 'dense:1']}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 4, batch_size: 16}
YAML

# --- windows and local training --------------------------------------------------------------------
if "$pstrain" train "$work/lstm.yaml" --set train.epochs=30 --out "$work/local" -q >"$work/local.log" 2>&1; then
  # 600 rows: 420 train, 90 validation, 90 test; each part gives n - 16 - 6 + 1 windows
  check "windows per part: 399 train, 69 validation, 69 test (none straddles a split)" \
    "$(jexpr "$work/local/report.json" "(d['data']['train_rows'], d['data']['val_rows'], d['data']['test_rows']) == (399, 69, 69)")"
  r2=$(json "$work/local/report.json" "['test']['r2']")
  check "an LSTM forecasts the series 6 steps ahead (test r2 $r2 >= 0.9)" "$(python3 -c "print($r2 >= 0.9)")"
  if "$pstrain" eval "$work/local/model.pst" "$work/mg.csv" --json "$work/eval.json" >"$work/eval.log" 2>&1; then
    check "eval cuts the whole file into its 579 windows" "$(jexpr "$work/eval.json" "d['n'] == 579")"
  else
    fail "eval: $(tail -3 "$work/eval.log")"
  fi
  # predict also forecasts from the last 6 windows, whose targets lie past the file's end
  if "$pstrain" predict "$work/local/model.pst" "$work/mg.csv" -o "$work/pred.csv" 2>"$work/pred.log"; then
    check "predict writes a forecast for each of the 585 windows" "$(python3 -c "print(sum(1 for _ in open('$work/pred.csv')) == 586)")"
  else
    fail "predict: $(tail -3 "$work/pred.log")"
  fi
  # (onnx_layers_test.sh runs exported recurrent models against predict)
  if "$pstrain" export "$work/local/model.pst" -o "$work/m.onnx" >"$work/export.log" 2>&1 &&
    grep -q LSTM "$work/m.onnx"; then
    pass "export writes the lstm model as a graph with an ONNX LSTM node"
  else
    fail "export of the lstm model: $(tail -1 "$work/export.log")"
  fi
else
  fail "local LSTM training: $(tail -3 "$work/local.log")"
fi

# --- BSP == local, bit for bit ------------------------------------------------------------------
# lstm:40 makes the first stack 7,913 floats, over the 4,096 from which prefetch sends weights per
# layer; the second stays one tensor either way.
for stack in "lstm:40:seq, gru:8, dense:1" "gru:16, dense:4, tanh, dense:1"; do
  set_layers=(--set "model.layers=[$stack]")
  tag=$(echo "$stack" | tr -cd 'a-z0-9')
  "$pstrain" train "$work/lstm.yaml" "${set_layers[@]}" --out "$work/l-$tag" -q >/dev/null 2>&1 || fail "local $stack"
  params "$work/l-$tag/model.pst" >"$work/l-$tag.txt"
  for pf in false true; do
    mpi 2 train "$work/lstm.yaml" "${set_layers[@]}" --set transport.prefetch=$pf --out "$work/b-$tag-$pf" -q \
      >"$work/b-$tag-$pf.log" 2>&1 || fail "bsp [$stack] prefetch $pf: $(tail -3 "$work/b-$tag-$pf.log")"
    params "$work/b-$tag-$pf/model.pst" >"$work/b-$tag-$pf.txt"
    if [ -s "$work/l-$tag.txt" ] && cmp -s "$work/l-$tag.txt" "$work/b-$tag-$pf.txt"; then
      pass "BSP with 1 worker equals local for [$stack], prefetch $pf ($(wc -l <"$work/l-$tag.txt") parameters)"
    else
      fail "BSP [$stack] prefetch $pf differs from local: $(max_rel_diff "$work/b-$tag-$pf.txt" "$work/l-$tag.txt")"
    fi
  done
done
[ -f "$work/b-lstm40seqgru8dense1-true/report.json" ] && check "prefetch held the lstm/gru stack as 3 tensors: 3 pushes a step (4 epochs of 25)" \
  "$(jexpr "$work/b-lstm40seqgru8dense1-true/report.json" "d['comm']['pushes'] == 3 * 4 * 25")"

# --- fine-tuning with a frozen lstm --------------------------------------------------------------
ft=(--set model.init_from="$work/local/model.pst" --set 'train.freeze=[lstm]' --set optimizer.lr=0.003)
"$pstrain" train "$work/lstm.yaml" "${ft[@]}" --out "$work/ft" -q >"$work/ft.log" 2>&1 || fail "fine-tuning: $(tail -3 "$work/ft.log")"
params "$work/local/model.pst" >"$work/base.txt"
params "$work/ft/model.pst" >"$work/ft.txt"
# lstm:16 over 1 feature: W (64, 17) and b (64): the first 1,152 parameters
n_lstm=1152
if [ -s "$work/ft.txt" ]; then
  check "the frozen lstm's $n_lstm weights are unchanged after fine-tuning" \
    "$(python3 -c "a=open('$work/base.txt').read().split(); b=open('$work/ft.txt').read().split(); print(a[:$n_lstm] == b[:$n_lstm] and a[$n_lstm:] != b[$n_lstm:])")"
fi
mpi 2 train "$work/lstm.yaml" "${ft[@]}" --out "$work/ft-bsp" -q >"$work/ft-bsp.log" 2>&1 || fail "fine-tuning under mpirun: $(tail -3 "$work/ft-bsp.log")"
params "$work/ft-bsp/model.pst" >"$work/ft-bsp.txt"
if [ -s "$work/ft.txt" ] && cmp -s "$work/ft.txt" "$work/ft-bsp.txt"; then
  pass "fine-tuning with a frozen layer under mpirun equals local training bit for bit"
else
  fail "frozen fine-tuning under mpirun differs: $(max_rel_diff "$work/ft-bsp.txt" "$work/ft.txt")"
fi
# 399 windows / 16 = 25 steps an epoch, 4 epochs: one push per step, for the dense layer only
[ -f "$work/ft-bsp/report.json" ] && check "no gradient of the frozen lstm is pushed (100 pushes: the dense layer's)" \
  "$(jexpr "$work/ft-bsp/report.json" "d['comm']['pushes'] == 100")"

# --- sequence classification: the target of the window's last row (data.horizon 0) ---------------
# up = 1 when the series rose into this row: a GRU must read it off the window's last two steps.
python3 - "$work/mg.csv" "$work/updown.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w") as f:
    f.write("t,value,up\n")
    for i in range(1, len(rows)):
        up = int(float(rows[i]["value"]) > float(rows[i - 1]["value"]))
        f.write("%s,%s,%d\n" % (rows[i]["t"], rows[i]["value"], up))
PY
if "$pstrain" train "$work/lstm.yaml" --set data.train="$work/updown.csv" --set data.target=up \
     --set data.task=classification --set data.horizon=0 --set 'model.layers=[gru:8, dense:2, softmax]' \
     --set train.epochs=30 --out "$work/updown" -q >"$work/updown.log" 2>&1; then
  acc=$(json "$work/updown/report.json" "['test']['accuracy']")
  check "a GRU classifies each window by its last row's target (test accuracy $acc >= 0.9)" "$(python3 -c "print($acc >= 0.9)")"
  check "horizon 0: 419 training rows give 419 - 16 + 1 = 404 windows" "$(jexpr "$work/updown/report.json" "d['data']['train_rows'] == 404")"
else
  fail "sequence classification: $(tail -3 "$work/updown.log")"
fi

# --- errors --------------------------------------------------------------------------------------
expect_error() {
  local what=$1 want=$2; shift 2
  if "$pstrain" train "$work/lstm.yaml" "$@" --out "$work/err" -q >"$work/err.log" 2>&1; then
    fail "$what: accepted"
  elif grep -q -- "$want" "$work/err.log"; then
    pass "$what: '$want'"
  else
    fail "$what: $(tail -1 "$work/err.log")"
  fi
}
expect_error "a window longer than the validation part" "the validation part has 90 rows, fewer than one window" --set data.window=90
expect_error "an unknown sequence column" "data.sequence_columns: no column 'price'" --set 'data.sequence_columns=[price]'
expect_error "a lstm without units" "model.layers\[0\]: 'lstm' needs units" --set 'model.layers=[lstm, dense:1]'
expect_error "a negative window" "data.window" --set data.window=-1

echo "$failures checks failed"
[ "$failures" = 0 ]
