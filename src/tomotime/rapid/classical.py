"""Classical noise filters for comparison with the U-Net: scikit-image's, and BM3D when installed.

:func:`best_classical` picks the filter and strength with the highest mean
PSNR against the references of a tuning set (the "best classical filter"
baseline, always available). BM3D (the ``bm3d`` package, non-commercial
licence) is an optional extra: :func:`bm3d_available` says whether it can run.
"""

from __future__ import annotations

import importlib.util
from typing import Callable

import numpy as np
from scipy import ndimage
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet, estimate_sigma

from tomotime.denoise.baselines import bm3d_frames
from tomotime.errors import InputError
from tomotime.metrics.image import psnr
from tomotime.rapid.unet_filter import paper_normalise

__all__ = ["CLASSICAL", "classical_filter", "best_classical", "bm3d_available", "bm3d_filter"]

#: Filter name -> strengths tried (in units of the estimated noise sigma, or pixels for Gaussian).
CLASSICAL: dict[str, tuple[float, ...]] = {
    "gaussian": (0.7, 1.0, 1.5, 2.0),
    "nl_means": (0.6, 0.8, 1.0, 1.3),
    "tv": (0.5, 1.0, 2.0, 4.0),
    "wavelet": (1.0,),
}


def classical_filter(image: np.ndarray, name: str, strength: float) -> np.ndarray:
    """Filter one image ``(H, W)`` (paper-normalised internally, returned in the input's units)."""
    x, lo, scale = paper_normalise(np.asarray(image, np.float32))
    sigma = float(estimate_sigma(x))
    if name == "gaussian":
        y = ndimage.gaussian_filter(x, strength)
    elif name == "nl_means":
        y = denoise_nl_means(x, h=strength * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
    elif name == "tv":
        y = denoise_tv_chambolle(x, weight=strength * sigma)
    elif name == "wavelet":
        y = denoise_wavelet(x, sigma=strength * sigma, rescale_sigma=True)
    elif name == "bm3d":
        y = bm3d_filter(x, strength * sigma)
    else:
        raise InputError(f"unknown filter {name!r}; expected one of {', '.join([*CLASSICAL, 'bm3d'])}")
    return (np.asarray(y, np.float32) * scale + lo).astype(np.float32)


def best_classical(noisy: np.ndarray, reference: np.ndarray, *, names=None,
                   score: Callable[[np.ndarray, np.ndarray], float] | None = None) -> tuple[str, float, dict]:
    """The filter and strength with the highest mean PSNR (paper-normalised images) over pairs ``(M, H, W)``.

    Returns ``(name, strength, scores)`` with ``scores[f"{name}:{strength}"]`` the mean PSNR in dB.
    """
    names = list(CLASSICAL) + (["bm3d"] if bm3d_available() else []) if names is None else list(names)
    score = score or (lambda a, b: psnr(paper_normalise(a)[0], paper_normalise(b)[0], data_range=1.0))
    scores = {}
    for name in names:
        for strength in CLASSICAL.get(name, (1.0,)):
            scores[f"{name}:{strength}"] = float(np.mean([score(classical_filter(a, name, strength), b)
                                                          for a, b in zip(noisy, reference)]))
    key = max(scores, key=scores.get)
    name, strength = key.split(":")
    return name, float(strength), scores


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package is installed."""
    return importlib.util.find_spec("bm3d") is not None


def bm3d_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D of ``image`` ``(H, W)`` with noise standard deviation ``sigma`` (needs the ``bm3d`` extra).

    The one-frame case of :func:`tomotime.denoise.baselines.bm3d_frames`.
    """
    return bm3d_frames(np.asarray(image, np.float64)[None], sigma)[0]
