"""Shape metrics of a binarised particle: surface-to-volume ratio and volume redistribution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from tomotime.errors import InputError
from tomotime.metrics._validate import as_pair, as_real_array, dynamic_range, positive
from tomotime.metrics.image import otsu_threshold

__all__ = ["binarise", "surface_to_volume", "volume_redistribution", "Redistribution", "redistribution_curve",
           "redistribution_map"]


def _threshold(volume: np.ndarray, threshold: float | None, *, name: str) -> float:
    if threshold is not None:
        t = float(threshold)
        if not np.isfinite(t):
            raise InputError(f"threshold={threshold}: expected a finite number")
        return t
    dynamic_range(volume, name=name)
    return otsu_threshold(volume)


def binarise(volume: Any, *, threshold: float | None = None) -> np.ndarray:
    """``volume > threshold`` (:func:`~tomotime.metrics.otsu_threshold` of ``volume`` by default), shape kept."""
    v = as_real_array(volume, name="volume")
    return v > _threshold(v, threshold, name="volume")


def surface_to_volume(volume: Any, *, threshold: float | None = None) -> float:
    """Ratio of surface voxels to object voxels of the binarised volume.

    Definition: ``B = volume > threshold`` (:func:`~tomotime.metrics.otsu_threshold`
    by default); the
    surface is the one-voxel shell ``D(B) & ~B``, with ``D`` the binary dilation
    by the cross (6-neighbour in 3D, 4-neighbour in 2D) structuring element, and::

        S/V = count(D(B) & ~B) / count(B)

    The array is treated as surrounded by empty space, so an object touching the
    border still has its surface counted there. A solid cube of side ``a``
    voxels gives ``6 a**2 / a**3 = 6 / a``.

    Parameters
    ----------
    volume : array_like, shape (Z, Y, X) or (Y, X)
        Volume (image), finite.
    threshold : float, optional
        Binarisation threshold (``>``); default Otsu's.

    Returns
    -------
    float
        Surface-to-volume ratio in 1/voxel.

    Raises
    ------
    InputError
        No voxel lies above the threshold, or the volume is constant (no Otsu threshold).
    """
    obj = binarise(volume, threshold=threshold)
    n_obj = int(obj.sum())
    if n_obj == 0:
        raise InputError("volume: no voxel lies above the threshold; the surface-to-volume ratio is undefined")
    padded = np.pad(obj, 1)
    cross = ndimage.generate_binary_structure(padded.ndim, 1)
    surface = ndimage.binary_dilation(padded, structure=cross) & ~padded
    return float(surface.sum()) / n_obj


@dataclass(frozen=True)
class Redistribution:
    """Voxels gained and lost between two binarised volumes.

    Attributes
    ----------
    gained_voxels, lost_voxels : int
        Voxels in the second but not the first object, and in the first but not the second.
    gained_nm3, lost_nm3, total_nm3 : float
        The same as volumes (``count * voxel_size**ndim``, nm³ in 3D, nm² in 2D);
        ``total_nm3 = gained_nm3 + lost_nm3`` is the redistributed volume.
    threshold : float
        The binarisation threshold used for both volumes.
    """

    gained_voxels: int
    lost_voxels: int
    gained_nm3: float
    lost_nm3: float
    total_nm3: float
    threshold: float


def volume_redistribution(vol_a: Any, vol_b: Any, *, voxel_size: float = 1.0,
                          threshold: float | None = None) -> Redistribution:
    """Volume that moved between two states of a particle.

    Definition: both volumes are binarised with one threshold
    (:func:`~tomotime.metrics.otsu_threshold` of ``vol_a`` unless given), ``D = B_b - B_a``; gained voxels are those with
    ``D = +1``, lost voxels those with ``D = -1``, and the redistributed volume
    is ``count(|D| = 1) * voxel_size**3``.

    Parameters
    ----------
    vol_a, vol_b : array_like, shape (Z, Y, X) or (Y, X)
        The earlier and the later volume, same shape, finite.
    voxel_size : float
        Voxel size in nm.
    threshold : float, optional
        Binarisation threshold (``>``) for both; default Otsu's of ``vol_a``.

    Returns
    -------
    Redistribution
        Gained, lost and total redistributed volume (use ``dataclasses.asdict`` for a dict).
    """
    a, b = as_pair(vol_a, vol_b, names=("vol_a", "vol_b"))
    vs = positive(voxel_size, name="voxel_size")
    thr = _threshold(a, threshold, name="vol_a")
    diff = (b > thr).astype(np.int8) - (a > thr).astype(np.int8)
    gained, lost = int((diff == 1).sum()), int((diff == -1).sum())
    unit = vs**a.ndim
    return Redistribution(gained_voxels=gained, lost_voxels=lost, gained_nm3=gained * unit,
                          lost_nm3=lost * unit, total_nm3=(gained + lost) * unit, threshold=thr)


def redistribution_curve(series: Any, *, voxel_size: float = 1.0, threshold: float | None = None) -> dict[str, Any]:
    """Cumulative redistributed volume over time, as the DIP-STER paper plots it.

    Every volume is binarised with one threshold (Otsu's of the first volume
    unless given); between consecutive time points ``t - 1`` and ``t`` the
    gained and lost voxels are counted (:func:`volume_redistribution`) and
    summed over time.

    Parameters
    ----------
    series : VolumeSeries or array_like, shape (T, Z, Y, X)
        The series in time order, T >= 2.
    voxel_size : float
        Voxel size in nm.
    threshold : float, optional
        Binarisation threshold for every volume.

    Returns
    -------
    dict
        ``gained_nm3``, ``lost_nm3``, ``total_nm3``: arrays (T,) of the
        cumulative volumes (0 at the first time point); ``threshold``.
    """
    n = len(series)
    if n < 2:
        raise InputError(f"series: has {n} time point(s); redistribution needs at least 2")
    first = as_real_array(np.asarray(series[0]), name="series[0]")
    thr = _threshold(first, threshold, name="series[0]")
    gained, lost = [0.0], [0.0]
    previous = first
    for t in range(1, n):
        current = as_real_array(np.asarray(series[t]), name=f"series[{t}]")
        step = volume_redistribution(previous, current, voxel_size=voxel_size, threshold=thr)
        gained.append(gained[-1] + step.gained_nm3)
        lost.append(lost[-1] + step.lost_nm3)
        previous = current
    g, l = np.asarray(gained), np.asarray(lost)
    return {"gained_nm3": g, "lost_nm3": l, "total_nm3": g + l, "threshold": thr}


def redistribution_map(vol_a: Any, vol_b: Any, *, threshold: float | None = None) -> np.ndarray:
    """Signed map of the redistribution between two volumes: +1 gained, -1 lost, 0 unchanged (int8).

    Same binarisation as :func:`volume_redistribution`; show its orthoslices
    to draw the paper's gained/lost maps.
    """
    a, b = as_pair(vol_a, vol_b, names=("vol_a", "vol_b"))
    thr = _threshold(a, threshold, name="vol_a")
    return (b > thr).astype(np.int8) - (a > thr).astype(np.int8)
