"""Denoising a continuously tilted tilt series before reconstruction.

During a continuous tilt the projections, in acquisition order, form a video:
neighbouring frames differ by a small tilt (and a little specimen change), so
UDVD's five-frame window sees nearly the same object while the shot noise of
every frame is independent. :func:`denoise_tilt_series` trains UDVD on the
projections in acquisition order and returns the series with denoised
images (angles, times, poses unchanged). For golden-ratio (GRS) schemes,
whose consecutive views are far apart in angle, prefer ``frames=1``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tomotime.data import TiltSeries
from tomotime.denoise.config import UdvdConfig
from tomotime.denoise.train import apply_denoiser, train_udvd
from tomotime.training import TrainResult

__all__ = ["denoise_tilt_series"]


def denoise_tilt_series(series: TiltSeries, config: UdvdConfig | None = None, *, run_dir: str | Path | None = None,
                        progress: bool | None = None) -> tuple[TiltSeries, TrainResult]:
    """UDVD-denoise the projections ``(N, Y, X)`` of ``series`` frame by frame in acquisition order.

    Returns
    -------
    denoised : TiltSeries
        Same angles (degrees), times (seconds) and metadata; images float32.
    result : TrainResult
        The UDVD training run.
    """
    order = np.argsort(np.asarray(series.times), kind="stable")
    images = np.asarray(series.images)[order]
    result, norm = train_udvd(images, config, run_dir=run_dir, progress=progress)
    out = np.empty_like(images, dtype=np.float32)
    out[order] = apply_denoiser(result.model, norm, images)
    return dataclasses.replace(series, images=out), result
