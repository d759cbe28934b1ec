"""SIRT reconstruction of a (binarised) rapid series: uniform angles per view, or one angle per row."""

from __future__ import annotations

import numpy as np
import torch

from tomotime.errors import InputError
from tomotime.physics import VolumeProjector
from tomotime.physics.row_angles import RowAngleProjector
from tomotime.solvers import sirt

__all__ = ["reconstruct_rapid"]


def reconstruct_rapid(series: np.ndarray, angles, *, thickness: int, iterations: int = 50,
                      device="cpu", progress: bool | None = False, cache_bytes: int = 1 << 30,
                      min_value: float | None = 0.0) -> np.ndarray:
    """SIRT of a series ``(N, Y, X)`` into a slab volume ``(thickness, Y, X)`` (non-negative by default).

    Parameters
    ----------
    series : numpy.ndarray, shape (N, Y, X)
        Projections (e.g. binarised line maps).
    angles : array_like, shape (N,) or (N, Y)
        One angle per view (the usual model) or one per view and row (time-lag aware), degrees.
    thickness : int
        Volume extent along the beam (Z, pixels).
    iterations : int
        SIRT iterations (50 in the paper).
    cache_bytes : int
        Memory for the per-row projector's ray weights; below what every
        view needs (about ``Y * X * max(Z, X) * 16`` bytes per view) they
        are recomputed on every pass, about ten times slower.
    min_value : float or None
        SIRT's lower bound (0: non-negative, as for binarised line maps; None: unbounded).
    """
    series = np.asarray(series, np.float32)
    if series.ndim != 3:
        raise InputError(f"series: expected (N, Y, X), got shape {series.shape}")
    n, ny, nx = series.shape
    a = np.asarray(angles, np.float64)
    shape = (int(thickness), ny, nx)
    if a.shape == (n,):
        op = VolumeProjector(a, shape, device=device)
    elif a.shape == (n, ny):
        op = RowAngleProjector(a, shape, device=device, cache_bytes=cache_bytes)
    else:
        raise InputError(f"angles: expected shape ({n},) or ({n}, {ny}), got {a.shape}")
    return sirt(op, torch.from_numpy(series), iterations=iterations, min_value=min_value,
                progress=progress).cpu().numpy()
