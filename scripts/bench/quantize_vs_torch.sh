#!/usr/bin/env bash
# Benchmarks post-training int8 quantisation: pstrain float and int8 against PyTorch float and
# torch.quantization.quantize_dynamic on the reference Fashion-MNIST MLP, pinned to one core.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF'
usage: scripts/bench/quantize_vs_torch.sh [--repeats R] [--epochs E] [--core C] [--qat Q]
                                          [--cnn [--cnn-epochs N]]

Trains examples/fashion_mlp.yaml with pstrain for E epochs (default 3), quantises it with
`pstrain quantize --calibration` (the first 2048 training images, rule: max |x|), and trains the
same MLP in PyTorch (scripts/bench/quantize_torch.py) and quantises it with quantize_dynamic.
Then, pinned with taskset to core C (default 1) and one thread, times each variant R times
(default 3; `pstrain info --cost` on the test images for pstrain) and prints the medians: file or
state_dict bytes, single-row latency p50/p99, throughput in batches of 256, test accuracy, the
ratios to the float model and the targets (int8 accuracy within 0.005 of float, size <= 0.3x,
single-row latency <= 0.5x pstrain float). The load average is printed: on a busy machine the
latencies (the p99s above all) carry the noise of the other processes.

Quantisation-aware fine-tuning: the float model is fine-tuned Q more epochs (default 1; 0: skip)
from its weights (model.init_from, lr 1e-4) twice, once plainly and once with train.qat, each
quantised the same way; a second table gives float and int8 test accuracy of the float model
(post-training quantisation), the plain fine-tune and the qat fine-tune, so that qat is compared
with the same extra training without it.

--cnn then does the same for examples/fashion_cnn.yaml (N epochs, default 1; calibrated on 1024
training images) against fashion_cnn_torch.py's network, whose quantize_dynamic leaves the
convolutions float (dynamic quantisation has none).

Builds pstrain first unless PSTRAIN names a binary; BUILD_DIR overrides the build directory.
EOF
}

repeats=3
epochs=3
core=1
cnn=0
cnn_epochs=1
qat_epochs=1
while [ $# -gt 0 ]; do
  case "$1" in
  --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
  --epochs) epochs=${2:?--epochs needs a value}; shift 2 ;;
  --core) core=${2:?--core needs a value}; shift 2 ;;
  --cnn) cnn=1; shift ;;
  --qat) qat_epochs=${2:?--qat needs a value}; shift 2 ;;
  --cnn-epochs) cnn_epochs=${2:?--cnn-epochs needs a value}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "quantize_vs_torch: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$repeats" "$epochs" "$cnn_epochs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "quantize_vs_torch: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$qat_epochs" =~ ^[0-9]+$ ]] || { echo "quantize_vs_torch: --qat takes an epoch count" >&2; exit 2; }
[[ "$core" =~ ^[0-9]+$ ]] || { echo "quantize_vs_torch: --core takes a core number" >&2; exit 2; }

PST_SETUP_BENCH=1 bash scripts/setup.sh
build_dir=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build_dir/cli/pstrain}
if [ -z "${PSTRAIN:-}" ]; then
  echo "quantize_vs_torch: building pstrain into $build_dir" >&2
  BUILD_DIR=$build_dir bash scripts/build.sh >&2
fi
python=/usr/bin/python3
data=/usr/share/datasets/fashion-mnist
pin=(taskset -c "$core" env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pst-quant.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

table() { # DIR NAME: the medians, ratios and targets of one network
  "$python" - "$1" "$repeats" "$2" <<'EOF'
import json, os, statistics, sys
tmp, repeats, net = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for r in range(1, repeats + 1):
    for line in open(os.path.join(tmp, f"cost-{r}.txt")):
        f = line.split()
        if f and f[0] in ("float", "int8"):
            rows.setdefault("pstrain " + f[0], []).append(
                {"p50_us": float(f[4]), "p99_us": float(f[5]), "rows_per_s": float(f[6])})
res = {}
for v in ("float", "int8"):
    name = "pstrain " + v
    med = {k: statistics.median(x[k] for x in rows[name]) for k in ("p50_us", "p99_us", "rows_per_s")}
    med["bytes"] = os.path.getsize(os.path.join(tmp, "run/model.pst" if v == "float" else "int8.pst"))
    med["test_accuracy"] = json.load(open(os.path.join(tmp, f"eval-{v}.json")))["accuracy"]
    res[name] = med
for line in open(os.path.join(tmp, "torch.jsonl")):
    d = json.loads(line)
    res[d["tool"]] = d
print(f"\n{net}:\n{'variant':<20} {'bytes':>10} {'size':>7} {'p50_us':>9} {'p99_us':>9} {'rows/s':>10} {'test_acc':>9}")
for name in ("pstrain float", "pstrain int8", "torch float", "torch dynamic int8"):
    d = res[name]
    base = res["pstrain float" if name.startswith("pstrain") else "torch float"]
    print(f"{name:<20} {d['bytes']:>10} {d['bytes'] / base['bytes']:>6.3f}x {d['p50_us']:>9.1f} "
          f"{d['p99_us']:>9.1f} {d['rows_per_s']:>10.0f} {d['test_accuracy']:>9.4f}")
pf, pq, tf, tq = (res[k] for k in ("pstrain float", "pstrain int8", "torch float", "torch dynamic int8"))
drop = pf["test_accuracy"] - pq["test_accuracy"]
size = pq["bytes"] / pf["bytes"]
lat = pq["p50_us"] / pf["p50_us"]
print(f"\nmedians of {repeats} repeats; sizes: model file (pstrain), torch.save state_dict (PyTorch); "
      f"torch quantized engine: {tq.get('engine')}")
print(f"target int8 accuracy within 0.005 of float: drop {drop:+.4f} -> {'met' if drop <= 0.005 else 'NOT met'}")
print(f"target size <= 0.3x float: {size:.3f}x -> {'met' if size <= 0.3 else 'NOT met'}")
print(f"target single-row latency <= 0.5x pstrain float: {lat:.3f}x -> {'met' if lat <= 0.5 else 'NOT met'}")
print(f"pstrain int8 against torch dynamic int8: p50 {pq['p50_us'] / tq['p50_us']:.3f}x, "
      f"throughput {pq['rows_per_s'] / tq['rows_per_s']:.3f}x, bytes {pq['bytes'] / tq['bytes']:.3f}x, "
      f"accuracy drop torch {tf['test_accuracy'] - tq['test_accuracy']:+.4f}")
print(f"batch throughput int8/float: pstrain {pq['rows_per_s'] / pf['rows_per_s']:.3f}x, "
      f"torch {tq['rows_per_s'] / tf['rows_per_s']:.3f}x")
EOF
}

# finetune DIR CONFIG CALIBRATION_ROWS: the plain and the qat fine-tune of DIR's float model, each
# quantised and evaluated on the test images, then their accuracy table
finetune() {
  local dir=$1 config=$2 rows=$3
  for kind in plain qat; do
    echo "quantize_vs_torch: fine-tuning $qat_epochs epoch(s), $kind" >&2
    "${pin[@]}" "$pstrain" train "$config" --quiet --out "$dir/$kind" --set train.progress=none \
      --set model.init_from="$dir/run/model.pst" --set train.epochs="$qat_epochs" \
      --set optimizer.lr=0.0001 --set train.qat="$([ "$kind" = qat ] && echo true || echo false)" \
      >"$dir/$kind.log" 2>&1 || { cat "$dir/$kind.log" >&2; exit 1; }
    "$pstrain" quantize "$dir/$kind/model.pst" -o "$dir/$kind.int8.pst" \
      --calibration "$data/train-images-idx3-ubyte.gz" --calibration-rows "$rows" >/dev/null
    "$pstrain" eval "$dir/$kind/model.pst" "$data/t10k-images-idx3-ubyte.gz" --json "$dir/eval-$kind-float.json" >/dev/null
    "$pstrain" eval "$dir/$kind.int8.pst" "$data/t10k-images-idx3-ubyte.gz" --json "$dir/eval-$kind-int8.json" >/dev/null
  done
  "$python" - "$dir" "$qat_epochs" <<'EOF'
import json, os, sys
d, ep = sys.argv[1], sys.argv[2]
acc = lambda name: json.load(open(os.path.join(d, name)))["accuracy"]
print("\nquantisation-aware fine-tuning (%s epoch(s), lr 1e-4, from the float model): test accuracy" % ep)
print("%-26s %8s %8s %8s  %s" % ("model", "float", "int8", "drop", "target drop <= 0.005"))
for label, f, q in (("float (ptq)", "eval-float.json", "eval-int8.json"),
                    ("plain fine-tune + ptq", "eval-plain-float.json", "eval-plain-int8.json"),
                    ("qat fine-tune + quantize", "eval-qat-float.json", "eval-qat-int8.json")):
    a, b = acc(f), acc(q)
    print("%-26s %8.4f %8.4f %+8.4f  %s" % (label, a, b, a - b, "met" if a - b <= 0.005 else "NOT met"))
EOF
}

# bench NAME CONFIG EPOCHS CALIBRATION_ROWS TORCH_MODEL: trains, quantises and times one network
# into $tmp/NAME, then prints its table
bench() {
  local name=$1 config=$2 ep=$3 rows=$4 tmodel=$5 dir=$tmp/$1
  mkdir -p "$dir"
  echo "quantize_vs_torch: $name: training pstrain ($ep epochs)" >&2
  "${pin[@]}" "$pstrain" train "$config" --quiet --out "$dir/run" \
    --set train.epochs="$ep" --set train.progress=none >"$dir/train.log" 2>&1 ||
    { cat "$dir/train.log" >&2; exit 1; }
  "$pstrain" quantize "$dir/run/model.pst" -o "$dir/int8.pst" \
    --calibration "$data/train-images-idx3-ubyte.gz" --calibration-rows "$rows" | tee "$dir/quantize.log"
  for v in float int8; do
    f=$dir/run/model.pst
    [ "$v" = int8 ] && f=$dir/int8.pst
    "$pstrain" eval "$f" "$data/t10k-images-idx3-ubyte.gz" --json "$dir/eval-$v.json" >/dev/null
  done
  for r in $(seq "$repeats"); do
    "${pin[@]}" "$pstrain" info --cost "$dir/run/model.pst" --data "$data/t10k-images-idx3-ubyte.gz" \
      >"$dir/cost-$r.txt"
  done
  echo "quantize_vs_torch: $name: training and timing PyTorch ($ep epochs, $repeats repeats)" >&2
  "${pin[@]}" "$python" scripts/bench/quantize_torch.py --model "$tmodel" --epochs "$ep" \
    --repeats "$repeats" >"$dir/torch.jsonl"
  echo "load average after $name: $(cut -d' ' -f1-3 /proc/loadavg)"
  table "$dir" "$name"
  [ "$qat_epochs" -gt 0 ] && finetune "$dir" "$config" "$rows"
  return 0
}


bench mlp examples/fashion_mlp.yaml "$epochs" 2048 mlp
[ "$cnn" = 1 ] && bench cnn examples/fashion_cnn.yaml "$cnn_epochs" 1024 cnn
exit 0
