"""Checks shared by the metrics: arrays in, clear errors out."""

from __future__ import annotations

from typing import Any

import numpy as np

from tomotime.errors import InputError


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a numpy array; torch tensors are detached and moved to the CPU."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_real_array(x: Any, *, name: str, ndims: tuple[int, ...] | None = (2, 3)) -> np.ndarray:
    """``x`` as a finite float64 array with one of ``ndims`` dimensions.

    Raises
    ------
    InputError
        If ``x`` is empty, not real-valued, of the wrong dimensionality, or holds NaN/Inf.
    """
    arr = to_numpy(x)
    if ndims is not None and arr.ndim not in ndims:
        wanted = " or ".join(f"{d}-D" for d in ndims)
        raise InputError(f"{name}: expected a {wanted} array, got {arr.ndim}-D of shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: the array is empty (shape {arr.shape})")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{name}: holds NaN or Inf values (first at index {tuple(int(i) for i in bad)})")
    return arr


def as_pair(a: Any, b: Any, *, names: tuple[str, str], ndims: tuple[int, ...] | None = (2, 3)
            ) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays checked by :func:`as_real_array` and required to share one shape."""
    a_arr = as_real_array(a, name=names[0], ndims=ndims)
    b_arr = as_real_array(b, name=names[1], ndims=ndims)
    if a_arr.shape != b_arr.shape:
        raise InputError(f"{names[0]} has shape {a_arr.shape} but {names[1]} has shape {b_arr.shape}; "
                         "expected the same shape")
    return a_arr, b_arr


def as_mask(mask: Any, shape: tuple[int, ...], *, name: str = "mask") -> np.ndarray:
    """``mask`` as a boolean array of ``shape`` that selects at least one element."""
    m = to_numpy(mask)
    if m.dtype != bool:
        raise InputError(f"{name}: expected a boolean array, got dtype {m.dtype}")
    if m.shape != tuple(shape):
        raise InputError(f"{name}: has shape {m.shape}, expected the data's shape {tuple(shape)}")
    if not m.any():
        raise InputError(f"{name}: selects no voxels")
    return m


def dynamic_range(truth: np.ndarray, *, name: str = "truth") -> float:
    """``max(truth) - min(truth)``, refusing a constant array."""
    rng = float(truth.max() - truth.min())
    if rng <= 0:
        raise InputError(f"{name}: is constant (value {float(truth.flat[0])}); its dynamic range is zero, "
                         "so the metric is undefined; pass data_range explicitly where supported")
    return rng


def positive(value: float, *, name: str) -> float:
    """``value`` as a float after checking it is finite and > 0."""
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"{name}={value}: expected a finite positive number")
    return v
