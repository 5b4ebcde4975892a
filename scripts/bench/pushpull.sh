#!/usr/bin/env bash
# Builds and runs pushpull_bench: plain ZeroMQ round trips against psclient push + pull.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'USAGE'
usage: scripts/bench/pushpull.sh [--reps R] [--iters N]

Measures in one run, on TCP loopback with 1M-float (4 MiB) messages:
  (a) a ZeroMQ DEALER/ROUTER pair sending each message there and back, GB/s;
  (b) a worker's psclient pushing and pulling a 1M-float tensor through one BSP
      server, effective GB/s (raw bytes moved), for the raw, lz4, fp16 and int8
      codecs, with the ratio (b)/(a) (target >= 0.70 for raw).
Prints the median of R repetitions (default 5) of N round trips (default 20).
Builds into build-bench/ (BUILD_DIR overrides) in Release mode.
Timings only mean something on a quiet machine: the load average is printed too.
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
if ! cmake --build "$build_dir" --target pushpull_bench -j "$(nproc)" >"$build_dir/build.log" 2>&1; then
  grep -E 'error|warning' "$build_dir/build.log" >&2 || tail -20 "$build_dir/build.log" >&2
  echo "pushpull.sh: building pushpull_bench failed; see $build_dir/build.log" >&2
  exit 1
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
OPENBLAS_NUM_THREADS=1 "$build_dir/scripts/bench/pushpull_bench" "$@"
