#!/usr/bin/env bash
# Federated vs centralised training of the reference Fashion-MNIST MLP, and FedAvg, FedProx and
# FedAdam on non-IID sites, with test accuracy and traffic per round.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'USAGE'
usage: scripts/bench/fed_fashion.sh [--rounds R] [--alpha A]

Runs examples/fed_fashion.yaml (10 sites, one local epoch per round) and prints a table:
  centralised     pstrain train on the same model for R epochs (the same passes over the data)
  fedavg iid      pstrain fed simulate, IID sites, R rounds of all 10 sites; target: within 0.01
                  of centralised
  fedavg iid 0.2  the same with fed.fraction 0.2 (2 sites a round) for 5R rounds: the same passes
                  over the data in shorter rounds; the same target
  fedavg / fedprox / fedadam dirichlet(A): non-IID sites, R rounds each
with test accuracy, rounds, bytes per round (both ways) and seconds.

  --rounds R   rounds (and centralised epochs), default 10
  --alpha A    Dirichlet concentration of the non-IID runs, default 0.1

BUILD_DIR picks the build directory (default build), PSTRAIN the binary; runs go to a
temporary directory (KEEP_RUNS=DIR keeps them there).
USAGE
}

rounds=10
alpha=0.1
while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
  --alpha) alpha=${2:?--alpha needs a value}; shift 2 ;;
  -h | --help) usage; exit 0 ;;
  *) echo "fed_fashion: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "fed_fashion: '$rounds' is not a positive integer" >&2; exit 2; }

build=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build/cli/pstrain}
if [ ! -x "$pstrain" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j1 --target pstrain >/dev/null
fi
config=examples/fed_fashion.yaml
[ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "fed_fashion: Fashion-MNIST is missing (scripts/setup.sh installs it)" >&2; exit 1; }
runs=${KEEP_RUNS:-$(mktemp -d)}
mkdir -p "$runs"
[ -n "${KEEP_RUNS:-}" ] || trap 'rm -rf "$runs"' EXIT

echo "Fashion-MNIST MLP 784-256-128-10, 10 sites, $rounds rounds of 1 local epoch; load $(cut -d' ' -f1 /proc/loadavg)"
run() { # name command... : runs into $runs/name, prints nothing, fails loudly
  local name=$1; shift
  local t0=$SECONDS
  if ! "$@" --out "$runs/$name" -q >"$runs/$name.log" 2>&1; then
    echo "fed_fashion: $name failed:" >&2
    tail -5 "$runs/$name.log" >&2
    exit 1
  fi
  echo $((SECONDS - t0)) >"$runs/$name.seconds"
}
run centralised "$pstrain" train "$config" --set train.epochs="$rounds"
run fedavg_iid "$pstrain" fed simulate "$config" --set fed.rounds="$rounds"
run fedavg_iid_c02 "$pstrain" fed simulate "$config" --set fed.rounds=$((5 * rounds)) \
  --set fed.fraction=0.2
noniid=(--set fed.rounds="$rounds" --set fed.split=dirichlet --set fed.alpha="$alpha")
run fedavg_dir "$pstrain" fed simulate "$config" "${noniid[@]}"
run fedprox_dir "$pstrain" fed simulate "$config" "${noniid[@]}" --set fed.aggregator=fedprox \
  --set fed.mu=0.01
run fedadam_dir "$pstrain" fed simulate "$config" "${noniid[@]}" --set fed.aggregator=fedadam \
  --set fed.server_lr=0.01

python3 - "$runs" "$alpha" <<'PY'
import json, sys
runs, alpha = sys.argv[1], sys.argv[2]
rows = [("centralised", "centralised"), ("fedavg_iid", "fedavg iid"),
        ("fedavg_iid_c02", "fedavg iid, fraction 0.2"),
        ("fedavg_dir", f"fedavg dirichlet({alpha})"), ("fedprox_dir", f"fedprox dirichlet({alpha})"),
        ("fedadam_dir", f"fedadam dirichlet({alpha})")]
print(f"{'run':<28} {'test acc':>8} {'rounds':>6} {'epochs':>6} {'MB down/rnd':>11} {'MB up/rnd':>9} "
      f"{'seconds':>7}")
acc = {}
for key, label in rows:
    d = json.load(open(f"{runs}/{key}/report.json"))
    secs = open(f"{runs}/{key}.seconds").read().strip()
    acc[key] = d["test"]["accuracy"]
    fed = d.get("fed")
    if fed:
        n = max(fed["rounds"], 1)
        down, up = fed["bytes_down"] / n / 1e6, fed["bytes_up"] / n / 1e6
        # passes over the whole training set: every answering site trained local_epochs on its
        # share (IID: one site's share of the rows)
        epochs = fed["sites_answered"] / fed["sites"] * fed["local_epochs"]
        print(f"{label:<28} {acc[key]:8.4f} {fed['rounds']:6d} {epochs:6.1f} {down:11.2f} {up:9.2f} "
              f"{secs:>7}")
    else:
        e = d['train']['epochs']
        print(f"{label:<28} {acc[key]:8.4f} {'-':>6} {e:6d} {'-':>11} {'-':>9} {secs:>7}")
for key, label in rows[1:3]:
    gap = acc["centralised"] - acc[key]
    print(f"centralised - {label} = {gap:+.4f} (target: within 0.01) -> "
          f"{'met' if abs(gap) <= 0.01 else 'missed'}")
PY
