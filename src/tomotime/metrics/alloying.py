"""Degree of alloying of a bimetallic particle from the spread of its intensities."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from tomotime.errors import InputError
from tomotime.metrics._validate import as_mask, as_real_array
from tomotime.metrics.image import otsu_mask

__all__ = ["particle_std", "alloying_percentage", "alloying_curve"]


def particle_std(volume: Any, *, mask: Any, name: str = "volume") -> float:
    """Standard deviation (population, ``ddof=0``) of ``volume`` inside ``mask``."""
    v = as_real_array(volume, name=name)
    return float(v[as_mask(mask, v.shape)].std())


def _check_sigmas(sigma_initial: float, sigma_mixed: float) -> tuple[float, float]:
    s0, s_inf = float(sigma_initial), float(sigma_mixed)
    if not (np.isfinite(s0) and np.isfinite(s_inf) and s0 >= 0 and s_inf >= 0):
        raise InputError(f"sigma_initial={sigma_initial}, sigma_mixed={sigma_mixed}: expected finite values >= 0")
    if s0 == s_inf:
        raise InputError(f"sigma_initial and sigma_mixed are both {s0}; the alloying percentage is undefined "
                         "when the initial and mixed states have the same spread")
    return s0, s_inf


def alloying_percentage(volume: Any, *, mask: Any, sigma_initial: float, sigma_mixed: float) -> float:
    """Alloying percentage of one volume.

    Definition::

        alpha_i = 100 * (sigma_0 - sigma_i) / (sigma_0 - sigma_inf)

    where ``sigma_i`` is the standard deviation (``ddof=0``) of the intensities of
    ``volume`` inside the particle ``mask``, ``sigma_0`` that of the initial
    (segregated) state and ``sigma_inf`` that of the fully mixed state. It is 0
    for the initial state and 100 for the fully mixed one; values outside
    [0, 100] are returned as computed.

    Parameters
    ----------
    volume : array_like, shape (Z, Y, X) or (Y, X)
        The volume at time ``i``, finite.
    mask : array_like of bool, same shape
        The particle.
    sigma_initial, sigma_mixed : float
        ``sigma_0`` and ``sigma_inf``, in the intensity units of ``volume``.

    Returns
    -------
    float
        Alloying percentage.
    """
    s0, s_inf = _check_sigmas(sigma_initial, sigma_mixed)
    s_i = particle_std(volume, mask=mask)
    return float(100.0 * (s0 - s_i) / (s0 - s_inf))


def alloying_curve(volumes: Iterable[Any], *, mask: Any = None, sigma_initial: float | None = None,
                   sigma_mixed: float | None = None) -> np.ndarray:
    """Alloying percentage of every volume of a series, streamed one volume at a time.

    As the paper does, ``sigma_0`` and ``sigma_inf`` are measured on the initial
    and on the fully mixed *truth*: by default ``sigma_0`` is measured on the
    first volume of ``volumes``; ``sigma_inf`` must be given (measure it with
    :func:`particle_std` on the fully mixed truth and the same mask).

    Parameters
    ----------
    volumes : iterable of array_like (Z, Y, X), a (T, Z, Y, X) array or a VolumeSeries
        The series, in time order.
    mask : array_like of bool, shape (Z, Y, X), optional
        The particle; default :func:`~tomotime.metrics.otsu_mask` of the first
        volume (the same as its non-zero voxels for a clean phantom on a zero
        background).
    sigma_initial : float, optional
        ``sigma_0``; default the spread of the first volume inside ``mask``.
    sigma_mixed : float
        ``sigma_inf``; required.

    Returns
    -------
    ndarray, shape (T,)
        Alloying percentages.
    """
    if sigma_mixed is None:
        raise InputError("sigma_mixed: must be given; measure it on the fully mixed truth with "
                         "tomotime.metrics.particle_std(volume, mask=mask)")
    curve = []
    for i, vol in enumerate(volumes):
        name = f"volumes[{i}]"
        v = as_real_array(vol, name=name)
        if i == 0:
            mask = otsu_mask(v) if mask is None else as_mask(mask, v.shape)
            if sigma_initial is None:
                sigma_initial = particle_std(v, mask=mask, name=name)
            s0, s_inf = _check_sigmas(sigma_initial, sigma_mixed)
        elif v.shape != mask.shape:
            raise InputError(f"{name}: has shape {v.shape}, expected {mask.shape} like the first volume")
        curve.append(100.0 * (s0 - particle_std(v, mask=mask, name=name)) / (s0 - s_inf))
    if not curve:
        raise InputError("volumes: the series is empty")
    return np.asarray(curve)
