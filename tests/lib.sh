# Helpers the end-to-end test scripts share: a scratch directory removed on exit, pass/fail
# counting, reading report.json values, and mpirun with a time limit. Sourced, not run.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# json FILE EXPR: prints d<EXPR> of the JSON document in FILE, e.g. json r.json "['test']['accuracy']"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d' + sys.argv[2]))" "$@"; }
# jexpr FILE EXPR: prints the Python expression EXPR over the JSON document d in FILE
jexpr() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# mexpr FILE EXPR: the same over the list m of the JSON lines of FILE (metrics.jsonl)
mexpr() { python3 -c "import json,sys; m=[json.loads(l) for l in open(sys.argv[1])]; print(eval(sys.argv[2]))" "$@"; }
# check DESCRIPTION OUTPUT: passes when OUTPUT (of jexpr, mexpr...) is True
check() { if [ "$2" = "True" ]; then pass "$1"; else fail "$1 ($2)"; fi; }
# mpi NP ARGS...: pstrain ARGS under mpirun with NP ranks, at most 300 s
mpi() { local np=$1; shift; timeout 300 mpirun --oversubscribe -np "$np" "$pstrain" "$@"; }
