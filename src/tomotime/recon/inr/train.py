"""Training of an INR reconstruction on a tilt series, with the shared training engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tomotime.data import TiltSeries
from tomotime.recon.inr.config import InrConfig
from tomotime.recon.inr.method import InrMethod
from tomotime.training import TrainResult, train_on

__all__ = ["train_inr"]


def train_inr(
    series: TiltSeries,
    config: InrConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Fit a density field (and, with ``config.align``, the per-view poses) to a tilt series.

    Parameters
    ----------
    series : TiltSeries
        Projections ``(N, Y, X)`` (non-negative intensities) with angles in
        degrees; its poses, if any, are the starting poses.
    config : InrConfig, optional
        Options (default ``InrConfig()``; the paper's: ``InrConfig.paper()``).
    run_dir, resume, overwrite, progress, callback
        See :func:`tomotime.training.train`.

    Returns
    -------
    TrainResult
        ``result.model`` is the trained :class:`~tomotime.recon.inr.InrModel`
        (best state by holdout loss when a holdout is used).

    Notes
    -----
    Under ``torchrun`` every process calls this with the same arguments and
    traces its share of each step's rays; rank 0 writes ``run_dir``.
    """
    config = config if config is not None else InrConfig()
    return train_on(config.device, lambda device: InrMethod(series, config, device), run_dir=run_dir,
                    resume=resume, overwrite=overwrite, progress=progress, callback=callback)
