#!/usr/bin/env bash
# Rewrites the configuration table in README.md from `pstrain config` (the key table in
# common/config.c is the single source of every key, default and meaning).
set -euo pipefail
cd "$(dirname "$0")/.."
pstrain=${PSTRAIN:-build/cli/pstrain}
"$pstrain" config > /tmp/pst_config_reference.md
python3 - /tmp/pst_config_reference.md <<'PY'
import re, sys
table = open(sys.argv[1]).read()
readme = open("README.md").read()
start = readme.index("| key | default | meaning |")
end = readme.index("\n\n", start)
open("README.md", "w").write(readme[:start] + table.rstrip("\n") + readme[end:])
PY
