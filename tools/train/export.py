#!/usr/bin/env python3
"""Checks a run folder's exports and copies the files that ship into a destination folder.

    python3 tools/train/export.py RUN_DIR [--to DEST] [--amskv build/amskv]

The trainers already write the engine's files (fp16, official key names); this tool
  - re-derives vae_fmnist.safetensors (decoder side) from vqvae_fmnist_full.safetensors when it is missing,
  - checks every key against a freshly built PyTorch module (exact key set and shapes, like a strict load),
  - checks the 24 MB budget of the three shipped files,
  - runs `amskv inspect` on the VAR and VQVAE files when the engine is built,
  - copies var_fmnist, vae_fmnist and classifier_fmnist to DEST when given.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from classifier import FmnistClassifier  # noqa: E402
from var_model import VAR  # noqa: E402
from vqvae import VQVAE, decoder_side  # noqa: E402

SHIPPED = ("var_fmnist.safetensors", "vae_fmnist.safetensors", "classifier_fmnist.safetensors")
BUDGET_BYTES = 24_000_000


def check_keys(path, module, subset=None):
    tensors, _ = C.load_safetensors(path)
    own = {k: v for k, v in module.state_dict().items() if subset is None or subset(k)}
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        sys.exit(f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}")
    dtypes = sorted({str(t.dtype).replace('torch.', '') for t in tensors.values()})
    params = sum(t.numel() for k, t in tensors.items() if k not in ("lvl_1L", "attn_bias_for_masking")
                 and not k.endswith("zero_k_bias"))
    print(f"{os.path.basename(path)}: {len(tensors)} tensors, {params} parameters, dtypes {dtypes}, "
          f"{os.path.getsize(path)} bytes: key set ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--to", default=None)
    ap.add_argument("--amskv", default=os.path.join(C.REPO_ROOT, "build", "amskv"))
    a = ap.parse_args()
    p = {name: os.path.join(a.run_dir, name) for name in SHIPPED}
    full = os.path.join(a.run_dir, "vqvae_fmnist_full.safetensors")
    if not os.path.exists(p["vae_fmnist.safetensors"]) and os.path.exists(full):
        tensors, meta = C.load_safetensors(full)
        C.save_safetensors(p["vae_fmnist.safetensors"], decoder_side(tensors), meta)
        print(f"derived {p['vae_fmnist.safetensors']} from {full}")

    _, var_meta = C.load_safetensors(p["var_fmnist.safetensors"])
    _, vae_meta = C.load_safetensors(p["vae_fmnist.safetensors"])
    if var_meta.get("vqvae_id") != vae_meta.get("vqvae_id"):
        sys.exit(f"the VAR was trained on VQVAE {var_meta.get('vqvae_id')}, "
                 f"but vae_fmnist is {vae_meta.get('vqvae_id')}")
    check_keys(p["var_fmnist.safetensors"], VAR(json.loads(var_meta["amskv_var_config"])))
    check_keys(p["vae_fmnist.safetensors"], VQVAE(json.loads(vae_meta["amskv_vqvae_config"])),
               subset=lambda k: k in decoder_side({k: None}))
    check_keys(p["classifier_fmnist.safetensors"], FmnistClassifier())
    total = sum(os.path.getsize(v) for v in p.values())
    print(f"shipped files together: {total} bytes ({total / 2**20:.2f} MiB); budget {BUDGET_BYTES} bytes: "
          f"{'ok' if total <= BUDGET_BYTES else 'OVER'}")
    if total > BUDGET_BYTES:
        sys.exit(1)
    for name in ("var_fmnist.safetensors", "vae_fmnist.safetensors"):
        info = json.loads(C.load_safetensors(p[name])[1].get("amskv_train", "{}"))
        print(f"{name} training record: " + json.dumps({k: v for k, v in info.items() if k != "samples"}))
    if os.path.exists(a.amskv):
        for name in ("var_fmnist.safetensors", "vae_fmnist.safetensors"):
            subprocess.run([a.amskv, "inspect", p[name]], check=True)
    if a.to:
        os.makedirs(a.to, exist_ok=True)
        for name, src in p.items():
            shutil.copyfile(src, os.path.join(a.to, name))
        print(f"copied {', '.join(SHIPPED)} to {a.to}")


if __name__ == "__main__":
    main()
