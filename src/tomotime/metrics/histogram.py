"""Intensity histograms of volumes and of a series over time (the DIP-STER paper's Supplementary Fig. 11)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tomotime.errors import InputError
from tomotime.metrics._validate import as_mask, as_real_array

__all__ = ["intensity_histograms"]


def intensity_histograms(series: Any, *, bins: int = 64, value_range: tuple[float, float] | None = None,
                         mask: Any = None, density: bool = True) -> dict[str, np.ndarray]:
    """One intensity histogram per volume, on shared bin edges.

    Parameters
    ----------
    series : VolumeSeries or array_like, shape (T, Z, Y, X)
        The series (one volume: pass ``volume[None]``).
    bins : int
        Number of bins (>= 2).
    value_range : (float, float), optional
        Edges' range; default the minimum and maximum over the whole series.
    mask : array_like of bool, shape (Z, Y, X), optional
        Voxels counted (e.g. the particle); default all.
    density : bool
        Normalise each histogram to unit area (else counts).

    Returns
    -------
    dict
        ``edges`` (bins + 1,), ``counts`` (T, bins), ``mean`` and ``std`` (T,)
        of the counted intensities.
    """
    if isinstance(bins, bool) or int(bins) != bins or bins < 2:
        raise InputError(f"bins={bins!r}: expected an integer >= 2")
    vols = [as_real_array(np.asarray(series[t]), name=f"series[{t}]") for t in range(len(series))]
    if not vols:
        raise InputError("series: is empty")
    m = None if mask is None else as_mask(mask, vols[0].shape)
    values = [v if m is None else v[m] for v in vols]
    if value_range is None:
        value_range = (min(float(v.min()) for v in values), max(float(v.max()) for v in values))
    lo, hi = map(float, value_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InputError(f"value_range={value_range!r}: expected finite (low, high) with high > low")
    edges = np.linspace(lo, hi, int(bins) + 1)
    counts = np.stack([np.histogram(v, bins=edges, density=density)[0] for v in values])
    return {"edges": edges, "counts": counts, "mean": np.array([float(v.mean()) for v in values]),
            "std": np.array([float(v.std()) for v in values])}
