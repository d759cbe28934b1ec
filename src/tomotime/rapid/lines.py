"""Dislocation line measures: width (FWHM) and intensity of dark lines from automatic profiles; PSNR.

As in Tables 1-3 of Zhao et al.: PSNR of a filtered frame against the
averaged reference; the *relative line width* and *relative line intensity*
of a filtered frame, i.e. its full width at half maximum and depth of line
profiles drawn across each dislocation, divided by those of the reference.
Profiles are placed automatically: points along the ridges of dark lines in
the reference (Sato ridge filter, thresholded, skeletonised), each with a
profile across the local line direction (from the Hessian).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import hessian_matrix, hessian_matrix_eigvals
from skimage.filters import sato, threshold_otsu
from skimage.morphology import skeletonize

from tomotime.errors import InputError
from tomotime.metrics.image import psnr

__all__ = ["Profiles", "profile_fwhm", "place_profiles", "sample_profiles", "line_measures", "psnr"]


def profile_fwhm(profile: np.ndarray, spacing: float = 1.0) -> tuple[float, float]:
    """Full width at half depth and depth of the dark dip in the middle of a 1D profile.

    The baseline is the mean of the outer tenth of the profile on each side,
    the dip is the minimum within the central half; the half-depth crossings on
    each side of the minimum are found by linear interpolation.

    Returns
    -------
    (fwhm, depth) : (float, float)
        Width in units of ``spacing`` and depth in intensity units; ``nan``
        when there is no dip or a crossing lies outside the profile.
    """
    p = np.asarray(profile, np.float64)
    n = p.size
    edge = max(1, n // 10)
    base = 0.5 * (p[:edge].mean() + p[-edge:].mean())
    lo, hi = n // 4, n - n // 4
    m = lo + int(np.argmin(p[lo:hi]))
    depth = base - p[m]
    if not depth > 0:
        return float("nan"), float("nan")
    half = base - depth / 2

    def crossing(step: int) -> float:
        i = m
        while 0 <= i + step < n and p[i + step] < half:
            i += step
        j = i + step
        if not 0 <= j < n:
            return float("nan")
        return i + step * (half - p[i]) / (p[j] - p[i])

    left, right = crossing(-1), crossing(1)
    return float((right - left) * spacing), float(depth)


@dataclass(frozen=True)
class Profiles:
    """Profile positions: centres ``(P, 2)`` as ``(y, x)`` and unit normals ``(P, 2)`` across the line."""

    centres: np.ndarray
    normals: np.ndarray

    def __len__(self) -> int:
        return len(self.centres)


def place_profiles(reference: np.ndarray, *, sigma: float = 1.5, spacing: int = 6, margin: int = 8,
                   max_profiles: int = 200) -> Profiles:
    """Automatic profile positions along the dark lines of a reference image ``(Y, X)``.

    Ridge pixels: Sato filter (dark ridges) above Otsu's threshold,
    skeletonised; every ``spacing``-th skeleton pixel away from the border
    and from branch points is a profile centre; the normal is the Hessian's
    eigenvector of largest curvature.
    """
    ref = np.asarray(reference, np.float64)
    if ref.ndim != 2:
        raise InputError(f"reference: expected an image (Y, X), got shape {ref.shape}")
    ridge = sato(ref, sigmas=[sigma], black_ridges=True)
    if not np.isfinite(ridge).all() or ridge.max() <= 0:
        return Profiles(np.zeros((0, 2)), np.zeros((0, 2)))
    skeleton = skeletonize(ridge > threshold_otsu(ridge))
    neighbours = ndimage.convolve(skeleton.astype(int), np.ones((3, 3), int), mode="constant") - 1
    simple = skeleton & (neighbours == 2)  # on a line, not at an end or junction
    simple[:margin] = simple[-margin:] = False
    simple[:, :margin] = simple[:, -margin:] = False
    points = np.argwhere(simple)[::spacing][:max_profiles]
    h = hessian_matrix(ref, sigma=sigma, order="rc", use_gaussian_derivatives=True)
    hrr, hrc, hcc = (c[points[:, 0], points[:, 1]] for c in h)
    big = hessian_matrix_eigvals(h)[0][points[:, 0], points[:, 1]]
    normals = np.column_stack([hrc, big - hrr])  # eigenvector (y, x) of the largest eigenvalue
    alt = np.column_stack([big - hcc, hrc])
    use_alt = np.linalg.norm(alt, axis=1) > np.linalg.norm(normals, axis=1)
    normals[use_alt] = alt[use_alt]
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return Profiles(points.astype(np.float64), normals)


def sample_profiles(image: np.ndarray, profiles: Profiles, *, half_length: float = 6.0,
                    step: float = 0.25) -> np.ndarray:
    """Profiles ``(P, L)`` of ``image`` across the lines (cubic interpolation), ``L = 2 half_length / step + 1``."""
    t = np.arange(-half_length, half_length + step / 2, step)
    coords = profiles.centres[:, :, None] + profiles.normals[:, :, None] * t[None, None, :]  # (P, 2, L)
    values = ndimage.map_coordinates(np.asarray(image, np.float64), coords.transpose(1, 0, 2).reshape(2, -1),
                                     order=3, mode="nearest")
    return values.reshape(len(profiles), t.size)


def line_measures(image: np.ndarray, reference: np.ndarray, profiles: Profiles | None = None, *,
                  half_length: float = 6.0) -> dict[str, float]:
    """Relative line width and intensity of ``image`` against ``reference`` (the paper's Tables 2-3).

    Each profile's FWHM and depth are measured in both images; profiles that
    fail in either are dropped. Returns the mean and standard deviation of the
    per-profile ratios (as fractions, 1.0 = 100 %), the number of profiles
    used, and the reference's mean FWHM in pixels.
    """
    profiles = place_profiles(reference) if profiles is None else profiles
    if len(profiles) == 0:
        raise InputError("no dislocation lines found in the reference to place profiles on")
    step = 0.25
    a = sample_profiles(image, profiles, half_length=half_length, step=step)
    b = sample_profiles(reference, profiles, half_length=half_length, step=step)
    wa, da = np.array([profile_fwhm(p, step) for p in a]).T
    wb, db = np.array([profile_fwhm(p, step) for p in b]).T
    ok = np.isfinite(wa) & np.isfinite(wb) & (wb > 0) & (db > 0)
    if not ok.any():
        raise InputError(f"none of the {len(profiles)} line profiles could be measured")
    width, depth = wa[ok] / wb[ok], da[ok] / db[ok]
    return {"relative_width": float(np.mean(width)), "relative_width_sd": float(np.std(width)),
            "relative_intensity": float(np.mean(depth)), "relative_intensity_sd": float(np.std(depth)),
            "profiles": int(ok.sum()), "reference_fwhm_px": float(np.mean(wb[ok]))}
