"""Simulated tilt-time acquisition of a changing specimen.

One projection is recorded per time step: projection ``i`` images the volume at
step ``i`` at the ``i``-th angle of the tilt scheme (GRS over +-70 degrees by
default), with the project's projector. Optional effects, applied in this order:

1. continuous tilting during a frame: the image is the mean of ``blur_samples``
   projections at the midpoints of equal parts of the swept angle ``tilt_blur``
   (degrees), the midpoint rule for the mean over the sweep;
2. STEM scan time lag: detector row ``y`` (scan line) is recorded at angle
   ``theta + row_lag * y / Y`` (degrees), the "curl" artefact of rapid STEM
   tomography;
3. misalignment: a random shift (normal, ``shift_std`` pixels) and a fixed
   in-plane tilt-axis rotation error (``axis_rotation`` degrees), applied to the
   image with the pose convention of :mod:`tomotime.physics.parallel3d`;
4. electron dose: ``Poisson(image * dose) / dose`` (``dose`` in counts per unit
   projected intensity per pixel);
5. Gaussian read noise of standard deviation ``read_noise``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from scipy import ndimage

from tomotime.data import TiltSeries, VolumeSeries, check_times
from tomotime.errors import InputError
from tomotime.geometry import grs_angles
from tomotime.physics.parallel2d import project_slices

__all__ = ["simulate_acquisition", "project_rows", "misalign_image"]


def project_rows(volume: np.ndarray, row_angles: np.ndarray) -> np.ndarray:
    """Project each detector row of ``volume`` ``(Z, Y, X)`` at its own angle ``(Y,)`` (degrees) → ``(Y, X)``."""
    slices = torch.from_numpy(np.ascontiguousarray(volume.transpose(1, 0, 2)))  # (Y, Z, X)
    with torch.no_grad():
        return project_slices(slices, torch.as_tensor(row_angles, dtype=torch.float32)).numpy()


def misalign_image(image: np.ndarray, *, axis_rotation: float, shift_y: float, shift_x: float) -> np.ndarray:
    """Rotate ``image`` ``(Y, X)`` in-plane by ``axis_rotation`` degrees, then shift it (pixels).

    Output pixel ``(y, s)`` (centred coordinates) samples the input at
    ``R(-psi) @ ((y, s) - shift)``, matching the pose model of the 3D projector.
    """
    psi = np.radians(axis_rotation)
    c, s = np.cos(psi), np.sin(psi)
    matrix = np.array([[c, -s], [s, c]])
    centre = (np.array(image.shape) - 1) / 2
    offset = centre - matrix @ (centre + np.array([shift_y, shift_x]))
    return ndimage.affine_transform(image, matrix, offset=offset, order=1, mode="constant", cval=0.0)


def _check_options(n: int, dose, read_noise, shift_std, tilt_blur, blur_samples) -> None:
    if dose is not None and not (np.isfinite(dose) and dose > 0):
        raise InputError(f"dose={dose}: expected a positive number of counts per unit intensity (or None)")
    for name, value in (("read_noise", read_noise), ("shift_std", shift_std), ("tilt_blur", tilt_blur)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name}={value}: expected a non-negative number")
    if int(blur_samples) != blur_samples or blur_samples < 1:
        raise InputError(f"blur_samples={blur_samples}: expected a positive integer")
    if n < 2:
        raise InputError(f"the series has {n} time steps; expected at least 2")


def simulate_acquisition(
    truth: VolumeSeries | Iterable[np.ndarray],
    *,
    angles=None,
    times=None,
    dose: float | None = None,
    read_noise: float = 0.0,
    shift_std: float = 0.0,
    axis_rotation: float = 0.0,
    tilt_blur: float = 0.0,
    blur_samples: int = 5,
    row_lag: float = 0.0,
    pixel_size: float | None = None,
    seed: int = 0,
) -> TiltSeries:
    """Record one projection per time step of a ground-truth volume series.

    Parameters
    ----------
    truth : VolumeSeries
        Ground truth ``(T, Z, Y, X)``; read one volume at a time.
    angles : array_like, shape (T,), optional
        Tilt angle of each step in degrees (default ``grs_angles(T)``, +-70 deg).
    times : array_like, shape (T,), optional
        Acquisition times in seconds (default: the truth's times).
    dose, read_noise, shift_std, axis_rotation, tilt_blur, blur_samples, row_lag
        Acquisition effects, see the module docstring. All off by default.
    pixel_size : float, optional
        nm per pixel (default: the truth's voxel size).
    seed : int
        Seed of all random effects.

    Returns
    -------
    TiltSeries
        ``(T, Y, X)`` projections with angles and times; the true per-view poses
        (``[axis_rotation, 0, shift_y, shift_x]``) are in ``metadata["true_poses"]``.
    """
    if not isinstance(truth, VolumeSeries):
        truth = VolumeSeries(np.asarray(truth))
    n, nz, ny, nx = truth.shape
    _check_options(n, dose, read_noise, shift_std, tilt_blur, blur_samples)
    angles = grs_angles(n) if angles is None else np.asarray(angles, dtype=np.float64).reshape(-1)
    if angles.size != n:
        raise InputError(f"angles: {angles.size} angles given for {n} time steps; expected one per step")
    times = truth.times if times is None else check_times(times, n)
    if not np.isfinite(angles).all() or (np.abs(angles) > 90).any():
        raise InputError("angles: expected finite tilt angles inside [-90, 90] degrees")
    rng = np.random.default_rng(seed)
    shifts = rng.normal(0.0, shift_std, size=(n, 2)) if shift_std > 0 else np.zeros((n, 2))
    sweep = ((np.arange(blur_samples) + 0.5) / blur_samples - 0.5) * tilt_blur if tilt_blur > 0 else np.zeros(1)
    lag = row_lag * np.arange(ny) / ny
    images = np.empty((n, ny, nx), np.float32)
    for i in range(n):
        volume = truth[i]
        image = np.mean([project_rows(volume, angles[i] + offset + lag) for offset in sweep], axis=0)
        if shift_std > 0 or axis_rotation != 0:
            image = misalign_image(image, axis_rotation=axis_rotation, shift_y=shifts[i, 0], shift_x=shifts[i, 1])
        if dose is not None:
            image = rng.poisson(np.clip(image, 0, None) * dose) / dose
        if read_noise > 0:
            image = image + rng.normal(0.0, read_noise, size=image.shape)
        images[i] = image
    poses = np.zeros((n, 4), np.float32)
    poses[:, 0] = axis_rotation
    poses[:, 2:] = shifts
    metadata = {
        "simulated": True,
        "dose": dose,
        "read_noise": read_noise,
        "tilt_blur_deg": tilt_blur,
        "row_lag_deg": row_lag,
        "true_poses": poses.tolist(),
        "seed": seed,
    }
    return TiltSeries(images, angles, times=times,
                      pixel_size=truth.voxel_size if pixel_size is None else pixel_size, metadata=metadata)
