#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (run as root, or with sudo available).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  g++ cmake ninja-build pkg-config \
  libopenblas-openmp-dev nlohmann-json3-dev libcli11-dev libpng-dev libcairo2-dev \
  libgtest-dev libgmock-dev libbenchmark-dev
