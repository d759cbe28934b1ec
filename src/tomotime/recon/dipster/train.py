"""Training of DIP-STER on a (dynamic) tilt series, with the shared training engine.

See :mod:`tomotime.training` for what a run folder receives, how resume,
Ctrl-C/SIGTERM, rollback, holdout stopping and ``torchrun`` behave, and
:mod:`.method` for what DIP-STER trains on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tomotime.data import TiltSeries
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.method import DipsterMethod
from tomotime.training import TrainResult, train_on

__all__ = ["train_dipster"]


def train_dipster(
    series: TiltSeries,
    config: DipsterConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a space-time deep image prior on a tilt series.

    Parameters
    ----------
    series : TiltSeries
        Projections ``(N, Y, X)`` with angles (degrees), acquisition times
        (seconds) and, optionally, per-view poses (applied to the images).
    config : DipsterConfig, optional
        Hyperparameters (default: ``DipsterConfig()``).
    run_dir, resume, overwrite, progress, callback
        See :func:`tomotime.training.train`.

    Returns
    -------
    TrainResult
        ``result.model`` is the trained :class:`SpaceTimeDIP`; the resolved
        options (e.g. ``gm_scale``) are in ``result.run["config"]``.

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls this function
    with the same arguments; they share each batch of ``batch_size`` rows (the
    global batch, so the run follows the single-process optimisation path),
    agree on rollbacks and early stopping, and rank 0 alone writes
    ``run_dir``. Every rank returns the same trained model.
    """
    config = config if config is not None else DipsterConfig()
    return train_on(config.device, lambda device: DipsterMethod(series, config, device), run_dir=run_dir,
                    resume=resume, overwrite=overwrite, progress=progress, callback=callback)
