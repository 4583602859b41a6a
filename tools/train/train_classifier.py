#!/usr/bin/env python3
"""Trains the Fashion-MNIST classifier (classifier.py) for a time budget and exports
classifier_fmnist.safetensors (fp32; metadata: test accuracy, preprocessing).

    python3 tools/train/train_classifier.py --out OUT_DIR [--seconds 30] [--seed 0]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from classifier import FmnistClassifier  # noqa: E402

FILE = "classifier_fmnist.safetensors"
PREPROCESS = ("Fashion-MNIST 28x28 zero-padded by 2 to 32x32, grey replicated to RGB, [0,1]; "
              "the network normalises (x-0.5)/0.5 itself")


@torch.no_grad()
def evaluate(model, x_u8, y, dev, batch=2000):
    model.eval()
    correct, feats = 0, []
    for i in range(0, x_u8.shape[0], batch):
        x = C.to_unit(x_u8[i:i + batch])
        f = model.features(x)
        correct += (model.fc(f).argmax(1) == y[i:i + batch]).sum().item()
        feats.append(f.float())
    return correct / x_u8.shape[0], torch.cat(feats)


def load(path, dev):
    tensors, meta = C.load_safetensors(path)
    model = FmnistClassifier().to(dev)
    C.load_into(model, tensors)
    model.eval()
    return model, meta


def train(data, dev, seconds, seed, batch=256, lr=3e-3):
    gen = C.generator(dev, seed)
    torch.manual_seed(seed)
    model = FmnistClassifier().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05, betas=(0.9, 0.99))
    n = data["train_x"].shape[0]
    sampler = C.BatchSampler(n, batch, dev, gen)
    budget = C.Budget(seconds)
    prog = C.Progress("classifier", budget)
    step = 0
    while not budget.done():
        lr_now = C.lr_at(budget.fraction(), lr, warmup=0.05, final=0.01)
        for g in opt.param_groups:
            g["lr"] = lr_now
        idx = sampler.next()
        x = C.to_unit(data["train_x"][idx])
        # Light augmentation: shifts of up to 2 pixels and horizontal flips.
        x = C.random_shift(x, 2, gen)
        flip = torch.rand(x.shape[0], generator=gen, device=dev) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        y = data["train_y"][idx].long()
        with C.autocast(dev):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        prog.add(x.shape[0], loss=loss, acc=(logits.argmax(1) == y).float().mean())
        if prog.due():
            prog.emit(step, f"lr {lr_now:.2e} epoch {sampler.epoch}")
    C.log(f"classifier: {step} steps, {sampler.epoch} epochs in {budget.elapsed():.1f} s")
    return model, step, sampler.epoch, budget.elapsed()


def run(data, dev, out_dir, seconds, seed, resume_dir=None):
    """Trains (or loads from resume_dir) and exports; returns (model, summary dict)."""
    path = os.path.join(out_dir, FILE)
    old = os.path.join(resume_dir, FILE) if resume_dir else None
    if old and os.path.exists(old):
        model, meta = load(old, dev)
        info = json.loads(meta.get("amskv_train", "{}"))
        C.log(f"classifier: loaded {old} (trained earlier: {info})")
        steps, epochs, secs = info.get("steps", 0), info.get("epochs", 0), 0.0
    elif seconds > 0:
        model, steps, epochs, secs = train(data, dev, seconds, seed)
        info = {}
    else:
        C.log("classifier: no budget and nothing to resume; skipped")
        return None, {"classifier": "skipped"}
    with C.exact_fp32():
        acc, _ = evaluate(model, data["test_x"], data["test_y"], dev)
    info.update({"steps": steps, "epochs": epochs, "seed": seed, "test_accuracy": round(acc, 4)})
    state = {k: v.float() for k, v in model.state_dict().items()}
    size = C.save_safetensors(path, state, {"amskv_train": json.dumps(info), "preprocess": PREPROCESS,
                                            "classes": json.dumps(C.CLASS_NAMES)})
    C.log(f"classifier: test accuracy {acc * 100:.2f}% ({data['test_x'].shape[0]} test images), "
          f"wrote {path} ({size} bytes)")
    params = sum(p.numel() for p in model.parameters())
    return model, {"classifier_test_acc": acc, "classifier_params": params, "classifier_bytes": size,
                   "classifier_train_s": round(secs, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=15 if C.smoke() else 30)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    C.setup_torch(a.seed)
    dev = C.device()
    _, summary = run(C.load_fmnist(dev), dev, a.out, a.seconds, a.seed)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
