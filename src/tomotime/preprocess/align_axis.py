"""Tilt-axis orientation (in-plane rotation) by the common-line criterion.

For a tilt about the image Y axis, summing a projection across the axis (over
X) gives ``integral f(x, y, z) dx dz`` for every row ``y``: the same profile in
every view, whatever the tilt angle. When the axis is turned in the image by
``psi``, the row sums mix rows differently in each view. For each candidate
``psi`` the images are resampled (with the series' shifts) onto a padded
detector, their row-sum profiles normalised, and the spread of the profiles
across views is the cost; a coarse grid and a bounded scalar search find its
minimum. The axis offset across the image is not seen by this criterion (the
row sums do not depend on it); :func:`~tomotime.preprocess.align_projection.align_projection`
estimates it with the per-view shifts.

Each profile is first shifted onto the mean profile, so per-view shifts along
the axis do not count. Measured (``benchmarks/bench_align.py``, 2 % noise,
after a shift alignment): 0.06-0.08 deg error on six scattered particles; up to
4 deg on a compact, centred phantom, where a turned axis mostly moves each view
along the axis by a view-dependent amount (absorbed by those shifts) and only a
weak shear across the object's width is left.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import minimize_scalar
from skimage.registration import phase_cross_correlation

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess.alignment import add_image_shifts, alignment_failed, current_poses, flat_views, with_poses
from tomotime.preprocess.poses import apply_poses

__all__ = ["align_axis", "common_line_cost"]


def _profiles(images: np.ndarray, poses: np.ndarray, rotation: float, pad: int, smooth: float) -> np.ndarray:
    trial = np.array(poses, np.float64)
    trial[:, 0] += rotation
    trial[:, 1] = 0.0
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    profiles = apply_poses(padded, trial, order=3).sum(axis=2).astype(np.float64)
    if smooth > 0:  # views resampled by different sub-pixel amounts are blurred differently
        profiles = ndimage.gaussian_filter1d(profiles, smooth, axis=1)
    profiles -= profiles.mean(axis=1, keepdims=True)
    return profiles / np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-30)


def _registered(profiles: np.ndarray, rounds: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Profiles shifted onto their mean (sub-pixel, by Fourier shift) and the shifts (px) taken out."""
    freq = np.fft.fftfreq(profiles.shape[1])
    spectra = np.fft.fft(profiles, axis=1)
    shifts = np.zeros(len(profiles))
    for _ in range(rounds):
        moved = np.fft.ifft(spectra * np.exp(2j * np.pi * freq * shifts[:, None]), axis=1).real
        mean = moved.mean(axis=0)
        for i, p in enumerate(profiles):
            shift, _, _ = phase_cross_correlation(mean, p, upsample_factor=20, normalization=None)
            shifts[i] = -float(shift[0])
    moved = np.fft.ifft(spectra * np.exp(2j * np.pi * freq * shifts[:, None]), axis=1).real
    return moved, shifts


def common_line_cost(images: np.ndarray, poses: np.ndarray, rotation: float, *, pad: int,
                     smooth: float = 1.5) -> float:
    """Spread across views of the normalised row-sum profiles with the axis turned by ``rotation`` degrees.

    Each view's profile is first shifted onto the mean profile, so shifts
    along the axis do not count.
    """
    moved, _ = _registered(_profiles(images, poses, rotation, pad, smooth))
    return float(np.mean((moved - moved.mean(axis=0)) ** 2))


def _search(cost, centre: float, half_width: float, step: float, tolerance: float) -> float:
    grid = centre + np.arange(-half_width, half_width + step / 2, step)
    values = [cost(v) for v in grid]
    best = grid[int(np.argmin(values))]
    result = minimize_scalar(cost, bounds=(best - step, best + step), method="bounded",
                             options={"xatol": tolerance})
    return float(result.x) if result.fun <= min(values) else float(best)


def align_axis(series: TiltSeries, *, max_rotation: float = 6.0, step: float = 1.0) -> TiltSeries:
    """Estimate the in-plane rotation of the tilt axis (degrees) from common lines.

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)`` of an object on an empty background, best after
        a shift alignment (:func:`~tomotime.preprocess.align_xcorr.align_xcorr`):
        the shifts along the axis must be right.
    max_rotation : float
        Search ``-max_rotation .. max_rotation`` degrees around the current rotation.
    step : float
        Grid step of the coarse search, degrees (then refined to 0.01 deg).

    Returns
    -------
    TiltSeries
        The series with the rotation added to ``poses[:, 0]``; unchanged, with
        an :class:`AlignmentWarning`, for fewer than three views, flat views or
        a tilt range under 10 degrees.
    """
    if not (max_rotation > 0 and step > 0):
        raise InputError(f"max_rotation={max_rotation}, step={step}: expected positive angles in degrees")
    if len(series) < 3:
        return alignment_failed(series, "tilt-axis", f"{len(series)} view(s) cannot tell the axis; expected at least 3")
    flat = flat_views(series.images)
    if flat.size:
        return alignment_failed(series, "tilt-axis", f"view {flat[0]} is flat (no contrast)")
    if np.ptp(series.angles) < 10:
        return alignment_failed(series, "tilt-axis", f"the tilt range {np.ptp(series.angles):.1f} deg is too "
                                "narrow to tell the axis (expected at least 10 deg)")
    poses = current_poses(series)
    images = series.images.astype(np.float64)
    pad = int(np.ceil(max(series.shape[1:]) * 0.5 * np.sin(np.deg2rad(abs(poses[:, 0]).max() + max_rotation)))) + 2
    cost = lambda r: common_line_cost(images, poses, r, pad=pad)  # noqa: E731
    best = _search(cost, 0.0, max_rotation, step, 0.01)
    details = {"rotation_deg": best, "cost": cost(best), "cost_at_zero": cost(0.0)}
    _, along = _registered(_profiles(images, poses, best, pad, 0.0))
    poses[:, 0] += best
    poses = add_image_shifts(poses, np.stack([along - along.mean(), np.zeros(len(along))], axis=1))
    return with_poses(series, poses, "axis", **details)
