"""The DIP-STER network: manifold coordinate -> mapping MLP -> slice generator."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from tomotime.errors import InputError
from tomotime.models import MappingNetwork, SliceGenerator
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.corrections import ViewCorrections
from tomotime.recon.dipster.manifold import Manifold
from tomotime.recon.dipster.sampling import Normalisation

__all__ = ["SpaceTimeDIP"]


def _as_vector(value: Any, n: int | None, *, name: str, device, dtype=torch.float64) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype, device=device).reshape(-1)
    if n is not None and t.numel() == 1 and n > 1:
        t = t.expand(n)
    if n is not None and t.numel() != n:
        raise InputError(f"{name}: expected 1 or {n} values, got {t.numel()}")
    return t


class SpaceTimeDIP(nn.Module):
    """Generator of slices ``(Z, X)`` perpendicular to the tilt axis at any ``(t, y, theta)``.

    Parameters
    ----------
    config : DipsterConfig
        Network options (manifold, sizes, normalisation layer, output activation).
    slice_shape : (int, int)
        ``(Z, X)``.
    time_range : (float, float)
        Training times, seconds (first, last).
    angle_range : (float, float)
        Training angles, degrees (smallest, largest).
    normalisation : Normalisation
        Intensity offset and scale of the training data.
    n_rows : int
        Detector rows ``Y`` (the volume's Y size).
    acquisition : dict, optional
        ``{"times": (N,), "angles": (N,)}`` of the training projections, used by
        ``angle="own"`` queries, and sizing the per-view ``corrections``.
    pixel_size : float
        nm per pixel (the voxel size of generated volumes).

    Attributes
    ----------
    corrections : ViewCorrections or None
        Per-view acquisition corrections learned in training (``config.corrections``);
        they describe the acquisition, not the specimen, and do not enter generated volumes.
    """

    def __init__(self, config: DipsterConfig, slice_shape: tuple[int, int], time_range: tuple[float, float],
                 angle_range: tuple[float, float], normalisation: Normalisation, *, n_rows: int,
                 acquisition: dict[str, Any] | None = None, pixel_size: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.slice_shape = (int(slice_shape[0]), int(slice_shape[1]))
        self.n_rows = int(n_rows)
        self.normalisation = normalisation
        self.pixel_size = float(pixel_size)
        self.extra: dict[str, Any] = {}
        self.manifold = Manifold(config.manifold, time_range=time_range, angle_range=angle_range, n_rows=n_rows)
        acq = acquisition or {"times": list(time_range), "angles": [config.query_angle] * 2}
        self.acquisition = {k: np.asarray(acq[k], dtype=np.float64) for k in ("times", "angles")}
        self.mapping = MappingNetwork(self.manifold.n_features, config.latent, hidden=config.hidden)
        self.generator = SliceGenerator(config.latent, self.slice_shape, base_channels=config.base_channels,
                                        seed_size=config.seed_size, min_channels=config.min_channels,
                                        norm=config.norm, activation=config.activation)
        self.corrections = (ViewCorrections(len(self.acquisition["times"]), config.corrections)
                            if config.corrections else None)

    @property
    def time_range(self) -> tuple[float, float]:
        return self.manifold.time_range

    @property
    def angle_range(self) -> tuple[float, float]:
        return self.manifold.angle_range

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def slices(self, t: Any, y: Any, theta: Any) -> torch.Tensor:
        """Slices in network units (multiply by ``normalisation.scale`` for intensity units).

        Parameters
        ----------
        t : tensor or array_like, shape (B,) or scalar
            Times, seconds.
        y : tensor or array_like, shape (B,) or scalar
            Detector row indices ``0 .. Y-1`` (fractional values interpolate).
        theta : tensor or array_like, shape (B,) or scalar
            Tilt angles, degrees.

        Returns
        -------
        torch.Tensor, shape (B, Z, X)
        """
        dev = self.device
        sizes = [torch.as_tensor(v).numel() for v in (t, y, theta)]
        n = max(sizes)
        t, y, theta = (_as_vector(v, n, name=name, device=dev) for v, name in ((t, "t"), (y, "y"), (theta, "theta")))
        # Coordinates in float64 so that large time stamps keep their resolution.
        coords = self.manifold.encode(t, y, theta).to(torch.float32)
        return self.generator(self.mapping(coords))

    def forward(self, t: Any, y: Any, theta: Any) -> torch.Tensor:
        """Same as :meth:`slices`."""
        return self.slices(t, y, theta)

    def describe(self) -> dict[str, Any]:
        """Everything but the weights needed to rebuild this model (plain types only)."""
        return {
            "config": self.config.to_dict(),
            "slice_shape": list(self.slice_shape),
            "n_rows": self.n_rows,
            "time_range": list(self.time_range),
            "angle_range": list(self.angle_range),
            "normalisation": self.normalisation.to_dict(),
            "acquisition": {k: v.tolist() for k, v in self.acquisition.items()},
            "pixel_size": self.pixel_size,
        }

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> SpaceTimeDIP:
        """Inverse of :meth:`describe` (fresh weights)."""
        return cls(DipsterConfig.from_dict(dict(desc["config"])), tuple(desc["slice_shape"]),
                   tuple(desc["time_range"]), tuple(desc["angle_range"]), Normalisation(**desc["normalisation"]),
                   n_rows=int(desc["n_rows"]), acquisition=desc["acquisition"], pixel_size=float(desc["pixel_size"]))
