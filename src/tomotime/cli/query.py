"""``tomotime query``: volumes from a trained DIP-STER or INR model, at any time, grid or voxel size.

A model written by ``tomotime reconstruct --method dipster`` (``OUT/model.pt``)
stores the whole 4D result; this command regenerates one volume (MRC, TIFF,
or HDF5 as a series of one time) or a series (HDF5) from it, also between and
beyond the acquisition times (with a warning outside the trained range). A
model of ``--method inr`` (or ``inr4d``, then at ``--time``/``--times``) is a
continuous field: it is sampled on any grid (``--grid``, ``--voxel-size``)
over the whole box or a ``--region`` of it. The file format follows the
suffix of ``--out``; other suffixes are refused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal, Optional

import numpy as np
import typer

from tomotime.cli.common import DeviceOption, OverwriteOption, handle_errors, parse_times
from tomotime.cli.dipster import extrapolation_warnings_as_lines, format_storage, parse_angle, storage_report
from tomotime.cli.inr import GRID_HELP, REGION_HELP, VOXEL_HELP, OutputGrid
from tomotime.device import resolve_device
from tomotime.errors import InputError, OutputExistsError
from tomotime.io import write_volume_mrc, write_volume_tiff
from tomotime.io.atomic import check_output
from tomotime.io.tagged import tagged_format
from tomotime.recon.dipster import load_model, volume_at, volume_series
from tomotime.recon.inr import load_model as load_inr_model
from tomotime.recon.inr.export import write_volumes
from tomotime.recon.inr.store import MODEL_FORMAT as INR_FORMAT

__all__ = ["query"]

_WRITERS = {"mrc": write_volume_mrc, "tiff": write_volume_tiff}
_SERIES_SUFFIXES = (".h5", ".hdf5")
_SUFFIXES = {".mrc": "mrc", ".rec": "mrc", ".tif": "tiff", ".tiff": "tiff", **{s: "hdf5" for s in _SERIES_SUFFIXES}}


def _volume_format(out: Path, fmt: str | None) -> str:
    """The file format of a single volume, from the suffix of ``--out`` (``--format`` must agree)."""
    by_suffix = _SUFFIXES.get(out.suffix.lower())
    if by_suffix is None:
        raise InputError(f"--out {out}: unknown suffix {out.suffix or '(none)'!r}; expected one of "
                         f"{', '.join(_SUFFIXES)} (.h5 holds a series of one time)")
    if fmt is not None and fmt != by_suffix:
        raise InputError(f"--out {out}: the suffix {out.suffix!r} does not match --format {fmt}")
    return by_suffix


def _query_inr(path: Path, out: Path, *, at: float | None, times: str | None, angle: str | None,
               fmt: str | None, overwrite: bool, device: str, output: OutputGrid) -> None:
    """``tomotime query`` of an INR model: the field on the asked grid, at the asked time(s) when dynamic."""
    clock = time.perf_counter()
    if angle is not None:
        raise InputError("--angle applies to a DIP-STER model, not to an INR model")
    if times is not None and fmt is not None:
        raise InputError("--format applies to a single volume; a series is written as HDF5")
    kind = "hdf5" if times is not None else _volume_format(out, fmt)
    if times is not None and out.suffix.lower() not in _SERIES_SUFFIXES:
        raise InputError(f"--out {out}: a series is written as HDF5; expected a .h5 or .hdf5 file")
    query_times = None if times is None else parse_times(times)
    check_output(out, overwrite=True)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists already; pass --overwrite to replace it")
    net = load_inr_model(path, device=resolve_device(device))
    if not net.config.dynamic and (at is not None or times is not None):
        raise InputError(f"{'--time' if at is not None else '--times'} applies to a dynamic model (--method inr4d); "
                         f"{path} is a static INR model")
    if net.config.dynamic and (at is None) == (times is None):
        raise InputError("give either --time T for one volume or --times for a series (a dynamic INR model)")
    grid = output.resolve(net.vol_shape, net.pixel_size)
    chosen = query_times if times is not None else None if at is None else np.array([at])
    if chosen is not None:
        first, last = net.time_range
        outside = chosen[(chosen < first) | (chosen > last)]
        if outside.size:
            typer.echo(f"warning: {outside[0]:g} s lies outside the acquisition ({first:g} .. {last:g} s): "
                       "the field is extrapolated", err=True)
    info = write_volumes(out.parent, net, fmt={"hdf5": "h5"}.get(kind, kind), times=chosen, name=out.name,
                         overwrite=overwrite, **grid)
    when = "" if chosen is None else f", {len(chosen)} time(s) {chosen[0]:g} .. {chosen[-1]:g} s"
    typer.echo(f"wrote {out} (shape {tuple(info['output_shape'])}, voxel {info['voxel_size_nm']:.4g} nm{when}) "
               f"in {time.perf_counter() - clock:.1f} s")


@handle_errors
def query(
    model: Annotated[Path, typer.Argument(help="Trained model: model.pt of reconstruct --method dipster, inr "
                                                "or inr4d.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .mrc/.tif/.h5 for --time, .h5 for "
                                                          "--times; the format follows the suffix.")],
    at: Annotated[Optional[float], typer.Option("--time", "-t", help="One time, seconds.")] = None,
    times: Annotated[Optional[str], typer.Option("--times", help="Several times, seconds: '0,5,10' or "
                                                                 "'start:stop:step'.")] = None,
    angle: Annotated[Optional[str], typer.Option("--angle", help="Query tilt angle in degrees, or 'own' for the "
                                                                 "acquisition angle at each time (default: the "
                                                                 "angle the model's volumes were made at).")] = None,
    fmt: Annotated[Optional[Literal["mrc", "tiff"]], typer.Option("--format", help="File format with --time; must "
                                                                  "match the suffix of --out).")] = None,
    overwrite: OverwriteOption = False,
    device: DeviceOption = "auto",
    grid: Annotated[Optional[str], typer.Option("--grid", help="INR: " + GRID_HELP)] = None,
    voxel_size: Annotated[Optional[float], typer.Option("--voxel-size", help="INR: " + VOXEL_HELP)] = None,
    region: Annotated[Optional[str], typer.Option("--region", help="INR: " + REGION_HELP)] = None,
) -> None:
    """Regenerate volumes from a trained model: DIP-STER at one time (--time) or a series (--times);
    INR on any grid (--grid, --voxel-size) and region (--region), inr4d also at --time/--times."""
    clock = time.perf_counter()
    output = OutputGrid(grid, voxel_size, region)
    if tagged_format(model) == INR_FORMAT:
        _query_inr(model, out, at=at, times=times, angle=angle, fmt=fmt, overwrite=overwrite, device=device,
                   output=output)
        return
    if output.given():
        raise InputError(f"{output.given()[0]} applies to an INR model (reconstruct --method inr), not to {model}")
    if (at is None) == (times is None):
        raise InputError("give either --time T for one volume or --times for a series (e.g. 0:100:5 or 0,5,10)")
    if at is not None and not np.isfinite(at):
        raise InputError(f"--time={at}: expected a finite time in seconds")
    if times is not None:
        if fmt is not None:
            raise InputError("--format applies to a single --time; a series is written as HDF5")
        if out.suffix.lower() not in _SERIES_SUFFIXES:
            raise InputError(f"--out {out}: a series is written as HDF5; expected a .h5 or .hdf5 file")
    query_times = None if times is None else parse_times(times)
    fmt = None if at is None else _volume_format(out, fmt)
    query_angle = parse_angle(angle, name="--angle")
    check_output(out, overwrite=True)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: exists already; pass --overwrite to replace it")
    dev = resolve_device(device)
    net = load_model(model, device=dev)
    if query_angle is None:
        query_angle = net.extra.get("query_angle")
    with extrapolation_warnings_as_lines():
        if at is not None and fmt == "hdf5":
            series = volume_series(net, [at], angle=query_angle, out=out, overwrite=overwrite)
            shape, what = series.shape, f"t = {at:g} s"
            series.data.file.close()
        elif at is not None:
            volume = volume_at(net, at, angle=query_angle)
            _WRITERS[fmt](out, volume, voxel_size=net.pixel_size, overwrite=overwrite)
            shape, what = volume.shape, f"t = {at:g} s"
        else:
            series = volume_series(net, query_times, angle=query_angle, out=out, overwrite=overwrite)
            shape, what = series.shape, f"{len(series)} times {query_times[0]:g} .. {query_times[-1]:g} s"
            series.data.file.close()
    angle_text = "own acquisition angle" if query_angle == "own" else \
        f"{float(net.config.query_angle if query_angle is None else query_angle):g} deg"
    typer.echo(f"wrote {out} (shape {tuple(shape)}, {what}, {angle_text}) in {time.perf_counter() - clock:.1f} s")
    n_acquired = len(net.acquisition["times"])
    typer.echo(format_storage(storage_report(Path(model).stat().st_size, (n_acquired, *shape[-3:]))) +
               f" at the {n_acquired} acquisition times")
