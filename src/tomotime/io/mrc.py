"""MRC files (``.mrc``, ``.st``, ``.ali``, ``.map``, ``.rec``) via mrcfile.

MRC stores the voxel size in ångström; tomotime works in nm, so readers divide
by 10 and writers multiply by 10. Stacks written here open in IMOD, Tomviz,
Fiji and napari.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import FormatError, InputError
from tomotime.io._common import RawStack, checked_volume, existing_file
from tomotime.io.angles import write_angles, write_times
from tomotime.io.atomic import atomic_path, check_output

__all__ = ["read_mrc", "write_volume_mrc", "write_tilt_series", "tilt_series_sidecars"]

log = logging.getLogger(__name__)

_FEI_TYPES = (b"FEI1", b"FEI2")


def _open_data(path: Path) -> tuple[np.ndarray, Any]:
    """Data and header of an MRC file: strict parsing first, then permissive."""
    try:
        with mrcfile.open(path, mode="r", permissive=False) as mrc:
            return np.array(mrc.data), _header_info(mrc)
    except ValueError as strict_error:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with mrcfile.open(path, mode="r", permissive=True) as mrc:
                    data, info = mrc.data, _header_info(mrc)
            except (ValueError, OSError) as exc:
                raise FormatError(f"{path}: not a readable MRC file ({exc})") from exc
        if data is None:
            raise FormatError(f"{path}: not a valid MRC file or truncated ({strict_error})") from strict_error
        log.warning("%s: read in permissive mode; the header is not standard (%s)", path, strict_error)
        return np.array(data), info


def _header_info(mrc: Any) -> dict:
    voxel = mrc.voxel_size
    info = {"voxel_size_A": (float(voxel.z), float(voxel.y), float(voxel.x)), "angles": None}
    if bytes(mrc.header.exttyp) in _FEI_TYPES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a malformed extended header just means no angles
            ext = mrc.indexed_extended_header
        if ext is not None and "Alpha tilt" in (ext.dtype.names or ()):
            tilts = np.asarray(ext["Alpha tilt"], dtype=np.float64)
            if np.any(tilts != 0):
                info["angles"] = tilts
    else:
        info["angles"] = _imod_angles(mrc)
    return info


# IMOD's extended header: per section, the fields flagged in ``nreal`` (bytes each), tilt angle first
_IMOD_FIELDS = {1: 2, 2: 6, 4: 4, 8: 2, 16: 2, 32: 4}


def _imod_angles(mrc: Any) -> np.ndarray | None:
    """Tilt angles (degrees) of an IMOD/SerialEM extended header (``SERI``/``AGAR``), or None.

    IMOD stores per section ``nint`` bytes holding the fields flagged in
    ``nreal``; with flag 1 the first two bytes are the tilt angle x 100 as a
    16-bit integer. ``nint`` and ``nreal`` are the 16-bit words at bytes
    128 and 130 of the header (inside mrcfile's ``extra2``).
    """
    header = mrc.header
    order = ">" if header.mode.dtype.byteorder == ">" else "<"
    nint, flags = (int(v) for v in np.frombuffer(header.tobytes()[128:132], dtype=f"{order}i2"))
    if nint <= 0 or not flags & 1 or flags >= 64 or bytes(header.exttyp) not in (b"SERI", b"AGAR", b"\0\0\0\0"):
        return None
    if nint != sum(size for bit, size in _IMOD_FIELDS.items() if flags & bit):
        return None
    raw = np.asarray(mrc.extended_header).tobytes()
    n = int(header.nz)
    if len(raw) < n * nint:
        return None
    sections = np.frombuffer(raw[: n * nint], dtype=np.uint8).reshape(n, nint)
    tilts = sections[:, :2].copy().view(f"{order}i2").ravel().astype(np.float64) / 100.0
    return tilts if np.any(tilts != 0) else None


def read_mrc(path: str | Path) -> RawStack:
    """Read an MRC file's data, pixel size (nm) and any tilt angles it records.

    Angles are taken from an FEI1/FEI2 extended header ("Alpha tilt") or an
    IMOD/SerialEM one (tilt angle x 100 per section) when present. The data keep the file's dtype and shape.

    Raises
    ------
    FormatError
        If the file is missing, empty, truncated or not MRC.
    """
    p = existing_file(path)
    data, info = _open_data(p)
    vz, vy, vx = info["voxel_size_A"]
    pixel = vx / 10.0 if vx > 0 else None
    if pixel is not None and vy > 0 and abs(vy - vx) > 1e-3 * vx:
        log.warning("%s: pixel sizes differ along x (%g A) and y (%g A); using x", p, vx, vy)
    angles = info["angles"]
    if angles is not None and data.ndim == 3 and angles.shape[0] != data.shape[0]:
        angles = angles[: data.shape[0]] if angles.shape[0] > data.shape[0] else None
    return RawStack(images=data, format="mrc", pixel_size=pixel, angles=angles,
                    extra={"voxel_size_z_nm": vz / 10.0 if vz > 0 else None})


def _write_mrc(tmp: Path, data: np.ndarray, *, voxel_size_nm: float, image_stack: bool) -> None:
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(data)
        if image_stack:
            mrc.set_image_stack()
        else:
            mrc.set_volume()
        mrc.voxel_size = voxel_size_nm * 10.0
        mrc.update_header_stats()


def write_volume_mrc(path: str | Path, volume: Any, *, voxel_size: float = 1.0, overwrite: bool = False) -> Path:
    """Write a volume to an MRC file atomically.

    Parameters
    ----------
    path : str or Path
        Output file.
    volume : array_like, shape (Z, Y, X)
        Stored as float32 (MRC mode 2).
    voxel_size : float
        Voxel size in nm (stored in the header in ångström).
    overwrite : bool
        Replace an existing file; otherwise raise ``OutputExistsError``.

    Returns
    -------
    Path
        ``path``.
    """
    check_output(path, overwrite=overwrite)
    vol, voxel = checked_volume(volume, voxel_size)
    with atomic_path(path, overwrite=overwrite) as tmp:
        _write_mrc(tmp, vol, voxel_size_nm=voxel, image_stack=False)
    return Path(path)


def tilt_series_sidecars(path: str | Path) -> tuple[Path, Path]:
    """The ``.rawtlt`` and ``.times`` files that go with the MRC stack ``path``."""
    p = Path(path)
    return p.with_suffix(".rawtlt"), p.with_suffix(".times")


def write_tilt_series(path: str | Path, series: TiltSeries, *, overwrite: bool = False) -> Path:
    """Write a tilt series as an MRC image stack plus ``.rawtlt`` and ``.times``.

    The stack ``(N, Y, X)`` goes to ``path`` (float32, pixel size in the
    header), the angles (degrees) one per line to ``path`` with suffix
    ``.rawtlt``, and the times (seconds) one per line to suffix ``.times``;
    :func:`tomotime.io.read_tilt_series` finds both again. All three are
    checked before anything is written, and each is written atomically.

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(series, TiltSeries):
        raise InputError(f"series: expected a TiltSeries, got {type(series).__name__}")
    rawtlt, times = tilt_series_sidecars(path)
    for target_path in (path, rawtlt, times):
        check_output(target_path, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        _write_mrc(tmp, series.images, voxel_size_nm=series.pixel_size, image_stack=True)
        write_angles(rawtlt, series.angles, overwrite=overwrite)
        write_times(times, series.times, overwrite=overwrite)
    return Path(path)
