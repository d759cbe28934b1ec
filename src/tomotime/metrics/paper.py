"""The DIP-STER paper's own metric definitions, exactly as it computes them.

They are looser than this package's strict metrics (:func:`~tomotime.metrics.ssim`
averages the SSIM map inside the truth's particle only; :func:`~tomotime.metrics.rmse_percent`
with an Otsu mask averages the squared error inside it):

- :func:`paper_rmse` (Eq. 8): both volumes are Otsu-masked (voxels at or below
  each volume's own Otsu threshold set to 0), then the RMSE over the *whole*
  volume in percent of the truth's dynamic range;
- :func:`paper_ssim`: scikit-image's SSIM (default 7-voxel window, border
  excluded) over the whole of the two Otsu-masked volumes;
- :func:`paper_alloying_curve`: the spread of intensities inside a mask from
  Otsu's threshold plus one binary dilation (6-neighbour cross) of the
  *simulated* volume, ``alpha = 100 (s0 - s_i) / (s0 - s_inf)`` with ``s0`` and
  ``s_inf`` measured on the initial and the fully mixed truth.

The empty background around the particle dilutes both: a volume that is mostly
background scores a high SSIM and a low RMSE whatever the particle looks like.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from tomotime.errors import InputError
from tomotime.metrics._validate import as_pair, as_real_array, dynamic_range
from tomotime.metrics.image import SSIM_WIN_SIZE, otsu_threshold

__all__ = ["otsu_masked", "paper_mask", "paper_rmse", "paper_ssim", "paper_alloying_curve"]


def otsu_masked(volume: Any) -> np.ndarray:
    """``volume`` with every voxel at or below its own Otsu threshold set to 0 (the paper's masking)."""
    v = as_real_array(volume, name="volume")
    return np.where(v > otsu_threshold(v), v, 0).astype(v.dtype, copy=False)


def paper_mask(volume: Any) -> np.ndarray:
    """Otsu's threshold plus one binary dilation (cross structuring element): the paper's alloying mask."""
    v = as_real_array(volume, name="volume")
    return ndimage.binary_dilation(v > otsu_threshold(v))


def paper_rmse(recon: Any, truth: Any) -> float:
    """RMSE in percent as the paper's Eq. 8, after Otsu-masking each volume.

    Definition::

        RMSE% = 100 * sqrt(mean((O(recon) - O(truth))**2)) / (max(truth) - min(truth))

    with ``O`` of :func:`otsu_masked` and the mean over *all* voxels.

    Parameters
    ----------
    recon, truth : array_like, shape (Z, Y, X) or (Y, X)
        Same shape, finite, neither constant.

    Returns
    -------
    float
    """
    r, t = as_pair(recon, truth, names=("recon", "truth"))
    rng = dynamic_range(t)
    return float(100.0 * np.sqrt(np.mean((otsu_masked(r) - otsu_masked(t)) ** 2, dtype=np.float64)) / rng)


def paper_ssim(recon: Any, truth: Any) -> float:
    """SSIM as the paper computes it: scikit-image's mean SSIM of the two Otsu-masked volumes.

    :func:`skimage.metrics.structural_similarity` with a 7-voxel window,
    ``data_range = max(truth) - min(truth)`` and its default constants, over
    the whole volume (border of 3 voxels excluded, as scikit-image does).
    """
    r, t = as_pair(recon, truth, names=("recon", "truth"))
    rng = dynamic_range(t)
    if min(t.shape) < SSIM_WIN_SIZE:
        raise InputError(f"recon/truth: shape {t.shape}; SSIM needs every side >= {SSIM_WIN_SIZE}")
    return float(structural_similarity(otsu_masked(r), otsu_masked(t), data_range=rng, win_size=SSIM_WIN_SIZE))


def _fully_mixed(volume: np.ndarray) -> np.ndarray:
    """``volume`` with the voxels above its Otsu threshold (the alloying metal) set to their mean."""
    mixed = volume.copy()
    metal = volume > otsu_threshold(volume)
    mixed[metal] = volume[metal].mean(dtype=np.float64)
    return mixed


def _std(volume: np.ndarray, mask: np.ndarray) -> float:
    return float(volume[mask].std(dtype=np.float64))


def paper_alloying_curve(volumes: Iterable[Any], *, truth: Iterable[Any] | None = None,
                         sigma_initial: float | None = None, sigma_mixed: float | None = None,
                         fixed_mask: bool = False) -> np.ndarray:
    """Alloying percentage per volume with the paper's Otsu + dilation mask.

    Definition::

        alpha_i = 100 * (s0 - s_i) / (s0 - s_inf),   s_i = std(volume_i[M_i])

    with ``M_i`` the :func:`paper_mask` of the simulated (true) volume ``i``
    (of the volume itself when no truth is given).

    Parameters
    ----------
    volumes : iterable of array_like (Z, Y, X)
        The series to measure (a reconstruction, or the truth itself).
    truth : iterable of array_like (Z, Y, X), optional
        The simulated series, same length: the masks come from it, and by
        default ``s0`` is measured on its first volume and ``s_inf`` on its
        fully mixed state (the voxels above the first volume's Otsu threshold,
        the alloying metal, set to their mean; a surrounding shell such as
        silica is left as it is), inside that state's own paper mask.
        Without a truth the measure is truth-free: masks from ``volumes``, ``s0`` from its first
        volume and ``s_inf = 0`` unless given (the paper's choice on
        experimental data, which underestimates the alloying).
    sigma_initial, sigma_mixed : float, optional
        ``s0`` and ``s_inf`` when given.
    fixed_mask : bool
        Use the mask of the first (true) volume at every time point instead of
        each volume's own. For a particle of constant outer shape this
        removes the jumps of Otsu's threshold on small grids (at 32^3 the
        threshold of the alloying rod's truth jumps from 0.30 to 0.34 and to
        0.002 in the first steps, moving the curve by tens of points);
        not the paper's choice, so off by default.

    Returns
    -------
    ndarray, shape (T,)
    """
    vols = iter(volumes)
    masks = None if truth is None else iter(truth)
    curve: list[float] = []
    s0 = s_inf = first_mask = None
    for i, vol in enumerate(vols):
        v = as_real_array(vol, name=f"volumes[{i}]")
        if masks is None:
            ref = v
        else:
            try:
                ref = as_real_array(next(masks), name=f"truth[{i}]")
            except StopIteration:
                raise InputError(f"truth: has fewer time points than volumes ({i})") from None
            if ref.shape != v.shape:
                raise InputError(f"volumes[{i}] has shape {v.shape} but truth[{i}] has {ref.shape}")
        mask = first_mask if fixed_mask and i else paper_mask(ref)
        if i == 0:
            first_mask = mask
            s0 = _std(ref, mask) if sigma_initial is None else float(sigma_initial)
            if sigma_mixed is not None:
                s_inf = float(sigma_mixed)
            elif truth is None:
                s_inf = 0.0
            else:
                mixed = _fully_mixed(ref)
                s_inf = _std(mixed, paper_mask(mixed))
            if not (np.isfinite(s0) and np.isfinite(s_inf)) or s0 == s_inf:
                raise InputError(f"sigma_initial={s0}, sigma_mixed={s_inf}: the alloying percentage is undefined")
        curve.append(100.0 * (s0 - _std(v, mask)) / (s0 - s_inf))
    if not curve:
        raise InputError("volumes: the series is empty")
    return np.asarray(curve)
