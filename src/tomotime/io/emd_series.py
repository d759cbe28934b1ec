"""A volume series as Berkeley EMD (version 0.2, HDF5): one 4-D file with its time axis, or one 3-D file per time.

:func:`write_emd_series` writes one file. Layout (EMD 0.2): root attributes ``version_major = 0``, ``version_minor = 2``;
group ``/data/tomography`` with attribute ``emd_group_type = 1``, dataset
``data`` float32 ``(T, Z, Y, X)`` written one time point at a time, and one
dimension vector per axis: ``dim1`` the times (``name = "t"``, ``units =
"[s]"``), ``dim2`` .. ``dim4`` the voxel positions along z, y, x (``units =
"[n_m]"``, EMD's notation for nm). The group ``/microscope`` holds the voxel
size and ``/comments`` the writer.

:func:`write_tomviz_series` writes one 3-D EMD file per time point, in the
layout Tomviz itself writes and reads (Tomviz's volume reader takes 3-D data
only, and loads several files as a time series): ``/data/tomography/data``
indexed ``(x, y, z)``, ``dim1`` .. ``dim3`` the positions along x, y, z in nm,
the time of the volume in the attribute ``time_s`` of the group, and
``times.txt`` (seconds, one per file) beside the files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

import tomotime
from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.io.angles import write_times
from tomotime.io.atomic import atomic_path
from tomotime.io.volume_series import per_time_paths

__all__ = ["write_emd_series", "write_tomviz_series", "EMD_GROUP"]

EMD_GROUP = "data/tomography"


def _dim(group: h5py.Group, name: str, values: np.ndarray, label: str, units: str) -> None:
    dataset = group.create_dataset(name, data=values)
    dataset.attrs["name"] = np.bytes_(label)
    dataset.attrs["units"] = np.bytes_(units)


def write_emd_series(path: str | Path, series: VolumeSeries, *, overwrite: bool = False) -> Path:
    """Write ``series`` to ``path`` as EMD 0.2 with axes (t, z, y, x), atomically, one volume in memory at a time.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        If ``series`` is not a :class:`~tomotime.data.VolumeSeries`.
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    if not isinstance(series, VolumeSeries):
        raise InputError(f"series: expected a VolumeSeries, got {type(series).__name__}")
    t, z, y, x = series.shape
    voxel = series.voxel_size
    with atomic_path(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["version_major"] = 0
            f.attrs["version_minor"] = 2
            group = f.create_group(EMD_GROUP)
            group.attrs["emd_group_type"] = 1
            data = group.create_dataset("data", shape=(t, z, y, x), dtype=np.float32, chunks=(1, z, y, x))
            for i in range(t):
                data[i] = series[i]
            _dim(group, "dim1", np.asarray(series.times, np.float64), "t", "[s]")
            for k, (name, size) in enumerate((("z", z), ("y", y), ("x", x)), start=2):
                _dim(group, f"dim{k}", np.arange(size, dtype=np.float64) * voxel, name, "[n_m]")
            f.create_group("microscope").attrs["voxel_size_nm"] = voxel
            f.create_group("comments").attrs["writer"] = np.bytes_(f"tomotime {tomotime.__version__}")
    return Path(path)


def write_tomviz_series(folder: str | Path, series: VolumeSeries, *, overwrite: bool = False) -> list[Path]:
    """Write ``t0000.emd`` ... (one 3-D EMD file per time point, Tomviz's layout) and ``times.txt`` into ``folder``.

    In Tomviz, open them together with *File > Load Time Series*. All targets
    are checked before anything is written; each file is written atomically.

    Returns
    -------
    list of Path
        The EMD files, in time order.

    Raises
    ------
    InputError
        If ``series`` is not a :class:`~tomotime.data.VolumeSeries` or ``folder`` is a file.
    OutputExistsError
        If a target exists and ``overwrite`` is false.
    """
    paths, times_path = per_time_paths(series, folder, ".emd", overwrite=overwrite)
    _, z, y, x = series.shape
    voxel = series.voxel_size
    for t, target in enumerate(paths):
        with atomic_path(target, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["version_major"] = 0
            f.attrs["version_minor"] = 2
            group = f.create_group(EMD_GROUP)
            group.attrs["emd_group_type"] = 1
            group.attrs["time_s"] = float(series.times[t])
            data = group.create_dataset("data", data=np.ascontiguousarray(series[t].transpose(2, 1, 0)))
            data.attrs["name"] = np.bytes_("density")
            for k, (name, size) in enumerate((("x", x), ("y", y), ("z", z)), start=1):
                _dim(group, f"dim{k}", np.arange(size, dtype=np.float32) * voxel, name, "[n_m]")
    write_times(times_path, series.times, overwrite=overwrite)
    return paths
