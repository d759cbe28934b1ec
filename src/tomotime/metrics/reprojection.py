"""Agreement of a reconstruction with the data it came from: the per-view reprojection error."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.physics import VolumeProjector

__all__ = ["reprojection_error", "reproject"]


def reprojection_error(volumes: VolumeSeries, series: TiltSeries, *, device="cpu") -> np.ndarray:
    """Relative error of each view against the projection of the volume nearest to it in time.

    For view ``i`` at time ``t_i`` and angle ``theta_i``, the volume ``v`` of
    ``volumes`` whose time is nearest to ``t_i`` is projected at ``theta_i``
    (:class:`~tomotime.physics.VolumeProjector`, no poses) and

    ``error_i = ||P_theta_i v - b_i||_2 / ||b_i||_2``

    with ``b_i`` the measured image. A static result (one volume) is compared
    with every view.

    Parameters
    ----------
    volumes : VolumeSeries
        Volumes ``(T, Z, Y, X)``; ``Y`` and ``X`` must match the images' rows and columns.
    series : TiltSeries
        The measured tilt series ``(N, Y, X)``.

    Returns
    -------
    ndarray, shape (N,)
        The relative error of each view (NaN for an all-zero image).

    Raises
    ------
    InputError
        If the volume and image sizes do not match.
    """
    predicted = reproject(volumes, series, device=device)
    measured = series.images.reshape(len(series), -1)
    norms = np.linalg.norm(measured, axis=1)
    diffs = np.linalg.norm(predicted.reshape(len(series), -1) - measured, axis=1)
    return np.where(norms > 0, diffs / np.where(norms > 0, norms, 1), np.nan)


def reproject(volumes: VolumeSeries, series: TiltSeries, *, device="cpu") -> np.ndarray:
    """Each view as the volume nearest to it in time predicts it: ``(N, Y, X)`` float32.

    View ``i`` is the projection at ``theta_i`` (no poses) of the volume of
    ``volumes`` whose time is nearest to ``t_i``.

    Raises
    ------
    InputError
        If the volume and image sizes do not match.
    """
    _, nz, ny, nx = volumes.shape
    if (ny, nx) != series.shape[1:]:
        raise InputError(f"volumes (Y, X) = {(ny, nx)} do not match the images (rows, columns) = "
                         f"{series.shape[1:]}; expected a reconstruction of this tilt series")
    nearest = np.abs(series.times[:, None] - volumes.times[None, :]).argmin(axis=1)
    groups: dict[int, list[int]] = defaultdict(list)
    for view, t in enumerate(nearest):
        groups[int(t)].append(view)
    predicted = np.empty(series.shape, np.float32)
    with torch.no_grad():
        for t, views in groups.items():
            projector = VolumeProjector(series.angles[views], (nz, ny, nx), device=device)
            predicted[views] = projector.forward(torch.from_numpy(volumes[t])).cpu().numpy()
    return predicted
