#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and fuzzes each decoder for
# SECONDS (default 60) from the generated seeds. Crashes are written to build-fuzz/crashes/TARGET/;
# copy a fixed one into fuzz/regressions/TARGET/ so the test suite replays it from then on.
# The corpus grows in build-fuzz/corpus/TARGET/ and is kept between runs.
# usage: scripts/fuzz.sh [SECONDS | --minutes M] [TARGET...]   (targets: fuzz/CMakeLists.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
if [ "${1:-}" = "--minutes" ]; then
  seconds=$(( ${2:?--minutes needs a number} * 60 ))
  shift 2
elif [ -n "${1:-}" ] && [ "${1:-}" -eq "${1:-}" ] 2>/dev/null; then
  seconds=$1
  shift
fi
targets=("$@")
# Every target the build knows, by default.
[ ${#targets[@]} -gt 0 ] ||
  read -r -a targets <<<"$(sed -n 's/^set(PST_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt)"
PST_SETUP_FUZZ=1 bash scripts/setup.sh
dir=build-fuzz
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPST_FUZZ=ON -DPST_SANITIZE=ON >/dev/null
if ! cmake --build "$dir" -j "$(nproc)" --target fuzz_seeds $(printf 'fuzz_%s ' "${targets[@]}") \
  >"$dir/build.log" 2>&1; then
  grep -E 'error|warning' "$dir/build.log" >&2 || tail -20 "$dir/build.log" >&2
  echo "fuzz.sh: the build failed; see $dir/build.log" >&2
  exit 1
fi
"$dir/fuzz/fuzz_seeds" "$dir/seeds"
export OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t" "$dir/crashes/$t"
  extra=()
  [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
  echo "== $t: fuzzing for ${seconds}s" >&2
  if ! "$dir/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$dir/crashes/$t/" \
      "$dir/corpus/$t" "$dir/seeds/$t" "${extra[@]}" 2>"$dir/$t.log"; then
    failed=1
    grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$dir/$t.log" | head -8 >&2
  fi
  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$dir/$t.log" | tail -2 >&2 || true
done
exit $failed
