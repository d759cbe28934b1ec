"""A multiresolution dense feature grid with a small MLP: a fast coordinate-to-density field.

Each level is a dense grid of learnable feature vectors over ``[-1, 1]^3``,
read by trilinear interpolation (``grid_sample``); the features of all levels
are concatenated and a small ReLU MLP with softplus output gives a
non-negative density. Coarse levels carry the low frequencies and converge in
few steps; fine levels add detail. Optionally time is a fourth coordinate:
every level then holds ``time_knots`` grids and the features are interpolated
linearly between the two knots around each point's time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeatureGrid", "grid_levels"]


def grid_levels(finest: int, levels: int) -> tuple[int, ...]:
    """Resolutions of ``levels`` grids doubling up to ``finest`` (each at least 4)."""
    return tuple(max(4, round(finest / 2 ** (levels - 1 - k))) for k in range(levels))


class FeatureGrid(nn.Module):
    """Field ``(P, 3 or 4) -> (P,)``: coordinates ``(x, y, z[, t])`` in ``[-1, 1]``, density >= 0.

    Parameters
    ----------
    resolutions : tuple of int
        Grid points per side of each level (e.g. ``(16, 32, 64)``).
    features : int
        Feature channels per level.
    width : int
        Width of the MLP's hidden layer.
    time_knots : int
        Knots along time (0: a static 3D field; otherwise the fourth coordinate is time).
    init_scale : float
        Standard deviation of the initial features.
    """

    def __init__(self, resolutions: tuple[int, ...] = (16, 32, 64), *, features: int = 4, width: int = 64,
                 time_knots: int = 0, init_scale: float = 0.1) -> None:
        super().__init__()
        self.resolutions, self.features, self.time_knots = tuple(resolutions), int(features), int(time_knots)
        k = max(1, self.time_knots)
        self.grids = nn.ParameterList(
            nn.Parameter(init_scale * torch.randn(1, k * features, r, r, r)) for r in self.resolutions)
        self.mlp = nn.Sequential(nn.Linear(features * len(self.resolutions), width), nn.ReLU(), nn.Linear(width, 1))

    def _time_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Hat-function weights ``(P, K)`` of the time knots, ``t`` in ``[-1, 1]``."""
        knots = torch.linspace(-1, 1, self.time_knots, device=t.device, dtype=t.dtype)
        spacing = 2 / (self.time_knots - 1)
        return (1 - (t[:, None] - knots[None]).abs() / spacing).clamp(min=0)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        xyz = points[:, :3].reshape(1, 1, 1, -1, 3)
        feats = []
        for grid in self.grids:
            f = F.grid_sample(grid, xyz, mode="bilinear", padding_mode="border", align_corners=True)
            f = f.reshape(-1, points.shape[0]).T  # (P, K * C)
            if self.time_knots > 1:
                w = self._time_weights(points[:, 3].clamp(-1, 1))
                f = (f.reshape(-1, self.time_knots, self.features) * w[:, :, None]).sum(1)
            feats.append(f)
        return F.softplus(self.mlp(torch.cat(feats, dim=1))).squeeze(-1)
