"""The official VQVAE architecture of VAR (spec B.2, D), sized down: the same modules and key names
(encoder.*, decoder.*, quant_conv, post_quant_conv, quantize.*), any ch / ch_mult / num_res_blocks.

With ch_mult = (1, 2) there is one 2x down/upsample: a 32x32 image <-> a 16x16 latent, which is the last
scale of the official 256px schedule.
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import PATCH_NUMS
from quantizer import MultiScaleQuantizer


def vqvae_config(smoke: bool = False) -> dict:
    if smoke:
        return dict(ch=32, ch_mult=[1, 2], num_res_blocks=1, cvae=8, vocab=64, patch_nums=list(PATCH_NUMS))
    return dict(ch=64, ch_mult=[1, 2], num_res_blocks=1, cvae=16, vocab=512, patch_nums=list(PATCH_NUMS))


def Normalize(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = Normalize(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = Normalize(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all channels, fused qkv 1x1 conv, scale 1/sqrt(C)."""

    def __init__(self, c: int):
        super().__init__()
        self.C = c
        self.norm = Normalize(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        B, _, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.C, H * W).unbind(1)
        w = torch.bmm(q.transpose(1, 2), k).mul(self.C ** -0.5).softmax(dim=2)  # [B, HW(q), HW(k)]
        h = torch.bmm(v, w.transpose(1, 2)).view(B, self.C, H, W)
        return x + self.proj_out(h)


class Upsample2x(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Downsample2x(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, z_channels, in_channels=3):
        super().__init__()
        n = len(ch_mult)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        in_mult = (1,) + tuple(ch_mult)
        self.down = nn.ModuleList()
        block_in = ch
        for i in range(n):
            level = nn.Module()
            level.block, level.attn = nn.ModuleList(), nn.ModuleList()
            block_in, block_out = ch * in_mult[i], ch * ch_mult[i]
            for _ in range(num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if i == n - 1:  # attention only at the lowest resolution
                    level.attn.append(AttnBlock(block_in))
            if i != n - 1:
                level.downsample = Downsample2x(block_in)
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in)
        self.norm_out = Normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if i != len(self.down) - 1:
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """num_res_blocks + 1 ResnetBlocks per level (like the official decoder); levels run from the lowest
    resolution (index n−1) up to 0, key `up.{i}` holding level i."""

    def __init__(self, ch, ch_mult, num_res_blocks, z_channels, out_channels=3):
        super().__init__()
        n = len(ch_mult)
        block_in = ch * ch_mult[n - 1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in)
        ups = []
        for i in reversed(range(n)):
            level = nn.Module()
            level.block, level.attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * ch_mult[i]
            for _ in range(num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if i == n - 1:
                    level.attn.append(AttnBlock(block_in))
            if i != 0:
                level.upsample = Upsample2x(block_in)
            ups.insert(0, level)
        self.up = nn.ModuleList(ups)
        self.norm_out = Normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, 1, 1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if i != 0:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VQVAE(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        ch, mult, nrb, cvae = cfg["ch"], cfg["ch_mult"], cfg["num_res_blocks"], cfg["cvae"]
        self.encoder = Encoder(ch, mult, nrb, cvae)
        self.decoder = Decoder(ch, mult, nrb, cvae)
        self.quantize = MultiScaleQuantizer(cfg["vocab"], cvae, cfg["patch_nums"])
        self.quant_conv = nn.Conv2d(cvae, cvae, 3, 1, 1)
        self.post_quant_conv = nn.Conv2d(cvae, cvae, 3, 1, 1)

    def encode(self, x):
        return self.quant_conv(self.encoder(x))

    def decode(self, f_hat):
        """f_hat -> image in [-1, 1] (unclamped)."""
        return self.decoder(self.post_quant_conv(f_hat))

    def forward(self, x, collect_rest=False):
        f_hat, vq_loss, idx, rests = self.quantize(self.encode(x), collect_rest=collect_rest)
        return self.decode(f_hat), vq_loss, idx, rests

    @torch.no_grad()
    def tokenize(self, x):
        """Image in [-1,1] -> per-scale token ids [B, pn²] (the reference's img_to_idxBl)."""
        idx, _ = self.quantize.f_to_idx(self.encode(x))
        return idx

    @torch.no_grad()
    def reconstruct(self, x):
        idx, f_hat = self.quantize.f_to_idx(self.encode(x))
        return self.decode(f_hat).clamp(-1, 1), idx

    def meta(self) -> dict:
        return {"amskv_vqvae_config": json.dumps(self.cfg)}


DECODER_PREFIXES = ("decoder.", "post_quant_conv.", "quantize.")


def decoder_side(state: dict) -> dict:
    """What the engine needs to generate: decoder, post_quant_conv and the quantizer (codebook + φ)."""
    return {k: v for k, v in state.items() if k.startswith(DECODER_PREFIXES)}
