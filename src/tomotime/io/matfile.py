"""MATLAB ``.mat`` stacks: v4-v7 via scipy.io, v7.3 (HDF5) via h5py.

The stack is the 3-D numeric array named ``data``, ``stack``, ``images``,
``tiltseries`` or ``projections`` (at the top level or one struct level
down, e.g. ``stack.data``), else the only 3-D numeric array. Angles come from
a 1-D field named ``angles``, ``tilt_angles``, ``tilts`` or ``theta`` beside
it, the pixel size from ``pix_sz``, ``pixel_size`` or ``pixelsize`` (the file
gives no unit; nm is assumed and a note says so). MATLAB stacks usually hold
the views on their last axis ``(Y, X, N)``: the axis whose length matches the
angles (the last one when several do, or when there are no angles) becomes
the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tomotime.errors import FormatError
from tomotime.io._common import RawStack, existing_file

__all__ = ["read_mat"]

_STACK_NAMES = ("data", "stack", "images", "tiltseries", "tilt_series", "projections")
_ANGLE_NAMES = ("angles", "tilt_angles", "tilts", "theta", "angle")
_PIXEL_NAMES = ("pix_sz", "pixel_size", "pixelsize", "pixel_size_nm")


def _flatten_v5(contents: dict) -> dict[str, Any]:
    """Variables and one level of struct fields (``stack.data``) as numpy arrays by dotted name."""
    out: dict[str, Any] = {}
    for name, value in contents.items():
        if name.startswith("__"):
            continue
        if isinstance(value, np.ndarray) and value.dtype.names:
            for field in value.dtype.names:
                item = value[field]
                while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
                    item = item.item()
                out[f"{name}.{field}"] = np.asarray(item)
        else:
            out[name] = np.asarray(value)
    return out


def _flatten_v73(path: Path) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and not name.startswith("#") and obj.dtype.kind in "iuf":
                # MATLAB writes column-major: reverse the axes to get MATLAB's (Y, X, N)
                out[name.replace("/", ".")] = np.asarray(obj[()]).T
        f.visititems(visit)
    return out


def _pick(arrays: dict[str, Any], names: tuple[str, ...], ndim: int) -> tuple[str, np.ndarray] | None:
    candidates = {k: v for k, v in arrays.items() if v.dtype.kind in "iuf" and v.ndim == ndim}
    for wanted in names:
        for key, value in candidates.items():
            if key.split(".")[-1].lower() == wanted:
                return key, value
    if ndim == 3 and len(candidates) == 1:
        return next(iter(candidates.items()))
    return None


def read_mat(path: str | Path) -> RawStack:
    """Read a tilt series from a MATLAB ``.mat`` file (see the module description).

    Raises
    ------
    FormatError
        If the file is not a MAT file, or holds no or several unnamed 3-D stacks.
    """
    p = existing_file(path)
    import scipy.io

    try:
        arrays = _flatten_v5(scipy.io.loadmat(p, squeeze_me=True))
        version = "mat"
    except NotImplementedError:  # v7.3 is HDF5
        arrays, version = _flatten_v73(p), "mat-v7.3"
    except (ValueError, OSError, TypeError) as exc:
        raise FormatError(f"{p}: not a readable MATLAB .mat file ({exc})") from None
    found = _pick(arrays, _STACK_NAMES, 3)
    if found is None:
        stacks = sorted(k for k, v in arrays.items() if v.ndim == 3)
        raise FormatError(f"{p}: no 3-D image stack found (3-D variables: {stacks or 'none'}); expected one named "
                          f"{', '.join(_STACK_NAMES)}")
    name, data = found
    notes: list[str] = []
    angle_item = _pick({k: np.ravel(v) for k, v in arrays.items() if np.size(v) > 1}, _ANGLE_NAMES, 1)
    angles = None if angle_item is None else angle_item[1].astype(np.float64)
    axis = data.ndim - 1
    if angles is not None:
        matching = [i for i, n in enumerate(data.shape) if n == angles.size]
        if matching:
            axis = matching[-1]
        else:
            notes.append(f"{p}: {angle_item[0]} holds {angles.size} values, matching no axis of {name} "
                         f"{data.shape}; not used")
            angles = None
    images = np.moveaxis(data, axis, 0)
    if axis != 0:
        notes.append(f"{p}: {name} of shape {data.shape} read with axis {axis} as the view axis")
    pixel = None
    pixel_item = _pick({k: np.ravel(v) for k, v in arrays.items() if np.size(v) == 1}, _PIXEL_NAMES, 1)
    if pixel_item is not None:
        value = float(pixel_item[1][0])
        if np.isfinite(value) and value > 0:
            pixel = value
            notes.append(f"{p}: pixel size {value:g} from {pixel_item[0]}; the file gives no unit, nm assumed")
    return RawStack(images=np.ascontiguousarray(images), format=version, pixel_size=pixel, angles=angles,
                    extra={"dataset": name, "notes": notes})
