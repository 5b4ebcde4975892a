#!/usr/bin/env bash
# Installs the Debian packages pstrain needs to build, test and run its demo. Idempotent; quiet
# when everything is present. Set PST_SETUP_BENCH=1 to also install the benchmark peers,
# PST_SETUP_FUZZ=1 the fuzzing tool chain.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libzmq3-dev
  libprotobuf-c-dev protobuf-c-compiler
  libopenblas-dev
  liblz4-dev zlib1g-dev
  libyaml-dev libcjson-dev
  libcmocka-dev clang-format
  dataset-fashion-mnist
  python3 python3-numpy
  iproute2 time
  libonnx-dev python3-onnx
  protobuf-compiler python3-protobuf
  librsvg2-dev chromium
  slurm-wlm munge
)
# tests/e2e/scaling_netns_test.sh and scripts/bench/scaling.sh create network namespaces and
# shape their links with ip and tc (iproute2).
# tests/e2e/tabular_test.sh measures predict's peak memory with /usr/bin/time (time).
# scripts/test.sh checks formatting with clang-format (the repository's .clang-format).
# The end-to-end tests script their checks in Python; the sparse test computes reference figures
# with numpy through /usr/bin/python3.
# The ONNX export generates its protobuf code from libonnx-dev's onnx.proto; its test checks the
# exported files with python3-onnx's checker and runs them in onnxruntime-node (installed with
# npm by scripts/setup_onnxruntime.sh, after the packages, when node and npm are present).
# tests/e2e/tensorboard_test.sh reads the TensorBoard event files back with Python code that
# protoc generates from proto/ (protobuf-compiler, python3-protobuf).
# pstrain report --png renders the page's SVG plots with librsvg and cairo (librsvg2-dev; the
# build leaves --png out without it). tests/e2e/report_browser_test.sh loads the report pages in
# headless Chromium (chromium, about 350 MB installed; its install took 105 s on a bookworm VM,
# librsvg2-dev's 80 s with its -dev dependencies); without it that test says so and skips.
# tests/e2e/slurm_test.sh brings up a one-node Slurm (slurm-wlm: slurmctld, slurmd, sbatch,
# srun with its PMIx plugin; munge for its authentication) in a scratch directory and runs
# cluster/slurm.sbatch through it; the packages' own services are not used (13 MB installed,
# 47 s here).
# scripts/fuzz.sh builds libFuzzer targets with clang and its runtime.
if [ "${PST_SETUP_FUZZ:-0}" = 1 ]; then
  packages+=(clang libclang-rt-dev)
fi
if [ "${PST_SETUP_BENCH:-0}" = 1 ]; then
  packages+=(python3-torch python3-sklearn liblinear-tools python3-optuna)
fi

# Node.js comes from Debian unless a node and npm are already installed (e.g. from NodeSource).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "pstrain setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash "$(dirname "$0")/setup_onnxruntime.sh" >/dev/null ||
  echo "pstrain setup: onnxruntime-node is not installed; the ONNX export test will skip" >&2
