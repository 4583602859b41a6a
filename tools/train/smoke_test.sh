#!/usr/bin/env bash
# CPU smoke test of the whole training pipeline with tiny models (3-8 minutes on 2 shared cores):
# prepare data (if missing) -> classifier -> VQVAE -> VAR -> exports -> the engine loads them ->
# the PyTorch/engine numerical cross-check with forced tokens.
#   bash tools/train/smoke_test.sh [OUT_DIR]      (default data/runs/smoke)
# Needs Debian's python3-torch (run with /usr/bin/python3, torch 1.13) and a built engine (build/amskv).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
OUT=${1:-data/runs/smoke}
PY=${PYTHON:-/usr/bin/python3}
AMSKV=${AMSKV:-build/amskv}
[[ -f data/fmnist/fashion_mnist_u8.npz ]] || "$PY" tools/train/prepare_data.py
rm -rf "$OUT"
AMSKV_TRAIN_SMOKE=1 PYTHON=$PY CLASSIFIER_SECONDS=${CLASSIFIER_SECONDS:-5} VQVAE_SECONDS=${VQVAE_SECONDS:-15} \
  VAR_SECONDS=${VAR_SECONDS:-15} EVAL_PER_CLASS=${EVAL_PER_CLASS:-2} EVAL_SETTINGS=1.5:0:0,3:20:0.95 \
  bash tools/train/run_gpu.sh "$OUT"
echo "--- resume one more short VAR slice from $OUT"
AMSKV_TRAIN_SMOKE=1 PYTHON=$PY VAR_SECONDS=5 EVAL_PER_CLASS=2 EVAL_SETTINGS=3:20:0.95 \
  bash tools/train/run_gpu.sh "$OUT-resumed" "$OUT"
"$PY" - "$OUT-resumed" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
assert s["slice"] == 1 and s["var_steps_total"] > s["var_steps_slice"] > 0, s
print(f"resume ok: slice {s['slice']}, VAR steps {s['var_steps_slice']} now, {s['var_steps_total']} in all")
EOF
echo "--- the engine reads the exports"
"$AMSKV" inspect "$OUT/var_fmnist.safetensors"
"$AMSKV" inspect "$OUT/vae_fmnist.safetensors"
"$AMSKV" generate --var "$OUT/var_fmnist.safetensors" --vae "$OUT/vae_fmnist.safetensors" --labels 0,1,2 \
  --no-images --dump "$OUT/engine_dump.safetensors" -q
"$PY" - "$OUT/engine_dump.safetensors" <<'EOF'
import sys
sys.path.insert(0, "tools/train")
import common
t, _ = common.load_safetensors(sys.argv[1])
print("engine generated images of shape", tuple(t["image"].shape), "range",
      round(float(t["image"].min()), 3), round(float(t["image"].max()), 3))
assert tuple(t["image"].shape) == (3, 3, 32, 32)
EOF
echo "--- PyTorch vs engine: the smoke models, then the full-size configuration with random weights"
"$PY" tools/train/crosscheck.py "$OUT" --amskv "$AMSKV"
"$PY" tools/train/crosscheck.py --random --cfg 3 --amskv "$AMSKV"
echo "smoke test passed"
