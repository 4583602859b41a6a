#!/usr/bin/env python3
"""Checks that the exported files mean the same thing in PyTorch and in the engine (CPU, fp32).

Tokenizes a few test images with the full VQVAE, forces those tokens in `amskv generate --force-tokens`,
and compares the engine's dump (guided logits of every scale, f_hat, image) with this package's PyTorch
computation of the same: VAR teacher-forced forward with CFG mixing, quantizer f_hat, VQVAE decoder.

    python3 tools/train/crosscheck.py RUN_DIR [--amskv build/amskv] [--cfg 1.5]
    python3 tools/train/crosscheck.py --random [--cfg 3]

RUN_DIR holds var_fmnist.safetensors, vae_fmnist.safetensors and vqvae_fmnist_full.safetensors (for the
encoder; without it random tokens are forced instead). --random checks the full-size configuration with
random weights perturbed away from their initialisation (so that every block, gate and head matters) and
random tokens. Exit status 1 when an error exceeds its tolerance.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from var_model import VAR  # noqa: E402
from vqvae import VQVAE  # noqa: E402

TOLERANCE = {"logits": 2e-3, "fhat": 1e-4, "image": 1e-4}


def load_model(cls, path, cfg_key):
    tensors, meta = C.load_safetensors(path)
    model = cls(json.loads(meta[cfg_key]))
    own = model.state_dict()
    for k in tensors:
        if k not in own:
            raise KeyError(f"{path}: unexpected key {k}")
    C.load_into(model, tensors, strict=False)  # a decoder-side VQVAE file has no encoder
    return model.eval(), set(tensors)


def write_random_models(out_dir):
    """Full-size VAR + VQVAE with every weight perturbed (the real init leaves AdaLN gates near zero)."""
    from var_model import var_config
    from vqvae import decoder_side, vqvae_config
    torch.manual_seed(1)
    vae = VQVAE(vqvae_config(C.smoke()))
    var = VAR(var_config(vae.cfg["vocab"], vae.cfg["cvae"], C.smoke()))
    with torch.no_grad():
        for m in (vae, var):
            for p in m.parameters():
                p.add_(torch.randn_like(p) * (0.05 if p.ndim > 1 else 0.2))
        vae.quantize.embedding.weight.normal_()
    C.save_safetensors(os.path.join(out_dir, "var_fmnist.safetensors"), C.state_to_fp16(var.state_dict()),
                       var.meta())
    C.save_safetensors(os.path.join(out_dir, "vae_fmnist.safetensors"),
                       decoder_side(C.state_to_fp16(vae.state_dict())), vae.meta())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?")
    ap.add_argument("--random", action="store_true", help="check random full-size models instead of a run")
    ap.add_argument("--amskv", default=os.path.join(C.REPO_ROOT, "build", "amskv"))
    ap.add_argument("--cfg", type=float, default=1.5)
    ap.add_argument("--labels", default="0,1,2")
    a = ap.parse_args()
    if a.random:
        with tempfile.TemporaryDirectory() as tmp:
            write_random_models(tmp)
            a.run_dir = tmp
            check(a)
    elif a.run_dir:
        check(a)
    else:
        ap.error("give RUN_DIR or --random")


def check(a):
    torch.manual_seed(0)
    var_path = os.path.join(a.run_dir, "var_fmnist.safetensors")
    vae_path = os.path.join(a.run_dir, "vae_fmnist.safetensors")
    full_path = os.path.join(a.run_dir, "vqvae_fmnist_full.safetensors")
    var, _ = load_model(VAR, var_path, "amskv_var_config")
    vae, _ = load_model(VQVAE, vae_path, "amskv_vqvae_config")
    labels = torch.tensor([int(v) for v in a.labels.split(",")])
    B = labels.shape[0]
    q = vae.quantize
    with torch.no_grad():
        if os.path.exists(full_path):
            enc, _ = load_model(VQVAE, full_path, "amskv_vqvae_config")
            data = C.load_fmnist(torch.device("cpu"))
            pick = torch.stack([(data["test_y"] == int(c)).nonzero().flatten()[0] for c in labels])
            tokens = enc.tokenize(C.to_signed(data["test_x"][pick]))
            source = f"tokens of test images {pick.tolist()}"
        else:
            tokens = [torch.randint(0, q.vocab, (B, p * p)) for p in q.patch_nums]
            source = "random tokens"
        ref_fhat = q.idx_to_fhat(tokens)
        ref_img = (vae.decode(ref_fhat).clamp(-1, 1) + 1) / 2
        _, _, ref_logits = var.generate(q, labels, cfg=a.cfg, forced=tokens)

    with tempfile.TemporaryDirectory() as tmp:
        forced = os.path.join(tmp, "forced.safetensors")
        dump = os.path.join(tmp, "dump.safetensors")
        C.save_safetensors(forced, {f"forced_idx.{k}": t.long() for k, t in enumerate(tokens)})
        cmd = [a.amskv, "generate", "--var", var_path, "--vae", vae_path, "--labels", a.labels,
               "--force-tokens", forced, "--dump", dump, "--dump-logits", "--no-images",
               "--cfg", str(a.cfg), "-q"]
        print("running:", " ".join(cmd))
        subprocess.run(cmd, check=True)
        got, _ = C.load_safetensors(dump)

    errors = {"logits": 0.0, "fhat": 0.0, "image": 0.0}
    for k, t in enumerate(tokens):
        assert torch.equal(got[f"idx.{k}"].long(), t.long()), f"engine did not use the forced tokens at scale {k}"
        errors["logits"] = max(errors["logits"], (got[f"logits_cfg.{k}"].float() - ref_logits[k]).abs().max().item())
    errors["fhat"] = (got["fhat"].float() - ref_fhat).abs().max().item()
    errors["image"] = (got["image"].float() - ref_img).abs().max().item()
    scale = {"logits": max(r.abs().max().item() for r in ref_logits), "fhat": ref_fhat.abs().max().item(),
             "image": 1.0}
    print(f"cross-check with {source}, labels {labels.tolist()}, cfg {a.cfg}; image {tuple(got['image'].shape)}")
    ok = True
    for k, e in errors.items():
        flag = "ok" if e <= TOLERANCE[k] else "TOO LARGE"
        ok &= e <= TOLERANCE[k]
        print(f"  {k:7s} max abs error {e:.3e} (values up to {scale[k]:.3g}; tolerance {TOLERANCE[k]:g}) {flag}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
