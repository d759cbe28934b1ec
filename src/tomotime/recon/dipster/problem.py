"""The training problem of DIP-STER: normalised (and aligned) data on the device, holdout split, loss scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess import apply_poses
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.losses import estimate_noise_scale
from tomotime.recon.dipster.sampling import Normalisation, fit_normalisation, spread_choice

__all__ = ["TrainingProblem", "prepare_problem"]


@dataclass
class TrainingProblem:
    """Everything the training reads from the data.

    Attributes
    ----------
    images : torch.Tensor, shape (N, Y, X)
        Normalised projections, ``(raw - offset) / scale``, on the device
        (resampled onto the ideal geometry when the series has poses).
    times, angles : torch.Tensor, shape (N,)
        Seconds and degrees (float64, on the device).
    row_times, row_angles : torch.Tensor, shape (N, Y)
        Time and angle at which each detector row was recorded: ``times`` and
        ``angles`` plus ``row_time_lag * y / Y`` and ``row_lag * y / Y``.
    train_pairs : torch.Tensor, shape (M, 2)
        ``(projection, row)`` of every training sample (CPU, int64).
    holdout_pairs : torch.Tensor, shape (H, 2)
        ``(projection, row)`` of every held-out sample.
    holdout : numpy.ndarray
        Flat indices ``projection * Y + row`` of the held-out samples.
    normalisation : Normalisation
    gm_scale : float
        Residual scale ``c`` of the data loss (normalised units).
    noise_estimate : float
        Robust noise deviation of the normalised data (before the floor).
    slice_shape : (int, int)
        ``(Z, X)``.
    data_range : float
        Range of the normalised projections (the scale of learned offsets).
    """

    images: torch.Tensor
    times: torch.Tensor
    angles: torch.Tensor
    train_pairs: torch.Tensor
    holdout_pairs: torch.Tensor
    holdout: np.ndarray
    normalisation: Normalisation
    gm_scale: float
    noise_estimate: float
    slice_shape: tuple[int, int]
    row_times: torch.Tensor | None = None
    row_angles: torch.Tensor | None = None
    data_range: float = 1.0

    def __post_init__(self) -> None:
        n_rows = self.images.shape[1]
        if self.row_times is None:
            self.row_times = self.times[:, None].expand(-1, n_rows)
        if self.row_angles is None:
            self.row_angles = self.angles[:, None].expand(-1, n_rows)


def row_lags(n_rows: int, lag: float) -> np.ndarray:
    """Lag ``lag * y / Y`` of each detector row ``y`` (the convention of :mod:`tomotime.sim.acquisition`)."""
    return float(lag) * np.arange(n_rows, dtype=np.float64) / n_rows


def _pairs(flat: np.ndarray, n_rows: int) -> torch.Tensor:
    return torch.from_numpy(np.stack(np.divmod(flat, n_rows), axis=1).astype(np.int64))


def choose_holdout(n: int, n_rows: int, config: DipsterConfig) -> np.ndarray:
    """Flat ``projection * n_rows + row`` indices held out: whole projections or rows, by ``holdout_unit``.

    Raises
    ------
    InputError
        If too few projections (or rows) would remain for training.
    """
    if config.holdout_unit == "views":
        views = spread_choice(n, config.holdout_fraction, seed=config.seed)
        return (views[:, None] * n_rows + np.arange(n_rows)).reshape(-1)
    return spread_choice(n * n_rows, config.holdout_fraction, seed=config.seed)


def prepare_problem(series: TiltSeries, config: DipsterConfig, device: torch.device) -> TrainingProblem:
    """Align (with the series' poses), normalise, choose the holdout and the loss scale.

    Raises
    ------
    InputError
        For a series that is not a :class:`TiltSeries`, too few projections for
        the holdout, too thin a slice, poses that cannot be applied, or data without signal.
    """
    if not isinstance(series, TiltSeries):
        raise InputError(f"series: expected a TiltSeries, got {type(series).__name__}")
    n, ny, nx = series.shape
    if n < 2:
        raise InputError(f"series: has {n} projection; DIP-STER needs at least 2")
    nz = int(config.thickness or nx)
    if nz < 2 or nx < 2:
        raise InputError(f"slice shape (Z, X) = ({nz}, {nx}): expected at least 2 voxels along each axis")
    held = choose_holdout(n, ny, config)
    train = np.setdiff1d(np.arange(n * ny), held)
    images = series.images if series.poses is None else apply_poses(series.images, series.poses)
    norm = fit_normalisation(images, thickness=nz, offset=config.data_offset)
    images = (images - np.float32(norm.offset)) / np.float32(norm.scale)
    noise = estimate_noise_scale(images[:: max(1, n // 32)])  # a robust estimate needs no more than 32 views
    data_range = float(images.max() - images.min())
    scale = config.gm_scale
    if scale is None:
        scale = max(config.gm_noise_factor * noise, config.gm_scale_floor * data_range)
    row_times = series.times[:, None] + row_lags(ny, config.row_time_lag)[None]
    row_angles = series.angles[:, None] + row_lags(ny, config.row_lag)[None]
    return TrainingProblem(
        images=torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device),
        times=torch.as_tensor(series.times, dtype=torch.float64, device=device),
        angles=torch.as_tensor(series.angles, dtype=torch.float64, device=device),
        row_times=torch.as_tensor(row_times, dtype=torch.float64, device=device),
        row_angles=torch.as_tensor(row_angles, dtype=torch.float64, device=device),
        data_range=max(data_range, 1e-12),
        train_pairs=_pairs(train, ny),
        holdout_pairs=_pairs(held, ny),
        holdout=held,
        normalisation=norm,
        gm_scale=float(scale),
        noise_estimate=noise,
        slice_shape=(nz, nx),
    )
