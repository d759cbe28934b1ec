"""Hot, dead and saturated pixel repair."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["repair_pixels", "find_outliers", "fill_pixels", "RepairParams"]


RANGE_FLOOR = 0.005
"""Smallest deviation unit, as a fraction of the view's intensity range."""


class RepairParams(StepParams):
    threshold: float = 8.0
    low: float | None = None
    high: float | None = None
    dead: bool = True


def find_outliers(view: np.ndarray, threshold: float, *, window: int = 7) -> np.ndarray:
    """Isolated spikes: pixels above all 8 neighbours (hot) or below all (cold) by ``threshold`` deviations.

    The deviation unit is the local median absolute difference from the 3x3
    median in a ``window`` x ``window`` neighbourhood (x 1.4826), floored at
    its value over the view and at ``RANGE_FLOOR`` of the view's range (0.5th
    to 99.5th percentile): edges and texture need larger steps than flat
    regions, and quantised flat regions do not flag one-count steps. A spike
    of two or more touching pixels is not found.
    """
    v = view.astype(np.float64)
    ring = np.ones((3, 3), dtype=bool)
    ring[1, 1] = False
    above = v - ndimage.maximum_filter(v, footprint=ring, mode="reflect")
    below = ndimage.minimum_filter(v, footprint=ring, mode="reflect") - v
    diff = np.abs(v - ndimage.median_filter(v, size=3, mode="reflect"))
    low, high = np.percentile(v, [0.5, 99.5])
    floor = max(1.4826 * float(np.median(diff)), RANGE_FLOOR * float(high - low), np.finfo(np.float32).tiny)
    unit = threshold * np.maximum(1.4826 * ndimage.median_filter(diff, size=window, mode="reflect"), floor)
    return (above > unit) | (below > unit)


def fill_pixels(view: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Replace ``bad`` pixels by the mean of their good neighbours, growing inwards over larger holes."""
    out = view.astype(np.float64).copy()
    good = ~bad
    if not good.any():
        raise InputError("repair_pixels: every pixel of a view is flagged; nothing to repair from")
    kernel = np.ones((3, 3))
    while not good.all():
        total = ndimage.convolve(np.where(good, out, 0.0), kernel, mode="constant")
        count = ndimage.convolve(good.astype(np.float64), kernel, mode="constant")
        fill = ~good & (count > 0)
        out[fill] = total[fill] / count[fill]
        good = good | fill
    return out


@register_step("repair_pixels", RepairParams)
def repair_pixels(series: TiltSeries, threshold: float = 8.0, low: float | None = None, high: float | None = None,
                  dead: bool = True) -> TiltSeries:
    """Replace hot/cold spikes, dead pixels and saturated pixels by the mean of their good neighbours.

    Parameters
    ----------
    threshold : float
        A spike differs from its 3x3 median by more than this many robust
        (MAD) deviations of that difference over the view.
    low, high : float, optional
        Values at or below ``low`` / at or above ``high`` are saturated
        (e.g. 0 and 65535 for a 16-bit detector).
    dead : bool
        Also flag pixels that hold the same value in every view while the
        view around them changes (a stuck detector pixel).
    """
    if not threshold > 0:
        raise InputError(f"repair_pixels: threshold={threshold}: expected a positive number")
    images = series.images
    stuck = np.zeros(images.shape[1:], dtype=bool)
    if dead and len(series) > 2:
        constant = (images == images[0]).all(axis=0)
        varying = ndimage.uniform_filter(images.std(axis=0).astype(np.float64), size=3) > 0
        stuck = constant & varying
    out = np.empty_like(images)
    counts = {"spikes": 0, "saturated": 0, "stuck": int(stuck.sum())}
    for i, view in enumerate(images):
        bad = find_outliers(view, threshold)
        counts["spikes"] += int(bad.sum())
        saturated = np.zeros_like(bad)
        if low is not None:
            saturated |= view <= low
        if high is not None:
            saturated |= view >= high
        counts["saturated"] += int(saturated.sum())
        out[i] = fill_pixels(view, bad | saturated | stuck)
    return derived(series, out, "repair_pixels", threshold=threshold, low=low, high=high, dead=dead, **counts)
