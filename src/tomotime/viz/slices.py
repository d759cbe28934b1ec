"""Sections of volumes as 8-bit images: one plane, or the three orthoslices side by side.

Planes follow the volume convention ``(Z, Y, X)``: ``xy`` is ``vol[z]`` (rows Y,
columns X), ``xz`` is ``vol[:, y, :]`` (rows Z, columns X, the slice
perpendicular to the tilt axis), ``yz`` is ``vol[:, :, x]`` (rows Z, columns Y).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from tomotime.errors import InputError

__all__ = ["PLANES", "plane_axis", "section", "orthoslices", "intensity_range", "to_uint8"]

PLANES = ("xy", "xz", "yz")
_AXIS = {"xy": 0, "xz": 1, "yz": 2}
_GAP = 2


def plane_axis(plane: str) -> int:
    """Volume axis normal to ``plane`` (``xy`` -> 0 (Z), ``xz`` -> 1 (Y), ``yz`` -> 2 (X))."""
    if plane not in _AXIS:
        raise InputError(f"plane {plane!r}: expected one of {', '.join(PLANES)}")
    return _AXIS[plane]


def section(volume: np.ndarray, plane: str, index: int | None = None) -> np.ndarray:
    """The section of ``volume (Z, Y, X)`` in ``plane`` at ``index`` (default: the centre).

    Raises
    ------
    InputError
        If ``plane`` is unknown or ``index`` lies outside the volume.
    """
    axis = plane_axis(plane)
    size = volume.shape[axis]
    index = size // 2 if index is None else index
    if not (isinstance(index, (int, np.integer)) and 0 <= index < size):
        raise InputError(f"slice index {index!r}: the {plane} plane has indices 0..{size - 1} "
                         f"(volume shape Z, Y, X = {tuple(volume.shape)})")
    return np.take(volume, int(index), axis=axis)


def intensity_range(volumes: Iterable[np.ndarray], *, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Display range: percentiles ``low`` / ``high`` over all voxels of ``volumes`` (a few suffice)."""
    samples = [np.asarray(v, dtype=np.float32).ravel()[::7] for v in volumes]
    values = np.concatenate(samples) if samples else np.zeros(1, np.float32)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def to_uint8(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Scale ``image`` linearly so that ``lo`` -> 0 and ``hi`` -> 255, clipped."""
    scaled = (np.asarray(image, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)


def orthoslices(volume: np.ndarray, lo: float, hi: float, *, gap: int = _GAP) -> np.ndarray:
    """Central XY, XZ and YZ sections side by side, uint8, on a black background."""
    parts = [to_uint8(section(volume, plane), lo, hi) for plane in PLANES]
    height = max(p.shape[0] for p in parts)
    width = sum(p.shape[1] for p in parts) + gap * (len(parts) - 1)
    canvas = np.zeros((height, width), dtype=np.uint8)
    x = 0
    for part in parts:
        canvas[:part.shape[0], x:x + part.shape[1]] = part
        x += part.shape[1] + gap
    return canvas
