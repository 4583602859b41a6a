#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (run as root, or with sudo available): the
# compiler and CMake, OpenBLAS (OpenMP build), nlohmann-json, CLI11, libpng, cairo (plots), GoogleTest, and
# clang with its libFuzzer runtime for scripts/fuzz.sh. The CUDA backend is built when CUDA is installed
# (/usr/local/cuda); it is not a Debian package.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  g++ cmake ninja-build pkg-config \
  libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev libpng-dev libcairo2-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  clang libclang-rt-14-dev
