#!/usr/bin/env bash
# Reader throughput: LIBSVM and Criteo TSV text on one pinned core and on all cores, and the
# mapped cache, against scikit-learn's load_svmlight_file and `cat FILE > /dev/null`.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'USAGE'
usage: scripts/bench/readers.sh [--rows N] [--reps R] [--dir DIR]

Generates click data with `pstrain datagen clicks` (N rows, default 500000, x 30 entries over
2^20 features) and Criteo-style TSV with `pstrain datagen criteo` (N rows, 13 numeric and 26
categorical columns), then times, as the median of R runs (default 5):
  pstrain   readers_bench (built here, linked against the library): the whole load a sparse run
            does (pst_sparse_load), text with data.read_threads 1 pinned to one core by
            taskset, text with all cores, and through the mapped FILE.pstcache;
  sklearn   sklearn.datasets.load_svmlight_file on the same LIBSVM file, pinned to one core;
  cat       `cat FILE > /dev/null` (the page-cache ceiling), pinned to one core.
Prints MB/s of the file's size per wall second (and per CPU second for pstrain, which a busy
machine disturbs less), the ratios, the load average, and whether the target of 300 MB/s per core
for text is met. Data goes to DIR (default /tmp/pst_bench_readers), kept between runs.
Builds into build-bench/ (BUILD_DIR overrides) in Release mode.
USAGE
}

rows=500000
reps=5
dir=/tmp/pst_bench_readers
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --rows) rows=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "readers.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

build_dir=${BUILD_DIR:-build-bench}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
# A failed build stops here: timing the previous binary would report figures of other code.
if ! cmake --build "$build_dir" --target readers_bench pstrain -j "$(nproc)" >"$build_dir/build.log" 2>&1; then
  grep -E 'error|warning' "$build_dir/build.log" >&2 || tail -20 "$build_dir/build.log" >&2
  echo "readers.sh: building readers_bench failed; see $build_dir/build.log" >&2
  exit 1
fi
bench="$build_dir/scripts/bench/readers_bench"
pstrain="$build_dir/cli/pstrain"
mkdir -p "$dir"
svm="$dir/clicks_$rows.svm"
tsv="$dir/criteo_$rows.tsv"
[ -s "$svm" ] || "$pstrain" datagen clicks --rows "$rows" --features 1048576 --nnz 30 --seed 7 \
  --out "$svm" >/dev/null
[ -s "$tsv" ] || "$pstrain" datagen criteo --rows "$rows" --seed 7 --out "$tsv" >/dev/null
rm -f "$svm.pstcache" "$tsv.pstcache"
cores=$(nproc)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)   cores: $cores   rows: $rows   reps: $reps"

# The median wall seconds of `cat FILE > /dev/null` on core 0 over reps runs.
cat_seconds() {
  python3 - "$1" "$reps" <<'PY'
import statistics, subprocess, sys, time
path, reps = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    subprocess.run(["taskset", "-c", "0", "sh", "-c", 'cat "$0" > /dev/null', path], check=True)
    times.append(time.perf_counter() - t0)
print(f"{statistics.median(times):.4f}")
PY
}

# The median wall seconds of sklearn's load_svmlight_file on core 0 (or "none").
sklearn_seconds() {
  taskset -c 0 /usr/bin/python3 - "$1" "$reps" <<'PY' 2>/dev/null || echo none
import statistics, sys, time
from sklearn.datasets import load_svmlight_file
path, reps = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    X, y = load_svmlight_file(path, n_features=1 << 20)
    times.append(time.perf_counter() - t0)
print(f"{statistics.median(times):.4f}")
PY
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# One pstrain figure: label, mode, file, threads, pinned (1/0); prints the line and MB/s.
run_bench() {
  local label=$1 mode=$2 file=$3 threads=$4 pin=$5 out
  if [ "$pin" = 1 ]; then
    out=$(taskset -c 0 "$bench" "$mode" "$file" "$threads" "$reps")
  else
    out=$("$bench" "$mode" "$file" "$threads" "$reps")
  fi
  printf '  %-34s %8s MB/s  (%s s; %s MB/s per CPU second)  digest %s\n' "$label" \
    "$(echo "$out" | field mb_per_s)" "$(echo "$out" | field median_s)" \
    "$(echo "$out" | field mb_per_cpu_s)" "$(echo "$out" | field digest)"
  echo "$out" >>"$dir/last_run.txt"
}

mbps() { python3 -c "import os,sys; s=sys.argv[2]; print('n/a' if s=='none' else f'{os.path.getsize(sys.argv[1])/1e6/float(s):.1f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('n/a' if 'n/a' in (a,b) else f'{float(a)/float(b):.2f}')" "$1" "$2"; }
rate_of() { grep -E "^$1 threads=$2 " "$dir/last_run.txt" | tail -1 | field "${3:-mb_per_s}"; }

: >"$dir/last_run.txt"
for kind in libsvm criteo; do
  file=$svm
  [ "$kind" = criteo ] && file=$tsv
  size=$(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1e6:.1f}')" "$file")
  echo "$kind: $file ($size MB)"
  run_bench "pstrain text, 1 thread, core 0" "$kind" "$file" 1 1
  run_bench "pstrain text, all $cores cores" "$kind" "$file" 0 0
  run_bench "pstrain mapped cache, all cores" "cache-$kind" "$file" 0 0
  cat_rate=$(mbps "$file" "$(cat_seconds "$file")")
  printf '  %-34s %8s MB/s\n' "cat > /dev/null, core 0" "$cat_rate"
  one=$(rate_of "$kind" 1)
  one_cpu=$(rate_of "$kind" 1 mb_per_cpu_s)
  all=$(rate_of "$kind" 0)
  cache=$(rate_of "cache-$kind" 0)
  if [ "$kind" = libsvm ]; then
    sk_rate=$(mbps "$file" "$(sklearn_seconds "$file")")
    printf '  %-34s %8s MB/s\n' "sklearn load_svmlight_file, core 0" "$sk_rate"
    echo "  ratio 1 thread / sklearn: $(ratio "$one" "$sk_rate")"
  fi
  echo "  ratio 1 thread / cat: $(ratio "$one" "$cat_rate")   all cores / 1 thread: $(ratio "$all" "$one")   cache / all-core text: $(ratio "$cache" "$all")"
  met() { python3 -c "import sys; print('met' if float(sys.argv[1]) >= 300 else 'NOT met')" "$1"; }
  echo "  target 300 MB/s per core: $(met "$one") by wall time ($one MB/s), $(met "$one_cpu") per CPU second ($one_cpu MB/s)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
