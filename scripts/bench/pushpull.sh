#!/usr/bin/env bash
# Builds and runs pushpull_bench (plain ZeroMQ round trips against psclient push + pull) and
# codec_bench (transport.codec auto against raw).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'USAGE'
usage: scripts/bench/pushpull.sh [--reps R] [--iters N]

Measures in one run, on TCP loopback with 1M-float (4 MiB) messages:
  (a) a ZeroMQ DEALER/ROUTER pair sending each message there and back, GB/s:
      a1 copying into and out of float arrays, a2 zero-copy (sent from the array,
      the answer left in ZeroMQ's buffer);
  (b) a worker's psclient pushing and pulling a 1M-float tensor through one BSP
      server, effective GB/s (raw bytes moved), for the raw, auto, lz4, fp16 and
      int8 codecs, with the ratios (b)/a1 and (b)/a2; target: raw >= 0.80 x a2.
Then codec_bench: auto against raw on dense float32, sparse keys + rows and
floats on int8 levels, in alternation; auto must not be slower than raw beyond
the spread of raw's own repetitions (auto/raw: the median of per-repetition ratios).
Prints medians of R repetitions (default 5) of N round trips (default 20). The
server side runs pinned to CPU 1, the worker side to CPU 0 (the process under
taskset -c 0,1). Builds into build-bench/ (BUILD_DIR overrides) in Release mode.
Timings only mean something on a quiet machine: the load average is printed
before and after.
USAGE
}

case "${1:-}" in -h | --help) usage; exit 0 ;; esac
build_dir=${BUILD_DIR:-build-bench}
extra=()
# Until the top-level CMakeLists.txt adds scripts/bench itself, bring it in from outside.
if ! grep -q 'scripts/bench' CMakeLists.txt; then
  inject="$PWD/$build_dir/pushpull_inject.cmake"
  mkdir -p "$build_dir"
  echo "add_subdirectory(\${PROJECT_SOURCE_DIR}/scripts/bench \${PROJECT_BINARY_DIR}/scripts/bench)" > "$inject"
  extra+=("-DCMAKE_PROJECT_INCLUDE=$inject")
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
# A failed build stops here: timing the previous binary would report figures of other code.
if ! cmake --build "$build_dir" --target pushpull_bench codec_bench -j "$(nproc)" >"$build_dir/build.log" 2>&1; then
  grep -E 'error|warning' "$build_dir/build.log" >&2 || tail -20 "$build_dir/build.log" >&2
  echo "pushpull.sh: building the benchmarks failed; see $build_dir/build.log" >&2
  exit 1
fi
reps_iters=()
while [ $# -gt 0 ]; do
  case $1 in
    --reps | --iters) reps_iters+=("$1" "$2"); shift 2 ;;
    *) echo "pushpull.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
pin=(taskset -c 0,1)
command -v taskset >/dev/null || pin=()
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (CPUs: $(nproc))"
status=0
OPENBLAS_NUM_THREADS=1 "${pin[@]}" "$build_dir/scripts/bench/pushpull_bench" "${reps_iters[@]}" \
  --codec raw --codec auto --codec lz4 --codec fp16 --codec int8 || status=$?
echo
OPENBLAS_NUM_THREADS=1 "${pin[@]}" "$build_dir/scripts/bench/codec_bench" "${reps_iters[@]}" || status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
