"""Voxel-wise image quality against a ground truth: RMSE %, SSIM, PSNR, Otsu masks.

Every metric takes a reconstruction and its truth of the same 2D ``(Y, X)`` or
3D ``(Z, Y, X)`` shape (numpy arrays or torch tensors) and an optional boolean
``mask`` restricting the evaluation, e.g. to the particle (:func:`otsu_mask`).
The normalising dynamic range is always that of the *whole* truth, so masked and
unmasked values are on one scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity

from tomotime.errors import InputError
from tomotime.metrics._validate import as_mask, as_pair, as_real_array, dynamic_range, positive

__all__ = ["rmse_percent", "ssim", "psnr", "otsu_threshold", "otsu_mask"]

SSIM_WIN_SIZE = 7
OTSU_BINS = 256


def rmse_percent(recon: Any, truth: Any, *, mask: Any = None) -> float:
    """Root-mean-square error in percent of the truth's dynamic range.

    Definition (as in the DIP-STER paper)::

        RMSE% = 100 * sqrt(mean_M((recon - truth)**2)) / (max(truth) - min(truth))

    where ``mean_M`` averages over the voxels selected by ``mask`` (all voxels
    without a mask) and ``max``/``min`` run over the whole truth.

    Parameters
    ----------
    recon, truth : array_like, shape (Z, Y, X) or (Y, X)
        Reconstruction and ground truth, same shape, finite.
    mask : array_like of bool, same shape, optional
        Voxels to evaluate.

    Returns
    -------
    float
        RMSE in percent (0 for a perfect reconstruction).

    Raises
    ------
    InputError
        Shapes differ, NaN/Inf present, the mask is empty or the truth is constant.
    """
    r, t = as_pair(recon, truth, names=("recon", "truth"))
    rng = dynamic_range(t)
    sq = (r - t) ** 2
    if mask is not None:
        sq = sq[as_mask(mask, t.shape)]
    return float(100.0 * np.sqrt(sq.mean()) / rng)


def _ssim_map(r: np.ndarray, t: np.ndarray, data_range: float) -> tuple[float, np.ndarray]:
    """scikit-image's mean SSIM (border of half a window excluded) and the full SSIM map."""
    if min(t.shape) < SSIM_WIN_SIZE:
        raise InputError(f"recon/truth: shape {t.shape}; SSIM needs every side >= {SSIM_WIN_SIZE} "
                         f"(its window size)")
    mssim, smap = structural_similarity(r, t, data_range=data_range, win_size=SSIM_WIN_SIZE, full=True)
    return float(mssim), smap


def ssim(recon: Any, truth: Any, *, mask: Any = None, data_range: float | None = None) -> float:
    """Structural similarity (2D or 3D) with scikit-image's default constants.

    Uses :func:`skimage.metrics.structural_similarity` with ``K1 = 0.01``,
    ``K2 = 0.03``, a uniform window of 7 voxels per side and the sample
    covariance. Without ``mask`` the result equals scikit-image's mean SSIM,
    which leaves out a border of 3 voxels. With ``mask`` it is the mean of the
    full SSIM map over the masked voxels (border included)::

        SSIM_M = mean_M(S),  S = full SSIM map of (recon, truth)

    Parameters
    ----------
    recon, truth : array_like, shape (Z, Y, X) or (Y, X)
        Same shape, finite, every side at least 7.
    mask : array_like of bool, same shape, optional
        Voxels over which the SSIM map is averaged.
    data_range : float, optional
        ``L`` in the SSIM constants ``(K1 L)**2`` and ``(K2 L)**2``.
        Default: ``max(truth) - min(truth)``.

    Returns
    -------
    float
        SSIM, 1 for identical inputs.
    """
    r, t = as_pair(recon, truth, names=("recon", "truth"))
    rng = dynamic_range(t) if data_range is None else positive(data_range, name="data_range")
    m = None if mask is None else as_mask(mask, t.shape)
    mssim, smap = _ssim_map(r, t, rng)
    return mssim if m is None else float(smap[m].mean())


def psnr(recon: Any, truth: Any, *, data_range: float | None = None, mask: Any = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Definition::

        PSNR = 10 * log10(data_range**2 / mean_M((recon - truth)**2))

    with ``data_range = max(truth) - min(truth)`` by default (scikit-image's own
    default instead uses the dtype's range) and ``mean_M`` over ``mask``.
    Without a mask and with the same ``data_range`` this equals
    :func:`skimage.metrics.peak_signal_noise_ratio`. Identical inputs give ``inf``.

    Parameters
    ----------
    recon, truth : array_like, shape (Z, Y, X) or (Y, X)
        Same shape, finite.
    data_range : float, optional
        Peak value range, default the truth's dynamic range.
    mask : array_like of bool, same shape, optional
        Voxels to evaluate.

    Returns
    -------
    float
        PSNR in dB.
    """
    r, t = as_pair(recon, truth, names=("recon", "truth"))
    rng = dynamic_range(t) if data_range is None else positive(data_range, name="data_range")
    sq = (r - t) ** 2
    if mask is not None:
        sq = sq[as_mask(mask, t.shape)]
    mse = float(sq.mean())
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(rng**2 / mse))


def otsu_threshold(volume: Any) -> float:
    """Otsu's threshold of ``volume`` (:func:`skimage.filters.threshold_otsu`, 256 bins).

    The foreground is ``volume > threshold``, the usual convention, so a
    multi-level object on an empty background (a core-shell particle, say) is
    segmented as a whole.

    Parameters
    ----------
    volume : array_like, shape (Z, Y, X) or (Y, X)
        Finite, not constant.

    Returns
    -------
    float
    """
    v = as_real_array(volume, name="volume")
    dynamic_range(v, name="volume")
    return float(threshold_otsu(v, nbins=OTSU_BINS))


def otsu_mask(truth: Any, *, margin: int = 0) -> np.ndarray:
    """Boolean mask of the voxels above the Otsu threshold of ``truth``.

    Parameters
    ----------
    truth : array_like, shape (Z, Y, X) or (Y, X)
        Ground truth (or any volume); finite, not constant.
    margin : int
        Grow the mask by this many voxels (Euclidean distance <= ``margin``).

    Returns
    -------
    ndarray of bool, same shape
        ``truth > otsu_threshold(truth)`` (see :func:`otsu_threshold`), dilated by ``margin``.
    """
    if int(margin) != margin or margin < 0:
        raise InputError(f"margin={margin}: expected a whole number of voxels >= 0")
    t = as_real_array(truth, name="truth")
    dynamic_range(t)
    mask = t > otsu_threshold(t)
    if margin > 0:
        mask = ndimage.distance_transform_edt(~mask) <= margin
    return mask
