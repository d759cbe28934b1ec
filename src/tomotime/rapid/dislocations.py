"""Dislocation analysis: binarised series, line centres per cross-section, matching, Delta G.

As in Zhao et al.: the (filtered, corrected) series is binarised before SIRT
(:func:`binarise_series`: dark lines -> 1); in the reconstruction each
cross-section's line blobs are located by their intensity-weighted centres
(:func:`line_centres`), matched between two reconstructions slice by slice
(Hungarian assignment within ``max_distance``) and compared: the mean
absolute centre differences ``Delta Gx, Delta Gy, Delta Gz`` (pixels)
(:func:`centre_differences`). Cross-sections perpendicular to Y give
``Delta Gx`` and ``Delta Gz``, those perpendicular to X give ``Delta Gy`` and
``Delta Gz``; ``Delta Gz`` is their pooled mean.

The time lag of a continuous-tilt scan turns every cross-section perpendicular
to the tilt axis by an angle that grows along the axis (row by row), which
curls the reconstruction about the axis; :func:`fit_twist` measures that curl
from the matched centres, so the z error it causes can be told apart from the
rest of ``Delta Gz``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage.filters import threshold_otsu

from tomotime.errors import InputError

__all__ = ["binarise_series", "line_centres", "match_centres", "centre_differences", "fit_twist"]


def binarise_series(images: np.ndarray, *, background_sigma: float = 8.0, smooth: float = 0.7) -> np.ndarray:
    """Binary line maps ``(N, Y, X)`` (float32 0/1) of a bright-field series.

    Each frame's relative darkness ``1 - I / background`` (background: a wide
    Gaussian of the frame) is lightly smoothed and thresholded by Otsu's method.
    """
    images = np.asarray(images, np.float64)
    if images.ndim != 3:
        raise InputError(f"series: expected frames (N, Y, X), got shape {images.shape}")
    out = np.zeros(images.shape, np.float32)
    for i, im in enumerate(images):
        background = ndimage.gaussian_filter(im, background_sigma)
        dark = ndimage.gaussian_filter(1 - im / np.maximum(background, 1e-6), smooth)
        if dark.max() > dark.min():
            out[i] = dark > threshold_otsu(dark)
    return out


def line_centres(volume: np.ndarray, axis: int, *, threshold: float | None = None,
                 min_voxels: int = 2) -> np.ndarray:
    """Intensity-weighted centres ``(K, 3)`` ``(z, y, x)`` of the line blobs in every cross-section along ``axis``.

    Blobs: connected regions above ``threshold`` (default Otsu of the volume)
    of each slice ``volume.take(k, axis)``, with at least ``min_voxels`` pixels.
    """
    vol = np.asarray(volume, np.float64)
    if vol.ndim != 3 or axis not in (0, 1, 2):
        raise InputError(f"volume: expected (Z, Y, X) and axis 0, 1 or 2, got shape {vol.shape}, axis {axis}")
    t = threshold_otsu(vol) if threshold is None else float(threshold)
    out = []
    for k in range(vol.shape[axis]):
        sl = vol.take(k, axis=axis)
        labels, n = ndimage.label(sl > t)
        if n == 0:
            continue
        weights = np.clip(sl - t, 0, None)
        sizes = ndimage.sum_labels(np.ones_like(sl), labels, np.arange(1, n + 1))
        centres = np.array(ndimage.center_of_mass(weights, labels, np.arange(1, n + 1)))
        for (a, b), size in zip(centres, sizes):
            if size >= min_voxels and np.isfinite(a):
                point = [a, b]
                point.insert(axis, float(k))
                out.append(point)
    return np.array(out, np.float64).reshape(-1, 3)


def match_centres(a: np.ndarray, b: np.ndarray, axis: int, *,
                  max_distance: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of centres in the same cross-section (equal coordinate ``axis``) within ``max_distance`` px.

    Returns the matched rows of ``a`` and ``b`` as two ``(M, 3)`` arrays.
    """
    pa, pb = [], []
    other = [d for d in range(3) if d != axis]
    for k in np.intersect1d(a[:, axis], b[:, axis]):
        ia, ib = np.flatnonzero(a[:, axis] == k), np.flatnonzero(b[:, axis] == k)
        cost = np.linalg.norm(a[ia][:, None, other] - b[ib][None, :, other], axis=-1)
        rows, cols = linear_sum_assignment(cost)
        ok = cost[rows, cols] <= max_distance
        pa.append(a[ia[rows[ok]]])
        pb.append(b[ib[cols[ok]]])
    if not pa:
        return np.zeros((0, 3)), np.zeros((0, 3))
    return np.concatenate(pa), np.concatenate(pb)


def centre_differences(volume: np.ndarray, reference: np.ndarray, *, max_distance: float = 3.0,
                       threshold: float | None = None, reference_threshold: float | None = None) -> dict[str, float]:
    """Mean absolute centre differences ``dGx, dGy, dGz`` (pixels) between two reconstructions ``(Z, Y, X)``.

    Also returns the number of matched centres and the fraction of the
    reference's centres that found a partner.
    """
    va, vb = np.asarray(volume), np.asarray(reference)
    if va.shape != vb.shape:
        raise InputError(f"reconstructions of different shapes: {va.shape} and {vb.shape}")
    diffs, matched, total, pairs = {0: [], 1: [], 2: []}, 0, 0, []
    for axis in (1, 2):
        ca = line_centres(va, axis, threshold=threshold)
        cb = line_centres(vb, axis, threshold=reference_threshold)
        pa, pb = match_centres(ca, cb, axis, max_distance=max_distance)
        matched, total = matched + len(pa), total + len(cb)
        pairs.append((pa, pb))
        for d in range(3):
            if d != axis:
                diffs[d].append(np.abs(pa[:, d] - pb[:, d]))
    if matched == 0:
        raise InputError("no line centres could be matched between the two reconstructions")
    mean = {d: float(np.mean(np.concatenate(v))) for d, v in diffs.items()}
    # Both cross-section families measure z, so the curl is fitted to all their pairs.
    twist = fit_twist(np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]), va.shape)
    return {"dGx": mean[2], "dGy": mean[1], "dGz": mean[0], "matched": matched,
            "matched_fraction": matched / max(total, 1)} | twist


def fit_twist(points: np.ndarray, reference: np.ndarray, shape: tuple[int, int, int]) -> dict[str, float]:
    """The curl about the tilt axis (Y) that best explains the z differences of matched centres.

    A cross-section ``y`` turned by ``phi(y) = kappa * (y - yc)`` about the
    axis moves a centre at ``x`` by ``dz = phi(y) * (x - xc)`` (small angles;
    ``yc, xc``: the volume's middle row and column, where the axis and the
    middle of a frame's scan lie). ``kappa`` is fitted by least squares to
    ``z - z_ref`` of the matched pairs.

    Parameters
    ----------
    points, reference : numpy.ndarray, shape (M, 3)
        Matched centres ``(z, y, x)`` (pixels) of the volume and of the reference.
    shape : (int, int, int)
        The volumes' ``(Z, Y, X)``.

    Returns
    -------
    dict
        ``twist_deg``: the turn between the first and the last row (degrees,
        signed); ``dGz_twist``: mean ``|dz|`` the fitted curl explains (pixels);
        ``dGz_untwisted``: mean ``|dz|`` left after removing it (pixels).
    """
    points, reference = np.asarray(points, np.float64), np.asarray(reference, np.float64)
    dz = points[:, 0] - reference[:, 0]
    lever = (reference[:, 1] - (shape[1] - 1) / 2) * (reference[:, 2] - (shape[2] - 1) / 2)
    kappa = float(lever @ dz / (lever @ lever)) if lever.any() else 0.0
    return {"twist_deg": float(np.degrees(kappa * (shape[1] - 1))),
            "dGz_twist": float(np.mean(np.abs(kappa * lever))),
            "dGz_untwisted": float(np.mean(np.abs(dz - kappa * lever)))}
