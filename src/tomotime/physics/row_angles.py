"""Time-lag-aware projector: every detector row of every view at its own angle.

In a STEM frame the rows (slow-scan direction, the image Y axis = the tilt
axis) are scanned one after another while the goniometer turns, so row ``k``
of view ``i`` is the projection of the volume's slice ``vol[:, k, :]`` at the
angle ``angles[i, k]``. :class:`RowAngleProjector` maps a volume ``(Z, Y, X)``
to a series ``(N, Y, D)`` with the ray weights of
:func:`tomotime.physics.project_slices` (the Joseph discretisation of the
project's projectors, computed once per view and kept while they fit in
``cache_bytes``) and its exact transpose (the same weights scattered back),
one view at a time, so it is a drop-in
:class:`~tomotime.physics.LinearOperator` for :func:`tomotime.solvers.sirt`.
"""

from __future__ import annotations

import numpy as np
import torch

from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.physics import LinearOperator
from tomotime.physics.joseph import joseph_samples

__all__ = ["RowAngleProjector", "row_angles_from_frames"]


def row_angles_from_frames(frame_angles, rows: int, scan_fraction: float) -> np.ndarray:
    """Per-row angles ``(N, rows)`` from mid-scan frame angles ``(N,)`` (degrees).

    The rate comes from the frame angles (``numpy.gradient``), so row ``k`` of
    frame ``i`` is at ``angles[i] + rate_i * scan_fraction * ((k + 0.5) / rows - 0.5)``
    where ``scan_fraction`` is the scan time over the frame period.
    """
    a = np.asarray(frame_angles, np.float64).reshape(-1)
    rate = np.gradient(a) if a.size > 1 else np.zeros_like(a)
    pos = (np.arange(rows) + 0.5) / rows - 0.5
    return a[:, None] + rate[:, None] * scan_fraction * pos[None, :]


class RowAngleProjector(LinearOperator):
    """Parallel-beam projector with one angle per (view, detector row).

    Parameters
    ----------
    row_angles : array_like, shape (N, Y)
        Angle of row ``k`` of view ``i`` (degrees).
    vol_shape : (int, int, int)
        ``(Z, Y, X)``.
    n_det : int, optional
        Detector columns (default ``X``).
    device, dtype
        As for :class:`~tomotime.physics.VolumeProjector`.
    cache_bytes : int
        Memory for keeping the ray weights of every view (otherwise recomputed per call).

    Notes
    -----
    With every row of a view at the same angle this equals
    :class:`~tomotime.physics.VolumeProjector` (same discretisation).
    """

    def __init__(self, row_angles, vol_shape: tuple[int, int, int], *, n_det: int | None = None, device="cpu",
                 dtype=torch.float32, cache_bytes: int = 1 << 30) -> None:
        a = np.asarray(row_angles, np.float64)
        self.vol_shape = tuple(int(s) for s in vol_shape)
        if len(self.vol_shape) != 3 or min(self.vol_shape) < 2:
            raise InputError(f"vol_shape={vol_shape}: expected (Z, Y, X) with every size >= 2")
        if a.ndim != 2 or a.shape[1] != self.vol_shape[1]:
            raise InputError(f"row_angles: expected shape (N, {self.vol_shape[1]}) (one angle per view and row), "
                             f"got {a.shape}")
        if not np.isfinite(a).all() or (np.abs(a) > 90).any():
            raise InputError("row_angles: expected finite angles inside [-90, 90] degrees")
        self.row_angles = a
        self.n_det = int(n_det or self.vol_shape[2])
        self.device = resolve_device(device)
        self.dtype = dtype
        self.domain_shape = self.vol_shape
        self.range_shape = (a.shape[0], self.vol_shape[1], self.n_det)
        self._theta = torch.deg2rad(torch.as_tensor(a, dtype=torch.float64, device=self.device))
        nz, ny, nx = self.vol_shape
        per_view = ny * self.n_det * max(nz, nx) * 2 * (4 + np.dtype(np.float32).itemsize)
        self._cache = [self._samples(i) for i in range(a.shape[0])] if per_view * a.shape[0] <= cache_bytes else None

    def __repr__(self) -> str:
        return f"RowAngleProjector(n_views={self.range_shape[0]}, vol_shape={self.vol_shape}, n_det={self.n_det})"

    def _samples(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat ``(Y, D*P*2)`` pixel indices (int32) and weights of view ``i``."""
        nz, ny, nx = self.vol_shape
        index, weight = joseph_samples(self._theta[i], (nz, nx), self.n_det)
        return index.reshape(ny, -1).to(torch.int32), weight.reshape(ny, -1).to(self.dtype)

    def _view(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        index, weight = self._cache[i] if self._cache is not None else self._samples(i)
        return index.long(), weight

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Project ``(Z, Y, X)`` to ``(N, Y, D)``."""
        volume = torch.as_tensor(volume).to(self.device, self.dtype)
        if tuple(volume.shape) != self.domain_shape:
            raise InputError(f"volume: expected shape {self.domain_shape}, got {tuple(volume.shape)}")
        nz, ny, nx = self.vol_shape
        flat = volume.permute(1, 0, 2).reshape(ny, nz * nx)
        out = []
        for i in range(self.range_shape[0]):
            index, weight = self._view(i)
            out.append((torch.gather(flat, 1, index) * weight).reshape(ny, self.n_det, -1).sum(-1))
        return torch.stack(out)

    def adjoint(self, projections: torch.Tensor) -> torch.Tensor:
        """Back-project ``(N, Y, D)`` to ``(Z, Y, X)`` (exact transpose of :meth:`forward`)."""
        projections = torch.as_tensor(projections).to(self.device, self.dtype)
        if tuple(projections.shape) != self.range_shape:
            raise InputError(f"projections: expected shape {self.range_shape}, got {tuple(projections.shape)}")
        nz, ny, nx = self.vol_shape
        out = torch.zeros((ny, nz * nx), device=self.device, dtype=self.dtype)
        for i in range(self.range_shape[0]):
            index, weight = self._view(i)
            values = (projections[i][:, :, None] * weight.reshape(ny, self.n_det, -1)).reshape(ny, -1)
            out.scatter_add_(1, index, values)
        return out.reshape(ny, nz, nx).permute(1, 0, 2).contiguous()
