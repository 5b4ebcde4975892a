#!/usr/bin/env bash
# Installs onnxruntime-node, the ONNX runtime the export test runs exported models in, into a
# cache outside the tree (PST_ONNXRUNTIME_DIR, default ~/.cache/pstrain/onnxruntime-node) with
# npm, and prints the module's folder. Idempotent and quiet when it is there already. Exits 1,
# saying why, when node or npm is missing or the registry cannot be reached.
set -euo pipefail

version=1.31.1
dir=${PST_ONNXRUNTIME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pstrain/onnxruntime-node}
module=$dir/node_modules/onnxruntime-node

if [ -f "$module/package.json" ] &&
  [ "$(node -p "require('$module/package.json').version" 2>/dev/null)" = "$version" ]; then
  echo "$module"
  exit 0
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "setup_onnxruntime: $tool is not installed" >&2; exit 1; }
done
mkdir -p "$dir"
# --ignore-scripts: the package's install script only fetches the optional CUDA libraries (from
# nuget.org); the CPU runtime ships inside the npm package itself.
if ! (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
  "onnxruntime-node@$version" >&2); then
  echo "setup_onnxruntime: npm install onnxruntime-node@$version failed" >&2
  exit 1
fi
node -e "require('$module')" >&2 || { echo "setup_onnxruntime: $module does not load" >&2; exit 1; }
echo "$module"
