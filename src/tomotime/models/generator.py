"""Slice generator: a CNN that turns a latent code into one 2D slice ``(Z, X)``.

A linear layer maps the code to a ``seed_size x seed_size`` feature map; each
level then doubles the size (bilinear upsampling) and applies two 3x3
convolutions, each followed by the normalisation and LeakyReLU, halving the
channel count (not below ``min_channels``). The levels stop at the first size
``seed_size * 2**n >= max(Z, X)`` and the map is centre-cropped to ``(Z, X)``,
so any slice shape works, not only powers of two; the default seed size is
chosen so that little is cropped (24 = 3 * 2**3 needs no crop at all). A final 3x3 convolution gives
one channel and the output activation; its bias starts the output near 0.1
(an almost empty slice in normalised units).

Normalisation is per sample (GroupNorm) or none, never BatchNorm: a slice does
not depend on the others in its batch, so outputs at export equal outputs in
training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tomotime.errors import InputError

__all__ = ["SliceGenerator", "auto_seed_size", "NORMS", "ACTIVATIONS"]

NORMS = ("group", "none")
ACTIVATIONS = ("softplus", "sigmoid", "relu", "identity")


# Start from an almost empty slice (output about 0.1): far fewer wrong projections to unlearn than at
# softplus(0) = 0.69, which measurably speeds up the first thousand steps.
_INITIAL_BIAS = {"softplus": math.log(math.expm1(0.1)), "sigmoid": math.log(0.1 / 0.9), "relu": 0.1, "identity": 0.0}


def _output_activation(name: str) -> nn.Module:
    return {"softplus": nn.Softplus, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "identity": nn.Identity}[name]()


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    groups = max(g for g in range(1, 9) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def _conv_block(c_in: int, c_out: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), _norm(norm, c_out), nn.LeakyReLU(0.2)]


def auto_seed_size(size: int) -> int:
    """Seed edge in 3..8 whose doublings reach ``size`` with the least excess (ties: closest to 4)."""
    def full(seed: int) -> int:
        return seed * 2 ** max(0, math.ceil(math.log2(size / seed)))
    return min(range(3, 9), key=lambda s: (full(s), abs(s - 4)))


class SliceGenerator(nn.Module):
    """Latent code ``(B, latent)`` to slices ``(B, Z, X)``.

    Parameters
    ----------
    latent : int
        Size of the latent code.
    out_shape : (int, int)
        Slice shape ``(Z, X)``.
    base_channels : int
        Channels of the seed feature map; halved at each level.
    seed_size : int, optional
        Edge of the square seed feature map (e.g. 4 or 8); default
        :func:`auto_seed_size` of ``max(Z, X)`` (e.g. 3 for 24, 4 for 32).
    min_channels : int
        Lower bound of the channel count.
    norm : {"group", "none"}
        Normalisation after each convolution.
    activation : {"softplus", "sigmoid", "relu", "identity"}
        Output activation (``softplus`` keeps densities non-negative and smooth).
    """

    def __init__(self, latent: int, out_shape: tuple[int, int], *, base_channels: int = 128,
                 seed_size: int | None = None, min_channels: int = 16, norm: str = "group",
                 activation: str = "softplus") -> None:
        super().__init__()
        if len(tuple(out_shape)) != 2 or min(out_shape) < 1:
            raise InputError(f"out_shape={out_shape}: expected a slice shape (Z, X) of positive sizes")
        if seed_size is None:
            seed_size = auto_seed_size(max(out_shape))
        for name, value in (("latent", latent), ("base_channels", base_channels), ("seed_size", seed_size),
                            ("min_channels", min_channels)):
            if int(value) != value or value < 1:
                raise InputError(f"{name}={value!r}: expected a positive integer")
        if norm not in NORMS:
            raise InputError(f"norm={norm!r}: expected one of {', '.join(NORMS)}")
        if activation not in ACTIVATIONS:
            raise InputError(f"activation={activation!r}: expected one of {', '.join(ACTIVATIONS)}")
        self.out_shape = (int(out_shape[0]), int(out_shape[1]))
        self.seed_size, self.base_channels = int(seed_size), int(base_channels)
        levels = max(0, math.ceil(math.log2(max(self.out_shape) / self.seed_size)))
        self.full_size = self.seed_size * 2**levels
        self.seed = nn.Linear(int(latent), self.base_channels * self.seed_size**2)
        layers: list[nn.Module] = [nn.LeakyReLU(0.2)]
        channels = self.base_channels
        for _ in range(levels):
            out = max(int(min_channels), channels // 2)
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)]
            layers += _conv_block(channels, out, norm) + _conv_block(out, out, norm)
            channels = out
        final = nn.Conv2d(channels, 1, 3, padding=1)
        with torch.no_grad():
            final.bias.fill_(_INITIAL_BIAS[activation])
        layers += [final, _output_activation(activation)]
        self.body = nn.Sequential(*layers)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """Generate slices ``(B, Z, X)`` from codes ``(B, latent)``."""
        x = self.seed(code).reshape(code.shape[0], self.base_channels, self.seed_size, self.seed_size)
        x = self.body(x)[:, 0]
        nz, nx = self.out_shape
        z0, x0 = (self.full_size - nz) // 2, (self.full_size - nx) // 2
        return x[:, z0:z0 + nz, x0:x0 + nx]
