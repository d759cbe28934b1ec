"""A small ordinary U-Net (no blind spot), the layout of :class:`~tomotime.models.blindspot.BlindUNet`.

Three encoder stages of 3x3 convolutions (bias, LeakyReLU 0.1; max-pooling
after the first two), two decoder stages (nearest up-sampling, skip
connection) and a 1x1 convolution to one channel. Used by the
Neighbor2Neighbor baseline (:mod:`tomotime.denoise.neighbor2neighbor`).
Shapes: ``(B, 1, H, W) -> (B, 1, H, W)``, ``H`` and ``W`` multiples of 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PlainUNet"]


def _stack(c_in: int, c_mid: int, c_out: int, n: int) -> nn.Sequential:
    widths = [c_in] + [c_mid] * (n - 1) + [c_out]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class PlainUNet(nn.Module):
    """One noisy frame in, one denoised frame out.

    Parameters
    ----------
    width : int
        Encoder channels; decoders use twice as many.
    """

    frames = 1  # frames in per output frame (the interface of tomotime.denoise.inference)

    def __init__(self, *, width: int = 32) -> None:
        super().__init__()
        w = self.width = width
        self.enc1 = _stack(1, w, w, 2)
        self.enc2 = _stack(w, w, w, 2)
        self.enc3 = _stack(w, 2 * w, w, 2)
        self.dec2 = _stack(2 * w, 2 * w, 2 * w, 2)
        self.dec1 = _stack(2 * w + 1, 2 * w, w, 2)
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``(B, 1, H, W)`` (H, W multiples of 4)."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected (B, 1, H, W), got {tuple(x.shape)}")
        if x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"frame sides must be multiples of 4, got {tuple(x.shape[2:])}")
        x1 = F.max_pool2d(self.enc1(x), 2)
        y = self.enc3(F.max_pool2d(self.enc2(x1), 2))
        y = self.dec2(torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), x1], dim=1))
        return self.out(self.dec1(torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), x], dim=1)))
