"""Consistency of a reconstruction with its own data, for experiments without a ground truth.

* Per view (DIP-STER Supplementary Figs. 6-9): the reprojection RMSE (in % of
  the data's range) and SSIM of each measured view against the projection, at
  its angle, of the volume nearest to it in time; plotted against time and
  against angle, the worst views listed.
* Fake dynamics: for a series of volumes, how much each time point differs
  from the time-mean inside the object (Otsu mask of the mean), in % of the
  mean's norm there. A static specimen should give values at the noise level;
  larger values, or a trend, are dynamics the method made up (from
  misalignment or intensity drifts) or real change -- the figure tells how
  much there is, not which.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.metrics.image import otsu_mask, ssim
from tomotime.metrics.reprojection import reproject

__all__ = ["view_consistency", "fake_dynamics", "WORST_VIEWS"]

WORST_VIEWS = 5


def view_consistency(volumes: VolumeSeries, series: TiltSeries, *, device="cpu") -> dict[str, Any]:
    """Per-view reprojection RMSE (% of the data range) and SSIM.

    Parameters
    ----------
    volumes : VolumeSeries
        Reconstruction ``(T, Z, Y, X)`` of ``series`` (T = 1 for a static method).
    series : TiltSeries
        The measured views ``(N, Y, X)``.

    Returns
    -------
    dict
        ``view, angle_deg, time_s, rmse_percent, ssim`` (lists, one per view),
        their means, and ``worst_views`` (up to 5 view indices, largest RMSE first).
    """
    predicted = reproject(volumes, series, device=device)
    measured = series.images
    span = float(measured.max() - measured.min())
    if span <= 0:
        raise InputError("series: all views are constant; the reprojection check needs contrast")
    rmse = 100 * np.sqrt(np.mean((predicted.astype(np.float64) - measured) ** 2, axis=(1, 2))) / span
    similarity = np.array([ssim(p, m, data_range=span) for p, m in zip(predicted, measured)])
    worst = np.argsort(-rmse, kind="stable")[:WORST_VIEWS]
    return {"view": list(range(len(series))), "angle_deg": series.angles.tolist(), "time_s": series.times.tolist(),
            "rmse_percent": rmse.tolist(), "ssim": similarity.tolist(),
            "rmse_percent_mean": float(rmse.mean()), "ssim_mean": float(similarity.mean()),
            "worst_views": [int(i) for i in worst]}


def fake_dynamics(volumes: VolumeSeries) -> dict[str, Any] | None:
    """Change over time inside the object; ``None`` for a single volume.

    Returns
    -------
    dict or None
        ``time_s``; ``change_percent`` (per time point, ``100 ||v_t - mean||_M / ||mean||_M``);
        ``step_percent`` (between consecutive time points, first entry 0); their maxima and means;
        ``mask_fraction`` (the share of voxels in the Otsu mask ``M`` of the time-mean).
    """
    if len(volumes) < 2:
        return None
    mean = np.zeros(volumes.shape[1:], np.float64)
    for v in volumes:
        mean += v
    mean /= len(volumes)
    if not np.ptp(mean) > 0:
        raise InputError("volumes: the time-mean is constant; no object to look for change in")
    mask = otsu_mask(mean)
    norm = float(np.linalg.norm(mean[mask])) or 1.0
    change, step, previous = [], [0.0], None
    for v in volumes:
        inside = v[mask].astype(np.float64)
        change.append(100 * float(np.linalg.norm(inside - mean[mask])) / norm)
        if previous is not None:
            step.append(100 * float(np.linalg.norm(inside - previous)) / norm)
        previous = inside
    return {"time_s": volumes.times.tolist(), "change_percent": change, "step_percent": step,
            "change_percent_max": max(change), "change_percent_mean": float(np.mean(change)),
            "step_percent_max": max(step), "mask_fraction": float(mask.mean())}
