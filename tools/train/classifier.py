"""A small Fashion-MNIST classifier used as a quality measure (class consistency of generated images and a
Fréchet distance of its 128-d features). The engine re-implements it, so it is limited to these ops:

  input RGB [B,3,32,32] in [0,1] -> (x − 0.5)/0.5
  conv1 3x3 3->32 -> SiLU -> conv2 3x3 32->32 -> SiLU -> avgpool 2x2       (32 -> 16)
  conv3 3x3 32->64 -> SiLU -> conv4 3x3 64->64 -> SiLU -> avgpool 2x2      (16 -> 8)
  conv5 3x3 64->128 -> SiLU -> avgpool 2x2                                 (8 -> 4)
  mean over the 4x4 positions -> feature [B,128] -> fc 128->10 -> logits
All convs stride 1, zero padding 1, with bias. Keys conv{1..5}.{weight,bias}, fc.{weight,bias}.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = ((3, 32), (32, 32), (32, 64), (64, 64), (64, 128))
POOL_AFTER = (2, 4, 5)  # 1-based conv numbers followed by a 2x2 average pool


class FmnistClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        for i, (cin, cout) in enumerate(WIDTHS, start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, 1, 1))
        self.fc = nn.Linear(128, 10)

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        h = (x01 - 0.5) / 0.5
        for i in range(1, len(WIDTHS) + 1):
            h = F.silu(getattr(self, f"conv{i}")(h))
            if i in POOL_AFTER:
                h = F.avg_pool2d(h, 2)
        return h.mean(dim=(2, 3))

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x01))
