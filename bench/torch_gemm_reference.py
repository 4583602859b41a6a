"""The matrix-product rate PyTorch (cuBLAS) reaches on this GPU for a VAR transformer's shapes at its last
scale, in bf16: the ceiling to compare the engine's matmul time with. The defaults are VAR-d30 at batch 128
(65,536 token rows: 128 images, two CFG rows each, 256 tokens); `--width 2304` is VAR-d36 at batch 32
(64 rows of 1,024 tokens, also 65,536). Each product is timed by itself, ten times back to back.
Run on the GPU machine: python3 bench/torch_gemm_reference.py [--width C] [--rows N]"""
import argparse

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--width", type=int, default=1920)
parser.add_argument("--rows", type=int, default=65536)
args = parser.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
rows, C = args.rows, args.width
shapes = {"qkv": (C, 3 * C), "proj": (C, C), "fc1": (C, 4 * C), "fc2": (4 * C, C), "head": (C, 4096)}
flops, ms_total = 0.0, 0.0
for name, (k, n) in shapes.items():
    x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
    b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        F.linear(x, w, b)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    reps = 10
    for _ in range(reps):
        F.linear(x, w, b)
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end) / reps
    print(f"torch {name}: [{rows}x{k}] x [{k}x{n}] {ms:.3f} ms, {2 * rows * k * n / ms / 1e9:.0f} TFLOP/s")
    if name != "head":  # a block's four products, weighted as a layer runs them
        flops, ms_total = flops + 2 * rows * k * n, ms_total + ms
print(f"torch block (qkv, proj, fc1, fc2) at width {C}: {flops / ms_total / 1e9:.0f} TFLOP/s")
