#!/usr/bin/env python3
"""One training slice, in one process (torch is imported and the data loaded once):
classifier -> VQVAE -> VAR, each for its wall-clock budget, each exported when it ends, then a summary.

    python3 tools/train/pipeline.py --out OUT_DIR [--resume PREVIOUS_OUT_DIR]

Budgets (seconds of training loop; environment variables, defaults fresh / resumed):
  CLASSIFIER_SECONDS 25 / 0   (a resumed classifier is loaded, not retrained)
  VQVAE_SECONDS     110 / 0   (a resumed VQVAE is frozen when a VAR was trained on it)
  VAR_SECONDS       330 / 450
  TOTAL_SECONDS     525 / 525 hard cap for the whole slice: the VAR budget shrinks to fit it
SEED (default 0): slice n of a resumed run uses SEED + 1000·n.
Other knobs: VQVAE_LR, VQVAE_BATCH, VAR_LR, VAR_BATCH, RESUME_LR_SCALE, CKPT_SECONDS, EVAL_SETTINGS,
EVAL_PER_CLASS; AMSKV_TRAIN_SMOKE=1 for the tiny CPU configuration.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import train_classifier  # noqa: E402
import train_var  # noqa: E402
import train_vqvae  # noqa: E402

# Seconds kept free after the VAR loop for its evaluation, export and the summary.
VAR_TAIL_RESERVE = 35


def previous_slices(resume_dir):
    n = 0
    for name in (train_var.FILE, train_vqvae.FULL_FILE):
        path = os.path.join(resume_dir, name) if resume_dir else ""
        if os.path.exists(path):
            _, meta = C.load_safetensors(path)
            n = max(n, json.loads(meta.get("amskv_train", "{}")).get("slices", 0))
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume", default=None)
    a = ap.parse_args()
    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    resume = a.resume if a.resume and os.path.isdir(a.resume) else None
    if a.resume and not resume:
        sys.exit(f"error: resume folder {a.resume} does not exist")
    smoke = C.smoke()
    defaults = {"CLASSIFIER_SECONDS": (25, 0), "VQVAE_SECONDS": (110, 0), "VAR_SECONDS": (330, 450),
                "TOTAL_SECONDS": (525, 525)}
    if smoke:
        defaults = {"CLASSIFIER_SECONDS": (8, 0), "VQVAE_SECONDS": (20, 0), "VAR_SECONDS": (20, 20),
                    "TOTAL_SECONDS": (150, 150)}
    b = {k: C.env_float(k, v[1 if resume else 0]) for k, v in defaults.items()}
    slice_no = previous_slices(resume)
    seed = C.env_int("SEED", 0) + 1000 * slice_no
    C.setup_torch(seed)
    dev = C.device()
    gpu = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    C.log(f"slice {slice_no} ({'resume from ' + resume if resume else 'fresh'}), seed {seed}, device {gpu}, "
          f"torch {torch.__version__}, budgets {b}, smoke {smoke}")
    data = C.load_fmnist(dev)
    C.log(f"data: train {tuple(data['train_x'].shape)}, test {tuple(data['test_x'].shape)} "
          f"({time.time() - t_start:.1f} s since start)")
    summary = {"slice": slice_no, "seed": seed, "device": gpu, "torch": torch.__version__, "budgets": b,
               "resumed_from": resume}
    stage_s = {}

    t = time.time()
    classifier, s = train_classifier.run(data, dev, a.out, b["CLASSIFIER_SECONDS"], seed, resume)
    summary.update(s)
    stage_s["classifier"] = time.time() - t
    test_feats = None
    if classifier is not None:
        _, test_feats = train_classifier.evaluate(classifier, data["test_x"], data["test_y"], dev)

    t = time.time()
    var_exists = bool(resume and os.path.exists(os.path.join(resume, train_var.FILE)))
    vqvae, s = train_vqvae.run(data, dev, a.out, b["VQVAE_SECONDS"], seed, resume, var_exists)
    summary.update(s)
    stage_s["vqvae"] = time.time() - t
    if classifier is not None:
        summary.update(reference_fds(classifier, vqvae, data, test_feats, dev))

    t = time.time()
    left = b["TOTAL_SECONDS"] - (time.time() - t_start) - VAR_TAIL_RESERVE
    var_s = max(0.0, min(b["VAR_SECONDS"], left))
    if var_s < b["VAR_SECONDS"]:
        C.log(f"var: budget cut from {b['VAR_SECONDS']:.0f} s to {var_s:.0f} s to stay within "
              f"TOTAL_SECONDS={b['TOTAL_SECONDS']:.0f}")
    _, s = train_var.run(data, dev, a.out, var_s, seed, vqvae, classifier, resume, test_feats)
    summary.update(s)
    stage_s["var"] = time.time() - t
    summary["stage_seconds"] = {k: round(v, 1) for k, v in stage_s.items()}
    summary["total_seconds"] = round(time.time() - t_start, 1)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print_table(summary, a.out)


@torch.no_grad()
def reference_fds(classifier, vqvae, data, test_feats, dev, n=None):
    """Fréchet distances at the sample-evaluation size, for scale: real training images vs the test set
    (the floor for a perfect generator) and their VQVAE reconstructions vs the test set (the tokenizer's floor)."""
    n = n or 10 * C.env_int("EVAL_PER_CLASS", 4 if C.smoke() else train_var.EVAL_SAMPLES_PER_CLASS)
    g = torch.Generator().manual_seed(123)
    pick = torch.randperm(data["train_x"].shape[0], generator=g)[:n].to(dev)
    x = C.to_signed(data["train_x"][pick])
    with C.exact_fp32():
        real = classifier.features((x + 1) / 2)
        rec = classifier.features((vqvae.reconstruct(x)[0] + 1) / 2)
    out = {"fd_real_train_vs_test": C.frechet_distance(real, test_feats),
           "fd_vqvae_recon_vs_test": C.frechet_distance(rec, test_feats), "fd_n": int(pick.shape[0])}
    C.log(f"reference FDs at n={out['fd_n']}: real train images {out['fd_real_train_vs_test']:.3f}, "
          f"VQVAE reconstructions {out['fd_vqvae_recon_vs_test']:.3f}")
    return out


def print_table(s, out_dir):
    def g(k, fmt="{}"):
        v = s.get(k)
        return "-" if v is None else fmt.format(v)

    lines = ["", "| stage | wall s | result |", "|---|---|---|",
             f"| classifier | {s['stage_seconds'].get('classifier', 0):.0f} | "
             f"test acc {g('classifier_test_acc', '{:.4f}')}, {g('classifier_params')} params, "
             f"{g('classifier_bytes')} B |",
             f"| VQVAE | {s['stage_seconds'].get('vqvae', 0):.0f} | PSNR {g('vqvae_test_psnr', '{:.2f}')} dB "
             f"(28x28 area {g('vqvae_test_psnr_28', '{:.2f}')}), codes {g('vqvae_codes_used')}/{g('vqvae_vocab')}, "
             f"perplexity {g('vqvae_perplexity', '{:.0f}')}, {g('vqvae_shipped_params')} shipped params, "
             f"{g('vqvae_bytes')} B |",
             f"| VAR | {s['stage_seconds'].get('var', 0):.0f} | test NLL {g('var_test_nll', '{:.4f}')}, "
             f"token acc {g('var_test_token_acc', '{:.4f}')}, {g('var_steps_total')} steps "
             f"({g('var_passes_total')} passes), {g('var_params')} params, {g('var_bytes')} B |"]
    for r in s.get("var_samples", []):
        lines.append(f"| samples cfg {r['cfg']} top-k {r['top_k']} top-p {r['top_p']} | {r['seconds']} | "
                     f"class acc {r.get('class_acc', float('nan')):.4f}, FD {r.get('fd', float('nan')):.3f} "
                     f"(real {g('fd_real_train_vs_test', '{:.3f}')}, VQVAE recon "
                     f"{g('fd_vqvae_recon_vs_test', '{:.3f}')}) |")
    lines.append(f"| total | {s['total_seconds']:.0f} | outputs in {out_dir} |")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
