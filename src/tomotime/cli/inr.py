"""``tomotime reconstruct --method inr|inr4d``: train an INR (with ``--align``, the poses too) and write its results.

Output folder ``OUT``: ``volume.mrc`` (or ``.tiff``; ``volumes.h5`` for
``inr4d``), ``model.pt``, the learned poses (``poses.csv``, ``poses.png``),
the IMOD alignment (``alignment.xf``, ``alignment.tlt``), the aligned series
(``aligned.mrc`` with ``.rawtlt``/``.times``), the per-view reprojection
errors (``reprojection.csv``, ``.png``), ``summary.json`` (last) and the
training run folder ``run/`` (kept on Ctrl-C so that ``--resume`` continues).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import check_memory, check_run_outputs, parse_times, read_input, write_json
from tomotime.cli.dipster import DipsterOptions
from tomotime.cli.training_run import RUN_FOLDER, method_config, training_output
from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.recon.inr import InrConfig, save_model, train_inr
from tomotime.recon.inr.export import output_grid, result_names, write_results
from tomotime.training import is_main_process

__all__ = ["run_inr", "inr_config", "DIPSTER_ONLY", "OutputGrid", "parse_grid", "parse_region", "GRID_HELP",
           "VOXEL_HELP", "REGION_HELP"]

log = logging.getLogger(__name__)

GRID_HELP = ("Output grid: voxels along the longest side (cubic voxels), or Z,Y,X "
             "(default: the training grid, one voxel per detector pixel).")
VOXEL_HELP = "Output voxel size in nm (cubic voxels; instead of --grid)."
REGION_HELP = ("Part of the box to sample, voxels of the training grid from its corner: "
               "z0:z1,y0:y1,x0:x1 (an empty bound is the box's edge, e.g. ':,10:40,:').")


def parse_grid(text: str | None) -> int | tuple[int, int, int] | None:
    """``--grid``: one size (the longest side) or ``Z,Y,X`` (also ``ZxYxX``).

    Raises
    ------
    InputError
        For anything but one or three positive integers.
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 3) or min(sizes) < 1:
        raise InputError(f"--grid={text!r}: expected one size (e.g. 128) or three sizes Z,Y,X (e.g. 64,128,128)")
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1], sizes[2])


def parse_region(text: str | None, vol_shape: tuple[int, int, int]) -> tuple[tuple[float, float], ...] | None:
    """``--region z0:z1,y0:y1,x0:x1`` in voxels of the box ``vol_shape``; an empty bound is the box's edge.

    Raises
    ------
    InputError
        For another form, or bounds that are not numbers.
    """
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 3 or any(p.count(":") != 1 for p in parts):
        raise InputError(f"--region={text!r}: expected z0:z1,y0:y1,x0:x1 (voxels; e.g. ':,10:40,:')")
    region = []
    for part, n in zip(parts, vol_shape):
        lo, hi = (v.strip() for v in part.split(":"))
        try:
            region.append((float(lo) if lo else 0.0, float(hi) if hi else float(n)))
        except ValueError:
            raise InputError(f"--region={text!r}: {part!r} is not start:stop in voxels") from None
    return tuple(region)


class OutputGrid:
    """The parsed ``--grid``, ``--voxel-size`` and ``--region`` of an INR output, checked against a box."""

    def __init__(self, grid: str | None = None, voxel_size: float | None = None, region: str | None = None) -> None:
        if grid is not None and voxel_size is not None:
            raise InputError("give --grid or --voxel-size, not both")
        self.grid, self.voxel_size, self.region_text = parse_grid(grid), voxel_size, region

    def given(self) -> list[str]:
        """The options that were set."""
        names = ("--grid", "--voxel-size", "--region")
        return [n for n, v in zip(names, (self.grid, self.voxel_size, self.region_text)) if v is not None]

    def resolve(self, vol_shape: tuple[int, int, int], pixel_size: float) -> dict[str, Any]:
        """``shape``, ``voxel_size`` and ``region`` for :func:`~tomotime.recon.inr.export.write_volumes`.

        Raises
        ------
        InputError
            For a region outside the box, a non-positive voxel size, or an output larger than the memory.
        """
        region = parse_region(self.region_text, vol_shape)
        try:
            grid, _, region = output_grid(vol_shape, pixel_size, shape=self.grid, voxel_size=self.voxel_size,
                                          region=region)
        except InputError as exc:
            raise InputError(f"--grid/--voxel-size/--region: {exc}") from None
        check_memory(4.0 * float(np.prod(grid)), f"an output grid of {' x '.join(map(str, grid))} voxels "
                     "(--grid/--voxel-size)", device="cpu")
        return {"shape": self.grid, "voxel_size": self.voxel_size, "region": region}


#: DIP-STER options of ``tomotime reconstruct`` that an INR run refuses.
DIPSTER_ONLY = ("manifold", "loss", "hidden", "base_channels", "query_angle", "preset", "corrections", "row_lag",
                "row_time_lag", "residual_filter", "ensemble")


def inr_config(options: DipsterOptions, *, run_dir: Path, dynamic: bool, align: bool | None, field: str | None,
               thickness: int | None, device: str) -> InrConfig:
    """Defaults, then the run file (with ``--resume``: ``run/config.json``), then the command-line options."""
    given = [f"--{name.replace('_', '-')}" for name in DIPSTER_ONLY if getattr(options, name) is not None]
    if given:
        raise InputError(f"{given[0]} applies to --method dipster, not to an INR reconstruction")
    base = options.overrides()
    overrides = {k: base[k] for k in ("steps", "epochs", "lr", "batch_size", "holdout_fraction", "patience", "seed")}
    overrides.update(dynamic=True if dynamic else None, align=align or None, field=field, thickness=thickness)
    return method_config(InrConfig, options.run_file, overrides, run_dir=run_dir, resume=options.resume,
                         device=device, clear_steps=options.epochs is not None and options.steps is None)


def run_inr(*, command: str, file: Path, out: Path, options: DipsterOptions, dynamic: bool = False,
            align: bool = False, field: str | None = None, times: str | None = None, thickness: int | None = None,
            fmt: str = "mrc", angles: Path | None = None, allow_wide_angles: bool = False, overwrite: bool = False,
            device: str = "auto", output: OutputGrid | None = None) -> dict[str, Any] | None:
    """Train an INR on the tilt series ``file`` and write ``OUT`` (see the module description).

    Options, run file and outputs are checked and the input read before training. ``output`` sets the
    grid the volume is sampled on (default: the training grid).

    Raises
    ------
    InputError, FormatError, OutputExistsError
        Before training, for bad options, inputs or existing outputs.
    typer.Exit
        With code 130 (143 after SIGTERM) when interrupted, once the checkpoint is saved.
    """
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    out = Path(out)
    run_dir = out / RUN_FOLDER
    if times is not None and not dynamic:
        raise InputError("--times applies to a dynamic reconstruction (--method inr4d)")
    names = [*result_names(dynamic=dynamic, fmt=fmt), "model.pt", "summary.json"]
    check_run_outputs(out, run_dir, names, overwrite=overwrite, resume=options.resume)
    config = inr_config(options, run_dir=run_dir, dynamic=dynamic, align=align, field=field, thickness=thickness,
                        device=device)
    query = None if times is None else parse_times(times)
    resolve_device(config.device)
    series = read_input(file, angles=angles, allow_wide_angles=allow_wide_angles)
    _, ny, nx = series.shape
    grid = (output or OutputGrid()).resolve((config.thickness or nx, ny, nx), series.pixel_size)
    main = is_main_process()
    with training_output(out, names, run_dir, overwrite=overwrite, resume=options.resume, main=main) as stage:
        began = time.perf_counter()
        result = train_inr(series, config, run_dir=run_dir, resume=options.resume, overwrite=overwrite)
        train_seconds = time.perf_counter() - began
        if stage is None:
            return None
        began = time.perf_counter()
        info = write_results(stage, result.model, series, fmt=fmt, times=query, **grid)
        save_model(stage / "model.pt", result.model, extra={"best_step": result.best_step,
                                                            "source": str(Path(file).resolve())})
        summary = {
            "command": command, "tomotime_version": __version__,
            "input": {"file": str(Path(file).resolve()), "shape": list(series.shape),
                      "pixel_size_nm": series.pixel_size},
            "method": "inr4d" if dynamic else "inr",
            "config": json.loads((run_dir / "config.json").read_text()),
            "device": str(result.model.device),
            "training": {"steps": result.steps, "best_step": result.best_step,
                         "stopped_early": result.stopped_early, "best_holdout_loss": result.best_holdout_loss,
                         "nan_events": result.nan_events, "seconds": round(train_seconds, 3)},
            **info, "export_seconds": round(time.perf_counter() - began, 3), "run_dir": RUN_FOLDER,
            "started": started.isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - clock, 3), "outputs": names,
        }
        write_json(stage / "summary.json", summary)
    typer.echo(f"wrote {out}/{names[0]} (shape {tuple(summary['output_shape'])}), poses, alignment and "
               f"reprojection errors ({summary['reprojection_rmse_percent']:.2f}% mean RMSE) and the run folder "
               f"{run_dir} in {summary['wall_seconds']:.1f} s")
    return summary
