"""What INR training reads from a tilt series: checked, normalised pixels on the device and the holdout split."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from skimage.filters import threshold_otsu

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.recon.inr.config import InrConfig

__all__ = ["InrProblem", "prepare_problem", "stratified_holdout", "estimate_memory", "initial_poses",
           "PoseDriftWarning", "check_pose_drift"]


class PoseDriftWarning(UserWarning):
    """Shifts that move a view's content (partly) out of the field of view."""


@dataclass
class InrProblem:
    """Training data of one series.

    Attributes
    ----------
    pixels : torch.Tensor, shape (N * Y * X,)
        Normalised projections (``images / scale``), flattened, on the device.
    train, holdout : torch.Tensor
        Flat pixel indices (CPU int64) used for training and held out.
    scale : float
        Raw intensity of a normalised 1 (a high percentile of the data).
    vol_shape : (int, int, int)
        ``(Z, Y, X)`` of the reconstructed box.
    """

    pixels: torch.Tensor
    train: torch.Tensor
    holdout: torch.Tensor
    scale: float
    vol_shape: tuple[int, int, int]


def stratified_holdout(images: np.ndarray, fraction: float, *, seed: int, stratified: bool = True) -> np.ndarray:
    """Flat indices of held-out pixels: ``fraction`` of the foreground and of the background (Otsu split).

    Parameters
    ----------
    images : numpy.ndarray, shape (N, Y, X)
    fraction : float
        Share of pixels held out, in [0, 0.5).
    stratified : bool
        Draw the same fraction within each stratum (else uniformly from all pixels).
    """
    flat = images.reshape(-1)
    if fraction <= 0:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    if stratified and float(flat.max()) > float(flat.min()):
        fg = flat > threshold_otsu(flat[:: max(1, flat.size // 200_000)])
        strata = [np.flatnonzero(fg), np.flatnonzero(~fg)]
    else:
        strata = [np.arange(flat.size)]
    held = [rng.choice(s, size=int(round(fraction * s.size)), replace=False) for s in strata if s.size]
    return np.sort(np.concatenate(held)).astype(np.int64)


def initial_poses(series: TiltSeries) -> np.ndarray:
    """Starting ``(z1, z3, dy, dx)`` per view from the series' poses (zeros without).

    Raises
    ------
    InputError
        For a non-zero ``axis_tilt`` (not part of the INR pose model).
    """
    n = len(series)
    out = np.zeros((n, 4), np.float32)
    if series.poses is None:
        return out
    tilted = np.flatnonzero(np.abs(series.poses[:, 1]) > 1e-6)
    if tilted.size:
        raise InputError(f"poses: axis_tilt is non-zero in view {tilted[0]} ({series.poses[tilted[0], 1]:g} deg); "
                         "the INR pose model has in-plane angles and shifts only")
    out[:, 1:] = series.poses[:, [0, 2, 3]]
    return out


def check_pose_drift(poses: np.ndarray, det_shape: tuple[int, int], *, limit: float = 0.25) -> list[int]:
    """Warn (:class:`PoseDriftWarning`) about views shifted by more than ``limit`` of the detector; their indices."""
    ny, nx = det_shape
    far = np.flatnonzero((np.abs(poses[:, 2]) > limit * ny) | (np.abs(poses[:, 3]) > limit * nx))
    if far.size:
        i = int(far[0])
        warnings.warn(f"{far.size} view(s) shifted by more than {limit:.0%} of the field of view (first: view {i}, "
                      f"dy={poses[i, 2]:.1f} px, dx={poses[i, 3]:.1f} px); their content leaves the detector",
                      PoseDriftWarning, stacklevel=2)
    return far.tolist()


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[1])
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 1 << 40


def estimate_memory(config: InrConfig, vol_shape: tuple[int, int, int], n_pixels: int) -> int:
    """Estimated peak bytes of training: data, field parameters with Adam state, activations of one step."""
    samples = config.samples or max(vol_shape)
    points = config.batch_size * samples * (1 + 4 * config.tv_fraction)
    if config.field == "hsiren":
        params = config.width * (config.width * config.hidden_layers + 5)
        per_point = 4 * 4 * config.width * (config.hidden_layers + 1)
    else:
        finest = config.grid_resolution or max(vol_shape)
        params = sum(r ** 3 for r in (finest // 2 ** k for k in range(config.grid_levels)))
        params *= config.grid_features * (config.time_knots if config.dynamic else 1)
        per_point = 4 * (6 * config.grid_features * config.grid_levels + 4 * config.grid_width)
    return int(4 * n_pixels * 2 + 16 * params + per_point * points)


def prepare_problem(series: TiltSeries, config: InrConfig, device: torch.device) -> InrProblem:
    """Check the series and options, normalise the data and split off the holdout.

    Raises
    ------
    InputError
        Fewer than 3 views, all views at one angle, pose refinement of a single
        view, a series without signal, or a problem larger than the memory.
    """
    if not isinstance(series, TiltSeries):
        raise InputError(f"series: expected a TiltSeries, got {type(series).__name__}")
    n, ny, nx = series.shape
    if n < 3:
        extra = " (and pose refinement cannot align a single view against itself)" if config.align and n == 1 else ""
        raise InputError(f"series: has {n} view(s); INR tomography needs at least 3{extra}")
    if np.ptp(series.angles) < 1e-6:
        raise InputError(f"series: all {n} views are at {series.angles[0]:g} deg; a tomogram needs several angles")
    if config.dynamic and np.ptp(series.times) <= 0:
        raise InputError("series: a dynamic reconstruction needs increasing acquisition times")
    poses = initial_poses(series)
    check_pose_drift(poses, (ny, nx))
    vol_shape = (int(config.thickness or nx), ny, nx)
    need = estimate_memory(config, vol_shape, n * ny * nx)
    limit = int(config.memory_limit_gb * 1e9) if config.memory_limit_gb else _available_bytes(device)
    if need > limit:
        raise InputError(f"the problem needs about {need / 1e9:.1f} GB on {device} (volume {vol_shape}, "
                         f"field {config.field}, {config.batch_size} rays x {config.samples or max(vol_shape)} "
                         f"samples), more than the {limit / 1e9:.1f} GB available; use fewer rays per step "
                         "(batch_size), fewer samples or a coarser grid")
    images = series.images.astype(np.float32)
    scale = float(np.percentile(images, 99.9))
    if not scale > 0:
        raise InputError("series: no positive signal (the 99.9th percentile is <= 0); INR densities are "
                         "non-negative, subtract a smaller background")
    held = stratified_holdout(images, config.holdout_fraction, seed=config.seed,
                              stratified=config.stratified_holdout)
    train = np.setdiff1d(np.arange(images.size), held)
    pixels = torch.from_numpy(np.ascontiguousarray(images.reshape(-1) / np.float32(scale))).to(device)
    return InrProblem(pixels=pixels, train=torch.from_numpy(train.astype(np.int64)),
                      holdout=torch.from_numpy(held), scale=scale, vol_shape=vol_shape)
