"""Pieces shared by the format readers: the raw stack record, file and unit checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import check_stack
from tomotime.errors import FormatError, InputError

_NM_PER_UNIT = {
    "m": 1e9,
    "mm": 1e6,
    "cm": 1e7,
    "um": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "nm": 1.0,
    "nanometer": 1.0,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "pm": 1e-3,
}


@dataclass
class RawStack:
    """What a format reader found in a file, before validation.

    ``images`` keeps the file's dtype and dimensionality; ``pixel_size`` is in
    nm, ``angles`` in degrees and ``times`` in seconds, each ``None`` when the
    file does not record it.
    """

    images: Any
    format: str
    pixel_size: float | None = None
    angles: np.ndarray | None = None
    times: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def existing_file(path: str | Path) -> Path:
    """Return ``path`` as a ``Path`` after checking it is a non-empty file.

    Raises
    ------
    FormatError
        If the file is missing, is a directory or holds 0 bytes.
    """
    p = Path(path)
    if not p.exists():
        raise FormatError(f"{p}: no such file")
    if p.is_dir():
        raise FormatError(f"{p}: is a directory; expected a file")
    if p.stat().st_size == 0:
        raise FormatError(f"{p}: the file is empty (0 bytes)")
    return p


def length_to_nm(value: float, unit: str | None) -> float | None:
    """Convert a length ``value`` in ``unit`` to nm; ``None`` if the unit is unknown."""
    if unit is None:
        return None
    key = str(unit).strip().lower().replace("\\u00b5", "u").replace("_", "")
    key = key.replace("\u00b5", "u").replace("\u03bc", "u")
    factor = _NM_PER_UNIT.get(key)
    if factor is None or not np.isfinite(value) or value <= 0:
        return None
    return float(value) * factor


def require_ndim(shape: tuple, path: Path, *, ndim: int, expected: str) -> None:
    """Raise a ``FormatError`` naming ``path`` unless ``len(shape) == ndim``."""
    if len(shape) == ndim:
        return
    if len(shape) == 2 and ndim == 3:
        raise FormatError(f"{path}: holds a single 2-D image of shape {tuple(shape)}; expected {expected}")
    raise FormatError(f"{path}: holds a {len(shape)}-D array of shape {tuple(shape)}; expected {expected}")


def checked_volume(volume: Any, voxel_size: float) -> tuple[np.ndarray, float]:
    """A volume to write, as float32 ``(Z, Y, X)``, and its voxel size in nm, both checked."""
    vol = check_stack(volume, name="volume", ndim=3)
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(f"voxel_size={voxel_size}: expected a positive size in nm")
    return vol, float(voxel_size)
