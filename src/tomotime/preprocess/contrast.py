"""Contrast conversion: make each image a projection of the object (bright object, dark background).

HAADF/ADF-STEM images already are (intensity grows with the projected mass).
Bright-field TEM/STEM images show the object dark on a bright background: the
Beer-Lambert law gives the projection as ``-log(I / I0)``, with ``I0`` the
incident intensity measured in a vacuum region; for thin specimens the
inversion ``I0 - I`` is its linearisation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived, history
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["convert_contrast", "ContrastParams", "bright_field_score", "looks_like_bright_field"]

BRIGHT_FIELD_SCORE = 0.7
"""Fraction of the off-background pixels that must be darker than the background to call a view bright field."""


class ContrastParams(StepParams):
    mode: Literal["haadf", "log", "invert"] = "log"
    vacuum: tuple[int, int, int, int] | None = None
    vacuum_percentile: float = 99.0


def _incident(view: np.ndarray, vacuum: tuple[int, int, int, int] | None, percentile: float) -> float:
    if vacuum is None:
        return float(np.percentile(view, percentile))
    y0, y1, x0, x1 = vacuum
    region = view[y0:y1, x0:x1]
    if region.size == 0:
        raise InputError(f"convert_contrast: vacuum box {vacuum} (y0, y1, x0, x1) is empty for images of "
                         f"shape {view.shape}")
    return float(region.mean(dtype=np.float64))


@register_step("convert_contrast", ContrastParams)
def convert_contrast(series: TiltSeries, mode: str = "log", vacuum: tuple[int, int, int, int] | None = None,
                     vacuum_percentile: float = 99.0) -> TiltSeries:
    """Convert the contrast to a projection of the object: HAADF as is, bright field by -log(I/I0) or I0 - I.

    Parameters
    ----------
    series : TiltSeries
        Images ``(N, Y, X)`` in detector counts.
    mode : {"haadf", "log", "invert"}
        ``haadf``: unchanged (recorded only). ``log``: ``-log(I / I0)``.
        ``invert``: ``I0 - I`` (thin specimens).
    vacuum : (y0, y1, x0, x1), optional
        Pixel box of a vacuum region; ``I0`` is its mean in each view.
    vacuum_percentile : float
        Without ``vacuum``, ``I0`` is this percentile of each view (the bright
        background).

    Returns
    -------
    TiltSeries
        Its record holds ``I0`` per view and, for ``log``, how many pixels
        were at or below zero (clipped to the smallest positive value).
    """
    if mode == "haadf":
        return derived(series, None, "convert_contrast", mode=mode)
    if not 0 < vacuum_percentile <= 100:
        raise InputError(f"convert_contrast: vacuum_percentile={vacuum_percentile}: expected 0 < p <= 100")
    i0 = np.array([_incident(v, vacuum, vacuum_percentile) for v in series.images])
    if mode == "invert":
        out = i0[:, None, None] - series.images
        return derived(series, out.astype(np.float32), "convert_contrast", mode=mode, I0=i0.tolist())
    if not (i0 > 0).all():
        bad = int(np.argmax(i0 <= 0))
        raise InputError(f"convert_contrast: I0 = {i0[bad]:g} <= 0 in view {bad}; -log(I/I0) needs a positive "
                         "vacuum intensity (raw detector counts, not background-subtracted images)")
    images = series.images.astype(np.float64)
    positive = images[images > 0]
    floor = float(positive.min()) if positive.size else 1.0
    clipped = int((images <= 0).sum())
    out = -np.log(np.maximum(images, floor) / i0[:, None, None])
    return derived(series, out.astype(np.float32), "convert_contrast", mode=mode, I0=i0.tolist(),
                   clipped_pixels=clipped)


def bright_field_score(view: np.ndarray, *, border: float = 0.125, n_sigma: float = 3.0) -> float | None:
    """Fraction of the pixels that differ from the background and are darker than it.

    The background is the median of the image border (``border`` of each
    side), its spread the border's median absolute deviation. Returns
    ``None`` when fewer than 1 % of the pixels differ from the background.
    """
    v = np.asarray(view, dtype=np.float64)
    by, bx = max(1, int(v.shape[0] * border)), max(1, int(v.shape[1] * border))
    ring = np.concatenate([v[:by].ravel(), v[-by:].ravel(), v[by:-by, :bx].ravel(), v[by:-by, -bx:].ravel()])
    level = float(np.median(ring))
    spread = 1.4826 * float(np.median(np.abs(ring - level))) or float(np.std(ring)) or 1e-12
    off = np.abs(v - level) > n_sigma * spread
    if off.mean() < 0.01:
        return None
    return float((v[off] < level).mean())


def looks_like_bright_field(series: TiltSeries, *, threshold: float = BRIGHT_FIELD_SCORE) -> tuple[bool, float | None]:
    """Whether the views nearest 0 deg show a dark object on a bright background, and the median score.

    A series whose contrast was converted already (a ``convert_contrast``
    record) is never flagged.
    """
    if any(r.get("step") == "convert_contrast" for r in history(series)):
        return False, None
    order = np.argsort(np.abs(series.angles))[: max(1, min(5, len(series)))]
    scores = [s for s in (bright_field_score(series.images[i]) for i in order) if s is not None]
    if not scores:
        return False, None
    score = float(np.median(scores))
    return score > threshold, score
