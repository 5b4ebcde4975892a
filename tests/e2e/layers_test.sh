#!/usr/bin/env bash
# The layer rules (CONTRIBUTING.md) hold over the source tree: scripts/check_layers.sh passes on
# it, and fails, naming the place, on a copy where each kind of breach is planted (common/
# including worker/, ps/ including worker/, worker/ including ps/, app/ including cli/, MPI below
# app/, a production file over 700 lines), so the check itself is shown able to fail.
# usage: layers_test.sh PSTRAIN TESTS_DIR
set -uo pipefail
tests=$2
root=$(cd "$tests/.." && pwd)
source "$(dirname "$0")/lib.sh"
check_layers=$root/scripts/check_layers.sh

if out=$(bash "$check_layers" "$root" 2>&1); then
  pass "the source tree keeps the layer rules"
else
  fail "the source tree breaks the layer rules: $out"
fi

# plant FILE LINE EXPECTED: a fresh copy of the tree with LINE appended to FILE must fail the check
# with a message naming FILE
plant() {
  local file=$1 line=$2 copy=$work/tree
  rm -rf "$copy" && mkdir -p "$copy"
  cp -r "$root"/common "$root"/ps "$root"/worker "$root"/app "$root"/cli "$copy"/
  printf '%s\n' "$line" >>"$copy/$file"
  if out=$(bash "$check_layers" "$copy" 2>&1); then
    fail "a planted breach in $file ('$line') passed the check"
  elif grep -qF "$file" <<<"$out"; then
    pass "a planted breach in $file is refused"
  else
    fail "a planted breach in $file failed the check without naming the file: $out"
  fi
}
plant common/err.c '#include "worker/model/model.h"'
plant ps/shard.c '#include "worker/psclient.h"'
plant worker/psclient.c '#include "ps/server.h"'
plant app/session.c '#include "cli/cli.h"'
plant common/log.c '#include <mpi.h>'
plant worker/train/train.c "$(printf '/* filler */\n%.0s' $(seq 701))"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
