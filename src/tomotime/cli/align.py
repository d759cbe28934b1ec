"""``tomotime align``: estimate the alignment of a tilt series; write the aligned series and IMOD files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from tomotime.cli.common import (AnglesOption, DeviceOption, OutDirOption, OverwriteOption, WideAnglesOption, handle_errors,
                                 read_input, staged_output)
from tomotime.errors import InputError
from tomotime.io import write_json, write_tilt_series
from tomotime.io.imod import read_tomviz_alignment, read_xf, tomviz_poses, write_tlt, write_xf, xf_to_poses
from tomotime.preprocess.align import ALIGNERS, align_chain, alignment_xf
from tomotime.preprocess.alignment import resampled

__all__ = ["align", "ALIGN_FILES"]

ALIGN_FILES = ("aligned.mrc", "aligned.rawtlt", "aligned.times", "alignment.xf", "alignment.tlt", "alignment.json")


def _starting_series(series, *, rotate: float, xf: Optional[Path], tomviz: Optional[Path]):
    if xf is not None and tomviz is not None:
        raise InputError("--xf and --tomviz: give at most one starting alignment")
    poses = np.zeros((len(series), 4))
    if xf is not None:
        poses = xf_to_poses(read_xf(xf, n_views=len(series)))
    elif tomviz is not None:
        poses = tomviz_poses(read_tomviz_alignment(tomviz), n_views=len(series))
    poses[:, 0] += rotate
    return replace(series, poses=poses) if poses.any() else series


def _binned(series, factor: int):
    from skimage.transform import downscale_local_mean

    _, ny, nx = series.shape
    if ny // factor < 8 or nx // factor < 8:
        raise InputError(f"--bin {factor}: images of {ny} x {nx} px would be smaller than 8 px")
    cropped = series.images[:, :ny // factor * factor, :nx // factor * factor]
    return replace(series, images=downscale_local_mean(cropped, (1, factor, factor)).astype(np.float32),
                   pixel_size=series.pixel_size * factor)


@handle_errors
def align(
    file: Annotated[Path, typer.Argument(help="Tilt series (MRC, TIFF, NPY, HDF5, DM, EMD, ...).")],
    out: OutDirOption,
    method: Annotated[str, typer.Option("--method", "-m", help="Alignment steps, comma-separated, applied in "
                                        f"order: {', '.join(ALIGNERS)}.")] = "xcorr,projection",
    angles: AnglesOption = None,
    allow_wide_angles: WideAnglesOption = False,
    mode: Annotated[str, typer.Option("--mode", help="xcorr: sequential (to the neighbour) or cumulative "
                                      "(to the sum of the views aligned so far).")] = "sequential",
    reference: Annotated[Optional[int], typer.Option("--reference", help="xcorr: index of the view that keeps "
                                                     "its place (default: nearest 0 deg).")] = None,
    rotate: Annotated[float, typer.Option("--rotate", help="Known in-plane rotation (deg) of the tilt axis from "
                                          "image Y, applied before the steps (e.g. 90 when the axis is image X).")]
    = 0.0,
    xf: Annotated[Optional[Path], typer.Option("--xf", help="Start from this IMOD .xf alignment.")] = None,
    tomviz: Annotated[Optional[Path], typer.Option("--tomviz", help="Start from this TomViz alignment JSON "
                                                   "(one [x, y] offset per view of FILE).")] = None,
    rounds: Annotated[Optional[int], typer.Option("--rounds", help="projection/affine: rounds (default 5 / 3).")]
    = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="projection/affine: solver iterations "
                                                      "per round (default 30 SIRT / 25 EM).")] = None,
    binning: Annotated[int, typer.Option("--bin", min=1, help="Average N x N pixels first (the aligned series is "
                                     "written binned; shifts in binned pixels).")] = 1,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Align a tilt series; write aligned.mrc (+ .rawtlt/.times), alignment.xf/.tlt (IMOD) and alignment.json."""
    methods = [m.strip() for m in method.split(",") if m.strip()]
    for name in methods:
        if name not in ALIGNERS:
            raise InputError(f"--method {name!r}: expected one or more of {', '.join(ALIGNERS)}, comma-separated")
    if mode not in ("sequential", "cumulative"):
        raise InputError(f"--mode {mode!r}: expected sequential or cumulative")
    series = read_input(file, angles=angles, allow_wide_angles=allow_wide_angles)
    if binning > 1:
        series = _binned(series, binning)
    series = _starting_series(series, rotate=rotate, xf=xf, tomviz=tomviz)
    loop = {k: v for k, v in (("rounds", rounds), ("iterations", iterations)) if v is not None}
    loop["device"] = device
    options = {"xcorr": {"mode": mode, "reference": reference}, "projection": loop, "affine": loop}
    result = align_chain(series, methods, options)
    rows = alignment_xf(result)
    aligned = resampled(result)
    with staged_output(out, ALIGN_FILES, overwrite=overwrite) as stage:
        write_tilt_series(stage / "aligned.mrc", replace(aligned, metadata={}))
        write_xf(stage / "alignment.xf", rows)
        write_tlt(stage / "alignment.tlt", series.angles)
        write_json(stage / "alignment.json", {
            "input": str(file), "methods": methods, "rotate_deg": rotate, "bin": binning,
            "start": str(xf or tomviz) if (xf or tomviz) else None,
            "poses": None if result.poses is None else np.asarray(result.poses, float).round(4).tolist(),
            "steps": result.metadata.get("alignment", [])})
    shifts = np.hypot(rows[:, 4], rows[:, 5])
    typer.echo(f"aligned {len(series)} views with {' + '.join(methods)}: largest shift {shifts.max():.2f} px, "
               f"axis rotation {np.rad2deg(np.arctan2(-rows[0, 2], rows[0, 0])):.2f} deg; wrote {out}")
