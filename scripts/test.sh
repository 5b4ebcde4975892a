#!/usr/bin/env bash
# Sets up (Debian packages), builds with warnings as errors, checks formatting and runs the whole
# test suite: cmocka unit tests and multi-process tests under mpirun, through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=build bash scripts/build.sh -DPST_WERROR=ON

# The format check runs on every machine: setup.sh installs clang-format, so its absence is an
# error, not a reason to skip.
command -v clang-format >/dev/null || { echo "test.sh: clang-format is missing" >&2; exit 1; }
format_log=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1) ||
  { echo "test.sh: clang-format failed: $(echo "$format_log" | head -3)" >&2; exit 1; }
unformatted=$(echo "$format_log" | grep -c 'warning:' || true)
if [ "$unformatted" != 0 ]; then
  echo "clang-format: $unformatted places differ from .clang-format (run clang-format -i)" >&2
  echo "$format_log" | grep 'warning:' | head -5 >&2
  exit 1
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
cd build
ctest --output-on-failure -j 2 "$@"
