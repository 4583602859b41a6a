"""The official VAR transformer (spec A, B.1, C.1–C.5), sized down, with the official key names:
class_emb, pos_start, pos_1LC, lvl_embed, lvl_1L, attn_bias_for_masking, word_embed, blocks.{i}.
(ada_lin.1, attn.{mat_qkv, q_bias, v_bias, zero_k_bias, scale_mul_1H11, proj}, ffn.{fc1, fc2}),
head_nm.ada_lin.1, head.

Training uses the whole sequence at once with the block-causal mask (a token of scale m sees keys of scales
<= m); sampling recomputes the prefix each scale with the same mask, which equals the engine's KV-cached
loop, so no cache code is needed here.
"""
import contextlib
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import PATCH_NUMS

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def var_config(vocab: int, cvae: int, smoke: bool = False) -> dict:
    if smoke:
        return dict(depth=2, width=64, heads=1, mlp_ratio=4.0, vocab=vocab, cvae=cvae, num_classes=10,
                    patch_nums=list(PATCH_NUMS))
    return dict(depth=6, width=256, heads=4, mlp_ratio=4.0, vocab=vocab, cvae=cvae, num_classes=10,
                patch_nums=list(PATCH_NUMS))


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)  # affine-free, as every LN of VAR


class SelfAttention(nn.Module):
    def __init__(self, C: int, heads: int):
        super().__init__()
        self.C, self.H, self.dh = C, heads, C // heads
        # Per-head log temperature of the l2-normalised ("cosine") attention, clamped at ln 100.
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.max_scale_mul = math.log(100.0)
        self.mat_qkv = nn.Linear(C, 3 * C, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(C))
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.register_buffer("zero_k_bias", torch.zeros(C))
        self.proj = nn.Linear(C, C)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = F.linear(x, self.mat_qkv.weight, bias).view(B, L, 3, self.H, self.dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, L, dh]
        tau = self.scale_mul_1H11.clamp(max=self.max_scale_mul).exp()
        q = F.normalize(q, dim=-1).mul(tau)
        k = F.normalize(k, dim=-1)
        if HAS_SDPA and x.is_cuda:
            dt = v.dtype
            o = F.scaled_dot_product_attention(q.to(dt), k.to(dt), v, attn_mask=mask.to(dt), scale=1.0)
        else:  # torch 1.13 (CPU smoke test): the same math, softmax scale 1
            a = (q @ k.transpose(-2, -1)).float() + mask
            o = a.softmax(-1).to(v.dtype) @ v
        return self.proj(o.transpose(1, 2).reshape(B, L, C))


class FFN(nn.Module):
    def __init__(self, C: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(C, hidden)
        self.fc2 = nn.Linear(hidden, C)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class AdaLNSelfAttn(nn.Module):
    def __init__(self, C: int, heads: int, hidden: int):
        super().__init__()
        self.C = C
        self.attn = SelfAttention(C, heads)
        self.ffn = FFN(C, hidden)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))

    def forward(self, x, cond, mask):
        # Modulation chunk order [γ1, γ2, s1, s2, β1, β2] (spec C.3).
        g1, g2, s1, s2, b1, b2 = self.ada_lin(cond).view(-1, 1, 6, self.C).unbind(2)
        x = x + self.attn(layer_norm(x).mul(s1 + 1).add(b1), mask).mul(g1)
        x = x + self.ffn(layer_norm(x).mul(s2 + 1).add(b2)).mul(g2)
        return x


class AdaLNBeforeHead(nn.Module):
    def __init__(self, C: int):
        super().__init__()
        self.C = C
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 2 * C))

    def forward(self, x, cond):
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, self.C).unbind(2)
        return layer_norm(x).mul(scale + 1).add(shift)


class VAR(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        C, D, V, Cv = cfg["width"], cfg["depth"], cfg["vocab"], cfg["cvae"]
        self.C, self.V, self.num_classes = C, V, cfg["num_classes"]
        self.patch_nums = tuple(cfg["patch_nums"])
        self.L = sum(p * p for p in self.patch_nums)
        self.begin_ends = []
        cur = 0
        for p in self.patch_nums:
            self.begin_ends.append((cur, cur + p * p))
            cur += p * p
        init_std = math.sqrt(1 / C / 3)
        self.word_embed = nn.Linear(Cv, C)
        self.class_emb = nn.Embedding(self.num_classes + 1, C)  # the last row is the null class
        self.pos_start = nn.Parameter(torch.empty(1, 1, C))
        self.pos_1LC = nn.Parameter(torch.empty(1, self.L, C))
        self.lvl_embed = nn.Embedding(len(self.patch_nums), C)
        for p in (self.class_emb.weight, self.pos_start, self.pos_1LC, self.lvl_embed.weight):
            nn.init.trunc_normal_(p.data, mean=0, std=init_std)
        hidden = round(C * cfg["mlp_ratio"])
        self.blocks = nn.ModuleList([AdaLNSelfAttn(C, cfg["heads"], hidden) for _ in range(D)])
        lvl = torch.cat([torch.full((p * p,), i, dtype=torch.int64) for i, p in enumerate(self.patch_nums)])
        self.register_buffer("lvl_1L", lvl.view(1, self.L).contiguous())
        d = lvl.view(1, self.L, 1)
        mask = torch.where(d >= d.transpose(1, 2), 0.0, -math.inf).reshape(1, 1, self.L, self.L)
        self.register_buffer("attn_bias_for_masking", mask.contiguous())
        self.head_nm = AdaLNBeforeHead(C)
        self.head = nn.Linear(C, V)
        self.init_weights(init_std)

    def init_weights(self, init_std, init_adaln=0.5, init_adaln_gamma=1e-3, init_head=0.02):
        """The reference's init_weights: truncated normal linears/embeddings, a small head, AdaLN gates that
        start near zero, and the residual projections scaled by 1/sqrt(2·depth)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight.data, std=init_std)
                if m.bias is not None:
                    m.bias.data.zero_()
        self.head.weight.data.mul_(init_head)
        self.head.bias.data.zero_()
        self.head_nm.ada_lin[-1].weight.data.mul_(init_adaln)
        self.head_nm.ada_lin[-1].bias.data.zero_()
        depth = len(self.blocks)
        for b in self.blocks:
            b.attn.proj.weight.data.div_(math.sqrt(2 * depth))
            b.ffn.fc2.weight.data.div_(math.sqrt(2 * depth))
            b.ada_lin[-1].weight.data[2 * self.C:].mul_(init_adaln)
            b.ada_lin[-1].weight.data[:2 * self.C].mul_(init_adaln_gamma)
            b.ada_lin[-1].bias.data.zero_()

    def forward(self, labels: torch.Tensor, x_in: torch.Tensor, upto: int = None) -> torch.Tensor:
        """Teacher-forced logits [B, n, V] for the first n = upto (default L) positions.
        labels [B] (the null class = num_classes), x_in [B, L−1, Cvae] (idx_to_var_input)."""
        n = self.L if upto is None else upto
        B = labels.shape[0]
        cond = self.class_emb(labels)
        sos = cond.unsqueeze(1) + self.pos_start
        x = sos if n == 1 else torch.cat((sos, self.word_embed(x_in[:, :n - 1].float())), dim=1)
        x = x + self.lvl_embed(self.lvl_1L[:, :n].expand(B, -1)) + self.pos_1LC[:, :n]
        mask = self.attn_bias_for_masking[:, :, :n, :n]
        for b in self.blocks:
            x = b(x, cond, mask)
        return self.head(self.head_nm(x.float(), cond).float()).float()

    @torch.no_grad()
    def generate(self, quantizer, labels: torch.Tensor, cfg: float = 2.0, top_k: int = 0, top_p: float = 0.0,
                 generator: torch.Generator = None, forced=None):
        """Class-conditional sampling like autoregressive_infer_cfg (spec C.1–C.7): 2B rows (cond, null),
        guidance t = cfg·k/(K−1), top-k then top-p, multinomial. Returns (f_hat, token list, guided logits).
        `forced` (list of [B, n_k]) replaces sampling, for the engine cross-check."""
        B = labels.shape[0]
        K = len(self.patch_nums)
        side = self.patch_nums[-1]
        lab2 = torch.cat((labels, torch.full_like(labels, self.num_classes)))
        f_hat = quantizer.embedding.weight.new_zeros(B, quantizer.cvae, side, side)
        x_in = f_hat.new_zeros(B, self.L - 1, quantizer.cvae)
        tokens, guided = [], []
        for k in range(K):
            b, e = self.begin_ends[k]
            logits = self.forward(lab2, torch.cat((x_in, x_in)), upto=e)[:, b:e]
            t = cfg * k / (K - 1)
            lg = (1 + t) * logits[:B] - t * logits[B:]
            guided.append(lg)
            if forced is not None:
                idx = forced[k].to(lg.device)
            else:
                idx = sample_top_k_top_p(lg, top_k, top_p, generator)
            tokens.append(idx)
            pn = self.patch_nums[k]
            # The latent path stays in fp32 like the engine's (spec H.1), even under autocast.
            with torch.autocast("cuda", enabled=False) if f_hat.is_cuda else contextlib.nullcontext():
                f_hat += quantizer._upsampled(k, idx.view(B, pn, pn), side).float()
                if k + 1 < K:
                    nxt = self.patch_nums[k + 1]
                    nb, ne = self.begin_ends[k + 1]
                    down = F.interpolate(f_hat, size=(nxt, nxt), mode="area")
                    x_in[:, nb - 1:ne - 1] = down.flatten(2).transpose(1, 2)
        return f_hat, tokens, guided

    def meta(self) -> dict:
        return {"amskv_var_config": json.dumps(self.cfg)}


def sample_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float, generator=None) -> torch.Tensor:
    """logits [B, n, V] fp32 -> [B, n] int64 (spec C.6: top-k keeps ties, top-p keeps the max)."""
    B, n, V = logits.shape
    lg = logits.float().clone()
    if 0 < top_k < V:
        kth = lg.topk(top_k, dim=-1).values[..., -1:]
        lg.masked_fill_(lg < kth, -math.inf)
    if top_p > 0:
        srt, order = lg.sort(dim=-1, descending=False)
        remove = srt.softmax(-1).cumsum(-1) <= (1 - top_p)
        remove[..., -1:] = False
        lg.masked_fill_(remove.scatter(-1, order, remove), -math.inf)
    probs = lg.softmax(-1).view(-1, V)
    return torch.multinomial(probs, 1, replacement=True, generator=generator).view(B, n)


def param_groups(model: nn.Module, weight_decay: float):
    """Weight decay on matrices only; biases, embeddings of positions/levels and temperatures are exempt
    like the reference's no-wd list."""
    no_wd_names = ("pos_start", "pos_1LC", "lvl_embed", "scale_mul_1H11", "class_emb")
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or any(s in name for s in no_wd_names):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
