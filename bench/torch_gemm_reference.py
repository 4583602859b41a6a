"""The matrix-product rate PyTorch (cuBLAS) reaches on this GPU for the VAR-d30 transformer's shapes at the
last scale of batch 128 (65,536 token rows), in bf16: the ceiling to compare the engine's matmul time with.
Run on the GPU machine: python3 bench/torch_gemm_reference.py"""
import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
rows, C = 65536, 1920
shapes = {"qkv": (C, 3 * C), "proj": (C, C), "fc1": (C, 4 * C), "fc2": (4 * C, C), "head": (C, 4096)}
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
