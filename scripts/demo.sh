#!/usr/bin/env bash
# The default run, needing no download: builds amskv and generates Fashion-MNIST garments with the model the
# project trained and ships (weights/fashion-mnist: a VAR of the official architecture, 32px images, 10
# classes: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag,
# 9 ankle boot), every class with the full KV cache and with AMS-KV side by side (samples/), and prints
# their KV memory and time. Extra arguments go to `amskv demo` (e.g. --labels 7,9 --per-class 16
# --device cuda). For the official VAR checkpoints use `build/amskv generate --var ... --vae ...`.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target amskv
build/amskv demo --out samples "$@"   # no --var/--vae: the shipped model
