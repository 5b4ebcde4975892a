#!/usr/bin/env bash
# Checks the layer rules of CONTRIBUTING.md over the source tree: arrows point down only,
# cli -> app -> (ps | worker) -> common -> proto; ps and worker never include each other; only app
# and cli use MPI; lib/ (libpstrain, beside cli/) includes only lib/, include/, worker/ and common/,
# and neither MPI nor ZeroMQ; no production .c file is over 700 lines (common/config.c, the key table, may be).
# Prints every breach with its file and line; exits 1 when there is one.
# usage: scripts/check_layers.sh [SOURCE_ROOT]
set -uo pipefail
cd "${1:-$(dirname "$0")/..}"

breaches=0
# forbid FOLDER PATTERN WHY: every include in FOLDER matching PATTERN is a breach.
forbid() {
  local folder=$1 pattern=$2 why=$3 hits
  hits=$(grep -rnE --include='*.c' --include='*.h' "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]($pattern)" "$folder")
  if [ -n "$hits" ]; then
    printf '%s\n' "$hits" | sed "s|\$|   <- $why|"
    breaches=$((breaches + $(printf '%s\n' "$hits" | wc -l)))
  fi
}

forbid common 'ps/|worker/|app/|cli/' 'common/ includes only common/ and proto'
forbid ps 'worker/|app/|cli/' 'ps/ includes only ps/ and common/'
forbid worker 'ps/|app/|cli/' 'worker/ includes only worker/ and common/'
forbid app 'cli/' 'app/ never includes cli/'
forbid common 'mpi\.h' 'only app/ and cli/ use MPI'
forbid ps 'mpi\.h' 'only app/ and cli/ use MPI'
forbid worker 'mpi\.h' 'only app/ and cli/ use MPI'
forbid lib 'app/|cli/|ps/' 'lib/ includes only lib/, include/, worker/ and common/'
forbid lib 'mpi\.h|zmq\.h|worker/psclient|worker/fed/' 'lib/ stays free of MPI and ZeroMQ'
forbid include 'common/|worker/|app/|cli/|ps/|lib/' 'include/pstrain.h is self-contained'

while read -r f; do
  [ "$f" = common/config.c ] && continue
  n=$(wc -l <"$f")
  if [ "$n" -gt 700 ]; then
    echo "$f: $n lines   <- production files stay under 700 lines; split by responsibility"
    breaches=$((breaches + 1))
  fi
done < <(find common ps worker app cli lib -name '*.c' | sort)

if [ "$breaches" -gt 0 ]; then
  echo "check_layers: $breaches breach(es)" >&2
  exit 1
fi
echo "check_layers: the layer rules hold"
