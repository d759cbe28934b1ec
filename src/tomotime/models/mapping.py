"""Mapping network: a small MLP from manifold coordinates to a latent code."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tomotime.errors import InputError

__all__ = ["MappingNetwork"]


class MappingNetwork(nn.Module):
    """Fully connected network ``(B, in_features) -> (B, latent)``.

    Hidden layers use LeakyReLU (slope 0.2); the output layer is linear.

    Parameters
    ----------
    in_features : int
        Size of the input coordinate (e.g. 3 for ``(t, y, theta)``).
    latent : int
        Size of the latent code.
    hidden : sequence of int
        Widths of the hidden layers (default two layers of 512); an empty
        sequence gives a single linear map.
    """

    def __init__(self, in_features: int, latent: int, hidden: Sequence[int] = (512, 512)) -> None:
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        for name, value in (("in_features", in_features), ("latent", latent)):
            if int(value) != value or value < 1:
                raise InputError(f"{name}={value!r}: expected a positive integer")
        if any(h < 1 for h in hidden):
            raise InputError(f"hidden={hidden}: expected positive layer widths")
        self.in_features, self.latent, self.hidden = int(in_features), int(latent), hidden
        layers: list[nn.Module] = []
        width = self.in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, self.latent))
        self.net = nn.Sequential(*layers)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Map coordinates ``(B, in_features)`` to latent codes ``(B, latent)``."""
        if coords.ndim != 2 or coords.shape[1] != self.in_features:
            raise InputError(f"coords: expected shape (B, {self.in_features}), got {tuple(coords.shape)}")
        return self.net(coords)
