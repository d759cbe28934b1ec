"""Metrics over time: one value per time point of a volume series, and their summaries."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.metrics._validate import as_pair, dynamic_range, to_numpy
from tomotime.metrics.image import _ssim_map, otsu_mask, psnr, rmse_percent, ssim
from tomotime.metrics.morphology import surface_to_volume

__all__ = ["per_time", "summarise", "evaluate_series", "METRICS"]

TIME_TOLERANCE_S = 1e-6

#: Metrics that ``per_time`` accepts by name.
METRICS: dict[str, Callable[..., float]] = {
    "rmse": rmse_percent,
    "rmse_percent": rmse_percent,
    "ssim": ssim,
    "psnr": psnr,
    "surface_to_volume": surface_to_volume,
}


def _as_series(series: Any, *, name: str) -> tuple[Any, np.ndarray | None]:
    """The indexable series (read one time point at a time) and its times, if it has any."""
    if isinstance(series, VolumeSeries):
        return series, series.times
    if hasattr(series, "detach"):
        series = to_numpy(series)
    shape = tuple(getattr(series, "shape", np.shape(series)))
    if len(shape) not in (3, 4):
        raise InputError(f"{name}: expected a series (T, Z, Y, X) (or (T, Y, X) of images), got shape {shape}")
    if 0 in shape:
        raise InputError(f"{name}: the series is empty (shape {shape})")
    return series, None


def _paired(recon_series: Any, truth_series: Any) -> tuple[Any, Any, np.ndarray]:
    """Both series checked for matching length, volume shape and times; returns the times."""
    recon, t_recon = _as_series(recon_series, name="recon_series")
    truth, t_truth = _as_series(truth_series, name="truth_series")
    rs, ts = tuple(recon.shape), tuple(truth.shape)
    if rs[0] != ts[0]:
        raise InputError(f"recon_series has {rs[0]} time points but truth_series has {ts[0]}; expected the same")
    if rs[1:] != ts[1:]:
        raise InputError(f"recon_series volumes have shape {rs[1:]} but truth_series volumes have {ts[1:]}")
    if t_recon is not None and t_truth is not None:
        gap = np.abs(t_recon - t_truth)
        if (gap > TIME_TOLERANCE_S).any():
            i = int(np.argmax(gap))
            raise InputError(f"recon_series and truth_series times differ at index {i} "
                             f"({t_recon[i]} vs {t_truth[i]} s); expected equal within {TIME_TOLERANCE_S} s")
    times = t_truth if t_truth is not None else t_recon
    return recon, truth, np.arange(rs[0], dtype=np.float64) if times is None else times


def _at(series: Any, t: int) -> np.ndarray:
    return to_numpy(series[t])


def per_time(metric: str | Callable[..., float], recon_series: Any, truth_series: Any = None,
             **kw: Any) -> np.ndarray:
    """Evaluate ``metric`` at every time point, reading one volume of each series at a time.

    Parameters
    ----------
    metric : str or callable
        A name from :data:`METRICS` (``"rmse"``, ``"ssim"``, ``"psnr"``,
        ``"surface_to_volume"``) or any function ``metric(recon, truth, **kw) -> float``
        (``metric(volume, **kw)`` when ``truth_series`` is None).
    recon_series : VolumeSeries or array_like, shape (T, Z, Y, X) or (T, Y, X)
        The reconstructed series (torch tensors and lazily read arrays such as
        ``h5py`` datasets are accepted).
    truth_series : VolumeSeries or array_like, same shape, optional
        Ground truth; when both are VolumeSeries their times must agree within 1e-6 s.
    **kw
        Passed to ``metric`` at each time point. ``mask="otsu"`` is replaced by
        the :func:`~tomotime.metrics.otsu_mask` of each truth volume.

    Returns
    -------
    ndarray, shape (T,)
        The metric per time point.

    Raises
    ------
    InputError
        Unknown metric name, series of different length, volume shape or times,
        or bad values at some time point (the message names the index).
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            raise InputError(f"metric={metric!r}: expected one of {sorted(METRICS)} or a callable")
        metric = METRICS[metric]
    elif not callable(metric):
        raise InputError(f"metric: expected a name or a callable, got {type(metric).__name__}")
    otsu = isinstance(kw.get("mask"), str)
    if otsu and kw["mask"] != "otsu":
        raise InputError(f"mask={kw['mask']!r}: expected a boolean array or 'otsu'")
    if truth_series is None:
        if otsu:
            raise InputError("mask='otsu' needs truth_series")
        recon, _ = _as_series(recon_series, name="recon_series")
        pairs = ((_at(recon, t),) for t in range(recon.shape[0]))
    else:
        recon, truth, _ = _paired(recon_series, truth_series)
        pairs = ((_at(recon, t), _at(truth, t)) for t in range(truth.shape[0]))
    values = []
    for t, args in enumerate(pairs):
        try:
            if otsu:
                kw["mask"] = otsu_mask(args[1])
            values.append(float(metric(*args, **kw)))
        except InputError as exc:
            raise InputError(f"time index {t}: {exc}") from exc
    return np.asarray(values)


def summarise(curve: Any, *, higher_is_better: bool) -> dict[str, float]:
    """Mean and worst value of a per-time curve.

    ``worst`` is the minimum when ``higher_is_better`` (SSIM, PSNR) and the
    maximum otherwise (RMSE). NaN values propagate into both.

    Returns
    -------
    dict
        ``{"mean": float, "worst": float}``.
    """
    c = np.asarray(to_numpy(curve), dtype=np.float64).reshape(-1)
    if c.size == 0:
        raise InputError("curve: is empty")
    worst = c.min() if higher_is_better else c.max()
    return {"mean": float(c.mean()), "worst": float(worst)}


def evaluate_series(recon: Any, truth: Any, *, masked: bool = True) -> dict[str, Any]:
    """SSIM, RMSE % and PSNR of a reconstructed series against its truth, per time point.

    At each time point the mask is the :func:`~tomotime.metrics.otsu_mask` of that
    truth volume (as the papers evaluate); SSIM is computed once and both its
    masked mean and scikit-image's unmasked mean are taken from the same map.

    Parameters
    ----------
    recon, truth : VolumeSeries or array_like, shape (T, Z, Y, X)
        Reconstructed and true series (see :func:`per_time`).
    masked : bool
        If False, ``ssim``, ``rmse`` and ``psnr`` are the unmasked values too.

    Returns
    -------
    dict
        ``times`` (T,) in s; per-time arrays ``ssim``, ``rmse``, ``psnr``
        (masked), ``ssim_unmasked``, ``rmse_unmasked``; and floats
        ``ssim_mean``, ``ssim_worst`` (minimum), ``rmse_mean``, ``rmse_worst``
        (maximum), ``psnr_mean``, ``psnr_worst`` (minimum).
    """
    rec, tru, times = _paired(recon, truth)
    keys = ("ssim", "rmse", "psnr", "ssim_unmasked", "rmse_unmasked")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for t in range(len(times)):
        try:
            r, g = as_pair(_at(rec, t), _at(tru, t), names=("recon", "truth"))
            mssim, smap = _ssim_map(r, g, dynamic_range(g))
            mask = otsu_mask(g) if masked else None
        except InputError as exc:
            raise InputError(f"time index {t}: {exc}") from exc
        out["ssim_unmasked"].append(mssim)
        out["rmse_unmasked"].append(rmse_percent(r, g))
        out["ssim"].append(mssim if mask is None else float(smap[mask].mean()))
        out["rmse"].append(rmse_percent(r, g, mask=mask))
        out["psnr"].append(psnr(r, g, mask=mask))
    result: dict[str, Any] = {"times": np.asarray(times, dtype=np.float64)}
    result.update({k: np.asarray(v) for k, v in out.items()})
    for key, higher in (("ssim", True), ("rmse", False), ("psnr", True)):
        s = summarise(result[key], higher_is_better=higher)
        result[f"{key}_mean"], result[f"{key}_worst"] = s["mean"], s["worst"]
    return result
