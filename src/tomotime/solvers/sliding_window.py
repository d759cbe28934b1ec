"""Sliding-window ("projection sharing") dynamic reconstruction.

For each requested time, the volume is reconstructed from the ``w``
consecutively acquired projections centred on the projection nearest that
time. With a golden-ratio (GRS) scheme any ``w`` consecutive projections spread
over the whole tilt range, which makes this the standard baseline for
continuous-tilt in situ tomography. Near the start and end of the series the
window is cut, not shifted, so it shrinks there (as in the DIP-STER paper).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.solvers.static import check_method_options, reconstruct

__all__ = ["window_indices", "sliding_window"]


def window_indices(n: int, centre: int, window: int) -> np.ndarray:
    """Indices ``centre - window//2 .. centre - window//2 + window - 1``, cut to ``[0, n)``."""
    lo = centre - window // 2
    return np.arange(max(lo, 0), min(lo + window, n))


def sliding_window(
    series: TiltSeries,
    *,
    window: int = 30,
    times=None,
    method: str = "sirt",
    iterations: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    device="auto",
    progress: bool | None = None,
    **options,
) -> VolumeSeries:
    """Reconstruct a volume at each requested time from a window of projections.

    Parameters
    ----------
    series : TiltSeries
        Continuously acquired projections ``(N, Y, X)`` with acquisition times.
    window : int
        Number of projections per volume (30 by default); at most ``N``.
    times : array_like, optional
        Times in seconds (default: every acquisition time). Each is reconstructed
        from the window centred on the projection acquired nearest to it.
    method : {"sirt", "fbp", "em"}
        Reconstruction method for each window.
    iterations : int, optional
        Iterations per window for SIRT/EM.
    out : path, optional
        Stream the volumes, one time point at a time, into this chunked HDF5
        file (see :class:`tomotime.io.VolumeSeriesWriter`); the returned series
        then reads lazily from it. Default: keep in memory.
    overwrite : bool
        Replace an existing ``out``.
    **options
        Passed to :func:`~tomotime.solvers.static.reconstruct` (``thickness``,
        ``filter``, ``min_value``, ...).

    Returns
    -------
    VolumeSeries
        ``(T, Z, Y, X)`` at the requested times.
    """
    n, ny, nx = series.shape
    if int(window) != window or not 1 <= window <= n:
        raise InputError(f"window={window}: expected an integer between 1 and the number of projections ({n})")
    iterations = check_method_options(method, iterations=iterations, filter=options.get("filter", "ram-lak"))
    times = series.times if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    if times.size == 0 or not np.isfinite(times).all():
        raise InputError("times: expected a non-empty list of finite times in seconds")
    if (np.diff(times) <= 0).any():
        raise InputError("times: must strictly increase")
    nz = int(options.get("thickness") or nx)
    shape = (times.size, nz, ny, nx)
    centres = [int(np.argmin(np.abs(series.times - t))) for t in times]

    with contextlib.ExitStack() as stack:
        writer = None
        if out is not None:
            from tomotime.io import VolumeSeriesWriter

            writer = stack.enter_context(
                VolumeSeriesWriter(out, shape=shape, times=times, voxel_size=series.pixel_size, overwrite=overwrite)
            )
        volumes = None if writer else np.empty(shape, np.float32)
        bar = tqdm(centres, desc=f"sliding-window {method.upper()}", disable=None if progress is None else not progress,
                   dynamic_ncols=True)
        for t, centre in enumerate(bar):
            part = series.select(window_indices(n, centre, window))
            volume = reconstruct(part, method=method, iterations=iterations, device=device, progress=False,
                                 **options)
            if writer:
                writer.write(t, volume)
            else:
                volumes[t] = volume
    if out is not None:
        from tomotime.io import read_volume_series

        return read_volume_series(out)
    return VolumeSeries(volumes, times, series.pixel_size)
