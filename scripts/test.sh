#!/usr/bin/env bash
# Sets up (Debian packages), builds with warnings as errors, checks formatting and runs the whole
# test suite: cmocka unit tests and multi-process tests under mpirun, through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=build bash scripts/build.sh -DPST_WERROR=ON

if command -v clang-format >/dev/null; then
  unformatted=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep -c 'warning:' || true)
  if [ "$unformatted" != 0 ]; then
    echo "clang-format: $unformatted places differ from .clang-format (run clang-format -i)" >&2
    git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep 'warning:' | head -5 >&2
    exit 1
  fi
fi

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
cd build
ctest --output-on-failure -j 2 "$@"
