"""Quality of a denoised movie without a clean image: uMSE/uPSNR, vacuum SNR, noise correlation.

uMSE (Marcos-Morales et al., ICML 2023): with noisy references ``a``, ``b``,
``c`` of the same clean image whose noise is independent of each other and
of the denoiser's input ``y``,

    uMSE = mean((f(y) - a)**2) - mean((b - c)**2) / 2,

an unbiased estimate of ``mean((f(y) - x)**2)`` for the clean image ``x``
(the first term adds the noise variance of ``a``, the second removes it).
uPSNR = 10 log10(M**2 / uMSE). The references are either the other frames of
the movie outside the denoiser's window (:func:`temporal_umse`; noise is
independent between frames even when it is correlated between neighbouring
pixels) or the 2x2 polyphase components of one frame (:func:`polyphase_umse`;
needs spatially independent noise). Means divide by the number of pixels ``n``
(not ``n - 1``); a uMSE <= 0 has no uPSNR and is reported as such, never as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tomotime.errors import InputError
from tomotime.metrics._validate import as_real_array

__all__ = [
    "umse", "upsnr", "temporal_references", "temporal_umse", "polyphase_umse", "polyphase_umse_frames",
    "UpsnrEstimate",
    "bootstrap_upsnr", "vacuum_snr", "noise_correlation", "signal_peak",
]


def umse(estimate: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """``mean((estimate - a)**2) - mean((b - c)**2) / 2`` over all pixels (arrays of one shape)."""
    arrays = [as_real_array(v, name=n, ndims=None) for v, n in zip((estimate, a, b, c), "fabc")]
    if len({v.shape for v in arrays}) != 1:
        raise InputError(f"umse: the estimate and references differ in shape {[v.shape for v in arrays]}")
    f, a, b, c = arrays
    return float(np.mean((f - a) ** 2) - 0.5 * np.mean((b - c) ** 2))


def upsnr(value: float, peak: float) -> float:
    """``10 log10(peak**2 / value)`` in dB.

    Raises
    ------
    InputError
        If ``value <= 0`` (the references' noise exceeds the measured error: the
        estimate is below its own uncertainty) or ``peak <= 0``.
    """
    if not peak > 0:
        raise InputError(f"peak={peak}: expected a positive signal range")
    if not value > 0:
        raise InputError(f"uMSE={value:.4g} <= 0: the error is below what the references' noise can resolve, so "
                         "uPSNR is undefined; use more frames or a larger region")
    return 10 * math.log10(peak ** 2 / value)


def temporal_references(t: int, n_frames: int, reach: int, gap: int = 1) -> tuple[int, int, int] | None:
    """Frames ``(a, b, c)`` nearest to ``t`` at least ``gap`` frames outside the window ``[t - reach, t + reach]``.

    Candidates alternate before and after: ``t - reach - gap``, ``t + reach + gap``,
    ``t - reach - gap - 1``, ...; ``a`` is the first, ``b`` the next, ``c`` the
    next at least ``gap`` frames from ``b``; None when the movie has too few.
    A ``gap`` of 2 keeps the references independent of the input, and ``b``
    of ``c``, when the noise of consecutive frames is correlated (detector lag).
    """
    candidates = [k for d in range(reach + gap, n_frames + reach + gap) for k in (t - d, t + d) if 0 <= k < n_frames]
    if len(candidates) < 3:
        return None
    a, b = candidates[0], candidates[1]
    c = next((k for k in candidates[2:] if abs(k - b) >= gap), None)
    return None if c is None else (a, b, c)


def temporal_umse(denoised: np.ndarray, noisy: np.ndarray, *, reach: int, gap: int = 1,
                  region: tuple[slice, slice] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uMSE of every frame with temporal references.

    Parameters
    ----------
    denoised, noisy : numpy.ndarray, shape (T, H, W)
        Denoised movie and the noisy movie it came from.
    reach : int
        Frames on each side the denoiser used for one output frame (UDVD: 2,
        single-frame filters: 0); references come from outside that window.
    gap : int
        Distance of the nearest reference beyond the window (see :func:`temporal_references`).
    region : (slice, slice) or bool array (H, W), optional
        Pixels to evaluate (default: all).

    Returns
    -------
    values : numpy.ndarray, shape (K,)
        uMSE of each frame that has references (squared intensity units).
    frames : numpy.ndarray of int, shape (K,)
    """
    f = as_real_array(denoised, name="denoised", ndims=(3,))
    y = as_real_array(noisy, name="noisy", ndims=(3,))
    if f.shape != y.shape:
        raise InputError(f"denoised {f.shape} and noisy {y.shape}: expected the same shape")
    sel = (slice(None), slice(None)) if region is None else region
    values, frames = [], []
    for t in range(f.shape[0]):
        refs = temporal_references(t, f.shape[0], reach, gap)
        if refs is None:
            continue
        a, b, c = (y[k][sel] for k in refs)
        values.append(np.mean((f[t][sel] - a) ** 2) - 0.5 * np.mean((b - c) ** 2))
        frames.append(t)
    if not values:
        raise InputError(f"temporal uMSE: {f.shape[0]} frames leave no three reference frames outside a window "
                         f"of +-{reach} (gap {gap}); expected at least {2 * (reach + gap) + 2} frames")
    return np.asarray(values), np.asarray(frames, dtype=int)


def polyphase_umse(denoise: Callable[[np.ndarray], np.ndarray], frame: np.ndarray) -> float:
    """uMSE of ``denoise`` with the 2x2 polyphase components of one frame as references.

    ``denoise`` runs on the component ``frame[0::2, 0::2]`` (half resolution);
    the references are ``a = frame[1::2, 1::2]``, ``b = frame[0::2, 1::2]``,
    ``c = frame[1::2, 0::2]``. Assumes spatially independent noise and a
    signal smooth on the scale of one pixel.
    """
    y = as_real_array(frame, name="frame", ndims=(2,))
    return float(polyphase_umse_frames(lambda m: np.asarray(denoise(m[0]))[None], y[None])[0])


def polyphase_umse_frames(denoise: Callable[[np.ndarray], np.ndarray], movie: np.ndarray) -> np.ndarray:
    """uMSE of every frame of a movie with polyphase references (see :func:`polyphase_umse`).

    Parameters
    ----------
    denoise : callable
        Maps the half-resolution movie ``movie[:, 0::2, 0::2]`` ``(T, h, w)``
        to its denoised version of the same shape (a video denoiser sees the
        neighbouring frames' components, whose noise is independent of the
        references' of this frame).
    movie : numpy.ndarray, shape (T, H, W)
        Noisy frames (an odd last row or column is dropped); at least 4 x 4 px.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Per-frame uMSE (squared intensity units).
    """
    y = as_real_array(movie, name="movie", ndims=(3,))
    h, w = (y.shape[1] // 2) * 2, (y.shape[2] // 2) * 2
    if min(h, w) < 4:
        raise InputError(f"polyphase uMSE: frames of {y.shape[1]} x {y.shape[2]} px; expected at least 4 x 4")
    y = y[:, :h, :w]
    estimate = np.asarray(denoise(y[:, 0::2, 0::2]), dtype=np.float64)
    if estimate.shape != (y.shape[0], h // 2, w // 2):
        raise InputError(f"polyphase uMSE: the denoiser returned {estimate.shape}, expected "
                         f"{(y.shape[0], h // 2, w // 2)}")
    a, b, c = y[:, 1::2, 1::2], y[:, 0::2, 1::2], y[:, 1::2, 0::2]
    return ((estimate - a) ** 2).mean(axis=(1, 2)) - 0.5 * ((b - c) ** 2).mean(axis=(1, 2))


@dataclass(frozen=True)
class UpsnrEstimate:
    """uMSE and uPSNR of a movie with a bootstrap confidence interval over frames.

    ``upsnr`` and the interval bounds are None where uMSE <= 0 (see ``note``);
    an upper uPSNR bound of None means the interval is unbounded above.
    """

    umse: float
    umse_ci: tuple[float, float]
    upsnr: float | None
    upsnr_ci: tuple[float | None, float | None]
    peak: float
    frames: int
    level: float
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _db(value: float, peak: float) -> float | None:
    return 10 * math.log10(peak ** 2 / value) if value > 0 else None


def bootstrap_upsnr(values: np.ndarray, *, peak: float, level: float = 0.9, n_boot: int = 2000,
                    seed: int = 0) -> UpsnrEstimate:
    """Mean per-frame uMSE, its uPSNR and percentile bootstrap intervals (resampling frames).

    Parameters
    ----------
    values : numpy.ndarray, shape (K,)
        Per-frame uMSE (e.g. from :func:`temporal_umse`).
    peak : float
        Signal range ``M`` of uPSNR (intensity units).
    level : float
        Confidence level (the paper: 0.9).
    """
    v = as_real_array(values, name="uMSE values", ndims=(1,))
    if not 0 < level < 1:
        raise InputError(f"level={level}: expected a confidence level in (0, 1)")
    if not peak > 0:
        raise InputError(f"peak={peak}: expected a positive signal range")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    mean = float(v.mean())
    note = None
    if mean <= 0:
        note = (f"uMSE = {mean:.4g} <= 0: the error is below what the references' noise resolves; uPSNR is "
                "undefined (use more frames or a larger region)")
    elif lo <= 0:
        note = "the lower uMSE bound is <= 0: the uPSNR interval is unbounded above"
    return UpsnrEstimate(mean, (float(lo), float(hi)), _db(mean, peak), (_db(float(hi), peak), _db(float(lo), peak)),
                         float(peak), int(v.size), float(level), note)


def signal_peak(noisy: np.ndarray) -> float:
    """Default uPSNR range ``M``: max minus min of the temporal mean of the movie (T, H, W)."""
    mean = as_real_array(noisy, name="noisy", ndims=(3,)).mean(axis=0)
    return float(mean.max() - mean.min()) or 1.0


def vacuum_snr(movie: np.ndarray, region: tuple[slice, slice] | np.ndarray | None = None) -> np.ndarray:
    """Signal-to-noise ratio ``mean / std`` of each frame over a vacuum region, shape (T,)."""
    y = as_real_array(movie, name="movie", ndims=(3,))
    sel = (slice(None), slice(None)) if region is None else region
    pixels = np.stack([frame[sel].ravel() for frame in y])
    std = pixels.std(axis=1)
    if (std == 0).any():
        raise InputError("vacuum_snr: a frame is constant over the region; the SNR is unbounded")
    return pixels.mean(axis=1) / std


def noise_correlation(movie: np.ndarray, region: tuple[slice, slice] | None = None) -> dict[str, float]:
    """Correlation of the noise between neighbouring pixels and between consecutive frames.

    The noise is the movie minus its temporal mean (for a static scene or a
    vacuum region) and minus each frame's mean (beam-current flicker is not
    noise). Returns the Pearson correlations at a lag of one pixel along x and
    y, of one frame, and of two frames (the temporal ones are biased by about
    ``-1/(T-1)``).
    """
    y = as_real_array(movie, name="movie", ndims=(3,))
    if region is not None:
        y = y[(slice(None), *region)]
    if y.shape[0] < 3 or min(y.shape[1:]) < 2:
        raise InputError(f"noise_correlation: expected at least 3 frames of 2 x 2 px, got {y.shape}")
    r = y - y.mean(axis=0)
    r -= r.mean(axis=(1, 2), keepdims=True)

    def corr(p: np.ndarray, q: np.ndarray) -> float:
        p, q = p.ravel() - p.mean(), q.ravel() - q.mean()
        den = math.sqrt(float(p @ p) * float(q @ q))
        return float(p @ q) / den if den > 0 else 0.0

    return {"spatial_x": corr(r[:, :, :-1], r[:, :, 1:]), "spatial_y": corr(r[:, :-1], r[:, 1:]),
            "temporal": corr(r[:-1], r[1:]), "temporal_lag2": corr(r[:-2], r[2:])}
