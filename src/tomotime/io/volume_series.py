"""Volume series ``(T, Z, Y, X)`` on disk: streamed chunked HDF5, or one MRC per time.

The HDF5 layout: dataset ``volumes`` float32 ``(T, Z, Y, X)``, chunked so that
no chunk spans two time points; dataset ``times`` (seconds); attributes
``voxel_size_nm`` and ``axes = "TZYX"``. A writer holds one volume in memory
at a time, and the file appears under its name only once every time point
has been written.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from tomotime.data import VolumeSeries, check_stack, check_times
from tomotime.errors import FormatError, InputError
from tomotime.io._common import existing_file
from tomotime.io.angles import write_times
from tomotime.io.atomic import AtomicTarget, check_output, unwritable
from tomotime.io.mrc import write_volume_mrc

__all__ = [
    "VolumeSeriesWriter",
    "default_chunks",
    "write_volume_series",
    "read_volume_series",
    "write_volume_series_mrcs",
]

_CHUNK_BYTES = 4 * 2**20


def default_chunks(shape: tuple[int, int, int, int], *, target_bytes: int = _CHUNK_BYTES) -> tuple[int, ...]:
    """HDF5 chunk shape ``(1, z, y, X)`` for float32 volumes: one time point, about ``target_bytes``."""
    _, z, y, x = shape
    row_bytes = 4 * x
    rows = max(1, target_bytes // row_bytes)
    if rows < y:
        return (1, 1, int(rows), x)
    return (1, int(min(z, max(1, rows // y))), y, x)


def _check_shape(shape: Any) -> tuple[int, int, int, int]:
    try:
        dims = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape={shape!r}: expected four positive integers (T, Z, Y, X)") from None
    if len(dims) != 4 or min(dims) < 1 or dims != tuple(shape):
        raise InputError(f"shape={shape!r}: expected four positive integers (T, Z, Y, X)")
    return dims


def _check_chunks(chunks: Any, shape: tuple[int, int, int, int]) -> tuple[int, ...]:
    if chunks is None:
        return default_chunks(shape)
    try:
        dims = tuple(int(c) for c in chunks)
    except (TypeError, ValueError):
        raise InputError(f"chunks={chunks!r}: expected four positive integers (1, z, y, x)") from None
    if len(dims) != 4 or dims[0] != 1 or any(c < 1 or c > s for c, s in zip(dims, shape)):
        raise InputError(f"chunks={chunks!r}: expected (1, z, y, x) with 1 <= each <= shape {shape}")
    return dims


class VolumeSeriesWriter:
    """Stream a volume series into a chunked HDF5 file, one time point at a time.

    Use as a context manager. On a clean exit after every time point has been
    written the temporary file is renamed to ``path``; on an exception, or if
    time points are missing, it is deleted and ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file.
    shape : tuple of int
        ``(T, Z, Y, X)``.
    times : array_like, shape (T,), optional
        Times in seconds, strictly increasing (default ``0 .. T-1``).
    voxel_size : float
        Voxel size in nm.
    overwrite : bool
        Replace an existing file; otherwise raise ``OutputExistsError`` at once.
    chunks : tuple of int, optional
        HDF5 chunk shape ``(1, z, y, x)``; default :func:`default_chunks`.
    compression : str, optional
        HDF5 filter, e.g. ``"gzip"`` or ``"lzf"`` (default none).

    Examples
    --------
    >>> with VolumeSeriesWriter("out.h5", shape=(T, Z, Y, X), times=t) as w:  # doctest: +SKIP
    ...     for i in range(T):
    ...         w.write(i, reconstruct(i))
    """

    def __init__(self, path: str | Path, *, shape: tuple[int, int, int, int], times: Any = None,
                 voxel_size: float = 1.0, overwrite: bool = False, chunks: Any = None,
                 compression: str | None = None) -> None:
        self.path = check_output(path, overwrite=overwrite)
        self.shape = _check_shape(shape)
        self.times = np.arange(self.shape[0], dtype=np.float64) if times is None else check_times(times, self.shape[0])
        if not (np.isfinite(voxel_size) and voxel_size > 0):
            raise InputError(f"voxel_size={voxel_size}: expected a positive size in nm")
        self.voxel_size = float(voxel_size)
        self.chunks = _check_chunks(chunks, self.shape)
        self.compression = compression
        self.overwrite = overwrite
        self._target: AtomicTarget | None = None
        self._file: h5py.File | None = None
        self._written = np.zeros(self.shape[0], dtype=bool)

    def __enter__(self) -> VolumeSeriesWriter:
        self._target = AtomicTarget(self.path, overwrite=self.overwrite)
        try:
            self._file = h5py.File(self._target.tmp, "w")
            self._file.create_dataset("volumes", shape=self.shape, dtype=np.float32, chunks=self.chunks,
                                      compression=self.compression)
            self._file.create_dataset("times", data=self.times)
            self._file.attrs["voxel_size_nm"] = self.voxel_size
            self._file.attrs["axes"] = "TZYX"
        except OSError as exc:
            self._close()
            self._target.discard()
            raise unwritable(self.path, exc) from None
        except BaseException:
            self._close()
            self._target.discard()
            raise
        return self

    def write(self, t_index: int, volume: Any) -> None:
        """Write the volume ``(Z, Y, X)`` of time point ``t_index`` (0-based)."""
        if self._file is None:
            raise RuntimeError("VolumeSeriesWriter.write: use the writer inside a 'with' block")
        if not (isinstance(t_index, (int, np.integer)) and 0 <= t_index < self.shape[0]):
            raise InputError(f"t_index={t_index!r}: expected an integer in 0..{self.shape[0] - 1}")
        vol = check_stack(volume, name=f"volume at t_index={t_index}", ndim=3)
        if vol.shape != self.shape[1:]:
            raise InputError(f"volume at t_index={t_index}: shape {vol.shape}, expected {self.shape[1:]}")
        self._file["volumes"][t_index] = vol
        self._written[t_index] = True

    @property
    def missing(self) -> np.ndarray:
        """Indices of the time points not written yet."""
        return np.flatnonzero(~self._written)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._target is None:
            return
        try:
            self._close()
        except BaseException:
            self._target.discard()
            raise
        if exc_type is not None:
            self._target.discard()
            return
        missing = self.missing
        if missing.size:
            self._target.discard()
            raise InputError(f"{self.path}: {missing.size} of {self.shape[0]} time points were never written "
                             f"(first: {int(missing[0])}); nothing was saved")
        self._target.commit()


def write_volume_series(path: str | Path, series: VolumeSeries, *, overwrite: bool = False,
                        chunks: Any = None, compression: str | None = None) -> Path:
    """Write a :class:`VolumeSeries` to chunked HDF5 (see :class:`VolumeSeriesWriter`).

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(series, VolumeSeries):
        raise InputError(f"series: expected a VolumeSeries, got {type(series).__name__}")
    with VolumeSeriesWriter(path, shape=series.shape, times=series.times, voxel_size=series.voxel_size,
                            overwrite=overwrite, chunks=chunks, compression=compression) as writer:
        for t in range(len(series)):
            writer.write(t, series[t])
    return Path(path)


def read_volume_series(path: str | Path) -> VolumeSeries:
    """Open a volume series written by :class:`VolumeSeriesWriter`, lazily.

    The returned series keeps the HDF5 dataset open; ``series[t]`` reads one
    volume from disk.

    Raises
    ------
    FormatError
        If the file is missing, empty, not HDF5, or has no 4-D ``volumes``.
    """
    p = existing_file(path)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise FormatError(f"{p}: not a readable HDF5 file ({exc})") from exc
    data = f.get("volumes")
    if not isinstance(data, h5py.Dataset) or data.ndim != 4:
        f.close()
        raise FormatError(f"{p}: expected a 4-D dataset 'volumes' (T, Z, Y, X)")
    times = f["times"][()] if isinstance(f.get("times"), h5py.Dataset) else None
    voxel = float(f.attrs.get("voxel_size_nm", 1.0))
    try:
        return VolumeSeries(data, times=times, voxel_size=voxel)
    except InputError as exc:
        f.close()
        raise FormatError(f"{p}: {exc}") from exc


def per_time_paths(series: VolumeSeries, folder: str | Path, suffix: str, *,
                   overwrite: bool) -> tuple[list[Path], Path]:
    """Files ``folder/t0000<suffix> ..`` and ``folder/times.txt`` of a series, checked and their folder made.

    Raises
    ------
    InputError
        If ``series`` is not a :class:`~tomotime.data.VolumeSeries` or ``folder`` is a file.
    OutputExistsError
        If a target exists and ``overwrite`` is false (nothing is written then).
    """
    if not isinstance(series, VolumeSeries):
        raise InputError(f"series: expected a VolumeSeries, got {type(series).__name__}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    paths = [folder / f"t{t:04d}{suffix}" for t in range(len(series))]
    times_path = folder / "times.txt"
    for target in (*paths, times_path):
        check_output(target, overwrite=overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    return paths, times_path


def write_volume_series_mrcs(dirpath: str | Path, series: VolumeSeries, *, overwrite: bool = False) -> list[Path]:
    """Write one MRC volume per time point, ``t0000.mrc`` ..., plus ``times.txt``.

    For IMOD and Tomviz, which open single volumes. All targets are checked
    before anything is written; each file is written atomically.

    Returns
    -------
    list of Path
        The MRC files, in time order.
    """
    paths, times_path = per_time_paths(series, dirpath, ".mrc", overwrite=overwrite)
    for t, target in enumerate(paths):
        write_volume_mrc(target, series[t], voxel_size=series.voxel_size, overwrite=overwrite)
    write_times(times_path, series.times, overwrite=overwrite)
    return paths
