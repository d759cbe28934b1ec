"""Training UDVD on one noisy movie with the shared engine, and denoising the movie with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tomotime.denoise.config import UdvdConfig
from tomotime.denoise.inference import DEFAULT_OVERLAP, DEFAULT_TILE, denoise_normalised
from tomotime.denoise.method import UdvdMethod
from tomotime.denoise.movie import Normalisation, check_movie
from tomotime.device import resolve_device
from tomotime.training import TrainResult, train

__all__ = ["train_udvd", "apply_denoiser"]


def train_udvd(movie: np.ndarray, config: UdvdConfig | None = None, *, run_dir: str | Path | None = None,
               resume: bool = False, overwrite: bool = False, progress: bool | None = None,
               callback: Callable[[int, dict[str, Any]], None] | None = None) -> tuple[TrainResult, Normalisation]:
    """Train a blind-spot denoiser on the noisy movie alone.

    Parameters
    ----------
    movie : numpy.ndarray, shape (T, H, W)
        Noisy frames in acquisition order (any real dtype; at least 5 frames
        for the video network, 1 for ``frames=1``).
    config : UdvdConfig, optional
        Options (default: ``UdvdConfig()``, the fast network).
    run_dir, resume, overwrite, progress, callback
        See :func:`tomotime.training.train`.

    Returns
    -------
    result : TrainResult
        ``result.model`` is the best :class:`~tomotime.models.blindspot.BlindSpotNet`.
    normalisation : Normalisation
        How the movie was scaled for the network (undone by :func:`apply_denoiser`).
    """
    config = config if config is not None else UdvdConfig()
    method = UdvdMethod(movie, config, resolve_device(config.device))
    result = train(method, run_dir=run_dir, resume=resume, overwrite=overwrite, progress=progress,
                   callback=callback)
    return result, method.normalisation


def apply_denoiser(model: torch.nn.Module, normalisation: Normalisation, movie: np.ndarray, *,
                   tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, batch: int = 4,
                   mixed_precision: bool = False) -> np.ndarray:
    """Denoise every frame of ``movie`` (T, H, W) with a trained network; float32 in the movie's units."""
    y = check_movie(movie, min_frames=model.frames)
    device = next(model.parameters()).device
    data = torch.from_numpy(normalisation.apply(y)).to(device)
    out = denoise_normalised(model, data, tile=tile, overlap=overlap, batch=batch, mixed_precision=mixed_precision)
    return normalisation.undo(out.cpu().numpy())
