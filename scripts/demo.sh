#!/usr/bin/env bash
# The default run, needing no download: builds amskv, writes a VAR-d16-shaped model and an official-shaped
# VQVAE with seeded RANDOM weights (so the images are noise, not pictures), and generates four 256px
# images with AMS-KV, printing the KV memory report. With real checkpoints, pass --var/--vae instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target amskv
[ -f models/var_d16.pth ] || build/amskv random-model --shape d16 --out models
build/amskv generate --var models/var_d16.pth --vae models/vae_ch160v4096z32.pth \
  --labels 980,437,22,562 --cfg 4 --top-k 900 --top-p 0.95 --seed 0 --kv ams \
  --out samples --report samples/report.json "$@"
