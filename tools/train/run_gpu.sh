#!/usr/bin/env bash
# One training slice on the GPU machine (also runs on a CPU with AMSKV_TRAIN_SMOKE=1):
#   bash tools/train/run_gpu.sh OUT_DIR [RESUME_DIR]
# Needs data/fmnist/fashion_mnist_u8.npz (tools/train/prepare_data.py; carry data/fmnist to the GPU machine).
# Budgets: CLASSIFIER_SECONDS, VQVAE_SECONDS, VAR_SECONDS, TOTAL_SECONDS (see tools/train/pipeline.py).
# Writes into OUT_DIR (8 files, each under 16 MiB): train.log, summary.json, classifier_fmnist.safetensors,
# vqvae_fmnist_full.safetensors, vae_fmnist.safetensors, var_fmnist.safetensors, vqvae_recon.png,
# var_samples.png. A later slice resumes from that folder.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: bash tools/train/run_gpu.sh OUT_DIR [RESUME_DIR]" >&2
  exit 2
fi
OUT=$1
RESUME=${2:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
args=(--out "$OUT")
[[ -n $RESUME ]] && args+=(--resume "$RESUME")
"$PY" "$HERE/pipeline.py" "${args[@]}" 2>&1 | tee "$OUT/train.log"
