"""Read a tilt series or a volume from any supported file, chosen by extension.

Where the tilt angles come from, first match wins:

1. the ``angles=`` argument (an array, or the path of a text file);
2. a sidecar text file with the same stem: ``.rawtlt``, ``.tlt``, ``.csv``,
   ``.txt`` (a CSV may carry a time column too);
3. a SerialEM ``.mdoc`` beside the stack (``tilt.mrc.mdoc`` or ``tilt.mdoc``);
4. angles stored in the file itself (HDF5 ``angles``, an FEI or IMOD extended
   MRC header, a DigitalMicrograph stack calibrated in degrees, a ``.mat``
   ``angles`` field).

Times likewise: ``times=``, then a ``.times`` sidecar, then the time column
of the CSV sidecar or the mdoc's ``DateTime``, then the file; by default the
acquisition index.

A folder, or a glob pattern such as ``tilts/tilt_*.dm4``, is read as one
series of single images (see :mod:`tomotime.io.folder`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import TiltSeries, check_stack
from tomotime.errors import FormatError, InputError, MissingAnglesError
from tomotime.io._common import RawStack, existing_file, require_ndim
from tomotime.io.angles import (TIMES_SIDECAR_SUFFIX, angle_remarks, find_sidecar, read_angle_table, read_angles,
                                read_times)
from tomotime.io.emformats import EM_FORMATS, read_em
from tomotime.io.folder import is_image_set, read_image_set
from tomotime.io.hdf5 import read_hdf5
from tomotime.io.matfile import read_mat
from tomotime.io.mdoc import find_mdoc, read_mdoc
from tomotime.io.mrc import read_mrc
from tomotime.io.tiff import read_tiff

__all__ = ["read_tilt_series", "read_volume", "TILT_SERIES_SUFFIXES", "VOLUME_SUFFIXES"]

log = logging.getLogger(__name__)

_MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".ali", ".preali", ".map", ".rec")


def _read_npy(path: Path) -> RawStack:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npy file, or truncated ({exc})") from exc
    return RawStack(images=data, format="npy")


def _read_hdf5_volume(path: Path) -> RawStack:
    return read_hdf5(path, names=("volume", "data"), ndim=3)


_COMMON: dict[str, Callable[[Path], RawStack]] = {
    **{s: read_mrc for s in _MRC_SUFFIXES},
    ".tif": read_tiff,
    ".tiff": read_tiff,
    ".npy": _read_npy,
}
_TILT_READERS = {**_COMMON, ".h5": read_hdf5, ".hdf5": read_hdf5, ".mat": read_mat,
                 **{s: read_em for s in EM_FORMATS}}
_VOLUME_READERS = {**_COMMON, ".h5": _read_hdf5_volume, ".hdf5": _read_hdf5_volume}

TILT_SERIES_SUFFIXES = tuple(sorted(_TILT_READERS))
VOLUME_SUFFIXES = tuple(sorted(_VOLUME_READERS))


def _load(path: str | Path, readers: dict[str, Callable[[Path], RawStack]], what: str) -> tuple[Path, RawStack]:
    p = existing_file(path)
    reader = readers.get(p.suffix.lower())
    if reader is None:
        raise FormatError(f"{p}: unknown format {p.suffix!r} for {what}; expected one of {', '.join(sorted(readers))}"
                          + (" or a folder of single images" if readers is _TILT_READERS else ""))
    return p, reader(p)


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _resolve_angles(p: Path, angles: Any, raw: RawStack,
                    notes: list[str]) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Angles, where they came from, and times from a CSV sidecar (if any); remarks on the file go to ``notes``."""
    if angles is not None:
        if _is_path(angles):
            return read_angles(angles, notes=notes), str(angles), None
        return _numbers(angles, "angles", "argument"), "argument", None
    sidecar = find_sidecar(p)
    if sidecar is not None:
        values, table_times = read_angle_table(sidecar, notes=notes)
        if raw.angles is not None and (raw.angles.shape != values.shape or not np.allclose(raw.angles, values)):
            log.warning("%s: the angles in %s differ from those stored in the file; using %s", p, sidecar, sidecar)
        return values, str(sidecar), table_times
    mdoc = find_mdoc(p)
    if mdoc is not None:
        values, mdoc_times, _ = read_mdoc(mdoc)
        if mdoc_times is not None and (np.diff(mdoc_times) <= 0).any():
            notes.append(f"{mdoc}: the DateTime stamps do not strictly increase (whole seconds); times not used")
            mdoc_times = None
        return values, str(mdoc), mdoc_times
    if raw.angles is not None:
        return raw.angles, "file", None
    raise MissingAnglesError(
        f"{p}: no tilt angles found; expected a sidecar file {p.stem}.rawtlt (or .tlt, .csv, .txt) "
        "next to it, angles stored in the file, or the angles= argument (CLI: --angles)"
    )


def _numbers(values: Any, what: str, where: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{what} from {where}: expected numbers, got {np.asarray(values).dtype} values") from None


def _check_colour(shape: tuple, p: Path) -> None:
    """Refuse an image whose last axis holds colour channels (RGB/RGBA), which would pass for the X axis."""
    if len(shape) in (3, 4) and shape[-1] in (3, 4) and shape[-2] > 2 * shape[-1]:
        kind = "RGB" if shape[-1] == 3 else "RGBA"
        raise FormatError(f"{p}: holds {kind} colour data of shape {tuple(shape)} (last axis = {shape[-1]} colour "
                          "channels); expected a grayscale tilt series (N, Y, X): convert the images to grayscale "
                          "(e.g. Fiji: Image > Type > 32-bit) and save them as one stack")


def _resolve_times(p: Path, times: Any, table_times: np.ndarray | None, raw: RawStack) -> tuple[Any, str]:
    if times is not None:
        if _is_path(times):
            return read_times(times), str(times)
        return _numbers(times, "times", "argument"), "argument"
    sidecar = find_sidecar(p, (TIMES_SIDECAR_SUFFIX,))
    if sidecar is not None:
        return read_times(sidecar), str(sidecar)
    if table_times is not None:
        return table_times, "angle file"  # the CSV sidecar or the mdoc named in angles_from
    if raw.times is not None:
        return raw.times, "file"
    return None, "index"


def read_tilt_series(
    path: str | Path,
    *,
    angles: Any = None,
    times: Any = None,
    pixel_size: float | None = None,
    allow_wide_angles: bool = False,
) -> TiltSeries:
    """Read a tilt series from MRC, TIFF, NumPy, HDF5, EMD, DM3/DM4, TIA SER, MATLAB, or a folder of images.

    Parameters
    ----------
    path : str or Path
        Stack file ``(N, Y, X)``; the format follows the extension (see
        ``TILT_SERIES_SUFFIXES``). A folder or a glob pattern of single
        images is read with :func:`tomotime.io.folder.read_image_set`.
    angles : array_like, shape (N,), or str or Path, optional
        Tilt angles in degrees, or a text file of them; overrides sidecars and
        anything stored in the file.
    times : array_like, shape (N,), or str or Path, optional
        Acquisition times in seconds, or a text file of them.
    pixel_size : float, optional
        Pixel size in nm; overrides the file. Default: from the file, else 1.
    allow_wide_angles : bool
        Accept angles outside [-90, 90] degrees.

    Returns
    -------
    TiltSeries
        Images as float32. ``metadata`` holds ``source``, ``format``,
        ``angles_from`` and ``times_from``, and lists of sentences
        ``warnings`` (e.g. angles that look like radians, also logged) and
        ``notes`` (e.g. a header line skipped in the angle file).

    Raises
    ------
    FormatError
        Missing, empty, truncated or unknown file; a 2-D image, a colour
        image or a 1-D/4-D array; no angles found.
    InputError
        Angle or time count mismatch, NaN/Inf, angles out of range, times not
        increasing. Every message names the file.
    """
    if is_image_set(path):
        return read_image_set(path, angles=angles, times=times, pixel_size=pixel_size,
                              allow_wide_angles=allow_wide_angles)
    p, raw = _load(path, _TILT_READERS, "a tilt series")
    _check_colour(np.shape(raw.images), p)
    require_ndim(np.shape(raw.images), p, ndim=3, expected="a tilt series (N, Y, X)")
    notes: list[str] = list(raw.extra.pop("notes", []))
    angle_values, angles_from, table_times = _resolve_angles(p, angles, raw, notes)
    time_values, times_from = _resolve_times(p, times, table_times, raw)
    if pixel_size is None:
        pixel_size = raw.pixel_size if raw.pixel_size is not None else 1.0
    warnings, angle_notes = angle_remarks(angle_values)
    for text in warnings:
        log.warning("%s (angles from %s): %s", p, angles_from, text)
    metadata = {"source": str(p), "format": raw.format, "angles_from": angles_from, "times_from": times_from,
                "warnings": warnings, "notes": notes + angle_notes}
    metadata.update({k: v for k, v in raw.extra.items() if v is not None})
    try:
        return TiltSeries(images=raw.images, angles=angle_values, times=time_values, pixel_size=pixel_size,
                          metadata=metadata, allow_wide_angles=allow_wide_angles)
    except InputError as exc:
        where = f"{p}" if angles_from in ("argument", "file") else f"{p} (angles from {angles_from})"
        raise type(exc)(f"{where}: {exc}") from exc


def read_volume(path: str | Path) -> tuple[np.ndarray, float]:
    """Read a volume from MRC, TIFF, NumPy or HDF5.

    Parameters
    ----------
    path : str or Path
        Volume file ``(Z, Y, X)``. In HDF5, the dataset ``volume`` or
        ``data`` or the only 3-D dataset, with attribute ``voxel_size_nm``.

    Returns
    -------
    volume : numpy.ndarray, shape (Z, Y, X), float32
    voxel_size : float
        Voxel size in nm; 1 when the file does not record one.

    Raises
    ------
    FormatError
        Missing, empty, truncated or unknown file, or not 3-D.
    InputError
        NaN or Inf values.
    """
    p, raw = _load(path, _VOLUME_READERS, "a volume")
    require_ndim(np.shape(raw.images), p, ndim=3, expected="a volume (Z, Y, X)")
    volume = check_stack(raw.images, name=str(p), ndim=3)
    if raw.pixel_size is None:
        log.warning("%s: no voxel size recorded; assuming 1 nm", p)
        return volume, 1.0
    return volume, float(raw.pixel_size)
