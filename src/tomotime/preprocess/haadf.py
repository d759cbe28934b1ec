"""HAADF detector-shadowing calibration (DIP-STER Methods).

At high tilt the holder and grid shadow the HAADF detector, so high-tilt
views come out too dark. The support membrane (or a slab specimen) has a
projected thickness proportional to ``1/cos(beta)``, so its mean and variance
in a view follow ``a + b / cos(beta)``. The model is fitted on the views below
``max_angle`` (60 deg in the paper), where shadowing is negligible, and every
view at or above it is rescaled to the model:

* ``method="mean_std"`` (the paper's): ``I' = (I - m) * sqrt(v_model / v) + m_model``,
  matching the region's mean ``m`` and variance ``v`` to the model;
* ``method="gain"``: ``I' = I * m_model / m``, a pure detector gain (one
  number per view, less sensitive to noise in the variance).

Where the fitted variance is not positive (a vacuum background without
membrane, say), ``mean_std`` falls back to the gain for that view and the
record lists it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived
from tomotime.preprocess.background import otsu_threshold
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["calibrate_haadf", "fit_secant_model", "membrane_pixels", "plot_haadf_calibration", "HaadfParams"]


class HaadfParams(StepParams):
    max_angle: float = 60.0
    limit: float = 85.0
    method: Literal["mean_std", "gain"] = "mean_std"
    region: Literal["background", "all"] = "background"
    box: tuple[int, int, int, int] | None = None


def fit_secant_model(angles: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Least-squares ``a, b`` of ``values ~ a + b / cos(angles)`` (angles in degrees)."""
    design = np.stack([np.ones_like(angles), 1.0 / np.cos(np.deg2rad(angles))], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(a), float(b)


def _region(series: TiltSeries, region: str, box: tuple[int, int, int, int] | None) -> list[np.ndarray]:
    if box is not None:
        y0, y1, x0, x1 = box
        out = [v[y0:y1, x0:x1].ravel() for v in series.images]
        if out[0].size < 2:
            raise InputError(f"calibrate_haadf: box={tuple(box)} holds fewer than 2 pixels")
        return out
    if region == "all":
        return [v.ravel() for v in series.images]
    out = []
    for i, view in enumerate(series.images):
        level = otsu_threshold(view, where=f"calibrate_haadf: view {i} ({series.angles[i]:g} deg)")
        out.append(membrane_pixels(view[view <= level]))
    return out


def membrane_pixels(values: np.ndarray, *, n_sigma: float = 3.0, rounds: int = 5) -> np.ndarray:
    """The main population of ``values`` (the membrane): iterated clipping at ``n_sigma`` robust deviations.

    Pixels below Otsu's threshold hold the membrane and the dim parts of the
    object, whose share grows with tilt as the membrane brightens; clipping
    around the median keeps the membrane's noise band only, symmetric, so
    its mean is unbiased and its variance biased by the same factor in
    every view.
    """
    kept = values.astype(np.float64)
    for _ in range(rounds):
        centre = np.median(kept)
        spread = 1.4826 * np.median(np.abs(kept - centre))
        if spread == 0:
            break
        inside = np.abs(values - centre) <= n_sigma * spread
        if inside.sum() == kept.size:
            break
        kept = values[inside].astype(np.float64)
    return kept


@register_step("calibrate_haadf", HaadfParams)
def calibrate_haadf(series: TiltSeries, max_angle: float = 60.0, limit: float = 85.0, method: str = "mean_std",
                    region: str = "background", box: tuple[int, int, int, int] | None = None) -> TiltSeries:
    """Correct HAADF detector shadowing: fit ``a + b/cos(beta)`` below ``max_angle``, rescale the views above.

    Parameters
    ----------
    series : TiltSeries
        HAADF images ``(N, Y, X)`` before background subtraction (the membrane
        level carries the model).
    max_angle : float
        Views with ``|angle| < max_angle`` (degrees) are fitted; the others corrected.
    limit : float
        Views at ``|angle| >= limit`` are left as they are (``1/cos``
        diverges towards 90 deg, where the membrane model means nothing).
    method : {"mean_std", "gain"}
        See the module description.
    region : {"background", "all"}
        Pixels that measure the membrane: the main population of those at or
        below Otsu's threshold of each view (see :func:`membrane_pixels`), or
        the whole view (a slab specimen filling it).
    box : (y0, y1, x0, x1), optional
        A fixed pixel box of membrane instead of ``region``.

    Returns
    -------
    TiltSeries
        Its record holds the fits (``mean_fit``, ``var_fit`` as ``[a, b]``),
        the relative RMS misfit on the fitted views, the measured and model
        means per view, and the scale applied to each corrected view.

    Raises
    ------
    InputError
        With fewer than 3 views below ``max_angle`` at two or more distinct
        angles, or a model mean that is not positive.
    """
    angles = series.angles
    low = np.abs(angles) < max_angle
    if low.sum() < 3 or np.unique(np.round(np.abs(angles[low]), 3)).size < 2:
        raise InputError(f"calibrate_haadf: {int(low.sum())} view(s) below max_angle={max_angle:g} deg; the "
                         "1/cos model needs at least 3 views at 2 or more different |angles|")
    pixels = _region(series, region, box)
    means = np.array([p.mean(dtype=np.float64) for p in pixels])
    variances = np.array([p.var(dtype=np.float64) for p in pixels])
    mean_fit = fit_secant_model(angles[low], means[low])
    var_fit = fit_secant_model(angles[low], variances[low])
    usable = np.abs(angles) < limit
    secant = 1.0 / np.cos(np.deg2rad(np.where(usable, angles, 0.0)))
    model_mean = mean_fit[0] + mean_fit[1] * secant
    model_var = np.maximum(var_fit[0] + var_fit[1] * secant, 0.0)
    if (model_mean[~low & usable] <= 0).any():
        raise InputError("calibrate_haadf: the fitted membrane mean is not positive at high tilt "
                         f"(fit a + b/cos = {mean_fit[0]:.4g} + {mean_fit[1]:.4g}/cos); is the background "
                         "subtracted already? Calibrate before subtracting it")
    misfit = float(np.sqrt(np.mean((means[low] - model_mean[low]) ** 2)) / np.mean(np.abs(means[low])))
    out = series.images.astype(np.float64)
    scales = np.ones(len(series))
    gain_views = []
    for i in np.flatnonzero(~low & usable):
        if method == "mean_std" and model_var[i] > 0 and variances[i] > 0:
            scales[i] = np.sqrt(model_var[i] / variances[i])
            out[i] = (out[i] - means[i]) * scales[i] + model_mean[i]
        else:  # the gain method, or a variance model that is not positive here
            gain_views += [int(i)] if method == "mean_std" else []
            scales[i] = model_mean[i] / means[i]
            out[i] *= scales[i]
    return derived(series, out.astype(np.float32), "calibrate_haadf", max_angle=max_angle, method=method,
                   region="box" if box is not None else region, mean_fit=list(mean_fit), var_fit=list(var_fit),
                   relative_misfit=misfit, fitted_views=np.flatnonzero(low).tolist(),
                   corrected_views=np.flatnonzero(~low & usable).tolist(),
                   beyond_limit_views=np.flatnonzero(~usable).tolist(), gain_fallback_views=gain_views,
                   angles=angles.tolist(),
                   measured_mean=means.tolist(), model_mean=model_mean.tolist(), scale=scales.tolist())


def plot_haadf_calibration(record: dict[str, Any], path: str | Path, *, overwrite: bool = False) -> Path:
    """Figure of a ``calibrate_haadf`` record: membrane mean against 1/cos(angle), the fit, the corrected views."""
    from tomotime.viz.figures import save_png  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    angles = np.asarray(record["angles"])
    fitted, corrected = record["fitted_views"], record["corrected_views"]
    shown = np.asarray(fitted + corrected)
    secant = np.full(angles.shape, np.nan)
    secant[shown] = 1.0 / np.cos(np.deg2rad(angles[shown]))
    measured = np.asarray(record["measured_mean"])
    a, b = record["mean_fit"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    grid = np.linspace(np.nanmin(secant), np.nanmax(secant), 100)
    left.plot(secant[fitted], measured[fitted], "o", ms=4, label=f"fitted (|angle| < {record['max_angle']:g} deg)")
    left.plot(secant[corrected], measured[corrected], "x", ms=5, label="measured, corrected")
    left.plot(grid, a + b * grid, "-", lw=1, label=f"{a:.4g} + {b:.4g} / cos")
    left.set_xlabel("1 / cos(angle)")
    left.set_ylabel("membrane mean")
    left.legend(fontsize=7)
    order = np.argsort(angles)
    right.plot(angles[order], np.asarray(record["scale"])[order], ".-", ms=4)
    right.set_xlabel("angle (deg)")
    right.set_ylabel("scale applied")
    fig.suptitle(f"HAADF calibration ({record['method']}), relative misfit {record['relative_misfit']:.2%}",
                 fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, overwrite=overwrite)
