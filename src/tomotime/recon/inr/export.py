"""Write every result of a trained INR model into a folder (what ``tomotime reconstruct --method inr`` publishes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.io import VolumeSeriesWriter, write_tilt_series, write_volume_mrc, write_volume_tiff
from tomotime.recon.inr.model import InrModel, check_region
from tomotime.recon.inr.outputs import (
    aligned_series,
    plot_poses,
    plot_reprojection,
    reprojection_errors,
    write_imod_alignment,
    write_pose_csv,
    write_reprojection_csv,
)

__all__ = ["result_names", "write_results", "write_volumes", "output_grid", "VOLUME_FORMATS"]

VOLUME_FORMATS = ("mrc", "tiff", "h5")


def result_names(*, dynamic: bool, fmt: str) -> list[str]:
    """Files :func:`write_results` writes, in publishing order."""
    volume = ["volumes.h5"] if dynamic else [f"volume.{fmt}"]
    return [*volume, "poses.csv", "poses.png", "alignment.xf", "alignment.tlt", "aligned.mrc", "aligned.rawtlt",
            "aligned.times", "reprojection.csv", "reprojection.png"]


def _write_volume(path: Path, volume: np.ndarray, voxel: float, fmt: str, overwrite: bool = False) -> None:
    if fmt == "mrc":
        write_volume_mrc(path, volume, voxel_size=voxel, overwrite=overwrite)
    elif fmt == "tiff":
        write_volume_tiff(path, volume, voxel_size=voxel, overwrite=overwrite)
    else:
        with VolumeSeriesWriter(path, shape=(1, *volume.shape), voxel_size=voxel, overwrite=overwrite) as writer:
            writer.write(0, volume)


def output_grid(vol_shape: tuple[int, int, int], pixel_size: float, *, shape: int | tuple[int, ...] | None = None,
                voxel_size: float | None = None, region: tuple[tuple[float, float], ...] | None = None
                ) -> tuple[tuple[int, int, int], tuple[float, float, float], tuple[tuple[float, float], ...]]:
    """The output grid ``(Z, Y, X)``, its voxel size per axis (nm) and the region of the box it spans.

    Parameters
    ----------
    vol_shape : (int, int, int)
        The reconstructed box ``(Z, Y, X)``, voxels of the training grid (detector pixels).
    pixel_size : float
        Detector pixel size, nm.
    shape : int or (int, int, int), optional
        Voxels along the region's longest side (the others in proportion: cubic voxels), or the full grid.
    voxel_size : float, optional
        Cubic output voxels of this size, nm (instead of ``shape``).
    region : ((z0, z1), (y0, y1), (x0, x1)), optional
        Part of the box, voxels of the training grid from its corner (default: all).

    Default: the training grid's voxels over the region.

    Raises
    ------
    InputError
        For both a shape and a voxel size, non-positive sizes, or a region outside the box.
    """
    region = check_region(region, vol_shape)
    extent = [hi - lo for lo, hi in region]
    if shape is not None and voxel_size is not None:
        raise InputError("give an output grid or a voxel size, not both")
    if voxel_size is not None:
        if not (np.isfinite(voxel_size) and voxel_size > 0):
            raise InputError(f"voxel size {voxel_size}: expected a positive size in nm")
        grid = [round(e * pixel_size / voxel_size) for e in extent]
    elif shape is None:
        grid = [round(e) for e in extent]
    elif np.ndim(shape) == 0 or len(shape) == 1:
        side = int(np.ravel(shape)[0])
        if side < 1:
            raise InputError(f"output grid {side}: expected a positive number of voxels")
        grid = [round(e * side / max(extent)) for e in extent]
    else:
        if len(shape) != 3 or min(shape) < 1:
            raise InputError(f"output grid {tuple(shape)}: expected one size or three positive sizes (Z, Y, X)")
        grid = [int(v) for v in shape]
    grid = tuple(max(1, int(v)) for v in grid)
    return grid, tuple(pixel_size * e / m for e, m in zip(extent, grid)), region


def write_volumes(folder: Path, model: InrModel, *, fmt: str = "mrc", shape: int | tuple[int, int, int] | None = None,
                  voxel_size: float | None = None, region: tuple[tuple[float, float], ...] | None = None,
                  times: np.ndarray | None = None, name: str | None = None, overwrite: bool = False
                  ) -> dict[str, Any]:
    """Write the model's volume into ``folder``: ``volume.FMT``, or for a dynamic model and ``fmt="h5"`` the
    series ``volumes.h5`` at ``times`` (seconds; another format: the one volume at a single time).

    ``name`` replaces the file name; ``overwrite`` replaces an existing file. Returns ``output_shape``,
    ``voxel_size_nm`` (along X), ``voxel_size_zyx_nm``, ``region`` and ``times``.

    Raises
    ------
    InputError
        For a bad output grid (see :func:`output_grid`), or several times in a single-volume format.
    """
    grid, voxel, region = output_grid(model.vol_shape, model.pixel_size, shape=shape, voxel_size=voxel_size,
                                      region=region)
    info: dict[str, Any] = {"voxel_size_nm": voxel[2], "voxel_size_zyx_nm": list(voxel),
                            "region": [list(r) for r in region]}
    times = np.asarray(model.time_range[:1] if times is None else times, np.float64).reshape(-1)
    if model.config.dynamic and fmt == "h5":
        with VolumeSeriesWriter(folder / (name or "volumes.h5"), shape=(len(times), *grid), times=times,
                                voxel_size=voxel[2], overwrite=overwrite) as writer:
            for i, t in enumerate(times):
                writer.write(i, model.volume(grid, time=float(t), region=region))
        info.update(output_shape=[len(times), *grid], times=[float(t) for t in times])
        return info
    if model.config.dynamic and len(times) != 1:
        raise InputError(f"{len(times)} times: a {fmt} file holds one volume; write several to HDF5")
    at = float(times[0]) if model.config.dynamic else None
    _write_volume(folder / (name or f"volume.{fmt}"), model.volume(grid, time=at, region=region), voxel[2], fmt,
                  overwrite)
    info.update(output_shape=list(grid), times=None if at is None else [at])
    return info


def write_results(folder: Path, model: InrModel, series: TiltSeries, *, fmt: str = "mrc",
                  shape: int | tuple[int, int, int] | None = None, voxel_size: float | None = None,
                  region: tuple[tuple[float, float], ...] | None = None,
                  times: np.ndarray | None = None) -> dict[str, Any]:
    """Write the volume(s), poses, IMOD alignment, aligned series and reprojection errors into ``folder``.

    Parameters
    ----------
    folder : Path
        Existing (staging) folder; receives :func:`result_names`.
    model : InrModel
    series : TiltSeries
        The measured series the model was trained on.
    fmt : {"mrc", "tiff", "h5"}
        Format of a static volume (a dynamic model writes ``volumes.h5``).
    shape, voxel_size, region
        Output grid (see :func:`output_grid`).
    times : numpy.ndarray, optional
        Seconds at which a dynamic model is sampled (default: every acquisition time).

    Returns
    -------
    dict
        ``output_shape``, ``voxel_size_nm`` (along X), ``voxel_size_zyx_nm``, ``region`` (training voxels),
        ``reprojection_rmse_percent`` (mean over views), ``times``.
    """
    info = write_volumes(folder, model, fmt="h5" if model.config.dynamic else fmt, shape=shape,
                         voxel_size=voxel_size, region=region, times=series.times if times is None else times)
    write_pose_csv(folder / "poses.csv", model)
    plot_poses(folder / "poses.png", model)
    write_imod_alignment(folder / "alignment.xf", folder / "alignment.tlt", model)
    write_tilt_series(folder / "aligned.mrc", aligned_series(series, model))
    rows = reprojection_errors(model, series)
    write_reprojection_csv(folder / "reprojection.csv", rows)
    plot_reprojection(folder / "reprojection.png", rows)
    info["reprojection_rmse_percent"] = float(np.mean([r["rmse_percent"] for r in rows]))
    return info
