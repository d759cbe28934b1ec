"""Fourier shell (ring) correlation between two volumes (images) and the resolution it implies."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft

from tomotime.errors import InputError
from tomotime.metrics._validate import as_pair, positive, to_numpy

__all__ = ["fourier_shell_correlation", "fsc_resolution"]


def _radial_frequency(shape: tuple[int, ...], voxel_size: float) -> np.ndarray:
    """``|f|`` in 1/nm on the half spectrum of ``rfftn`` for an array of ``shape``."""
    axes = [fft.fftfreq(n, d=voxel_size) for n in shape[:-1]] + [fft.rfftfreq(shape[-1], d=voxel_size)]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))


def _hermitian_weights(shape: tuple[int, ...]) -> np.ndarray:
    """Weights that turn sums over the ``rfftn`` half spectrum into sums over the full one."""
    n = shape[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def fourier_shell_correlation(a: Any, b: Any, *, voxel_size: float = 1.0,
                              n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fourier shell correlation (3D) or Fourier ring correlation (2D) of two arrays.

    Definition, for the shell ``S_k`` of spatial frequencies ``|f|`` with
    ``(k - 1/2) d <= |f| < (k + 1/2) d``, ``d = f_Nyquist / n_bins``::

        FSC_k = Re(sum_{S_k} A(f) conj(B(f))) / sqrt(sum_{S_k} |A(f)|**2 * sum_{S_k} |B(f)|**2)

    with ``A``, ``B`` the discrete Fourier transforms of ``a`` and ``b`` and
    ``f_Nyquist = 1 / (2 voxel_size)``. Shells ``k = 1 .. n_bins`` are returned;
    the DC term (``k = 0``) is left out and frequencies beyond Nyquist (the
    corners of the cube) are ignored. Frequencies are physical, so
    non-cubic arrays are handled.

    Parameters
    ----------
    a, b : array_like, shape (Z, Y, X) or (Y, X)
        Two volumes (or images) of the same shape, finite.
    voxel_size : float
        Voxel size in nm.
    n_bins : int, optional
        Number of shells up to Nyquist; default ``min(shape) // 2`` (one shell per
        Fourier sample along the shortest axis).

    Returns
    -------
    frequencies : ndarray, shape (n_bins,)
        Shell centres ``k d`` in 1/nm.
    fsc : ndarray, shape (n_bins,)
        Correlation in [-1, 1] per shell; NaN for a shell without signal.
    """
    a_arr, b_arr = as_pair(a, b, names=("a", "b"))
    vs = positive(voxel_size, name="voxel_size")
    shape = a_arr.shape
    if n_bins is None:
        n_bins = min(shape) // 2
    if int(n_bins) != n_bins or n_bins < 1:
        raise InputError(f"n_bins={n_bins}: expected a whole number >= 1")
    n_bins = int(n_bins)
    step = 0.5 / vs / n_bins
    shell = np.rint(_radial_frequency(shape, vs) / step).astype(np.int64)
    shell = np.broadcast_to(shell, shape[:-1] + (shape[-1] // 2 + 1,))
    weights = np.broadcast_to(_hermitian_weights(shape), shell.shape)
    keep = (shell >= 1) & (shell <= n_bins)
    idx, w = shell[keep], weights[keep]

    fa = fft.rfftn(a_arr, workers=-1)[keep]
    fb = fft.rfftn(b_arr, workers=-1)[keep]
    cross = np.bincount(idx, weights=w * (fa * fb.conj()).real, minlength=n_bins + 1)[1:]
    pa = np.bincount(idx, weights=w * np.abs(fa) ** 2, minlength=n_bins + 1)[1:]
    pb = np.bincount(idx, weights=w * np.abs(fb) ** 2, minlength=n_bins + 1)[1:]
    denom = np.sqrt(pa * pb)
    fsc = np.full(n_bins, np.nan)
    ok = denom > 0
    fsc[ok] = cross[ok] / denom[ok]
    return step * np.arange(1, n_bins + 1), fsc


def fsc_resolution(freq: Any, fsc: Any, threshold: float = 0.143) -> float:
    """Resolution in nm where the FSC first drops below ``threshold``.

    The crossing frequency ``f_c`` is found by linear interpolation between the
    last shell at or above ``threshold`` and the first one below it (NaN shells
    are skipped); the resolution is ``1 / f_c``.

    Parameters
    ----------
    freq : array_like, shape (n,)
        Shell frequencies in 1/nm, increasing (as from :func:`fourier_shell_correlation`).
    fsc : array_like, shape (n,)
        FSC values.
    threshold : float
        Correlation threshold (0.143 by default; 0.5 is also common).

    Returns
    -------
    float
        Resolution in nm. ``inf`` if the FSC is already below ``threshold`` at
        the first shell (nothing is resolved); ``nan`` if it never drops below
        it (the resolution is finer than ``1 / freq[-1]`` and cannot be measured
        at this sampling).
    """
    f = np.asarray(to_numpy(freq), dtype=np.float64).reshape(-1)
    c = np.asarray(to_numpy(fsc), dtype=np.float64).reshape(-1)
    if f.shape != c.shape or f.size == 0:
        raise InputError(f"freq has {f.size} values but fsc has {c.size}; expected the same non-zero number")
    if not np.isfinite(f).all() or (np.diff(f) <= 0).any() or f[0] <= 0:
        raise InputError("freq: expected finite, positive, strictly increasing frequencies in 1/nm")
    if not -1 < threshold < 1:
        raise InputError(f"threshold={threshold}: expected a value in (-1, 1)")
    valid = np.isfinite(c)
    f, c = f[valid], c[valid]
    if c.size == 0:
        raise InputError("fsc: holds no finite values")
    below = np.flatnonzero(c < threshold)
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float("inf")
    f0, f1, c0, c1 = f[i - 1], f[i], c[i - 1], c[i]
    f_cross = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0)
    return float(1.0 / f_cross)
