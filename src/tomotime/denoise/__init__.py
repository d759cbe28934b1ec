"""Unsupervised denoising of frame series: the blind-spot video denoiser UDVD and classical baselines.

:func:`train_udvd` trains a :class:`~tomotime.models.blindspot.BlindSpotNet`
on the noisy movie alone (shared training engine: frame holdout, best state,
checkpoints and resume); :func:`apply_denoiser` denoises frames of any size
(padding, seamless tiles); :func:`gaussian_denoise` is the baseline tuned by
uMSE; :func:`train_neighbor2neighbor` is the self-supervised single-frame
baseline Neighbor2Neighbor (an ordinary U-Net on sub-sampled pairs).
Quality without a clean image: :mod:`tomotime.metrics.unsupervised`.
"""

from tomotime.denoise.baselines import bm3d_frames, gaussian_denoise, gaussian_frames, noise_sigma
from tomotime.denoise.config import MIN_FRAMES, PRESETS, DenoiserTrainingConfig, UdvdConfig
from tomotime.denoise.inference import DEFAULT_OVERLAP, DEFAULT_TILE, denoise_normalised, tile_starts
from tomotime.denoise.method import UdvdMethod, degenerate_output, holdout_frames
from tomotime.denoise.movie import Normalisation, check_movie
from tomotime.denoise.neighbor2neighbor import (
    Neighbor2NeighborConfig,
    load_neighbor2neighbor,
    save_neighbor2neighbor,
    train_neighbor2neighbor,
)
from tomotime.denoise.store import load_denoiser, save_denoiser
from tomotime.denoise.tomography import denoise_tilt_series
from tomotime.denoise.train import apply_denoiser, train_udvd

__all__ = [
    "UdvdConfig", "DenoiserTrainingConfig", "PRESETS", "MIN_FRAMES", "UdvdMethod", "holdout_frames",
    "degenerate_output", "train_udvd", "apply_denoiser",
    "denoise_normalised", "tile_starts", "DEFAULT_TILE", "DEFAULT_OVERLAP", "gaussian_denoise", "gaussian_frames",
    "bm3d_frames", "noise_sigma",
    "Normalisation", "check_movie", "save_denoiser", "load_denoiser", "denoise_tilt_series",
    "Neighbor2NeighborConfig", "train_neighbor2neighbor", "save_neighbor2neighbor", "load_neighbor2neighbor",
]
