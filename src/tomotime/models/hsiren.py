"""H-Siren: a sine-activated MLP with a hyperbolic first layer, mapping coordinates to a density.

The field of the INR tomography paper (Lim, Casert et al.): first layer
``sin(omega0 * sinh(2 * (W x + b)))``, hidden layers ``sin(omega0 * (W x + b))``,
``omega0 = 30``, a linear output followed by softplus so that the density is
non-negative. Initialisation as in the paper: first-layer weights uniform in
``(-1/n, 1/n)``, hidden-layer weights uniform in ``(-sqrt(6/n)/omega0, +...)``
with ``n`` the layer's input width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["HSiren"]


class HSiren(nn.Module):
    """H-Siren field ``(P, in_dim) -> (P,)`` non-negative density.

    Parameters
    ----------
    in_dim : int
        Coordinates per point (3 for ``(x, y, z)``, 4 with time), each in about ``[-1, 1]``.
    hidden_layers : int
        Number of sine layers after the first (the paper: 4).
    width : int
        Width of every sine layer (the paper: 512).
    omega0 : float
        Frequency factor of the sine activations (the paper: 30).
    """

    def __init__(self, in_dim: int = 3, *, hidden_layers: int = 4, width: int = 512, omega0: float = 30.0) -> None:
        super().__init__()
        self.omega0 = float(omega0)
        self.first = nn.Linear(in_dim, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(hidden_layers))
        self.out = nn.Linear(width, 1)
        with torch.no_grad():
            self.first.weight.uniform_(-1 / in_dim, 1 / in_dim)
            bound = math.sqrt(6 / width) / self.omega0
            for layer in (*self.hidden, self.out):
                layer.weight.uniform_(-bound, bound)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        h = torch.sin(self.omega0 * torch.sinh(2 * self.first(points)))
        for layer in self.hidden:
            h = torch.sin(self.omega0 * layer(h))
        return nn.functional.softplus(self.out(h)).squeeze(-1)
