"""One call from a tilt series to a volume series with DIP-STER."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.io.atomic import check_output
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.inference import volume_series
from tomotime.recon.dipster.train import train_dipster
from tomotime.training import TrainResult

__all__ = ["reconstruct_dipster"]


def reconstruct_dipster(
    series: TiltSeries,
    config: DipsterConfig | None = None,
    *,
    times: Any = None,
    angle: float | str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> tuple[VolumeSeries, TrainResult]:
    """Train DIP-STER on ``series`` and generate the volume series.

    Parameters
    ----------
    series : TiltSeries
        Projections with angles (degrees) and times (seconds).
    config : DipsterConfig, optional
        Hyperparameters.
    times : array_like, optional
        Times of the output volumes, seconds (default: the acquisition times).
    angle : float or "own", optional
        Query angle, see :func:`volume_at`.
    out : path, optional
        Stream the volumes to this HDF5 file (checked before training starts).
    overwrite : bool
        Replace ``out`` and an earlier run in ``run_dir``.
    run_dir, resume, progress
        See :func:`train_dipster`.

    Returns
    -------
    (VolumeSeries, TrainResult)
    """
    if out is not None:
        check_output(out, overwrite=overwrite)
    result = train_dipster(series, config, run_dir=run_dir, resume=resume, overwrite=overwrite, progress=progress)
    volumes = volume_series(result.model, times, angle=angle, out=out, overwrite=overwrite, progress=progress)
    return volumes, result
