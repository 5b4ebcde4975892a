#!/usr/bin/env bash
# Sets up, builds and runs the main job: the Fashion-MNIST reference MLP (examples/fashion_mlp.yaml)
# trained by 1 parameter server and 2 workers under mpirun on this machine.
# Extra arguments go to pstrain train (e.g. --set train.epochs=2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
exec mpirun --oversubscribe -np 3 build/cli/pstrain train examples/fashion_mlp.yaml \
  --set cluster.servers=1 "$@"
