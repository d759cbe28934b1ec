"""Reconstruction of a (static) tilt series with a classical method."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.physics.parallel3d import VolumeProjector
from tomotime.solvers.em import em
from tomotime.solvers.fbp import FILTERS, fbp
from tomotime.solvers.sirt import sirt

__all__ = ["METHODS", "DEFAULT_ITERATIONS", "reconstruct", "check_method_options"]

METHODS = ("fbp", "sirt", "em")
DEFAULT_ITERATIONS = {"sirt": 100, "em": 50}


def check_method_options(method: str, *, iterations: int | None = None, filter: str = "ram-lak") -> int | None:
    """Validate a method name and its options; return the resolved iteration count."""
    if method not in METHODS:
        raise InputError(f"method={method!r}: expected one of {', '.join(METHODS)}")
    if filter not in FILTERS:
        raise InputError(f"filter={filter!r}: expected one of {', '.join(FILTERS)}")
    if method == "fbp":
        return None
    iterations = DEFAULT_ITERATIONS[method] if iterations is None else iterations
    if int(iterations) != iterations or iterations < 1:
        raise InputError(f"iterations={iterations!r}: expected a positive integer")
    return int(iterations)


def reconstruct(
    series: TiltSeries,
    *,
    method: str = "sirt",
    iterations: int | None = None,
    thickness: int | None = None,
    filter: str = "ram-lak",
    min_value: float | None = None,
    max_value: float | None = None,
    device="auto",
    progress: bool | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> np.ndarray:
    """Reconstruct one volume from a tilt series.

    Parameters
    ----------
    series : TiltSeries
        Projections ``(N, Y, X)``; its ``poses`` (if any) are used.
    method : {"fbp", "sirt", "em"}
        Reconstruction algorithm.
    iterations : int, optional
        Iterations of SIRT (default 100) or EM (default 50).
    thickness : int, optional
        Number of voxels ``Z`` along the beam (default ``X``).
    filter : str
        FBP apodisation window.
    min_value, max_value : float, optional
        SIRT box constraint (``min_value=0`` for positivity).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
    """
    iterations = check_method_options(method, iterations=iterations, filter=filter)
    n, ny, nx = series.shape
    nz = int(thickness or nx)
    if nz < 2:
        raise InputError(f"thickness={thickness}: expected at least 2 voxels")
    op = VolumeProjector(series.angles, (nz, ny, nx), poses=series.poses, device=device)
    data = torch.from_numpy(series.images)
    if method == "fbp":
        volume = fbp(op, data, filter=filter)
    elif method == "sirt":
        volume = sirt(op, data, iterations=iterations, min_value=min_value, max_value=max_value,
                      callback=callback, progress=progress)
    else:
        volume = em(op, data, iterations=iterations, callback=callback, progress=progress)
    return volume.detach().cpu().numpy().astype(np.float32, copy=False)
