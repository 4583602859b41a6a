#!/usr/bin/env python3
"""Converts Debian's Fashion-MNIST (package `dataset-fashion-mnist`, IDX files, gzip-compressed) into one
compressed file, data/fmnist/fashion_mnist_u8.npz (git-ignored), with the 28x28 uint8 originals:
train_x [60000,28,28], train_y [60000], test_x [10000,28,28], test_y [10000]. Padding to 32x32 happens at
load time, so the file stays ~30 MB and travels to the GPU machine with the repository (carry data/fmnist).

    python3 tools/train/prepare_data.py [--src /usr/share/datasets/fashion-mnist] [--out data/fmnist]
"""
import argparse
import hashlib
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA_DIR, gz_or_plain_open  # noqa: E402

FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
         "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def read_idx(path: str) -> np.ndarray:
    """IDX: big-endian magic (0, 0, type 0x08 = uint8, ndim), ndim big-endian uint32 sizes, raw data."""
    with gz_or_plain_open(path) as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {body.size} bytes of data, expected {dims}")
    return body.reshape(dims)


def find(src: str, stem: str) -> str:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(src, name)
        if os.path.exists(p):
            return p
    sys.exit(f"error: {stem}(.gz) not in {src}; install it with `apt-get install -y dataset-fashion-mnist` "
             f"(`dpkg -L dataset-fashion-mnist` lists the files)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=DATA_DIR)
    a = ap.parse_args()
    arrays = {k: read_idx(find(a.src, stem)) for k, stem in FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[split + "_x"], arrays[split + "_y"]
        assert x.shape[1:] == (28, 28) and x.shape[0] == y.shape[0], (x.shape, y.shape)
        assert y.max() == 9, "Fashion-MNIST has 10 classes"
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "fashion_mnist_u8.npz")
    np.savez_compressed(path, **arrays)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]
    print(f"wrote {path}: {os.path.getsize(path) / 1e6:.1f} MB, train {arrays['train_x'].shape}, "
          f"test {arrays['test_x'].shape}, class counts {np.bincount(arrays['train_y']).tolist()}, sha256 {digest}…")


if __name__ == "__main__":
    main()
