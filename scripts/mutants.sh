#!/usr/bin/env bash
# Plants each mutation of scripts/mutants.txt in a scratch copy of the tree, one at a time, builds
# it and runs the tests the mutation lists; prints a table mutant -> caught by -> yes/no and exits
# 1 when a mutant survives (or no longer applies, or does not build). First the unmutated copy
# must pass those tests, or a "caught" would prove nothing.
# usage: scripts/mutants.sh [--unit] [NAME...]
#   --unit  run only the unit tests of each mutation (skip the end-to-end scripts): minutes, not
#           a quarter of an hour
#   NAME    only these mutations (default: all)
# The scratch copy and its build live in build-mutants/ (MUTANTS_DIR overrides); the build is
# kept between runs, so a second run recompiles only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
unit_only=0
names=()
for arg in "$@"; do
  case $arg in
    --unit) unit_only=1 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "mutants.sh: unknown option $arg" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done
scratch=${MUTANTS_DIR:-$repo/build-mutants}
src=$scratch/src
build=$scratch/build
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

# The helper the steps below share: parsing the list and applying one mutation.
mkdir -p "$scratch"
cat >"$scratch/mutants_lib.py" <<'PY'
"""Parses scripts/mutants.txt and plants one mutation in a source tree."""
import os
import sys


def parse(path):
    mutants, cur = [], None
    for n, raw in enumerate(open(path), 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("mutant "):
            name, _, what = line[len("mutant "):].partition(":")
            cur = {"name": name.strip(), "what": what.strip(), "file": None, "within": None,
                   "edits": [], "tests": []}
            mutants.append(cur)
            continue
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if cur is None or key not in ("file", "within", "find", "replace", "tests"):
            sys.exit(f"{path}:{n}: unexpected line: {line.strip()}")
        if key == "find":
            cur["edits"].append([value, None])
        elif key == "replace":
            if not cur["edits"] or cur["edits"][-1][1] is not None:
                sys.exit(f"{path}:{n}: replace without its find")
            cur["edits"][-1][1] = value
        elif key == "tests":
            cur["tests"] = value.split()
        else:
            cur[key] = value
    for m in mutants:
        if not m["file"] or not m["edits"] or not m["tests"] or any(r is None for _, r in m["edits"]):
            sys.exit(f"{path}: mutant {m['name']}: needs file, find/replace pairs and tests")
    return mutants


def region(lines, within):
    """Line indices to search: the whole file, or from the first line holding `within` to the
    first line after it that is a lone closing brace (the end of that function)."""
    if within is None:
        return range(len(lines))
    starts = [i for i, l in enumerate(lines) if within in l]
    if not starts:
        return None
    end = next((i for i in range(starts[0] + 1, len(lines)) if lines[i].rstrip("\n") == "}"),
               len(lines) - 1)
    return range(starts[0], end + 1)


def plant(root, m):
    """Applies m's edits to root/m['file']; returns the original text, or raises ValueError."""
    path = os.path.join(root, m["file"])
    original = open(path).read()
    lines = original.splitlines(keepends=True)
    span = region(lines, m["within"])
    if span is None:
        raise ValueError(f"no line holds '{m['within']}'")
    for find, replace in m["edits"]:
        hits = [i for i in span if find in lines[i]]
        if len(hits) != 1:
            raise ValueError(f"'{find}' is on {len(hits)} lines, not 1")
        lines[hits[0]] = lines[hits[0]].replace(find, replace, 1)
    open(path, "w").write("".join(lines))
    return original
PY
export PYTHONPATH=$scratch

selected=$(python3 - "$repo/scripts/mutants.txt" "$repo/tests/e2e" "$unit_only" "${names[@]}" <<'PY'
import os, sys
from mutants_lib import parse
path, e2e, unit_only, wanted = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
mutants = parse(path)
known = {m["name"] for m in mutants}
for w in wanted:
    if w not in known:
        sys.exit(f"mutants.sh: no mutant named {w} (see scripts/mutants.txt)")
for m in mutants:
    if wanted and m["name"] not in wanted:
        continue
    tests = [t for t in m["tests"]
             if not (unit_only and os.path.exists(os.path.join(e2e, t + ".sh")))]
    print(m["name"], " ".join(tests))
PY
)

# --- the scratch copy: the working tree's files (committed or not), mtimes kept so the build in
# build-mutants/ recompiles only what differs from its last run.
rm -rf "$src"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  xargs -0 cp -p --parents -t "$src"
echo "mutants: building the unmutated copy in $build" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPST_FUZZ_SANITIZED_REPLAY=OFF \
  >/dev/null
# build_copy [TEST...]: builds the programs the given ctest tests run (a unit test's own program;
# pstrain for an end-to-end script), or everything
build_copy() {
  local targets=()
  for t in "$@"; do
    if [ -e "$src/tests/e2e/$t.sh" ]; then targets+=(--target pstrain); else targets+=(--target "$t"); fi
  done
  cmake --build "$build" -j "$(nproc)" "${targets[@]}" >"$scratch/build.log" 2>&1
}
build_copy || { tail -20 "$scratch/build.log" >&2; echo "mutants: the unmutated copy does not build" >&2; exit 1; }

# run_test NAME: 0 when the ctest test NAME passes in the scratch build
# (stdin closed: mpirun in an end-to-end test would read the list of mutations being looped over)
run_test() { (cd "$build" && ctest -R "^$1\$" --timeout 900 >"$scratch/test-$1.log" 2>&1 </dev/null); }

# --- the unmutated copy passes every listed test
all_tests=$(echo "$selected" | cut -d' ' -f2- | tr ' ' '\n' | sort -u | grep . || true)
for t in $all_tests; do
  if ! run_test "$t"; then
    echo "mutants: $t fails without a mutation (see $scratch/test-$t.log); fix that first" >&2
    exit 1
  fi
done

# --- each mutant
rows=()
survived=0
while read -r name tests <&3; do
  [ -n "$name" ] || continue
  original=$scratch/original
  if ! python3 - "$src" "$name" "$repo/scripts/mutants.txt" "$original" <<'PY'; then
import sys
from mutants_lib import parse, plant
root, name, path, keep = sys.argv[1:5]
m = next(m for m in parse(path) if m["name"] == name)
try:
    text = plant(root, m)
except ValueError as e:
    sys.exit(f"mutants: {name}: {m['file']}: {e}")
open(keep, "w").write(m["file"] + "\n" + text)
PY
    rows+=("$name|(mutation no longer applies)|no")
    survived=$((survived + 1))
    continue
  fi
  file=$(head -1 "$original")
  caught=()
  # shellcheck disable=SC2086 # tests is a list of names
  if ! build_copy $tests; then
    caught=("(does not build)")
  else
    for t in $tests; do
      run_test "$t" || caught+=("$t")
    done
  fi
  tail -n +2 "$original" >"$src/$file" # the file as it was (a new mtime: rebuilt next time)
  if [ ${#caught[@]} -eq 0 ]; then
    rows+=("$name|-|no")
    survived=$((survived + 1))
  elif [ "${caught[0]}" = "(does not build)" ]; then
    rows+=("$name|(does not build: fix the mutation)|no")
    survived=$((survived + 1))
  else
    rows+=("$name|${caught[*]}|yes")
  fi
  echo "mutants: $name: ${caught[*]:-survived}" >&2
done 3<<<"$selected"
build_copy || true

printf '\n%-26s %-40s %s\n' mutant "caught by" caught
for r in "${rows[@]}"; do
  IFS='|' read -r name by ok <<<"$r"
  printf '%-26s %-40s %s\n' "$name" "$by" "$ok"
done
if [ "$survived" -ne 0 ]; then
  echo "$survived of ${#rows[@]} mutants survived" >&2
  exit 1
fi
echo "all ${#rows[@]} mutants caught"
