#!/usr/bin/env bash
# Federated vs centralised training of the reference Fashion-MNIST MLP, and FedAvg, FedProx and
# FedAdam on non-IID sites, through the network path (mpirun: a server rank and site ranks over
# loopback), with test accuracy and bytes per round raw and on the wire.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'USAGE'
usage: scripts/bench/fed_fashion.sh [--rounds R | --quick] [--alpha A] [--ranks N] [--seeds K]
                                   [--iid-only] [--select]

Runs examples/fed_fashion.yaml (the MLP 784-256-128-10, 54,000 training images dealt to 10
sites, one local epoch per round) and prints a table, one row per run:
  centralised               pstrain train, one process, R epochs (the same passes over the data)
  fedavg iid                IID sites, R rounds of all 10 sites
  fedavgm iid               the same with server momentum (FedAvgM): the settings below,
                            chosen on the validation accuracy of seed 0 (never on test)
  centralised, same settings
                            only when the fedavgm settings include a key centralised training
                            has too (outside fed.*, e.g. train.batch_size): centralised with it
  fedavg iid, fraction 0.2  the same with fed.fraction 0.2 (2 sites a round) for 5R rounds: the
                            same passes over the data in shorter rounds
  ... fraction 0.2, int8lz4 the previous run with fed.codec int8lz4 (updates quantised to int8
                            with a scale per 256 floats, then LZ4; error feedback on the site)
  fedavg / fedprox / fedadam dirichlet(A)
                            non-IID sites (Dirichlet(A) class mixes), R rounds of all 10 sites;
                            FedProx with fed.mu 0.01, FedAdam with fed.server_lr 0.01
Every federated run is 'mpirun --oversubscribe -np N pstrain fed simulate': rank 0 is the
federated server, ranks 1..N-1 play the sites over loopback ZeroMQ, so the bytes are what
crossed the sockets. Updates and global weights travel in the configuration's codecs (fed.codec,
fed.down_codec: lz4shuffle by default) unless the row says otherwise.

Every command runs once per seed (seed 0..K-1: the seed picks the validation split, the sites'
rows, the initial weights, the sampling and the local shuffles). Columns: test accuracy (the
median over the seeds); rounds; data epochs (passes over the training rows: sites answered
times their share of the rows, times the local epochs); MB per round (1e6 bytes, mean over
the rounds of metrics.jsonl, seed 0) down raw, down on the wire, up raw, up on the wire (raw:
4 bytes a float, every site asked or answering; wire: frame headers and compressed payloads);
and the median over the seeds of the wall seconds of the whole command (with mpirun start-up
and data loading).

Then the issue's target, computed from the runs: centralised minus fedavg iid, and minus
fedavg iid fraction 0.2, seed by seed (each federated run against the centralised run of its
seed) and their median, "(target: at most 0.01 below) -> met" when the median gap is at most
0.01 (a federated run better than centralised meets it too),
else "NOT met" (fedavgm iid's gap of each seed is against the better of its two centralised
runs when "centralised, same settings" ran); the up-wire/up-raw ratio of each
update codec (over its runs; the per-run range when it has several), the down ratio, and the
accuracy int8lz4 costs against the default codec at fraction 0.2.

options:
  --rounds R   rounds (and centralised epochs), a positive integer, default 10
  --quick      a smoke run: --rounds 2 and --seeds 1 (not together with --rounds)
  --alpha A    Dirichlet concentration of the non-IID runs, a positive number, default 0.1
  --ranks N    mpirun ranks of the federated runs, 1 server + N-1 site ranks (site i on rank
               1 + i mod (N-1)), an integer >= 2, default 3 (2 site ranks: two cores)
  --seeds K    seeds 0..K-1 of every command, a positive integer, default 3
  --iid-only   only the centralised, fedavg iid and fedavgm iid rows (the full-participation
               gap, in a third of the time)
  --select     first redo the choice of the fedavgm iid settings: every candidate of
               FEDAVGM_CANDIDATES (below) runs on seed 0, its validation accuracy is printed, and
               the best one (never the test accuracy) is the fedavgm iid row's; without it the
               row takes the choice recorded below
  -h, --help   this text

Environment: BUILD_DIR picks the build directory (default build; rebuilt on every run unless
PSTRAIN names the binary), MPIRUN the launcher (default mpirun; run as root it gets
--allow-run-as-root); OPENBLAS_NUM_THREADS is set to 1. Runs go to a temporary directory,
removed at the end (KEEP_RUNS=DIR keeps them there). Timings are noisy on a shared machine:
the load average is printed before and after. Exit status: 0 whether or not the targets are
met, 1 when a run fails or something is missing, 2 on a bad argument.
USAGE
}

die_usage() { echo "fed_fashion: $*" >&2; exit 2; }
rounds=
quick=0
iid_only=0
select=0
alpha=0.1
ranks=3
seeds=
while [ $# -gt 0 ]; do
  case "$1" in
  --rounds | --alpha | --ranks | --seeds)
    [ $# -ge 2 ] || die_usage "$1 needs a value (see --help)"
    case "$1" in
    --rounds) rounds=$2 ;;
    --alpha) alpha=$2 ;;
    --ranks) ranks=$2 ;;
    --seeds) seeds=$2 ;;
    esac
    shift 2 ;;
  --quick) quick=1; shift ;;
  --iid-only) iid_only=1; shift ;;
  --select) select=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) die_usage "unknown argument '$1' (see --help)" ;;
  esac
done
if [ "$quick" = 1 ]; then
  [ -z "$rounds" ] || die_usage "--quick and --rounds together (--quick is --rounds 2)"
  rounds=2
  seeds=${seeds:-1}
fi
rounds=${rounds:-10}
seeds=${seeds:-3}
[[ "$seeds" =~ ^[1-9][0-9]*$ ]] || die_usage "--seeds: '$seeds' is not a positive integer"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die_usage "--rounds: '$rounds' is not a positive integer"
if ! { [[ "$ranks" =~ ^[1-9][0-9]*$ ]] && [ "$ranks" -ge 2 ]; }; then
  die_usage "--ranks: '$ranks' is not an integer >= 2"
fi
if ! { [[ "$alpha" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] &&
  python3 -c 'import math, sys; a = float(sys.argv[1]); sys.exit(not (0 < a < math.inf))' "$alpha"; }; then
  die_usage "--alpha: '$alpha' is not a positive number"
fi

build=${BUILD_DIR:-build}
pstrain=${PSTRAIN:-$build/cli/pstrain}
# Built on every run unless PSTRAIN names a binary (a no-op when up to date; a failed build
# stops the script): an old binary would time other code than the tree's.
if [ -z "${PSTRAIN:-}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  if ! cmake --build "$build" -j "$(nproc)" --target pstrain >"$build/build.log" 2>&1; then
    grep -E 'error|warning' "$build/build.log" >&2 || tail -20 "$build/build.log" >&2
    echo "fed_fashion: building pstrain failed; see $build/build.log" >&2
    exit 1
  fi
fi
mpirun=${MPIRUN:-mpirun}
command -v "$mpirun" >/dev/null ||
  { echo "fed_fashion: $mpirun is missing (scripts/setup.sh installs Open MPI)" >&2; exit 1; }
mpi=("$mpirun" --oversubscribe -np "$ranks")
[ "$(id -u)" != 0 ] || mpi+=(--allow-run-as-root)
export OPENBLAS_NUM_THREADS=1
config=examples/fed_fashion.yaml
[ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  { echo "fed_fashion: Fashion-MNIST is missing (scripts/setup.sh installs it)" >&2; exit 1; }
runs=${KEEP_RUNS:-$(mktemp -d)}
mkdir -p "$runs"
[ -n "${KEEP_RUNS:-}" ] || trap 'rm -rf "$runs"' EXIT

echo "Fashion-MNIST MLP 784-256-128-10, 10 sites, $rounds rounds of 1 local epoch, $seeds" \
  "seed(s); federated runs: mpirun -np $ranks (1 server + $((ranks - 1)) site ranks over loopback);" \
  "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # name command... : runs seed $seed into $runs/s$seed/name, prints nothing, fails loudly
  local name=s$seed/$1; shift
  local t0=$EPOCHREALTIME
  if ! "$@" --set seed="$seed" --out "$runs/$name" -q >"$runs/$name.log" 2>&1; then
    echo "fed_fashion: $name failed: $*" >&2
    tail -5 "$runs/$name.log" >&2
    exit 1
  fi
  python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' \
    "$t0" "$EPOCHREALTIME" >"$runs/$name.seconds"
}
fed=("${mpi[@]}" "$pstrain" fed simulate "$config")
# FedAvgM as chosen on seed 0's validation accuracy after 10 rounds of all 10 IID sites (fedavg:
# 0.8795): server momentum 0.7 (0.8920) against 0.5 (0.8887) and 0.9 (0.8783), fed.server_lr 2
# without momentum (0.8525), and with momentum 0.7: fed.lr_decay 0.8 (0.8823), optimizer.lr
# 0.002 (0.8810), train.batch_size 32 (0.8893). Later candidates, the same way: Nesterov momentum
# 0.7 (0.8920, a tie) and 0.8 (0.8918); fed.local_state keep (0.8803), with momentum 0.7 (0.8878),
# 0.9 (0.8810), Nesterov 0.8 (0.8907), fed.server_lr 2 (0.8605); optimizer.lr 0.003 (0.8685);
# train.batch_size 16 with momentum 0.7 (0.8835); fed.server_lr 0.7 with Nesterov 0.9 (0.8875);
# fedadam fed.server_lr 0.01 (0.8677), fedyogi 0.01 (0.8660). Centralised: 0.9015.
# More local steps at the same passes (smaller local batches, the learning rate scaled by the
# square root of the batch ratio), and other leads, all on seed 0's validation: momentum 0.7 with
# batch 16 lr 0.0005 (0.8927), Nesterov 0.7 (0.8930) and Nesterov 0.8 (0.8932, the best) with
# batch 16 lr 0.0005, batch 8 lr 0.00035 (0.8912), batch 32 lr 0.0007 (0.8908), batch 128 lr
# 0.0014 (0.8830), batch 16 lr 0.0005 with fed.local_state keep (0.8897); batch 16 lr 0.001
# without momentum (0.8733); momentum 0.7 with fed.server_lr 1.3 (0.8882), momentum 0.6 with
# server_lr 1.5 (0.8902), momentum 0.8 with fed.lr_decay 0.9 (0.8827); local SGD lr 0.1 with
# server momentum 0.9 (0.8613) and 0.7 (0.8742), local momentum SGD lr 0.05 with server momentum
# 0.7 (0.8812). Batch 16 and lr 0.0005 are settings centralised training has too, so the bench
# runs centralised with them as well (see SHARED_SETS below). Its three-seed run (--iid-only, load
# 12-17 on 2 cores): test 0.8801 0.8798 0.8770 against centralised 0.8888 0.8881 0.8831 and
# centralised with batch 16 lr 0.0005 0.8872 0.8865 0.8743: gaps +0.0087 +0.0083 +0.0061, median
# +0.0083, met.
FEDAVGM_SETS=(--set fed.server_momentum=0.8 --set fed.server_nesterov=true
  --set train.batch_size=16 --set optimizer.lr=0.0005)
FEDAVGM_WHY="chosen on seed 0's validation accuracy (fedavg 0.8795; see fed_fashion.sh, or --select)"
# --select's candidates, one --set list per line (the leaders of the choice above): momentum and
# Nesterov momentum at the default local batch and at batches 16 and 8. A tie keeps the first.
FEDAVGM_CANDIDATES=(
  "fed.server_momentum=0.7"
  "fed.server_momentum=0.8 fed.server_nesterov=true"
  "fed.server_momentum=0.7 train.batch_size=16 optimizer.lr=0.0005"
  "fed.server_momentum=0.7 fed.server_nesterov=true train.batch_size=16 optimizer.lr=0.0005"
  "fed.server_momentum=0.8 fed.server_nesterov=true train.batch_size=16 optimizer.lr=0.0005"
  "fed.server_momentum=0.7 train.batch_size=8 optimizer.lr=0.00035"
)
if [ "$select" = 1 ]; then
  seed=0
  mkdir -p "$runs/s0"
  best= best_val=-1
  for ((c = 0; c < ${#FEDAVGM_CANDIDATES[@]}; c++)); do
    sets=()
    for kv in ${FEDAVGM_CANDIDATES[$c]}; do sets+=(--set "$kv"); done
    run "select$c" "${fed[@]}" --set fed.rounds="$rounds" "${sets[@]}"
    val=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["val"]["accuracy"])' \
      "$runs/s0/select$c/report.json")
    echo "select: ${FEDAVGM_CANDIDATES[$c]}: validation accuracy $val (seed 0)"
    if python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))' "$val" "$best_val"; then
      best=$c best_val=$val
    fi
  done
  FEDAVGM_SETS=()
  for kv in ${FEDAVGM_CANDIDATES[$best]}; do FEDAVGM_SETS+=(--set "$kv"); done
  FEDAVGM_WHY="chosen by --select: the best validation accuracy of seed 0, $best_val"
  echo "select: chosen: ${FEDAVGM_CANDIDATES[$best]}"
fi
# Fairness: a chosen setting that centralised training has too (any key outside fed.*, such as
# train.batch_size or optimizer.lr) also runs centralised ("centralised, same settings"), and the
# fedavgm gap of each seed is taken against the better of that seed's two centralised test
# accuracies, so the gap never shrinks because the baseline got worse.
SHARED_SETS=()
for ((i = 1; i < ${#FEDAVGM_SETS[@]}; i += 2)); do
  case "${FEDAVGM_SETS[$i]}" in fed.*) ;; *) SHARED_SETS+=(--set "${FEDAVGM_SETS[$i]}") ;; esac
done
c02=(--set fed.rounds=$((5 * rounds)) --set fed.fraction=0.2)
noniid=(--set fed.rounds="$rounds" --set fed.split=dirichlet --set fed.alpha="$alpha")
for ((seed = 0; seed < seeds; seed++)); do
  mkdir -p "$runs/s$seed"
  run centralised "$pstrain" train "$config" --set train.epochs="$rounds"
  run fedavg_iid "${fed[@]}" --set fed.rounds="$rounds"
  run fedavgm_iid "${fed[@]}" --set fed.rounds="$rounds" "${FEDAVGM_SETS[@]}"
  if [ ${#SHARED_SETS[@]} -gt 0 ]; then
    run centralised_same "$pstrain" train "$config" --set train.epochs="$rounds" "${SHARED_SETS[@]}"
  fi
  [ "$iid_only" = 0 ] || continue
  run fedavg_iid_c02 "${fed[@]}" "${c02[@]}"
  run fedavg_iid_c02_int8lz4 "${fed[@]}" "${c02[@]}" --set fed.codec=int8lz4
  run fedavg_dir "${fed[@]}" "${noniid[@]}"
  run fedprox_dir "${fed[@]}" "${noniid[@]}" --set fed.aggregator=fedprox --set fed.mu=0.01
  run fedadam_dir "${fed[@]}" "${noniid[@]}" --set fed.aggregator=fedadam --set fed.server_lr=0.01
done

python3 - "$runs" "$alpha" "$seeds" "$iid_only" "${FEDAVGM_SETS[*]}" "$FEDAVGM_WHY" <<'PY'
import json, os, re, statistics, sys
runs, alpha, seeds, iid_only = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
print("fedavgm iid:", sys.argv[5].replace("--set ", ""), "--", sys.argv[6])
rows = [("centralised", "centralised"), ("centralised_same", "centralised, same settings"),
        ("fedavg_iid", "fedavg iid"), ("fedavgm_iid", "fedavgm iid"),
        ("fedavg_iid_c02", "fedavg iid, fraction 0.2"),
        ("fedavg_iid_c02_int8lz4", "  ... fraction 0.2, int8lz4"),
        ("fedavg_dir", f"fedavg dirichlet({alpha})"), ("fedprox_dir", f"fedprox dirichlet({alpha})"),
        ("fedadam_dir", f"fedadam dirichlet({alpha})")]
rows = [r for r in rows if os.path.exists(f"{runs}/s0/{r[0]}/report.json")]


def codecs(key):
    # fed.codec and fed.down_codec as the run resolved them (its config.yaml)
    text = open(f"{runs}/s0/{key}/config.yaml").read()
    fed = text[text.index("\nfed:"):]
    up = re.search(r"^  codec: *(\S+)", fed, re.M).group(1)
    down = re.search(r"^  down_codec: *(\S+)", fed, re.M).group(1)
    return up, down


print(f"{'':<28} {'':>8} {'':>6} {'data':>6}  {'MB per round (mean, seed 0)':^35}".rstrip())
print(f"{'run':<28} {'test acc':>8} {'rounds':>6} {'epochs':>6}  {'down raw':>8} {'down wire':>9} "
      f"{'up raw':>7} {'up wire':>7}  {'seconds':>7}")

def accuracy(seed, key):
    return json.load(open(f"{runs}/s{seed}/{key}/report.json"))["test"]["accuracy"]


acc, per_seed, wire = {}, {}, {}
for key, label in rows:
    d = json.load(open(f"{runs}/s0/{key}/report.json"))
    secs = statistics.median(float(open(f"{runs}/s{s}/{key}.seconds").read())
                             for s in range(seeds))
    secs = f"{secs:.1f}"
    per_seed[key] = [accuracy(s, key) for s in range(seeds)]
    acc[key] = statistics.median(per_seed[key])
    fed = d.get("fed")
    if not fed:
        print(f"{label:<28} {acc[key]:8.4f} {'-':>6} {d['train']['epochs']:6d}  {'-':>8} "
              f"{'-':>9} {'-':>7} {'-':>7}  {secs:>7}")
        continue
    lines = [json.loads(l) for l in open(f"{runs}/s0/{key}/metrics.jsonl") if l.strip()]
    n = len(lines)
    assert n == fed["rounds"], f"{key}: {n} metrics lines for {fed['rounds']} rounds"
    mean = {k: sum(l[k] for l in lines) / n / 1e6
            for k in ("bytes_down_raw", "bytes_down", "bytes_up_raw", "bytes_up")}
    # passes over the training rows; exact when every site answered every round or the sites
    # hold equal shares (IID), else an estimate from the mean share (marked ~)
    if fed["sites_answered"] == fed["rounds"] * fed["sites"]:
        epochs, mark = fed["rounds"] * fed["local_epochs"], ""
    else:
        epochs = fed["sites_answered"] / fed["sites"] * fed["local_epochs"]
        mark = "" if len(set(fed["site_rows"])) == 1 else "~"
    up, down = codecs(key)
    wire.setdefault(("up", up), []).append((label.strip(" ."), fed["bytes_up"], fed["bytes_up_raw"]))
    wire.setdefault(("down", down), []).append((label.strip(" ."), fed["bytes_down"],
                                                fed["bytes_down_raw"]))
    print(f"{label:<28} {acc[key]:8.4f} {fed['rounds']:6d} {mark + format(epochs, '.1f'):>6}  "
          f"{mean['bytes_down_raw']:8.2f} {mean['bytes_down']:9.2f} {mean['bytes_up_raw']:7.2f} "
          f"{mean['bytes_up']:7.2f}  {secs:>7}")

print()
for key, label in rows:
    vals = [json.load(open(f"{runs}/s{s}/{key}/report.json"))["val"]["accuracy"]
            for s in range(seeds)]
    print(f"test accuracy by seed, {label.strip(' .')}: "
          + " ".join(f"{a:.4f}" for a in per_seed[key])
          + "; validation: " + " ".join(f"{v:.4f}" for v in vals))
for key, label in [r for r in rows if r[0] in ("fedavg_iid", "fedavgm_iid", "fedavg_iid_c02")]:
    base, name = per_seed["centralised"], "centralised"
    if key == "fedavgm_iid" and "centralised_same" in per_seed:
        # the better of the two centralised runs of each seed: the shared settings may not lower
        # the baseline
        base = [max(a, b) for a, b in zip(base, per_seed["centralised_same"])]
        name = "max(centralised, same settings)"
    gaps = [round(c - f, 6) for c, f in zip(base, per_seed[key])]
    gap = statistics.median(gaps)
    print(f"{name} - {label}: by seed " + " ".join(f"{g:+.4f}" for g in gaps)
          + f", median {gap:+.4f} (target: at most 0.01 below) -> {'met' if gap <= 0.01 else 'NOT met'}")
for (way, codec), rs in sorted(wire.items(), key=lambda kv: (kv[0][0] != "up", kv[0][1])):
    ratio = sum(r[1] for r in rs) / sum(r[2] for r in rs)
    each = [r[1] / r[2] for r in rs]
    if len(rs) == 1:
        spread = f" ({rs[0][0]})"
    elif f"{min(each):.3f}" == f"{max(each):.3f}":
        spread = " (every run)"
    else:
        spread = f" (per run {min(each):.3f}-{max(each):.3f})"
    print(f"{way} wire / {way} raw, {codec}, {len(rs)} run{'s' if len(rs) > 1 else ''}: "
          f"{ratio:.3f}{spread}")
if "fedavg_iid_c02_int8lz4" in acc:
    cost = round(acc["fedavg_iid_c02"] - acc["fedavg_iid_c02_int8lz4"], 6)
    print(f"int8lz4 accuracy cost at fraction 0.2 (medians): default codec - int8lz4 = {cost:+.4f}")
PY
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
