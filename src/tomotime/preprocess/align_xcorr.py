"""Shift alignment by cross-correlation of neighbouring views (as IMOD's ``tiltxcorr``).

Views are taken in order of tilt angle, outward from a reference view (the one
nearest 0 degrees by default, which keeps its place). Each view is registered
to its neighbour towards the reference (``mode="sequential"``) or to the sum of
all views aligned so far (``mode="cumulative"``, less drift over long series,
as IMOD's cumulative correlation). Before correlating, the view farther from 0
degrees is stretched across the tilt axis by the ratio of the cosines, so that
a specimen's features have the same width in both, and both are band-pass
filtered; the peak is found to sub-pixel precision with
:func:`skimage.registration.phase_cross_correlation`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess.alignment import (add_image_shifts, alignment_failed, band_pass, current_poses,
                                           flat_views, reference_view, resampled, view_order_from, with_poses)

__all__ = ["align_xcorr", "relative_shift"]

MODES = ("sequential", "cumulative")


def _stretch_x(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` stretched by ``factor`` across the tilt axis (along X) about its centre."""
    if abs(factor - 1) < 1e-9:
        return image
    centre = (image.shape[1] - 1) / 2
    return ndimage.affine_transform(image, [1.0, 1.0 / factor], offset=[0.0, centre - centre / factor],
                                    order=1, mode="nearest")


def relative_shift(moving: np.ndarray, fixed: np.ndarray, *, stretch: float = 1.0, low: float = 0.01,
                   high: float = 0.25, upsample: int = 20) -> np.ndarray | None:
    """Shift ``(dy, dx)`` in pixels of ``moving`` relative to ``fixed`` (``moving ~ fixed`` moved by it).

    ``moving`` is first stretched by ``stretch`` along X; the X shift is
    returned in the unstretched frame. ``None`` when either image has no
    contrast left after filtering.
    """
    a = band_pass(fixed, low=low, high=high)
    stretched = _stretch_x(np.asarray(moving, np.float64), stretch)
    d = np.zeros(2)
    for _ in range(2):  # the fixed taper pulls the peak towards zero: measure again after moving back
        b = band_pass(ndimage.shift(stretched, -d, order=3, mode="nearest") if d.any() else stretched,
                      low=low, high=high)
        if not (a.std() > 0 and b.std() > 0):
            return None
        shift, _, _ = phase_cross_correlation(a, b, upsample_factor=upsample, normalization=None)
        d = d - np.asarray(shift, np.float64)
    d[1] /= stretch
    return d


def align_xcorr(series: TiltSeries, *, mode: str = "sequential", reference: int | None = None,
                low: float = 0.01, high: float = 0.25, stretch: bool = True, upsample: int = 20) -> TiltSeries:
    """Estimate per-view shifts by cross-correlation of neighbouring views.

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)``; existing poses are applied first and refined.
    mode : {"sequential", "cumulative"}
        Register to the neighbouring view, or to the sum of the views aligned so far.
    reference : int, optional
        Index of the view that keeps its place (default: nearest to 0 degrees).
    low, high : float
        Band-pass cut-offs in cycles per pixel (see :func:`~tomotime.preprocess.alignment.band_pass`).
    stretch : bool
        Stretch the higher-tilt view of each pair by the ratio of cosines.
    upsample : int
        Sub-pixel precision ``1 / upsample`` of the correlation peak.

    Returns
    -------
    TiltSeries
        The series with ``poses`` holding the shifts (pixels) and a record in
        ``metadata["alignment"]``; unchanged, with an :class:`AlignmentWarning`,
        when it cannot be aligned (fewer than two views, a view without contrast).
    """
    if mode not in MODES:
        raise InputError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
    if len(series) < 2:
        return alignment_failed(series, "cross-correlation", "a single view has nothing to correlate with")
    ref = reference_view(series.angles, reference)
    if not 0 <= ref < len(series):
        raise InputError(f"reference={reference}: expected a view index in 0..{len(series) - 1}")
    images = resampled(series).images.astype(np.float64)
    flat = flat_views(images)
    if flat.size:
        return alignment_failed(series, "cross-correlation", f"view {flat[0]} (of {len(series)}) is flat "
                                f"(no contrast), {flat.size} flat view(s) in all")
    cosines = np.cos(np.deg2rad(np.clip(np.abs(series.angles), 0, 89.0)))
    shifts = np.zeros((len(series), 2))
    total = images[ref].copy()
    for view, neighbour in view_order_from(series.angles, ref):
        factor = cosines[neighbour] / cosines[view] if stretch else 1.0
        fixed = images[neighbour] if mode == "sequential" else total
        d = relative_shift(images[view], fixed, stretch=factor, low=low, high=high, upsample=upsample)
        if d is None:
            return alignment_failed(series, "cross-correlation", f"view {view} has no contrast after band-pass "
                                    f"filtering ({low}..{high} cycles/px)")
        shifts[view] = d if mode == "cumulative" else shifts[neighbour] + d
        if mode == "cumulative":
            total += ndimage.shift(images[view], -shifts[view], order=1, mode="nearest")
    poses = add_image_shifts(current_poses(series), shifts)
    return with_poses(series, poses, "xcorr", mode=mode, reference=ref, low=low, high=high, stretch=stretch)
