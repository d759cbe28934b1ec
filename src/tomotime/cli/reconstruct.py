"""``tomotime reconstruct``: one volume, a volume series with a sliding window, or DIP-STER.

Every option is checked, and the input read, before any computation. Results
are written into a hidden staging folder inside ``--out`` and moved into
place only when complete, ``summary.json`` last; a failed or interrupted run
leaves ``--out`` as it was. ``--method dipster`` is run by
:func:`tomotime.cli.dipster.run_dipster`, which keeps its training run folder
(and checkpoint) in ``--out`` when interrupted.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import (
    AnglesOption,
    DeviceOption,
    OutDirOption,
    OverwriteOption,
    WideAnglesOption,
    check_finite,
    check_memory,
    check_outputs,
    command_line,
    handle_errors,
    parse_times,
    read_input,
    staged_output,
    write_json,
)
from tomotime.cli.dipster import (
    BaseChannelsOption,
    BatchSizeOption,
    CorrectionsOption,
    DipsterOptions,
    EnsembleOption,
    EpochsOption,
    HiddenOption,
    HoldoutOption,
    LossOption,
    LrOption,
    ManifoldOption,
    PatienceOption,
    PresetOption,
    QueryAngleOption,
    ResidualFilterOption,
    ResumeOption,
    RowLagOption,
    RowTimeLagOption,
    RunFileOption,
    SeedOption,
    StepsOption,
    run_dipster,
)
from tomotime.cli.report import NoReportOption, write_run_report
from tomotime.cli.inr import GRID_HELP, REGION_HELP, VOXEL_HELP, OutputGrid, run_inr
from tomotime.data import TiltSeries
from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.recon.inr import FIELDS
from tomotime.io import write_volume_mrc, write_volume_series_mrcs, write_volume_tiff
from tomotime.rapid.reconstruct import reconstruct_rapid
from tomotime.solvers import FILTERS, METHODS, reconstruct as reconstruct_volume, sliding_window
from tomotime.solvers.static import check_method_options

__all__ = ["reconstruct", "output_names", "resolve_times", "read_row_angles"]

log = logging.getLogger(__name__)

_INR = "INR (--method inr, inr4d)"

SUMMARY = "summary.json"
SERIES_FILE = "volumes.h5"
MRC_FOLDER = "mrc"
_WRITERS = {"mrc": write_volume_mrc, "tiff": write_volume_tiff}
ALL_METHODS = (*METHODS, "dipster", "inr", "inr4d")


def output_names(*, window: int | None, fmt: str, per_time_mrc: bool) -> list[str]:
    """Names written in the output folder, in publishing order (``summary.json`` last)."""
    if window is None:
        return [f"volume.{fmt}", SUMMARY]
    return [SERIES_FILE, *([MRC_FOLDER] if per_time_mrc else []), SUMMARY]


def resolve_times(series: TiltSeries, times: str | None) -> np.ndarray:
    """Reconstruction times (seconds) parsed from ``--times``, default every acquisition time.

    Raises
    ------
    InputError
        If ``--times`` cannot be parsed or a time lies outside the acquisition.
    """
    if times is None:
        return series.times.copy()
    values = parse_times(times)
    first, last = float(series.times[0]), float(series.times[-1])
    tolerance = 1e-9 * max(1.0, last - first)
    outside = values[(values < first - tolerance) | (values > last + tolerance)]
    if outside.size:
        raise InputError(f"--times={times!r}: {outside[0]:g} s lies outside the acquisition "
                         f"({first:g} .. {last:g} s, {series.metadata.get('source', 'input')})")
    return values


def _check_option_combinations(*, method: str, window: int | None, times: str | None, fmt: str,
                               per_time_mrc: bool, min_value: float | None, iterations: int | None) -> None:
    if window is None and (times is not None or per_time_mrc):
        raise InputError("--times and --per-time-mrc need --window (a sliding-window reconstruction)")
    if window is not None and fmt != "mrc":
        raise InputError(f"--format {fmt} applies to a single volume; with --window the series is written to "
                         f"{SERIES_FILE} (add --per-time-mrc for one MRC per time point)")
    if min_value is not None and method != "sirt":
        raise InputError(f"--min applies to SIRT only, not to method {method!r}")
    check_finite(min=min_value)
    if window is not None and window < 2:
        raise InputError(f"--window={window}: a volume needs views at two or more angles; expected at least 2")
    if iterations is not None and method == "fbp":
        log.warning("--iterations is ignored by FBP")


def _check_dipster_combinations(*, window: int | None, iterations: int | None, filter: str, min_value: float | None,
                                fmt: str, per_time_mrc: bool) -> None:
    given = {"--window": window is not None, "--iterations": iterations is not None, "--filter": filter != "ram-lak",
             "--min": min_value is not None, "--format": fmt != "mrc", "--per-time-mrc": per_time_mrc}
    for flag, used in given.items():
        if used:
            raise InputError(f"{flag} applies to FBP, SIRT and EM, not to --method dipster")


def _check_inr_combinations(*, window: int | None, iterations: int | None, filter: str, min_value: float | None,
                            per_time_mrc: bool) -> None:
    given = {"--window": window is not None, "--iterations": iterations is not None, "--filter": filter != "ram-lak",
             "--min": min_value is not None, "--per-time-mrc": per_time_mrc}
    for flag, used in given.items():
        if used:
            raise InputError(f"{flag} applies to FBP, SIRT and EM, not to --method inr")


def _check_against_series(series: TiltSeries, *, method: str, window: int | None, thickness: int | None,
                          min_value: float | None, device) -> None:
    """Refuse what cannot give a meaningful volume, naming the input file, before any work starts."""
    n, ny, nx = series.shape
    source = series.metadata.get("source", "the input")
    images = series.images
    if window is not None and window > n:
        raise InputError(f"--window={window}: larger than the number of views ({n}) in {source}")
    if thickness is not None and thickness < 2:
        raise InputError(f"--thickness={thickness}: expected at least 2 voxels")
    if min(ny, nx) < 2:
        raise InputError(f"{source}: the views are {ny} x {nx} pixels; expected at least 2 x 2")
    directions = np.unique(np.round(np.mod(series.angles, 180.0), 6) % 180.0)
    if directions.size < 2:
        raise InputError(f"{source}: all {n} view(s) look along one direction ({series.angles[0]:g} deg); "
                         "a volume needs views at two or more tilt angles")
    top = float(images.max())
    if top == 0 and float(images.min()) == 0:
        raise InputError(f"{source}: every pixel is 0; there is nothing to reconstruct")
    if method == "em" and float(images.min()) < 0:
        raise InputError(f"{source}: EM needs non-negative projections; the minimum is "
                         f"{float(images.min()):.4g} (subtract a smaller background or use sirt/fbp)")
    if min_value is not None and top <= min_value:
        raise InputError(f"{source}: every projection value is <= {top:.4g}, so with --min {min_value:g} the volume "
                         "could only be constant; check the contrast (a bright specimen on a dark background is "
                         "expected: invert bright-field images, or take -log(I / I0))")
    nz = thickness or nx
    projector = 24.0 * n * nx * 2 * np.ceil(np.hypot(nz, nx))  # sparse matrix entries of the pose-free projector
    check_memory(6 * 4.0 * nz * ny * nx + 4 * images.nbytes + projector,
                 f"a {nz} x {ny} x {nx} volume (--thickness {nz}) from {source}", device=device)


def _warn_if_empty(volume: np.ndarray, source: str) -> None:
    if not np.any(volume):
        log.warning("the volume reconstructed from %s is 0 everywhere; it shows nothing", source)


@handle_errors
def reconstruct(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Tilt series (MRC, TIFF, NPY, HDF5, EMD, DM3/DM4, SER).")],
    out: OutDirOption,
    method: Annotated[Literal[ALL_METHODS], typer.Option("--method", "-m", help="Reconstruction method.")] = "sirt",
    iterations: Annotated[Optional[int], typer.Option("--iterations", "-k", min=1,
                                                      help="Iterations (default: SIRT 100, EM 50).")] = None,
    filter: Annotated[Literal[FILTERS], typer.Option("--filter", help="FBP filter window.")] = "ram-lak",
    thickness: Annotated[Optional[int], typer.Option("--thickness", "-z", min=2,
                                                     help="Volume size Z along the beam, voxels "
                                                          "(default: detector width X).")] = None,
    min_value: Annotated[Optional[float], typer.Option("--min", help="SIRT lower bound, e.g. 0.")] = None,
    window: Annotated[Optional[int], typer.Option("--window", "-w", min=1,
                                                  help="Sliding-window reconstruction: views per volume.")] = None,
    times: Annotated[Optional[str], typer.Option("--times", help="With --window or dipster: times in seconds, "
                                                                 "'0,5,10' or 'start:stop:step' "
                                                                 "(default: every acquisition).")] = None,
    angles: AnglesOption = None,
    row_angles: Annotated[Optional[Path], typer.Option(
        "--row-angles", help="SIRT with one angle per view and detector row: an .npy (N, Y) in degrees, e.g. "
                             "row_angles.npy from 'tomotime correct --scan-fraction' (time-lag aware).")] = None,
    allow_wide_angles: WideAnglesOption = False,
    fmt: Annotated[Literal["mrc", "tiff"], typer.Option("--format", help="File format of a single volume.")] = "mrc",
    per_time_mrc: Annotated[bool, typer.Option("--per-time-mrc", help=f"With --window: also write one MRC per "
                                                                     f"time point into {MRC_FOLDER}/.")] = False,
    overwrite: OverwriteOption = False,
    device: DeviceOption = "auto",
    run_file: RunFileOption = None,
    steps: StepsOption = None,
    epochs: EpochsOption = None,
    lr: LrOption = None,
    batch_size: BatchSizeOption = None,
    manifold: ManifoldOption = None,
    loss: LossOption = None,
    hidden: HiddenOption = None,
    base_channels: BaseChannelsOption = None,
    holdout: HoldoutOption = None,
    patience: PatienceOption = None,
    seed: SeedOption = None,
    query_angle: QueryAngleOption = None,
    preset: PresetOption = None,
    corrections: CorrectionsOption = None,
    row_lag: RowLagOption = None,
    row_time_lag: RowTimeLagOption = None,
    residual_filter: ResidualFilterOption = None,
    ensemble: EnsembleOption = None,
    resume: ResumeOption = False,
    no_report: NoReportOption = False,
    align: Annotated[bool, typer.Option("--align", help="INR: learn per-view poses (in-plane angles, shifts) "
                                                        "jointly with the volume.", rich_help_panel=_INR)] = False,
    field: Annotated[Optional[Literal[FIELDS]], typer.Option(
        "--field", help="INR field: feature grid (fast, default) or the paper's H-Siren.",
        rich_help_panel=_INR)] = None,
    grid: Annotated[Optional[str], typer.Option("--grid", help=GRID_HELP, rich_help_panel=_INR)] = None,
    voxel_size: Annotated[Optional[float], typer.Option("--voxel-size", help=VOXEL_HELP,
                                                        rich_help_panel=_INR)] = None,
    region: Annotated[Optional[str], typer.Option("--region", help=REGION_HELP, rich_help_panel=_INR)] = None,
) -> None:
    """Reconstruct a tilt series with FBP, SIRT or EM; with --window, a volume at each time; or with DIP-STER.

    Writes OUT/volume.mrc (or .tiff); with --window, OUT/volumes.h5 (T, Z, Y, X).
    With --method dipster: OUT/volumes.h5, OUT/model.pt and the training run folder OUT/run.
    With --method inr [--align] (inr4d: time as a fourth input): the volume (volumes.h5 for inr4d) on the
    training grid or on --grid/--voxel-size (over --region), OUT/model.pt, learned poses, IMOD .xf/.tlt,
    the aligned series, reprojection errors and OUT/run.
    Always writes OUT/summary.json with the resolved options.
    """
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    command = command_line(ctx)
    dipster = DipsterOptions(run_file=run_file, steps=steps, epochs=epochs, lr=lr, batch_size=batch_size,
                             manifold=manifold, loss=loss, hidden=hidden, base_channels=base_channels,
                             holdout=holdout, patience=patience, seed=seed, query_angle=query_angle, preset=preset,
                             corrections=corrections, row_lag=row_lag, row_time_lag=row_time_lag,
                             residual_filter=residual_filter, ensemble=ensemble, resume=resume)
    output = OutputGrid(grid, voxel_size, region)
    if row_angles is not None and (method != "sirt" or window is not None):
        raise InputError(f"--row-angles applies to a single SIRT volume (--method sirt without --window), not to "
                         f"{'--window' if method == 'sirt' else repr(method)}; DIP-STER takes --row-lag")
    if method in ("inr", "inr4d"):
        _check_inr_combinations(window=window, iterations=iterations, filter=filter, min_value=min_value,
                                per_time_mrc=per_time_mrc)
        summary = run_inr(command=command, file=file, out=out, options=dipster, dynamic=method == "inr4d",
                          align=align, field=field, times=times, thickness=thickness, fmt=fmt, angles=angles,
                          allow_wide_angles=allow_wide_angles, overwrite=overwrite, device=device, output=output)
        if not no_report and summary is not None:  # None on the other ranks under torchrun
            write_run_report(Path(out))
        return
    inr_only = [*(["--align"] if align else []), *(["--field"] if field is not None else []), *output.given()]
    if inr_only:
        raise InputError(f"{inr_only[0]} applies to --method inr/inr4d, not to {method!r}")
    if method == "dipster":
        _check_dipster_combinations(window=window, iterations=iterations, filter=filter, min_value=min_value,
                                    fmt=fmt, per_time_mrc=per_time_mrc)
        summary = run_dipster(command=command, file=file, out=out, options=dipster, times=times,
                              thickness=thickness, angles=angles, allow_wide_angles=allow_wide_angles,
                              overwrite=overwrite, device=device)
        if not no_report and summary is not None:  # None on the other ranks under torchrun
            write_run_report(Path(out))
        return
    if dipster.given():
        raise InputError(f"{dipster.given()[0]} applies to --method dipster only, not to {method!r}")
    _check_option_combinations(method=method, window=window, times=times, fmt=fmt, per_time_mrc=per_time_mrc,
                               min_value=min_value, iterations=iterations)
    iterations = check_method_options(method, iterations=iterations, filter=filter)
    names = output_names(window=window, fmt=fmt, per_time_mrc=per_time_mrc)
    check_outputs(out, names, overwrite=overwrite)
    dev = resolve_device(device)
    series = read_input(file, angles=angles, allow_wide_angles=allow_wide_angles)
    _check_against_series(series, method=method, window=window, thickness=thickness, min_value=min_value,
                          device=dev)
    per_row = None if row_angles is None else read_row_angles(row_angles, series.shape)
    recon_times = resolve_times(series, times) if window is not None else None
    nz = thickness or series.shape[2]
    options = {"iterations": iterations, "filter": filter, "thickness": nz, "min_value": min_value}
    log.info("reconstructing %s with %s on %s", file, method.upper(), dev)

    with staged_output(out, names, overwrite=overwrite) as stage:
        if window is None:
            if per_row is None:
                volume = reconstruct_volume(series, method=method, device=dev, progress=None, **options)
            else:
                volume = reconstruct_rapid(series.images, per_row, thickness=nz, iterations=iterations,
                                           device=dev, progress=None, min_value=min_value)
            _warn_if_empty(volume, str(file))
            _WRITERS[fmt](stage / names[0], volume, voxel_size=series.pixel_size)
            shape = list(volume.shape)
        else:
            shape = _reconstruct_series(series, stage, window=window, times=recon_times, method=method,
                                        per_time_mrc=per_time_mrc, device=dev, options=options)
        outputs = [str(p.relative_to(stage)) for p in sorted(stage.rglob("*")) if p.is_file()] + [SUMMARY]
        summary: dict[str, Any] = {
            "command": command,
            "tomotime_version": __version__,
            "input": {"file": str(Path(file).resolve()), "shape": list(series.shape), "pixel_size_nm":
                      series.pixel_size, **{k: series.metadata.get(k) for k in ("format", "angles_from",
                                                                                 "times_from")}},
            "method": method,
            "options": {**options, "window": window, "format": fmt if window is None else "hdf5",
                        "per_time_mrc": per_time_mrc, "angles": None if angles is None else str(angles),
                        "row_angles": None if row_angles is None else str(row_angles),
                        "allow_wide_angles": allow_wide_angles, "device_requested": device},
            "times": None if recon_times is None else [float(t) for t in recon_times],
            "output_shape": shape,
            "device": str(dev),
            "started": started.isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - clock, 3),
            "outputs": outputs,
        }
        write_json(stage / SUMMARY, summary)
    typer.echo(f"wrote {', '.join(str(Path(out) / n) for n in names)} (shape {tuple(shape)}) "
               f"in {summary['wall_seconds']:.1f} s")
    if not no_report:
        write_run_report(Path(out))


def read_row_angles(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Per-row angles ``(N, Y)`` (degrees) from an ``.npy`` file, checked against a series ``(N, Y, X)``."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"--row-angles {path}: not a readable .npy array ({exc})") from None
    if values.shape != tuple(shape[:2]):
        raise InputError(f"--row-angles {path}: expected shape ({shape[0]}, {shape[1]}) (one angle per view and "
                         f"row of the {shape[0]} x {shape[1]} x {shape[2]} series), got {values.shape}")
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise InputError(f"--row-angles {path}: expected finite angles in degrees")
    return values.astype(np.float64)


def _reconstruct_series(series: TiltSeries, stage: Path, *, window: int, times: np.ndarray, method: str,
                        per_time_mrc: bool, device, options: dict) -> list[int]:
    result = sliding_window(series, window=window, times=times, method=method, out=stage / SERIES_FILE,
                            device=device, progress=None, **options)
    try:
        if per_time_mrc:
            write_volume_series_mrcs(stage / MRC_FOLDER, result)
        return list(result.shape)
    finally:
        result.data.file.close()
