"""VAR's multi-scale residual vector quantizer (VectorQuantizer2, spec C.7 and D), written from the spec.

State-dict keys follow the official layout under the VQVAE's `quantize.` prefix:
  embedding.weight [V, Cvae], quant_resi.qresi_ls.{0..3}.{weight,bias} (the partially shared φ convs).
The usage buffer `ema_vocab_hit_SV` of the official module is not kept (the engine ignores it).
"""
import contextlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

QUANT_RESI = 0.5  # φ(u) = (1 − 0.5)·u + 0.5·conv(u)


class Phi(nn.Conv2d):
    """The residual 3x3 convolution applied to every upsampled scale before it is added to f_hat."""

    def __init__(self, cvae: int):
        super().__init__(cvae, cvae, kernel_size=3, stride=1, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mul(1.0 - QUANT_RESI) + super().forward(h).mul(QUANT_RESI)


def phi_index(k: int, num_scales: int, num_phi: int = 4) -> int:
    """φ used at scale k: the tick nearest to k/(K−1), computed in double precision like NumPy does in the
    reference (ties at K = 10, k = 2 and 7, are decided by that rounding; spec C.7)."""
    ticks = np.linspace(1 / 3 / num_phi, 1 - 1 / 3 / num_phi, num_phi)
    ratio = k / (num_scales - 1) if num_scales > 1 else 0.0
    return int(np.argmin(np.abs(ticks - ratio)))


class PhiPartiallyShared(nn.Module):
    def __init__(self, cvae: int, count: int = 4):
        super().__init__()
        self.qresi_ls = nn.ModuleList([Phi(cvae) for _ in range(count)])


class MultiScaleQuantizer(nn.Module):
    def __init__(self, vocab: int, cvae: int, patch_nums=(1, 2, 3, 4, 5, 6, 8, 10, 13, 16), beta: float = 0.25):
        super().__init__()
        self.vocab, self.cvae, self.patch_nums, self.beta = vocab, cvae, tuple(patch_nums), beta
        self.embedding = nn.Embedding(vocab, cvae)
        self.quant_resi = PhiPartiallyShared(cvae, 4)
        K = len(self.patch_nums)
        self.phi_of_scale = [phi_index(k, K, 4) for k in range(K)]
        # Usage since the last dead-code restart (not saved).
        self.register_buffer("hits", torch.zeros(vocab), persistent=False)

    def phi(self, k: int, h: torch.Tensor) -> torch.Tensor:
        return self.quant_resi.qresi_ls[self.phi_of_scale[k]](h)

    def nearest(self, z_nc: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code by squared L2 distance (no normalisation), as the reference computes it."""
        w = self.embedding.weight.detach()
        d = z_nc.square().sum(1, keepdim=True) + w.square().sum(1)[None, :]
        d.addmm_(z_nc, w.t(), alpha=-2, beta=1)
        return d.argmin(1)

    def _upsampled(self, k: int, idx_b_hw: torch.Tensor, side: int) -> torch.Tensor:
        h = self.embedding(idx_b_hw).permute(0, 3, 1, 2)
        if k != len(self.patch_nums) - 1:
            h = F.interpolate(h, size=(side, side), mode="bicubic", align_corners=False)
        return self.phi(k, h.contiguous())

    def forward(self, f: torch.Tensor, collect_rest: bool = False):
        """Training forward. f [B,Cvae,HW,HW] (encoder output after quant_conv).
        Returns (f_hat with a straight-through gradient to f, vq_loss, per-scale index list, rest samples).
        vq_loss = mean over scales of [β·‖sg(f_hat_k) − f‖² + ‖f_hat_k − sg(f)‖²] like VectorQuantizer2."""
        f = f.float()
        B, C, H, W = f.shape
        K = len(self.patch_nums)
        f_ng = f.detach()
        f_rest = f_ng.clone()
        f_hat = torch.zeros_like(f_ng)
        loss = f.new_zeros(())
        idx_list, rests = [], []
        with torch.autocast("cuda", enabled=False) if f.is_cuda else contextlib.nullcontext():
            for k, pn in enumerate(self.patch_nums):
                z = F.interpolate(f_rest, size=(pn, pn), mode="area") if k != K - 1 else f_rest
                z_nc = z.permute(0, 2, 3, 1).reshape(-1, C)
                idx = self.nearest(z_nc)
                if self.training:  # index_add_, not bincount: bincount synchronises with the GPU
                    self.hits.index_add_(0, idx, torch.ones_like(idx, dtype=self.hits.dtype))
                if collect_rest:
                    rests.append(z_nc)
                h = self._upsampled(k, idx.view(B, pn, pn), H)
                f_hat = f_hat + h
                f_rest = f_rest - h.detach()
                loss = loss + F.mse_loss(f_hat.detach(), f).mul(self.beta) + F.mse_loss(f_hat, f_ng)
                idx_list.append(idx.view(B, pn * pn))
            loss = loss / K
            f_hat_st = (f_hat.detach() - f_ng) + f  # value of f_hat, gradient of f (straight-through)
        return f_hat_st, loss, idx_list, rests

    @torch.no_grad()
    def f_to_idx(self, f: torch.Tensor):
        """Tokenization (img_to_idxBl after the encoder): list of [B, pn_k²] int64 and the final f_hat."""
        f = f.float()
        B, C, H, W = f.shape
        K = len(self.patch_nums)
        f_rest = f.clone()
        f_hat = torch.zeros_like(f)
        out = []
        for k, pn in enumerate(self.patch_nums):
            z = F.interpolate(f_rest, size=(pn, pn), mode="area") if k != K - 1 else f_rest
            idx = self.nearest(z.permute(0, 2, 3, 1).reshape(-1, C))
            h = self._upsampled(k, idx.view(B, pn, pn), H)
            f_hat += h
            f_rest -= h
            out.append(idx.view(B, pn * pn))
        return out, f_hat

    @torch.no_grad()
    def idx_to_fhat(self, idx_list) -> torch.Tensor:
        """Accumulated f_hat of all scales: what the engine decodes (spec C.7/C.8)."""
        B = idx_list[0].shape[0]
        side = self.patch_nums[-1]
        f_hat = self.embedding.weight.new_zeros(B, self.cvae, side, side)
        for k, pn in enumerate(self.patch_nums):
            f_hat += self._upsampled(k, idx_list[k].view(B, pn, pn), side)
        return f_hat

    @torch.no_grad()
    def idx_to_var_input(self, idx_list) -> torch.Tensor:
        """Teacher-forcing input of the transformer (idxBl_to_var_input): for k = 0..K−2,
        f_hat += φ(bicubic(e[idx_k])) and the next scale's map is AreaDown(f_hat → pn_{k+1});
        concatenated row-major to [B, L − 1, Cvae] (fp32)."""
        B = idx_list[0].shape[0]
        side = self.patch_nums[-1]
        f_hat = self.embedding.weight.new_zeros(B, self.cvae, side, side)
        maps = []
        for k in range(len(self.patch_nums) - 1):
            pn = self.patch_nums[k]
            f_hat += self._upsampled(k, idx_list[k].view(B, pn, pn), side)
            nxt = self.patch_nums[k + 1]
            maps.append(F.interpolate(f_hat, size=(nxt, nxt), mode="area").flatten(2).transpose(1, 2))
        return torch.cat(maps, dim=1)

    @torch.no_grad()
    def restart_dead_codes(self, rests, min_hits: float = 0.5) -> int:
        """Codes unused since the last call are moved onto randomly chosen encoder residuals (equally drawn
        from every scale), so the whole vocabulary stays in use. Returns how many codes were restarted."""
        dead = (self.hits < min_hits).nonzero().flatten()
        self.hits.zero_()
        if dead.numel() == 0 or not rests:
            return 0
        per = (dead.numel() + len(rests) - 1) // len(rests)
        pool = torch.cat([r[torch.randint(0, r.shape[0], (per,), device=r.device)] for r in rests])
        pool = pool[torch.randperm(pool.shape[0], device=pool.device)[:dead.numel()]]
        self.embedding.weight.data[dead] = pool.to(self.embedding.weight.dtype)
        return int(dead.numel())

