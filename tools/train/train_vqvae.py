#!/usr/bin/env python3
"""Trains the multi-scale VQVAE (vqvae.py + quantizer.py) on Fashion-MNIST for a time budget.

Loss: L1 + L2 reconstruction + VectorQuantizer2's loss (β = 0.25 commitment, straight-through estimator).
Codes unused for RESTART_EVERY steps are restarted on encoder residuals (usage is reported).
At the end the weights are rounded to fp16 -- the model evaluated, used to tokenize for the VAR and shipped
is exactly the fp16 one -- and two files are written:
  vqvae_fmnist_full.safetensors  everything (encoder too), fp16: the state a later slice resumes from
  vae_fmnist.safetensors         decoder + post_quant_conv + quantizer, fp16: what the engine loads

    python3 tools/train/train_vqvae.py --out OUT_DIR [--seconds 110] [--resume DIR] [--seed 0]
"""
import argparse
import hashlib
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from vqvae import VQVAE, decoder_side, vqvae_config  # noqa: E402

FULL_FILE = "vqvae_fmnist_full.safetensors"
ENGINE_FILE = "vae_fmnist.safetensors"
RESTART_EVERY = 50      # steps between dead-code checks
RESTART_UNTIL = 0.85    # no restarts in the last 15% of the budget, so restarted codes get trained


def vqvae_id(model: VQVAE) -> str:
    """Fingerprint of the codebook and φ convs: a VAR is only valid with the VQVAE whose tokens it learned."""
    h = hashlib.sha256()
    for k, v in sorted(model.quantize.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().half().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def load(path, dev):
    tensors, meta = C.load_safetensors(path)
    model = VQVAE(json.loads(meta["amskv_vqvae_config"])).to(dev)
    C.load_into(model, tensors)
    model.eval()
    return model, json.loads(meta.get("amskv_train", "{}"))


def psnr_from_mse(mse01: float) -> float:
    return 10 * math.log10(1.0 / max(mse01, 1e-12))


@torch.no_grad()
def evaluate(model, x_u8, dev, batch=1000):
    """Test-set reconstruction through tokens (what generation can reach): PSNR on the [0,1] 32x32 image and
    on the 28x28 original area, codebook usage overall and per scale, perplexity."""
    model.eval()
    K = len(model.quantize.patch_nums)
    V = model.quantize.vocab
    se32 = se28 = 0.0
    counts = torch.zeros(K, V, dtype=torch.float64, device=dev)
    with C.exact_fp32():
        for i in range(0, x_u8.shape[0], batch):
            x = C.to_signed(x_u8[i:i + batch])
            rec, idx = model.reconstruct(x)
            d = ((rec - x) / 2).square()  # error on the [0,1] scale
            se32 += d.mean(dim=(1, 2, 3)).sum().item()
            se28 += d[:, :, 2:30, 2:30].mean(dim=(1, 2, 3)).sum().item()
            for k in range(K):
                counts[k] += torch.bincount(idx[k].flatten(), minlength=V).double()
    n = x_u8.shape[0]
    total = counts.sum(0)
    p = total / total.sum()
    perplexity = math.exp(-(p[p > 0] * p[p > 0].log()).sum().item())
    return {"test_psnr": psnr_from_mse(se32 / n), "test_psnr_28": psnr_from_mse(se28 / n),
            "codes_used": int((total > 0).sum().item()), "vocab": V,
            "codes_used_per_scale": [int((c > 0).sum().item()) for c in counts],
            "perplexity": perplexity}


def batch_images(data, idx, dev, gen):
    x = C.to_unit(data["train_x"][idx])
    # The tokenizer should encode any plausible image: shifts and flips are harmless augmentations.
    x = C.random_shift(x, 2, gen)
    flip = torch.rand(x.shape[0], generator=gen, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x).mul_(2).sub_(1)


def train(model, data, dev, seconds, seed, batch, lr, fresh, log_name="vqvae"):
    gen = C.generator(dev, seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    sampler = C.BatchSampler(data["train_x"].shape[0], batch, dev, gen)
    budget = C.Budget(seconds)
    prog = C.Progress(log_name, budget)
    q = model.quantize
    step, restarted = 0, 0
    model.train()
    if fresh:  # data-dependent init: every code starts on an encoder residual of some scale
        with torch.no_grad(), C.autocast(dev):
            rests = model(batch_images(data, sampler.next(), dev, gen), collect_rest=True)[3]
        q.hits.zero_()
        q.restart_dead_codes(rests)
    while not budget.done():
        frac = budget.fraction()
        lr_now = C.lr_at(frac, lr, warmup=0.03, final=0.02)
        for g in opt.param_groups:
            g["lr"] = lr_now
        x = batch_images(data, sampler.next(), dev, gen)
        check = step % RESTART_EVERY == 0 and frac < RESTART_UNTIL
        with C.autocast(dev):
            rec, vq_loss, _, rests = model(x, collect_rest=check)
        rec = rec.float()
        l2 = F.mse_loss(rec, x)
        l1 = F.l1_loss(rec, x)
        loss = l1 + l2 + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if check and step > 0:
            restarted += q.restart_dead_codes([r.detach() for r in rests])
        step += 1
        prog.add(x.shape[0], l1=l1, l2=l2, vq=vq_loss, psnr=-10 * torch.log10(l2.detach() / 4))
        if prog.due():
            prog.emit(step, f"lr {lr_now:.2e} restarted {restarted} epoch {sampler.epoch}")
    C.sync(dev)
    C.log(f"{log_name}: {step} steps, {sampler.epoch} epochs in {budget.elapsed():.1f} s, "
          f"{restarted} code restarts")
    return step, sampler.epoch, budget.elapsed(), restarted


def save(model, out_dir, info):
    state = C.state_to_fp16(model.state_dict())
    meta = dict(model.meta(), amskv_train=json.dumps(info), vqvae_id=vqvae_id(model))
    full = C.save_safetensors(os.path.join(out_dir, FULL_FILE), state, meta)
    eng = C.save_safetensors(os.path.join(out_dir, ENGINE_FILE), decoder_side(state), meta)
    return full, eng


def run(data, dev, out_dir, seconds, seed, resume_dir=None, var_exists=False, lr=None, batch=None):
    """Trains, continues or loads the VQVAE; exports; returns (model, summary dict)."""
    lr = lr or C.env_float("VQVAE_LR", 6e-4)
    batch = batch or C.env_int("VQVAE_BATCH", 32 if C.smoke() else 256)
    old = os.path.join(resume_dir, FULL_FILE) if resume_dir else None
    info = {"slices": 0, "steps": 0, "epochs": 0, "train_seconds": 0.0, "seeds": []}
    if old and os.path.exists(old):
        model, info = load(old, dev)
        C.log(f"vqvae: loaded {old} ({info.get('steps')} steps so far)")
        if var_exists and seconds > 0:
            C.log("vqvae: the resumed VAR was trained on these tokens, so the VQVAE stays frozen")
            seconds = 0
        lr = lr * C.env_float("RESUME_LR_SCALE", 0.5)  # a gentler second cycle
    else:
        model = VQVAE(vqvae_config(C.smoke())).to(dev)
        if seconds <= 0:
            sys.exit("error: no VQVAE to resume and VQVAE_SECONDS=0")
    nparams = sum(p.numel() for p in model.parameters())
    dec_params = sum(v.numel() for v in decoder_side(model.state_dict()).values())
    C.log(f"vqvae: config {model.cfg}, {nparams} parameters ({dec_params} shipped), batch {batch}, "
          f"peak lr {lr:g}, budget {seconds:.0f} s, seed {seed}")
    secs = 0.0
    if seconds > 0:
        steps, epochs, secs, restarted = train(model, data, dev, seconds, seed, batch, lr, fresh=not info["steps"])
        info = {"slices": info["slices"] + 1, "steps": info["steps"] + steps, "epochs": info["epochs"] + epochs,
                "train_seconds": round(info["train_seconds"] + secs, 1), "seeds": info["seeds"] + [seed],
                "restarts_last_slice": restarted}
    C.round_to_fp16_(model)
    save(model, out_dir, info)  # a safe point before evaluating
    ev = evaluate(model, data["test_x"], dev)
    info.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in ev.items()})
    full, eng = save(model, out_dir, info)
    C.log(f"vqvae: test PSNR {ev['test_psnr']:.2f} dB (32x32), {ev['test_psnr_28']:.2f} dB (28x28 area); "
          f"codes used {ev['codes_used']}/{ev['vocab']} (per scale {ev['codes_used_per_scale']}), "
          f"perplexity {ev['perplexity']:.1f}; wrote {FULL_FILE} ({full} B), {ENGINE_FILE} ({eng} B)")
    save_recon_grid(model, data, dev, os.path.join(out_dir, "vqvae_recon.png"))
    model.eval()
    return model, {"vqvae_params": nparams, "vqvae_shipped_params": dec_params, "vqvae_bytes": eng,
                   "vqvae_full_bytes": full, "vqvae_train_s": round(secs, 1), "vqvae_steps_total": info["steps"],
                   **{"vqvae_" + k: v for k, v in ev.items()}}


@torch.no_grad()
def save_recon_grid(model, data, dev, path, per_class=2):
    """Rows of originals over their reconstructions, per_class test images of every class."""
    y = data["test_y"]
    pick = torch.cat([(y == c).nonzero().flatten()[:per_class] for c in range(10)])
    x = C.to_signed(data["test_x"][pick])
    with C.exact_fp32():
        rec, _ = model.reconstruct(x)
    both = torch.cat([(x + 1) / 2, (rec + 1) / 2]).float().cpu()
    C.save_png(path, C.image_grid(both, cols=len(pick)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", default=None)
    ap.add_argument("--seconds", type=float, default=20 if C.smoke() else 110)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    C.setup_torch(a.seed)
    dev = C.device()
    _, summary = run(C.load_fmnist(dev), dev, a.out, a.seconds, a.seed, a.resume)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
