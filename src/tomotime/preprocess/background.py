"""Background removal: median/percentile subtraction, masking at k x Otsu, Bernstein-polynomial fit.

All three expect the object bright on a darker background (HAADF, or bright
field after :func:`~tomotime.preprocess.contrast.convert_contrast`).
"""

from __future__ import annotations

from math import comb
from typing import Literal

import numpy as np
from skimage.filters import threshold_otsu

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["subtract_background", "mask_background", "fit_background", "otsu_threshold", "bernstein_basis",
           "SubtractParams", "MaskParams", "FitParams"]


class SubtractParams(StepParams):
    method: Literal["median", "percentile"] = "median"
    percentile: float = 5.0


class MaskParams(StepParams):
    k: float = 0.9
    fill: float = 0.0


class FitParams(StepParams):
    degree: int = 3
    k: float = 1.0
    iterations: int = 2


def otsu_threshold(view: np.ndarray, *, where: str = "") -> float:
    """Otsu's threshold of one image (scikit-image); refuses a flat image."""
    if float(view.max()) == float(view.min()):
        raise InputError(f"{where}: the image is flat (every pixel {float(view.min()):g}); Otsu's threshold is "
                         "undefined")
    return float(threshold_otsu(view))


@register_step("subtract_background", SubtractParams)
def subtract_background(series: TiltSeries, method: str = "median", percentile: float = 5.0) -> TiltSeries:
    """Subtract from each view its median (DIP-STER's step) or a low percentile of its values."""
    if not 0 <= percentile <= 100:
        raise InputError(f"subtract_background: percentile={percentile}: expected 0 <= p <= 100")
    q = 50.0 if method == "median" else percentile
    levels = np.percentile(series.images.reshape(len(series), -1), q, axis=1)
    out = (series.images - levels[:, None, None].astype(np.float32)).astype(np.float32)
    return derived(series, out, "subtract_background", method=method, percentile=q, levels=levels.tolist())


@register_step("mask_background", MaskParams)
def mask_background(series: TiltSeries, k: float = 0.9, fill: float = 0.0) -> TiltSeries:
    """Set the pixels below ``k`` x Otsu's threshold of their view to ``fill`` (DIP-STER: k = 0.9, fill 0).

    Raises
    ------
    InputError
        If a view is flat, or the threshold removes every pixel of a view.
    """
    out = series.images.copy()
    thresholds, kept = [], []
    for i, view in enumerate(series.images):
        level = k * otsu_threshold(view, where=f"mask_background: view {i} ({series.angles[i]:g} deg)")
        keep = view >= level
        if not keep.any():
            raise InputError(f"mask_background: k={k} x Otsu = {level:.4g} removes every pixel of view {i} "
                             f"({series.angles[i]:g} deg; maximum {float(view.max()):.4g}); use a smaller k")
        out[i][~keep] = fill
        thresholds.append(level)
        kept.append(float(keep.mean()))
    return derived(series, out, "mask_background", k=k, fill=fill, thresholds=thresholds, kept_fraction=kept)


def bernstein_basis(shape: tuple[int, int], degree: int) -> np.ndarray:
    """Bivariate Bernstein polynomials ``B_i(v) B_j(u)`` on ``u, v`` in [0, 1], shape ``((degree+1)^2, Y, X)``."""
    ny, nx = shape
    v, u = np.linspace(0, 1, ny), np.linspace(0, 1, nx)
    bv = np.stack([comb(degree, i) * v**i * (1 - v) ** (degree - i) for i in range(degree + 1)])
    bu = np.stack([comb(degree, j) * u**j * (1 - u) ** (degree - j) for j in range(degree + 1)])
    return np.einsum("iy,jx->ijyx", bv, bu).reshape(-1, ny, nx)


@register_step("fit_background", FitParams)
def fit_background(series: TiltSeries, degree: int = 3, k: float = 1.0, iterations: int = 2) -> TiltSeries:
    """Subtract a bivariate Bernstein polynomial fitted, per view, to the pixels outside the object (INR paper).

    The object is the pixels above ``k`` x Otsu's threshold: of the view on the
    first pass, of the view minus the current fit on later passes.

    Raises
    ------
    InputError
        If the mask leaves fewer background pixels than the polynomial has
        coefficients, or ``degree`` / ``iterations`` are out of range.
    """
    if not 0 <= degree <= 8 or iterations < 1:
        raise InputError(f"fit_background: degree={degree}, iterations={iterations}: expected 0 <= degree <= 8 "
                         "and iterations >= 1")
    basis = bernstein_basis(series.shape[1:], degree)
    flat = basis.reshape(basis.shape[0], -1).T
    out = np.empty_like(series.images)
    coefficients, fractions = [], []
    for i, view in enumerate(series.images.astype(np.float64)):
        surface = np.zeros_like(view)
        for _ in range(iterations):
            residual = view - surface
            where = f"fit_background: view {i} ({series.angles[i]:g} deg)"
            background = (residual <= k * otsu_threshold(residual, where=where)).ravel()
            if background.sum() < 2 * flat.shape[1]:
                raise InputError(f"{where}: the mask at k={k} x Otsu leaves {int(background.sum())} background "
                                 f"pixels, too few to fit {flat.shape[1]} coefficients; use a larger k or a "
                                 "lower degree")
            coef, *_ = np.linalg.lstsq(flat[background], view.ravel()[background], rcond=None)
            surface = (flat @ coef).reshape(view.shape)
        out[i] = view - surface
        coefficients.append(coef.tolist())
        fractions.append(float(background.mean()))
    return derived(series, out, "fit_background", degree=degree, k=k, iterations=iterations,
                   background_fraction=fractions, coefficients=coefficients)
