#!/usr/bin/env bash
# The parameter servers of an mpirun job create only the tensors of the job's model contract, which
# every worker declares from its model and the servers receive over MPI before serving: an INIT of
# a tensor outside it (another namespace, or the job's own tensor with another size) is refused
# with a named error and counted, the job finishes normally with the weights of an undisturbed
# run, and a layered model (transport.prefetch) declares one tensor per layer, a sparse one its
# rows and bias, a wide_deep one its bounded rows and deep stack, and all train.
# cluster.security=none lets the client in: it plays a buggy worker of the job, not a stranger.
# usage: init_contract_test.sh PSTRAIN TESTS_DIR   (PST_STRANGER: the client program)
set -uo pipefail
pstrain=$1
source "$(dirname "$0")/lib.sh"
client=${PST_STRANGER:-}
if [ ! -x "$client" ]; then
  echo "FAIL: PST_STRANGER does not name the client program"
  exit 1
fi

blobs3 5 4096 300
cat > "$work/job.yaml" <<YAML
name: contract-test
seed: 4
data: {train: $work/train.csv, val_fraction: 0.2, target: target}
model: {hidden: [16], activation: tanh}
optimizer: {name: sgd, lr: 0.05}
train: {epochs: 25, batch_size: 8, progress: none}
cluster: {security: none}
YAML
# 4 inputs, 16 hidden, 3 classes: 4*16 + 16 + 16*3 + 3 parameters in one tensor
n_params=131

timeout 300 mpirun --oversubscribe -np 3 "$pstrain" train "$work/job.yaml" --out "$work/poked" -v \
  >"$work/poked.log" 2>&1 &
job_pid=$!
endpoint=""
for _ in $(seq 600); do
  endpoint=$(grep -o 'listening on tcp://[0-9.]*:[0-9]*' "$work/poked.log" | head -1 | cut -d' ' -f3)
  [ -n "$endpoint" ] && break
  kill -0 "$job_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$endpoint" ]; then
  fail "the job never logged its server's endpoint: $(tail -3 "$work/poked.log")"
else
  # wait until the workers' own INIT is in, so that the refused ones come after it
  for _ in $(seq 300); do
    "$client" "$endpoint" counters >"$work/before.txt" 2>&1
    grep -q 'tensors=1' "$work/before.txt" && break
    sleep 0.1
  done
  "$client" "$endpoint" init init0 counters >"$work/client.txt" 2>&1
  cat "$work/client.txt"
  check "an INIT of another namespace is refused by name" \
    "$(grep -q "^init: answered (.*tensor 99/0 is not in the job's model contract" "$work/client.txt" && echo True)"
  check "an INIT of the job's tensor with another size is refused with both sizes" \
    "$(grep -q "^init0: answered (.*tensor 0/0: INIT of 1048576 elements; the job's model contract declares $n_params" "$work/client.txt" && echo True)"
  check "both refusals are counted and no tensor was added" \
    "$(grep -qx 'counters: contract=2 tensors=1' "$work/client.txt" && echo True)"
  kill -0 "$job_pid" 2>/dev/null && pass "the job still runs after the refused INITs" \
    || fail "the job ended before the client was done (make it longer)"
fi
wait "$job_pid"; rc=$?
[ "$rc" = 0 ] && pass "the job finishes normally (rc 0)" || fail "the job failed (rc $rc): $(tail -3 "$work/poked.log")"
check "the server logs the contract it holds" \
  "$(grep -q 'accepts INIT only for the 1 tensors of the job' "$work/poked.log" && echo True)"

mpi 3 train "$work/job.yaml" --out "$work/quiet" >"$work/quiet.log" 2>&1 || fail "undisturbed run: $(tail -3 "$work/quiet.log")"
params "$work/poked/model.pst" >"$work/poked.txt"
params "$work/quiet/model.pst" >"$work/quiet.txt"
if [ -s "$work/quiet.txt" ] && cmp -s "$work/poked.txt" "$work/quiet.txt"; then
  pass "the final weights equal the undisturbed run's ($(wc -l <"$work/quiet.txt") parameters)"
else
  fail "the final weights differ from the undisturbed run's"
fi

# --- one tensor per layer: three layers of 4675 parameters, each declared -----------------------
mpi 3 train "$work/job.yaml" --out "$work/layers" -v --set model.hidden=[64,64] \
  --set transport.prefetch=true --set train.epochs=1 >"$work/layers.log" 2>&1
rc=$?
[ "$rc" = 0 ] && pass "a layered model trains within its contract" || fail "layered run failed (rc $rc): $(tail -3 "$work/layers.log")"
check "the layered contract holds one tensor per layer" \
  "$(grep -q 'accepts INIT only for the 3 tensors of the job' "$work/layers.log" && echo True)"

# --- a sparse model: its rows tensor and its bias ---------------------------------------------------
"$pstrain" datagen clicks --rows 4000 --features 1000 --nnz 10 --seed 7 --out "$work/clicks.svm" >/dev/null 2>&1
mpi 3 train "$(dirname "$0")/../../examples/clicks_lr.yaml" --set data.train="$work/clicks.svm" \
  --set train.epochs=1 --out "$work/sparse" -v >"$work/sparse.log" 2>&1
rc=$?
[ "$rc" = 0 ] && pass "a sparse model trains within its contract" || fail "sparse run failed (rc $rc): $(tail -3 "$work/sparse.log")"
check "the sparse contract holds the rows and the bias" \
  "$(grep -q 'accepts INIT only for the 2 tensors of the job' "$work/sparse.log" && echo True)"

# --- wide_deep on hashed TSV fields: its rows (keys bounded by fields << hash_bits), deep stack ---
"$pstrain" datagen criteo --rows 6000 --numeric 4 --categorical 8 --vocab 200 --interaction 1.5 \
  --seed 3 --out "$work/clicks.tsv" >/dev/null 2>&1
mpi 3 train "$(dirname "$0")/../../examples/clicks_wd.yaml" --set data.train="$work/clicks.tsv" \
  --set data.test="$work/clicks.tsv" --set train.epochs=1 --set train.batch_size=64 \
  --out "$work/wd" -v >"$work/wd.log" 2>&1
rc=$?
[ "$rc" = 0 ] && pass "a wide_deep model trains within its contract" || fail "wide_deep run failed (rc $rc): $(tail -3 "$work/wd.log")"
check "the wide_deep contract holds the rows and the deep stack" \
  "$(grep -q 'accepts INIT only for the 2 tensors of the job' "$work/wd.log" && echo True)"
check "no key of the run fell outside the rows' bound" \
  "$(grep -q 'outside the job.s model contract' "$work/wd.log" || echo True)"

echo "$failures checks failed"
[ "$failures" = 0 ]
