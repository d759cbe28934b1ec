"""Classical denoisers of frame series, tuned without a clean image.

:func:`gaussian_denoise` smooths every frame with a Gaussian whose width is
chosen by the smallest temporal uMSE (:mod:`tomotime.metrics.unsupervised`),
never by a clean reference. :func:`bm3d_frames` applies BM3D (Dabov et al.,
2007) frame by frame through the optional ``bm3d`` package (licensed for
non-commercial use only, so never a required dependency: ``pip install
tomotime[bm3d]``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from tomotime.denoise.movie import check_movie
from tomotime.errors import InputError
from tomotime.metrics.unsupervised import temporal_umse

__all__ = ["gaussian_frames", "gaussian_denoise", "bm3d_frames", "noise_sigma", "SIGMAS"]

#: Gaussian widths (px) searched by :func:`gaussian_denoise`.
SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def gaussian_frames(movie: np.ndarray, sigma: float) -> np.ndarray:
    """Each frame of ``movie`` (T, H, W) smoothed by a Gaussian of ``sigma`` px (reflected edges), float32."""
    return gaussian_filter(np.asarray(movie, dtype=np.float32), sigma=(0, sigma, sigma), mode="reflect")


def gaussian_denoise(movie: np.ndarray, *, sigmas: tuple[float, ...] = SIGMAS, sigma: float | None = None,
                     gap: int = 1) -> tuple[np.ndarray, float, dict[float, float]]:
    """Gaussian smoothing with the width of smallest temporal uMSE.

    Parameters
    ----------
    movie : numpy.ndarray, shape (T, H, W)
        Noisy frames (at least ``2 * gap + 2``, for the uMSE references).
    sigmas : tuple of float
        Widths (px) to try.
    sigma : float, optional
        Use this width instead of choosing one.
    gap : int
        Distance of the nearest uMSE reference frame (2 when the noise of
        consecutive frames is correlated; see :func:`~tomotime.metrics.unsupervised.temporal_references`).

    Returns
    -------
    denoised : numpy.ndarray, shape (T, H, W), float32
    sigma : float
        The chosen width (px).
    scores : dict
        Mean uMSE of every width tried (empty when ``sigma`` was given).
    """
    y = check_movie(movie, min_frames=1 if sigma is not None else 2 * gap + 2)
    if sigma is not None:
        return gaussian_frames(y, sigma), float(sigma), {}
    scores = {float(s): float(temporal_umse(gaussian_frames(y, s), y, reach=0, gap=gap)[0].mean()) for s in sigmas}
    best = min(scores, key=scores.get)
    return gaussian_frames(y, best), best, scores


def noise_sigma(movie: np.ndarray) -> float:
    """Noise standard deviation of a movie (T, H, W) from its temporal uMSE (no clean image; >= 4 frames).

    The uMSE of the raw frames against their temporal neighbours estimates
    the per-pixel noise variance (pixel-averaged; for Poisson counts the mean count).
    """
    y = check_movie(movie, min_frames=4)
    return float(np.sqrt(max(float(temporal_umse(y, y, reach=0)[0].mean()), 0.0)))


def bm3d_frames(movie: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """BM3D on every frame of ``movie`` (T, H, W) with noise standard deviation ``sigma`` (default :func:`noise_sigma`).

    Raises
    ------
    InputError
        If the optional ``bm3d`` package is not installed.
    """
    try:
        import bm3d
    except ImportError:
        raise InputError("BM3D needs the optional package bm3d (non-commercial licence): "
                         "pip install 'tomotime[bm3d]'") from None
    y = check_movie(movie, min_frames=1 if sigma is not None else 4)
    sigma = noise_sigma(y) if sigma is None else float(sigma)
    return np.stack([bm3d.bm3d(frame, sigma_psd=sigma).astype(np.float32) for frame in y])
