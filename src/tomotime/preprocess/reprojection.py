"""A quick reconstruct-and-reproject of a resampled tilt series, the yardstick of the alignment criteria."""

from __future__ import annotations

import numpy as np
import torch

from tomotime.physics import VolumeProjector
from tomotime.solvers import em, sirt

__all__ = ["reconstruct_and_reproject", "consistency_residual"]


def reconstruct_and_reproject(images: np.ndarray, angles: np.ndarray, *, solver: str = "sirt",
                              iterations: int = 20, thickness: int | None = None,
                              positivity: bool = False, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Reconstruct ``images`` ``(N, Y, X)`` (already aligned, no poses) and project the result back.

    Parameters
    ----------
    solver : {"sirt", "em"}
        SIRT (optionally with ``min_value=0``), or EM (negative data clipped at 0).
    iterations : int
        Solver iterations.
    thickness : int, optional
        Voxels along the beam (default ``X``).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Returns
    -------
    (volume, reprojection) : numpy.ndarray, shapes (Z, Y, X) and (N, Y, X)
    """
    n, ny, nx = images.shape
    op = VolumeProjector(angles, (int(thickness or nx), ny, nx), device=device)
    data = torch.from_numpy(np.ascontiguousarray(images, np.float32)).to(op.device)
    if solver == "em":
        volume = em(op, data.clamp_min(0), iterations=iterations, progress=False)
    else:
        volume = sirt(op, data, iterations=iterations, min_value=0.0 if positivity else None, progress=False)
    with torch.no_grad():
        return volume.cpu().numpy(), op.forward(volume).cpu().numpy()


def consistency_residual(images: np.ndarray, angles: np.ndarray, *, iterations: int = 20,
                         positivity: bool = False) -> float:
    """``||A x - b|| / ||b||`` after ``iterations`` of SIRT on ``images``: small when the views agree."""
    _, reprojection = reconstruct_and_reproject(images, angles, iterations=iterations, positivity=positivity)
    return float(np.linalg.norm(reprojection - images) / max(np.linalg.norm(images), 1e-30))
