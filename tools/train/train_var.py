#!/usr/bin/env python3
"""Trains the VAR transformer (var_model.py) on the frozen VQVAE's tokens of Fashion-MNIST, the reference
trainer's way: teacher-forced next-scale prediction of all L tokens at once under the block-causal mask,
cross-entropy with label smoothing 0.1, class dropout 0.1 to the null class (for guidance), AdamW, bf16
autocast on the GPU, warmup + cosine decay over the wall-clock budget.

Writes var_fmnist.safetensors (fp16, official key names, metadata with the config and training state)
every CKPT_SECONDS and at the end; that file is also what a later slice resumes from (the AdamW moments are
not kept -- see docs/training.md -- a resumed slice re-warms the learning rate instead).

    python3 tools/train/train_var.py --out OUT_DIR --vqvae DIR_WITH_vqvae_fmnist_full [--seconds 330]
                                     [--resume DIR] [--seed 0]
"""
import argparse
import inspect
import json
import os
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import train_vqvae  # noqa: E402
from var_model import VAR, param_groups, var_config  # noqa: E402

FILE = "var_fmnist.safetensors"
EVAL_SAMPLES_PER_CLASS = 100


@torch.no_grad()
def tokenize(vqvae, x_u8, dev, chunk=2000):
    """Token ids [N, L] (int16) and the teacher-forcing input [N, L−1, Cvae] (fp32) of every image, computed
    once in exact fp32 with the fp16-rounded VQVAE (the same numbers the engine would compute)."""
    q = vqvae.quantize
    ids, inputs = [], []
    with C.exact_fp32():
        for i in range(0, x_u8.shape[0], chunk):
            idx = vqvae.tokenize(C.to_signed(x_u8[i:i + chunk]))
            ids.append(torch.cat(idx, dim=1).to(torch.int16))
            inputs.append(q.idx_to_var_input(idx))
    return torch.cat(ids), torch.cat(inputs)


def split_scales(ids_BL, patch_nums):
    out, b = [], 0
    for p in patch_nums:
        out.append(ids_BL[:, b:b + p * p].long())
        b += p * p
    return out


def load(path, dev):
    tensors, meta = C.load_safetensors(path)
    model = VAR(json.loads(meta["amskv_var_config"])).to(dev)
    C.load_into(model, tensors)
    return model, json.loads(meta.get("amskv_train", "{}")), meta.get("vqvae_id")


def save(model, out_dir, info, vqvae_id):
    meta = dict(model.meta(), amskv_train=json.dumps(info), vqvae_id=vqvae_id)
    return C.save_safetensors(os.path.join(out_dir, FILE), C.state_to_fp16(model.state_dict()), meta)


@torch.no_grad()
def teacher_forced_eval(model, ids, x_in, labels, dev, batch=500):
    """Held-out NLL (no smoothing) and top-1 token accuracy, overall and per scale."""
    model.eval()
    K = len(model.patch_nums)
    nll = torch.zeros(K, device=dev, dtype=torch.float64)
    acc = torch.zeros(K, device=dev, dtype=torch.float64)
    for i in range(0, ids.shape[0], batch):
        tgt = ids[i:i + batch].long()
        with C.autocast(dev):
            logits = model(labels[i:i + batch].long(), x_in[i:i + batch])
        ce = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")  # [B, L]
        hit = (logits.argmax(-1) == tgt).float()
        for k, (b, e) in enumerate(model.begin_ends):
            nll[k] += ce[:, b:e].mean(1).sum()
            acc[k] += hit[:, b:e].mean(1).sum()
    n = ids.shape[0]
    w = torch.tensor([e - b for b, e in model.begin_ends], device=dev, dtype=torch.float64)
    model.train()
    return {"test_nll": float((nll * w).sum() / w.sum() / n), "test_token_acc": float((acc * w).sum() / w.sum() / n),
            "test_nll_per_scale": [round(float(v) / n, 3) for v in nll]}


@torch.no_grad()
def sample_images(model, vqvae, labels, dev, cfg, top_k, top_p, seed, batch=500):
    model.eval()
    gen = torch.Generator(device=dev).manual_seed(seed)
    imgs = []
    for i in range(0, labels.shape[0], batch):
        with C.autocast(dev):
            f_hat, _, _ = model.generate(vqvae.quantize, labels[i:i + batch], cfg, top_k, top_p, gen)
        with C.exact_fp32():
            imgs.append(((vqvae.decode(f_hat.float()).clamp(-1, 1) + 1) / 2).float())
    model.train()
    return torch.cat(imgs)


@torch.no_grad()
def sample_eval(model, vqvae, classifier, test_feats, dev, settings, seed, per_class):
    """Per setting: class consistency (the classifier's accuracy on the samples w.r.t. their labels) and the
    Fréchet distance of classifier features to the test set (a small FID)."""
    labels = torch.arange(10, device=dev).repeat_interleave(per_class)
    rows = []
    for cfg, top_k, top_p in settings:
        t0 = time.time()
        imgs = sample_images(model, vqvae, labels, dev, cfg, top_k, top_p, seed)
        row = {"cfg": cfg, "top_k": top_k, "top_p": top_p, "images": int(labels.shape[0])}
        if classifier is not None:
            feats = classifier.features(imgs)
            row["class_acc"] = float((classifier.fc(feats).argmax(1) == labels).float().mean())
            row["fd"] = C.frechet_distance(feats, test_feats)
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        C.log(f"var samples cfg {cfg} top_k {top_k} top_p {top_p}: " +
              ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k in ("class_acc", "fd", "seconds")))
    return rows


def train(model, ids, x_in, labels, dev, seconds, seed, batch, lr, save_fn, ckpt_seconds, resumed):
    gen = C.generator(dev, seed)
    torch.manual_seed(seed)
    fused_ok = dev.type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
    opt_kw = {"fused": True} if fused_ok else {}
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=lr, betas=(0.9, 0.95), **opt_kw)
    sampler = C.BatchSampler(ids.shape[0], batch, dev, gen)
    budget = C.Budget(seconds)
    prog = C.Progress("var", budget)
    V, null = model.V, model.num_classes
    # A resumed slice starts with fresh AdamW moments: a slightly longer warmup lets them settle.
    warmup = 0.06 if resumed else 0.03
    step, last_ckpt = 0, time.time()
    model.train()
    while not budget.done():
        lr_now = C.lr_at(budget.fraction(), lr, warmup=warmup, final=0.02)
        for g in opt.param_groups:
            g["lr"] = lr_now
        idx = sampler.next()
        tgt = ids[idx].long()
        lab = labels[idx].long()
        drop = torch.rand(lab.shape[0], generator=gen, device=dev) < 0.1  # class dropout for guidance
        lab = torch.where(drop, torch.full_like(lab, null), lab)
        with C.autocast(dev):
            logits = model(lab, x_in[idx])
        loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1), label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        step += 1
        prog.add(tgt.shape[0], loss=loss, acc=(logits.detach().argmax(-1) == tgt).float().mean(), gnorm=gnorm)
        if prog.due():
            prog.emit(step, f"lr {lr_now:.2e} epoch {sampler.epoch}")
        if time.time() - last_ckpt >= ckpt_seconds:
            save_fn(step, sampler.epoch, budget.elapsed(), partial=True)
            last_ckpt = time.time()
    C.sync(dev)
    C.log(f"var: {step} steps, {sampler.epoch} epochs ({step * batch / ids.shape[0]:.2f} passes) "
          f"in {budget.elapsed():.1f} s")
    return step, step * batch / ids.shape[0], budget.elapsed()


def eval_settings():
    """(cfg, top_k, top_p) triples evaluated at the end; EVAL_SETTINGS="1.5:0:0,3:0:0.95" overrides."""
    text = os.environ.get("EVAL_SETTINGS", "1.5:0:0,3:0:0.95,5:0:0.95")
    out = []
    for item in text.split(","):
        cfg, k, p = item.split(":")
        out.append((float(cfg), int(k), float(p)))
    return out


def run(data, dev, out_dir, seconds, seed, vqvae, classifier=None, resume_dir=None, test_feats=None):
    batch = C.env_int("VAR_BATCH", 16 if C.smoke() else 256)
    lr = C.env_float("VAR_LR", 1.5e-3)
    vq_id = train_vqvae.vqvae_id(vqvae)
    t0 = time.time()
    ids, x_in = tokenize(vqvae, data["train_x"], dev)
    test_ids, test_in = tokenize(vqvae, data["test_x"], dev)
    C.log(f"var: tokenized {ids.shape[0]} + {test_ids.shape[0]} images in {time.time() - t0:.1f} s "
          f"(L = {ids.shape[1]}, inputs {tuple(x_in.shape)})")
    old = os.path.join(resume_dir, FILE) if resume_dir else None
    info = {"slices": 0, "steps": 0, "passes": 0.0, "train_seconds": 0.0, "seeds": []}
    resumed = bool(old and os.path.exists(old))
    if resumed:
        model, info, old_id = load(old, dev)
        if old_id != vq_id:
            sys.exit(f"error: {old} was trained on VQVAE {old_id}, but the VQVAE now is {vq_id}")
        info.pop("partial", None)
        lr *= C.env_float("RESUME_LR_SCALE", 0.5)
        C.log(f"var: resuming {old} ({info.get('steps')} steps, {info.get('passes')} passes so far)")
    else:
        q = vqvae.quantize
        model = VAR(var_config(q.vocab, q.cvae, C.smoke())).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    C.log(f"var: config {model.cfg}, {nparams} parameters, batch {batch}, peak lr {lr:g}, "
          f"budget {seconds:.0f} s, seed {seed}")
    prev = dict(info)

    def state_info(steps, passes, secs, partial=False):
        d = {"slices": prev["slices"] + 1, "steps": prev["steps"] + steps,
             "passes": round(prev["passes"] + passes, 3), "train_seconds": round(prev["train_seconds"] + secs, 1),
             "seeds": prev["seeds"] + [seed], "batch": batch, "peak_lr_last_slice": lr}
        if partial:
            d["partial"] = True
        return d

    def save_partial(steps, epochs, secs, partial):
        save(model, out_dir, state_info(steps, steps * batch / ids.shape[0], secs, partial), vq_id)
        # Held-out loss on a fixed part of the test set, to see overfitting while it happens.
        n = min(2000, test_ids.shape[0])
        ev = teacher_forced_eval(model, test_ids[:n], test_in[:n], data["test_y"][:n], dev)
        C.log(f"var: checkpoint at step {steps}; held-out NLL {ev['test_nll']:.4f} on {n} test images")

    steps, passes, secs = 0, 0.0, 0.0
    if seconds > 0:
        steps, passes, secs = train(model, ids, x_in, data["train_y"], dev, seconds, seed, batch, lr,
                                    save_partial, C.env_float("CKPT_SECONDS", 60), resumed)
    info = state_info(steps, passes, secs)
    # Evaluate exactly what ships: the fp16-rounded weights, saved first so that a failing evaluation
    # cannot cost the slice's training.
    C.round_to_fp16_(model)
    size = save(model, out_dir, info, vq_id)
    t0 = time.time()
    ev, rows = {}, []
    try:
        ev = teacher_forced_eval(model, test_ids, test_in, data["test_y"], dev)
        C.log(f"var: test NLL {ev['test_nll']:.4f} nats/token, token accuracy {ev['test_token_acc'] * 100:.2f}%, "
              f"per scale {ev['test_nll_per_scale']}")
        per_class = C.env_int("EVAL_PER_CLASS", 4 if C.smoke() else EVAL_SAMPLES_PER_CLASS)
        rows = sample_eval(model, vqvae, classifier, test_feats, dev, eval_settings(), seed + 7, per_class)
        info.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.items()})
        info["samples"] = rows
        size = save(model, out_dir, info, vq_id)
        best = min(rows, key=lambda r: r.get("fd", 0.0))
        grid = sample_images(model, vqvae, torch.arange(10, device=dev).repeat_interleave(10), dev,
                             best["cfg"], best["top_k"], best["top_p"], seed + 11)
        # One row per class (10 samples each), classes 0..9 from top to bottom.
        C.save_png(os.path.join(out_dir, "var_samples.png"), C.image_grid(grid.cpu(), cols=10))
        C.log(f"var: wrote {FILE} ({size} B) and var_samples.png (cfg {best['cfg']}, top_p {best['top_p']}); "
              f"eval took {time.time() - t0:.1f} s")
    except Exception:  # noqa: BLE001 - the weights are saved; report and go on to the summary
        C.log("var: evaluation failed (weights were saved before it):\n" + traceback.format_exc())
    return model, {"var_params": nparams, "var_bytes": size, "var_train_s": round(secs, 1),
                   "var_steps_slice": steps, "var_steps_total": info["steps"], "var_passes_total": info["passes"],
                   **{"var_" + k: v for k, v in ev.items()}, "var_samples": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vqvae", required=True, help="folder holding vqvae_fmnist_full.safetensors")
    ap.add_argument("--classifier", default=None, help="folder holding classifier_fmnist.safetensors")
    ap.add_argument("--resume", default=None)
    ap.add_argument("--seconds", type=float, default=20 if C.smoke() else 330)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    C.setup_torch(a.seed)
    dev = C.device()
    data = C.load_fmnist(dev)
    vqvae, _ = train_vqvae.load(os.path.join(a.vqvae, train_vqvae.FULL_FILE), dev)
    classifier, feats = None, None
    if a.classifier:
        import train_classifier
        classifier, _ = train_classifier.load(os.path.join(a.classifier, train_classifier.FILE), dev)
        _, feats = train_classifier.evaluate(classifier, data["test_x"], data["test_y"], dev)
    _, summary = run(data, dev, a.out, a.seconds, a.seed, vqvae, classifier, a.resume, feats)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
