"""Write every result of a trained INR model into a folder (what ``tomotime reconstruct --method inr`` publishes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.io import VolumeSeriesWriter, write_tilt_series, write_volume_mrc, write_volume_tiff
from tomotime.recon.inr.model import InrModel
from tomotime.recon.inr.outputs import (
    aligned_series,
    plot_poses,
    plot_reprojection,
    reprojection_errors,
    write_imod_alignment,
    write_pose_csv,
    write_reprojection_csv,
)

__all__ = ["result_names", "write_results", "VOLUME_FORMATS"]

VOLUME_FORMATS = ("mrc", "tiff", "h5")


def result_names(*, dynamic: bool, fmt: str) -> list[str]:
    """Files :func:`write_results` writes, in publishing order."""
    volume = ["volumes.h5"] if dynamic else [f"volume.{fmt}"]
    return [*volume, "poses.csv", "poses.png", "alignment.xf", "alignment.tlt", "aligned.mrc", "aligned.rawtlt",
            "aligned.times", "reprojection.csv", "reprojection.png"]


def _write_volume(path: Path, volume: np.ndarray, voxel: float, fmt: str) -> None:
    if fmt == "mrc":
        write_volume_mrc(path, volume, voxel_size=voxel)
    elif fmt == "tiff":
        write_volume_tiff(path, volume, voxel_size=voxel)
    else:
        with VolumeSeriesWriter(path, shape=(1, *volume.shape), voxel_size=voxel) as writer:
            writer.write(0, volume)


def output_grid(model: InrModel, pixel_size: float, *, shape: tuple[int, int, int] | None,
                voxel_size: float | None) -> tuple[tuple[int, int, int], float]:
    """Output grid ``(Z, Y, X)`` and its voxel size (nm) from a shape, a voxel size, or the training grid."""
    if shape is not None and voxel_size is not None:
        raise InputError("give an output shape or a voxel size, not both")
    if voxel_size is not None:
        if not voxel_size > 0:
            raise InputError(f"voxel size {voxel_size}: expected a positive size in nm")
        shape = tuple(max(1, round(n * pixel_size / voxel_size)) for n in model.vol_shape)
    shape = tuple(int(v) for v in (shape or model.vol_shape))
    if min(shape) < 1:
        raise InputError(f"output shape {shape}: expected positive sizes")
    return shape, pixel_size * model.vol_shape[2] / shape[2]


def write_results(folder: Path, model: InrModel, series: TiltSeries, *, fmt: str = "mrc",
                  shape: tuple[int, int, int] | None = None, voxel_size: float | None = None,
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
    shape, voxel_size
        Output grid (see :func:`output_grid`).
    times : numpy.ndarray, optional
        Seconds at which a dynamic model is sampled (default: every acquisition time).

    Returns
    -------
    dict
        ``output_shape``, ``voxel_size_nm``, ``reprojection_rmse_percent`` (mean over views), ``times``.
    """
    grid, voxel = output_grid(model, series.pixel_size, shape=shape, voxel_size=voxel_size)
    info: dict[str, Any] = {"voxel_size_nm": voxel}
    if model.config.dynamic:
        times = series.times if times is None else np.asarray(times, np.float64)
        with VolumeSeriesWriter(folder / "volumes.h5", shape=(len(times), *grid), times=times,
                                voxel_size=voxel) as writer:
            for i, t in enumerate(times):
                writer.write(i, model.volume(grid, time=float(t)))
        info.update(output_shape=[len(times), *grid], times=[float(t) for t in times])
    else:
        _write_volume(folder / f"volume.{fmt}", model.volume(grid), voxel, fmt)
        info["output_shape"] = list(grid)
    write_pose_csv(folder / "poses.csv", model)
    plot_poses(folder / "poses.png", model)
    write_imod_alignment(folder / "alignment.xf", folder / "alignment.tlt", model)
    write_tilt_series(folder / "aligned.mrc", aligned_series(series, model))
    rows = reprojection_errors(model, series)
    write_reprojection_csv(folder / "reprojection.csv", rows)
    plot_reprojection(folder / "reprojection.png", rows)
    info["reprojection_rmse_percent"] = float(np.mean([r["rmse_percent"] for r in rows]))
    return info
