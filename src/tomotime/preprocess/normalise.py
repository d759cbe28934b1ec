"""Per-view intensity normalisation: equal mean and standard deviation, or equal total intensity."""

from __future__ import annotations

from typing import Literal

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["normalise", "NormaliseParams"]


class NormaliseParams(StepParams):
    mode: Literal["mean_std", "total"] = "mean_std"
    mean: float | None = None
    std: float = 1.0


@register_step("normalise", NormaliseParams)
def normalise(series: TiltSeries, mode: str = "mean_std", mean: float | None = None, std: float = 1.0) -> TiltSeries:
    """Normalise each view: to a common mean and standard deviation ``std`` (DIP-STER), or to a common total.

    Parameters
    ----------
    mode : {"mean_std", "total"}
        ``mean_std``: ``(I - mean_i) / std_i * std + mean`` with ``mean``
        defaulting to the average of the views' means. ``total``: scale each
        view so that its sum equals the series' mean sum (mass conservation).
    """
    images = series.images.astype(np.float64)
    flat = images.reshape(len(series), -1)
    if mode == "total":
        totals = flat.sum(axis=1)
        if (totals <= 0).any():
            bad = int(np.argmax(totals <= 0))
            raise InputError(f"normalise: view {bad} has a total intensity {totals[bad]:g} <= 0; mode=total needs "
                             "positive images (subtract less background)")
        scale = totals.mean() / totals
        return derived(series, (images * scale[:, None, None]).astype(np.float32), "normalise", mode=mode,
                       scale=scale.tolist())
    means, stds = flat.mean(axis=1), flat.std(axis=1)
    if (stds == 0).any():
        raise InputError(f"normalise: view {int(np.argmax(stds == 0))} is flat (standard deviation 0)")
    if not std > 0:
        raise InputError(f"normalise: std={std}: expected a positive value")
    target = float(means.mean()) if mean is None else float(mean)
    out = (images - means[:, None, None]) / stds[:, None, None] * std + target
    return derived(series, out.astype(np.float32), "normalise", mode=mode, mean=target, std=std,
                   view_means=means.tolist(), view_stds=stds.tolist())
