"""Sampling grids and argument checks shared by the phantoms and scenarios.

Phantoms are defined in *unit coordinates*: the origin is the centre of the
volume and one unit is half the smallest edge, so a sphere stays a sphere in a
box of any shape and everything within radius 1 fits in the box.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tomotime.errors import InputError

MIN_SIZE = 16


def volume_shape(size: int | Sequence[int] | None, shape: Sequence[int] | None = None) -> tuple[int, int, int]:
    """The ``(Z, Y, X)`` shape asked for by ``size`` (cube edge or triple) or ``shape``.

    Raises
    ------
    InputError
        If both or neither are usable, or an edge is not an integer >= 16.
    """
    if shape is not None and size is not None:
        raise InputError(f"size={size!r}, shape={shape!r}: give either size or shape, not both")
    value, name = (shape, "shape") if shape is not None else (64 if size is None else size, "size")
    if np.ndim(value) == 0:
        edges = (value,) * 3
    else:
        edges = tuple(value)
        if len(edges) != 3:
            raise InputError(f"{name}={value!r}: expected one edge length or three (Z, Y, X)")
    out = []
    for e in edges:
        if isinstance(e, bool) or not isinstance(e, (int, np.integer)):
            raise InputError(f"{name}={value!r}: expected integer edge lengths in voxels")
        if e < MIN_SIZE:
            raise InputError(f"{name}={value!r}: every edge must be at least {MIN_SIZE} voxels")
        out.append(int(e))
    return tuple(out)


def check_options(func: Callable, name: str, kind: str, options: dict) -> None:
    """Raise InputError naming any option that ``func`` does not accept."""
    params = inspect.signature(func).parameters
    accepted = [p for p in params if p not in ("size", "shape", "steps")]
    unknown = [k for k in options if k not in params or k in ("size", "shape", "steps")]
    if unknown:
        raise InputError(f"{kind} {name!r}: unknown option(s) {', '.join(map(repr, unknown))}; "
                         f"accepted: {', '.join(accepted) or 'none'}")


def check_steps(steps: Any, *, minimum: int = 2) -> int:
    """``steps`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < minimum:
        raise InputError(f"steps={steps!r}: expected an integer number of time steps >= {minimum}")
    return int(steps)


def check_nonnegative(value: Any, name: str) -> float:
    """``value`` as a float after checking it is finite and >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}={value!r}: expected a number >= 0") from None
    if not (np.isfinite(v) and v >= 0):
        raise InputError(f"{name}={value!r}: expected a finite number >= 0")
    return v


def unit_coordinates(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxel-centre coordinates ``(z, y, x)`` in unit coordinates, float32.

    Returned as open grids of shapes ``(Z,1,1)``, ``(1,Y,1)``, ``(1,1,X)`` that
    broadcast to the volume.
    """
    half = min(shape) / 2.0
    axes = [((np.arange(n, dtype=np.float64) - (n - 1) / 2.0) / half).astype(np.float32) for n in shape]
    return tuple(np.reshape(a, [-1 if i == k else 1 for i in range(3)]) for k, a in enumerate(axes))


def voxel_length(shape: tuple[int, int, int]) -> float:
    """Edge of one voxel in unit coordinates."""
    return 2.0 / min(shape)


def soft_fill(signed_distance: np.ndarray, voxel: float) -> np.ndarray:
    """Partial-volume occupancy in [0, 1] from a signed distance (negative inside).

    A linear ramp one voxel wide across the surface, so the sum over voxels
    tracks the enclosed volume to a fraction of a voxel layer.
    """
    return np.clip(0.5 - signed_distance / voxel, 0.0, 1.0).astype(np.float32, copy=False)


def capsule_distance(z: np.ndarray, y: np.ndarray, x: np.ndarray, *, radius: float, half_length: float) -> np.ndarray:
    """Signed distance to a capsule along Y: a cylinder of ``half_length`` with hemispherical caps."""
    overhang = np.maximum(np.abs(y) - half_length, 0.0)
    return np.sqrt(z * z + overhang * overhang + x * x) - radius


def rounded_box_distance(z: np.ndarray, y: np.ndarray, x: np.ndarray, *, half_width: float,
                         rounding: float) -> np.ndarray:
    """Signed distance to an axis-aligned cube of ``half_width`` with edges rounded by ``rounding``."""
    inner = half_width - rounding
    q = [np.abs(c) - inner for c in (z, y, x)]
    outside = np.sqrt(sum(np.maximum(c, 0.0) ** 2 for c in q))
    inside = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
    return outside + inside - rounding


def fibonacci_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` nearly uniform unit vectors ``(n, 3)`` in ``(z, y, x)`` order, randomly rotated."""
    from scipy.spatial.transform import Rotation

    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azimuth = np.pi * (1.0 + 5.0**0.5) * i
    v = np.stack([np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], axis=1)
    return Rotation.random(None, rng).apply(v)
