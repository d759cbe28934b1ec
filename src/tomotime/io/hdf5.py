"""HDF5 stacks and volumes (``.h5``, ``.hdf5``) via h5py.

Layout read here: the stack in a dataset named ``images`` (``volume`` for a
volume) or the only dataset of the right dimensionality; ``angles`` (degrees)
and ``times`` (seconds) as datasets at the root or as attributes of the stack
or the root; the pixel size (nm) as attribute ``pixel_size`` or
``pixel_size_nm`` (``voxel_size_nm`` for volumes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from tomotime.errors import FormatError
from tomotime.io._common import RawStack, existing_file

__all__ = ["read_hdf5"]

_SIZE_NAMES = ("pixel_size_nm", "pixel_size", "voxel_size_nm", "voxel_size")


def _find_dataset(f: h5py.File, path: Path, names: tuple[str, ...], ndim: int) -> h5py.Dataset:
    for name in names:
        if isinstance(f.get(name), h5py.Dataset):
            return f[name]
    found: list[h5py.Dataset] = []
    f.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    matching = [d for d in found if d.ndim == ndim]
    if len(matching) == 1:
        return matching[0]
    listing = ", ".join(f"{d.name} {d.shape}" for d in found) or "none"
    if not matching:
        raise FormatError(f"{path}: no {ndim}-D dataset named {names[0]!r} (datasets: {listing})")
    raise FormatError(f"{path}: several {ndim}-D datasets ({listing}); name the one to read {names[0]!r}")


def _lookup(f: h5py.File, ds: h5py.Dataset, names: tuple[str, ...]) -> Any:
    for name in names:
        if isinstance(f.get(name), h5py.Dataset):
            return f[name][()]
        for attrs in (ds.attrs, f.attrs):
            if name in attrs:
                return attrs[name]
    return None


def read_hdf5(path: str | Path, *, names: tuple[str, ...] = ("images",), ndim: int = 3) -> RawStack:
    """Read a stack (or volume) from an HDF5 file with its angles, times and pixel size.

    Parameters
    ----------
    path : str or Path
        HDF5 file.
    names : tuple of str
        Dataset names to try first, in order.
    ndim : int
        Dimensionality of the dataset to pick when none of ``names`` exists.

    Returns
    -------
    RawStack
        ``angles``/``times``/``pixel_size`` are ``None`` when not stored.

    Raises
    ------
    FormatError
        If the file is missing, empty, not HDF5, or the dataset cannot be chosen.
    """
    p = existing_file(path)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise FormatError(f"{p}: not a readable HDF5 file ({exc})") from exc
    with f:
        ds = _find_dataset(f, p, names, ndim)
        try:
            data = ds[()]
        except OSError as exc:
            raise FormatError(f"{p}: dataset {ds.name} could not be read, the file may be truncated ({exc})") from exc
        angles = _lookup(f, ds, ("angles", "tilt_angles"))
        times = _lookup(f, ds, ("times",))
        size = _lookup(f, ds, _SIZE_NAMES)
        name = ds.name
    return RawStack(
        images=data,
        format="hdf5",
        pixel_size=None if size is None else float(_numbers(p, "pixel size", size)[0]),
        angles=None if angles is None else _numbers(p, "angles", angles),
        times=None if times is None else _numbers(p, "times", times),
        extra={"dataset": name},
    )


def _numbers(path: Path, what: str, value: Any) -> np.ndarray:
    """``value`` as a flat float64 array, or a ``FormatError`` naming the file and the entry."""
    try:
        out = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        out = None
    if out is None or out.size == 0:
        raise FormatError(f"{path}: the {what} stored in the file are not numbers "
                          f"(found {np.asarray(value).dtype} {np.asarray(value).reshape(-1)[:3].tolist()})")
    return out
