"""Shared helpers of the Fashion-MNIST trainers: data, time budgets, progress lines, seeding, and the
file formats (safetensors, PNG) written without optional packages.

Everything here runs on torch 1.13 (Debian, CPU smoke test) and torch 2.x (the GPU machine).
"""
import contextlib
import gzip
import json
import math
import os
import random
import struct
import sys
import time
import zlib

import numpy as np
import torch

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Fixed, documented location (relative to the repository root) of the prepared dataset. It is git-ignored
# and must be carried to the GPU machine explicitly (run(carry=["data/fmnist"])).
DATA_DIR = os.path.join(REPO_ROOT, "data", "fmnist")
DATA_FILE = os.path.join(DATA_DIR, "fashion_mnist_u8.npz")

# The official 256px scale schedule; the latent side is its last entry (16), the image side 32.
PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
IMAGE_SIDE = 32
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def smoke() -> bool:
    """AMSKV_TRAIN_SMOKE=1 shrinks models, data and budgets so every stage runs on a small CPU."""
    return os.environ.get("AMSKV_TRAIN_SMOKE", "0") not in ("", "0")


def env_float(name: str, default: float) -> float:
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------------------
# Devices, precision, seeds

def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup_torch(seed: int) -> None:
    seed_everything(seed)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        # Training may use TF32; every evaluation that must match the fp32 engine runs under exact_fp32().
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.set_num_threads(max(1, min(16, os.cpu_count() or 1)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def autocast(dev: torch.device):
    """bf16 autocast on the GPU; plain fp32 on the CPU (torch 1.13's CPU autocast is not worth it)."""
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def exact_fp32():
    """Disables TF32 so tokenization and evaluation compute what the fp32 engine computes."""
    if not torch.cuda.is_available():
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def round_to_fp16_(module: torch.nn.Module) -> None:
    """Rounds every float parameter/buffer to fp16 values (kept in fp32), so that the model we evaluate,
    tokenize with and resume from is exactly the one shipped in fp16."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------------------------------------
# Time budgets, learning-rate schedule, progress lines

class Budget:
    """A wall-clock budget for one training loop; the loop stops when it is spent."""

    def __init__(self, seconds: float):
        self.seconds = max(0.0, float(seconds))
        self.start = time.time()

    def elapsed(self) -> float:
        return time.time() - self.start

    def fraction(self) -> float:
        return 1.0 if self.seconds <= 0 else min(1.0, self.elapsed() / self.seconds)

    def done(self) -> bool:
        return self.elapsed() >= self.seconds


def lr_at(fraction: float, peak: float, warmup: float = 0.03, final: float = 0.02) -> float:
    """Linear warmup over the first `warmup` of the budget, then cosine decay to final·peak.
    The schedule follows wall-clock time, so every slice ends annealed whatever its speed was."""
    if fraction < warmup:
        return peak * max(fraction / warmup, 0.01)
    t = min(1.0, (fraction - warmup) / max(1e-9, 1.0 - warmup))
    return peak * (final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t)))


class Progress:
    """Prints one line every `every` seconds: the caller's metrics, throughput and ETA of the budget."""

    def __init__(self, name: str, budget: Budget, every: float = 10.0):
        self.name, self.budget, self.every = name, budget, every
        self.last = time.time()
        self.items_since = 0
        self.sums = {}
        self.count = 0

    def add(self, items: int, **metrics) -> None:
        """Metrics may be GPU tensors: they are summed on the device and read once per line, so logging
        never forces a synchronisation per step."""
        self.items_since += items
        self.count += 1
        for k, v in metrics.items():
            v = v.detach().float() if torch.is_tensor(v) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + v

    def due(self) -> bool:
        return time.time() - self.last >= self.every

    def emit(self, step: int, extra: str = "") -> dict:
        now = time.time()
        dt = max(1e-9, now - self.last)
        means = {k: float(v) / max(1, self.count) for k, v in self.sums.items()}
        rate = self.items_since / dt
        eta = max(0.0, self.budget.seconds - self.budget.elapsed())
        text = " ".join(f"{k} {v:.4f}" for k, v in means.items())
        log(f"{self.name} step {step:6d} {text} | {rate:8.1f} img/s | "
            f"{self.budget.elapsed():6.1f}/{self.budget.seconds:.0f} s, ETA {eta:5.1f} s {extra}")
        self.last, self.items_since, self.sums, self.count = now, 0, {}, 0
        return means


# ----------------------------------------------------------------------------------------------------------
# Data

def load_fmnist(dev: torch.device, path: str = DATA_FILE):
    """Returns uint8 tensors on `dev`: train_x [N,28,28], train_y [N], test_x, test_y.
    Smoke mode keeps 512 training and 256 test images."""
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found; run tools/train/prepare_data.py first "
                 f"(and carry data/fmnist to the GPU machine)")
    with np.load(path) as z:
        arrays = {k: z[k] for k in ("train_x", "train_y", "test_x", "test_y")}
    if smoke():
        arrays = {k: v[:512] if k.startswith("train") else v[:256] for k, v in arrays.items()}
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in arrays.items()}


def to_unit(x_u8: torch.Tensor) -> torch.Tensor:
    """[N,28,28] uint8 -> [N,3,32,32] float in [0,1]: zero-padded by 2 pixels (the background is black),
    the grey channel replicated to RGB. This is the classifier's input and, times 2 minus 1, the VQVAE's."""
    x = x_u8.float().div_(255.0)
    x = torch.nn.functional.pad(x, (2, 2, 2, 2))
    return x.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def to_signed(x_u8: torch.Tensor) -> torch.Tensor:
    return to_unit(x_u8).mul_(2.0).sub_(1.0)


def generator(dev: torch.device, seed: int) -> torch.Generator:
    """A generator on the device itself: drawing random numbers never copies from the host, so the CPU
    can queue GPU work ahead instead of waiting for each step."""
    return torch.Generator(device=dev).manual_seed(seed)


class BatchSampler:
    """Random batches without replacement, reshuffled every epoch; indices live on the data's device."""

    def __init__(self, n: int, batch: int, dev: torch.device, generator: torch.Generator):
        self.n, self.batch, self.dev, self.gen = n, min(batch, n), dev, generator
        self.perm, self.pos, self.epoch = None, n, 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > self.n:
            self.perm = torch.randperm(self.n, generator=self.gen, device=self.dev)
            self.pos = 0
            self.epoch += 1
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shifts every image of [B,C,H,W] by its own random offset in [-max_shift, max_shift] (zero fill)."""
    B, C, H, W = x.shape
    s = max_shift
    xp = torch.nn.functional.pad(x, (s, s, s, s))
    oy = torch.randint(0, 2 * s + 1, (B,), generator=generator, device=x.device)
    ox = torch.randint(0, 2 * s + 1, (B,), generator=generator, device=x.device)
    rows = (oy[:, None] + torch.arange(H, device=x.device)[None, :])  # [B,H]
    cols = (ox[:, None] + torch.arange(W, device=x.device)[None, :])  # [B,W]
    b = torch.arange(B, device=x.device)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # [B,H,W,C]
    return out.permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------------------------------------
# safetensors (own reader/writer: the Debian torch has no `safetensors` package)

_ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.float64: "F64"}
_ST_TYPES = {v: k for k, v in _ST_NAMES.items()}


def save_safetensors(path: str, tensors: dict, metadata: dict = None) -> int:
    """Writes `tensors` (name -> tensor) atomically; returns the file size. Larger element types come first
    so that every tensor's data stays naturally aligned."""
    items = sorted(tensors.items(), key=lambda kv: -kv[1].element_size())
    header, blobs, offset = {}, [], 0
    for name, t in items:
        t = t.detach().cpu().contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return os.path.getsize(path)


def load_safetensors(path: str):
    """Returns (tensors, metadata); tensors are CPU copies in their stored dtype."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        dt = _ST_TYPES[info["dtype"]]
        b, e = info["data_offsets"]
        np_dt = np.int16 if dt == torch.bfloat16 else torch.empty(0, dtype=dt).numpy().dtype
        arr = np.frombuffer(data, dtype=np_dt, count=(e - b) // np.dtype(np_dt).itemsize, offset=base + b)
        t = torch.from_numpy(arr.copy()).reshape(info["shape"])
        out[name] = t.view(torch.bfloat16) if dt == torch.bfloat16 else t
    return out, meta


def state_to_fp16(state: dict) -> dict:
    """Float tensors to fp16 storage; integer buffers (lvl_1L) keep their type."""
    return {k: (v.detach().half() if v.is_floating_point() else v.detach()) for k, v in state.items()}


def load_into(module: torch.nn.Module, tensors: dict, strict: bool = True) -> None:
    own = module.state_dict()
    conv = {k: v.to(own[k].dtype) for k, v in tensors.items() if k in own}
    missing = [k for k in own if k not in conv]
    unexpected = [k for k in tensors if k not in own]
    if strict and (missing or unexpected):
        raise KeyError(f"state mismatch: missing {missing[:5]} unexpected {unexpected[:5]}")
    module.load_state_dict(conv, strict=False)


# ----------------------------------------------------------------------------------------------------------
# PNG (own writer: torchvision/PIL are not guaranteed on both machines)

def save_png(path: str, img: torch.Tensor) -> None:
    """img: [3,H,W] or [H,W] float in [0,1]."""
    a = (img.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    if a.ndim == 3:
        a = np.ascontiguousarray(a.transpose(1, 2, 0))
        color = 2  # RGB
    else:
        color = 0  # grey
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def image_grid(images: torch.Tensor, cols: int, pad: int = 2, value: float = 0.5) -> torch.Tensor:
    """[N,3,H,W] in [0,1] -> one [3, rows·(H+pad)+pad, cols·(W+pad)+pad] grid."""
    n, c, h, w = images.shape
    rows = (n + cols - 1) // cols
    g = torch.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), value)
    for i in range(n):
        r, q = divmod(i, cols)
        g[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[i].cpu()
    return g


# ----------------------------------------------------------------------------------------------------------
# Small statistics

def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N,D] and b [M,D] (float64, no scipy)."""
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca = torch.cov(a.T) if hasattr(torch, "cov") else np.cov(a.numpy().T)
    cb = torch.cov(b.T) if hasattr(torch, "cov") else np.cov(b.numpy().T)
    ca, cb = torch.as_tensor(ca), torch.as_tensor(cb)
    ea, va = torch.linalg.eigh(ca)
    sa = va @ torch.diag(ea.clamp_min(0).sqrt()) @ va.T
    m = sa @ cb @ sa
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + ca.trace() + cb.trace() - 2 * tr_sqrt)


def gz_or_plain_open(path: str):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
