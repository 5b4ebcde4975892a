#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, both fatal) into build-fuzz/ and fuzzes each
# decoder in turn from the generated seeds, the inputs kept in fuzz/regressions/ and the corpus of
# earlier runs. A target stops at its time limit (default 60 s) or, with --execs N, once it has run
# N inputs (with --execs alone there is no time limit; give both to bound a campaign). Crashes are
# written to build-fuzz/crashes/TARGET/; copy a fixed one into fuzz/regressions/TARGET/ so the test
# suite replays it from then on. The corpus grows in build-fuzz/corpus/TARGET/ and is kept between
# runs. At the end a table gives, per target: inputs run, inputs per second, coverage (libFuzzer's
# cov: edges and ft: features), corpus size and crashes; it is also written to build-fuzz/table.txt.
# usage: scripts/fuzz.sh [SECONDS | --minutes M] [--execs N] [--no-build] [TARGET...]
#        (targets: fuzz/CMakeLists.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
execs=0
build=1
while [ $# -gt 0 ]; do
  case "$1" in
  --minutes) seconds=$(( ${2:?--minutes needs a number} * 60 )); timed=1; shift 2 ;;
  --execs) execs=${2:?--execs needs a number}; shift 2 ;;
  --no-build) build=0; shift ;;
  *)
    if [ "$1" -eq "$1" ] 2>/dev/null; then
      seconds=$1
      timed=1
      shift
    else
      break
    fi
    ;;
  esac
done
case "$execs" in '' | *[!0-9]*) echo "fuzz.sh: --execs needs a whole number, not '$execs'" >&2; exit 2 ;; esac
# --execs alone: run to the count, however long it takes.
[ "$execs" -gt 0 ] && [ -z "${timed:-}" ] && seconds=0
targets=("$@")
# Every target the build knows, by default.
known=$(sed -n '/^set(PST_FUZZ_TARGETS/,/)/p' fuzz/CMakeLists.txt | tr '\n' ' ' |
  sed 's/.*set(PST_FUZZ_TARGETS *\([^)]*\)).*/\1/; s/  */ /g; s/ $//')
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$known"
for t in "${targets[@]}"; do
  case " $known " in *" $t "*) ;; *) echo "fuzz.sh: no target '$t' (known: $known)" >&2; exit 2 ;; esac
done
dir=build-fuzz
if [ "$build" = 1 ]; then
  PST_SETUP_FUZZ=1 bash scripts/setup.sh
  CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPST_FUZZ=ON -DPST_SANITIZE=ON >/dev/null
  if ! cmake --build "$dir" -j "$(nproc)" --target fuzz_seeds $(printf 'fuzz_%s ' "${targets[@]}") \
    >"$dir/build.log" 2>&1; then
    grep -E 'error|warning' "$dir/build.log" >&2 || tail -20 "$dir/build.log" >&2
    echo "fuzz.sh: the build failed; see $dir/build.log" >&2
    exit 1
  fi
fi
"$dir/fuzz/fuzz_seeds" "$dir/seeds"

# Inputs larger than a target's decoder can make use of only slow each run down: the bound per
# target (bytes). Text and file targets go through a scratch file, kept in memory when /dev/shm is.
max_len() {
  case "$1" in
  config | statefile) echo 4096 ;;
  *) echo 16384 ;;
  esac
}
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
export OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
# UBSan reports are otherwise printed and the run goes on: make them crashes libFuzzer keeps.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=0
rows=()
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t" "$dir/crashes/$t"
  extra=()
  [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
  limits=(-max_total_time="$seconds")
  [ "$execs" -gt 0 ] && limits+=(-runs="$execs")
  before=$(find "$dir/crashes/$t" -type f | wc -l)
  echo "== $t: fuzzing (time limit ${seconds}s (0: none), inputs ${execs} (0: no limit)," \
    "max_len $(max_len "$t"))" >&2
  rc=0
  "$dir/fuzz/fuzz_$t" "${limits[@]}" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$dir/crashes/$t/" \
    "$dir/corpus/$t" "$dir/seeds/$t" "${extra[@]}" 2>"$dir/$t.log" || rc=$?
  if [ "$rc" != 0 ]; then
    failed=1
    grep -E 'ERROR|SUMMARY|invariant|runtime error|Test unit written' "$dir/$t.log" | head -8 >&2 || true
  fi
  crashes=$(( $(find "$dir/crashes/$t" -type f | wc -l) - before ))
  [ "$rc" != 0 ] && [ "$crashes" = 0 ] && crashes="rc=$rc"
  # A run that crashed early may have printed none of these: the table shows '?'.
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/$t.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/$t.log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$dir/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "$dir/corpus/$t" -type f | wc -l)
  rows+=("$(printf '%-12s %12s %9s %7s %8s %8s %8s' "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "$corpus" "$crashes")")
done
{
  printf '%-12s %12s %9s %7s %8s %8s %8s\n' target execs exec/s cov ft corpus crashes
  printf '%s\n' "${rows[@]}"
  echo "($(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg))"
} | tee "$dir/table.txt"
exit $failed
