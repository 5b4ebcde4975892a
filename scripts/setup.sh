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
  iproute2
)
# tests/e2e/scaling_netns_test.sh and scripts/bench/scaling.sh create network namespaces and
# shape their links with ip and tc (iproute2).
# scripts/test.sh checks formatting with clang-format (the repository's .clang-format).
# The end-to-end tests script their checks in Python; the sparse test computes reference figures
# with numpy through /usr/bin/python3.
# scripts/fuzz.sh builds libFuzzer targets with clang and its runtime.
if [ "${PST_SETUP_FUZZ:-0}" = 1 ]; then
  packages+=(clang libclang-rt-dev)
fi
if [ "${PST_SETUP_BENCH:-0}" = 1 ]; then
  packages+=(python3-torch python3-sklearn liblinear-tools python3-optuna)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "pstrain setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
