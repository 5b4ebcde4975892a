# Helpers the end-to-end test scripts share: a scratch directory removed on exit (kept with
# KEEP_SCRATCH=1), pass/fail counting, reading report.json values, model weights, free ports, and
# mpirun with a time limit. Sourced, not run.
work=$(mktemp -d)
# scratch_cleanup: removes the scratch directory, or says where it is with KEEP_SCRATCH set
scratch_cleanup() { if [ -n "${KEEP_SCRATCH:-}" ]; then echo "scratch kept: $work"; else rm -rf "$work"; fi; }
trap scratch_cleanup EXIT
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
# mcompare FILE1 FILE2 EXPR: "same" when EXPR over the metrics.jsonl lines m of both files gives
# equal non-empty values, "differ" when they give different non-empty ones, else an error text
mcompare() {
  python3 - "$@" <<'PY'
import json, sys
try:
    a, b = ([eval(sys.argv[3], {"m": [json.loads(l) for l in open(f)]}) for f in sys.argv[1:3]])
    print("error: empty" if not a or not b else "same" if a == b else "differ")
except Exception as e:
    print(f"error: {e}")
PY
}
# free_port: a TCP port on loopback that nothing listens on now
free_port() { python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
# params MODEL: the weights of a model file, one per line
params() { "$pstrain" info "$1" --params | tail -n +8; }
# max_rel_diff FILE1 FILE2: max |a - b| / (|b| + 1e-3) over two weight lists ("inf" when their
# lengths differ or they are empty)
max_rel_diff() {
  python3 - "$1" "$2" <<'PY'
import sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
if len(a) != len(b) or not a:
    print("inf")
else:
    print(max(abs(x - y) / (abs(y) + 1e-3) for x, y in zip(a, b)))
PY
}
# mpi NP ARGS...: pstrain ARGS under mpirun with NP ranks, at most 300 s
mpi() { local np=$1; shift; timeout 300 mpirun --oversubscribe -np "$np" "$pstrain" "$@"; }

# Three Gaussian classes over columns a..d (class c centred at 1.5 on column c), target last:
# $work/train.csv with TRAIN rows and $work/test.csv with TEST rows, drawn with SEED.
blobs3() {
  python3 - "$work" "$1" "$2" "$3" <<'PY'
import random, sys
random.seed(int(sys.argv[2]))
def write(path, n):
    with open(path, "w") as f:
        f.write("a,b,c,d,target\n")
        for i in range(n):
            c = i % 3
            x = [random.gauss(1.5 if j == c else 0.0, 0.7) for j in range(4)]
            f.write(",".join("%.5f" % v for v in x) + ",%d\n" % c)
write(sys.argv[1] + "/train.csv", int(sys.argv[3]))
write(sys.argv[1] + "/test.csv", int(sys.argv[4]))
PY
}
