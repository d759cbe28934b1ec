"""Manifold coordinates of DIP-STER: (time, row, angle) -> network input in [-1, 1].

Options (``DipsterConfig.manifold``):

``"t-y-theta"``
    ``(t, y, theta)``, each mapped linearly onto [-1, 1] over its training range.
``"cos-sin-y-t"``
    ``(cos theta, sin theta, y, t)``; the cosine and sine lie in [-1, 1]
    already and are not rescaled (the reference implementation's default).
``"y-t"``
    ``(y, t)``: the slice does not depend on the tilt angle.

``t`` is in seconds, ``y`` is the detector row index (0 .. Y-1, fractional
values allowed), ``theta`` is in degrees. A range of zero width maps to 0.
"""

from __future__ import annotations

import torch

from tomotime.errors import InputError

__all__ = ["Manifold", "N_FEATURES"]

N_FEATURES = {"t-y-theta": 3, "cos-sin-y-t": 4, "y-t": 2}


def _unit(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    if hi <= lo:
        return torch.zeros_like(x)
    return 2 * (x - lo) / (hi - lo) - 1


class Manifold:
    """Encoder of ``(t, y, theta)`` for one training geometry.

    Parameters
    ----------
    name : str
        One of :data:`N_FEATURES`.
    time_range : (float, float)
        First and last training time, seconds.
    angle_range : (float, float)
        Smallest and largest training angle, degrees.
    n_rows : int
        Number of detector rows ``Y``.
    """

    def __init__(self, name: str, *, time_range: tuple[float, float], angle_range: tuple[float, float],
                 n_rows: int) -> None:
        if name not in N_FEATURES:
            raise InputError(f"manifold={name!r}: expected one of {', '.join(N_FEATURES)}")
        self.name = name
        self.time_range = (float(time_range[0]), float(time_range[1]))
        self.angle_range = (float(angle_range[0]), float(angle_range[1]))
        self.n_rows = int(n_rows)

    @property
    def n_features(self) -> int:
        """Number of coordinates fed to the mapping network."""
        return N_FEATURES[self.name]

    def encode(self, t: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Coordinates ``(B, n_features)`` of times ``t`` (s), rows ``y`` and angles ``theta`` (deg), each ``(B,)``."""
        tn = _unit(t, *self.time_range)
        yn = _unit(y, 0.0, float(self.n_rows - 1))
        if self.name == "y-t":
            return torch.stack([yn, tn], dim=1)
        if self.name == "t-y-theta":
            return torch.stack([tn, yn, _unit(theta, *self.angle_range)], dim=1)
        rad = torch.deg2rad(theta)
        return torch.stack([torch.cos(rad), torch.sin(rad), yn, tn], dim=1)
