#!/usr/bin/env bash
# Configures and builds pstrain into build/ (BUILD_DIR overrides). Extra arguments go to cmake.
# Exits non-zero when the build fails (a compile error, or a warning under -DPST_WERROR=ON): the
# compiler's output is filtered only for display, never for the exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
log="$build_dir/build.log"
status=0
cmake --build "$build_dir" -j "$(nproc)" >"$log" 2>&1 || status=$?
grep -vE '^\[ *[0-9]+%\]|^gmake|^make' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "build.sh: the build failed (exit $status); full log in $log" >&2
  exit "$status"
fi
test -x "$build_dir/cli/pstrain"
