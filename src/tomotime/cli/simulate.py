"""``tomotime simulate``: a ground-truth dynamic scenario and its simulated tilt-time series."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import (OutDirOption, OverwriteOption, check_finite, check_memory, command_line, handle_errors,
                                 staged_output)
from tomotime.errors import InputError
from tomotime.geometry import tilt_scheme
from tomotime.io import VolumeSeriesWriter, read_volume_series, write_json, write_tilt_series
from tomotime.sim import SCENARIOS, iter_scenario, simulate_acquisition
from tomotime.sim.parameters import parse_param, read_scenario_file, scenario_parameters

__all__ = ["simulate", "SIMULATION_FILES"]

SIMULATION_FILES = ("truth.h5", "series.mrc", "series.rawtlt", "series.times", "scenario.json")
MAX_SHIFT_FRACTION = 0.25
"""``--shift-std`` may be at most this fraction of ``--size``: larger shifts move the specimen out of view."""

log = logging.getLogger(__name__)


def _check_options(*, size: int, steps: int, seed: int, shift_std: float, out: Path, **numbers: float | None) -> None:
    """Refuse options that would fail late, exhaust memory or disk, or give a series that shows nothing."""
    check_finite(shift_std=shift_std, **numbers)
    if seed < 0:
        raise InputError(f"--seed {seed}: expected a non-negative integer")
    if size >= 16 and shift_std > MAX_SHIFT_FRACTION * size:
        raise InputError(f"--shift-std {shift_std:g}: shifts of that size move the specimen out of the {size}-pixel "
                         f"field of view; expected at most {MAX_SHIFT_FRACTION * size:g} px (a quarter of --size)")
    if size < 16 or steps < 2:
        return  # the scenario's own checks name the option
    volume = 4.0 * size**3
    check_memory(12 * volume, f"--size {size}")
    folder = next((p for p in (out, *out.resolve().parents) if p.exists()), None)
    if folder is not None and shutil.disk_usage(folder).free < steps * volume:
        raise InputError(f"--size {size} --steps {steps}: the ground truth needs {steps * volume / 2**30:.3g} GiB, "
                         f"more than the free space under {folder}")


def _warn_if_empty_views(images: np.ndarray) -> None:
    empty = np.flatnonzero(~images.reshape(len(images), -1).any(axis=1))
    if empty.size:
        log.warning("%d of %d simulated views are 0 everywhere (first: view %d): the specimen left the field of view",
                    empty.size, len(images), empty[0])


def _scenario_parameters(scenario: str, params: list[str], scenario_file: Path | None) -> dict:
    """The scenario file's parameters overridden by each ``--param``, checked against the scenario's ranges."""
    values: dict = {}
    if scenario_file is not None:
        data = read_scenario_file(scenario_file)
        named = data.pop("scenario", scenario)
        if named != scenario:
            raise InputError(f"--scenario-file {scenario_file}: is for scenario {named!r}, not {scenario!r}")
        values.update(data.pop("parameters", {}) or {})
        values.update(data)
    for text in params:
        key, value = parse_param(text)
        values[key] = value
    return scenario_parameters(scenario, values)


@handle_errors
def simulate(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCENARIOS)}.")],
    out: OutDirOption,
    size: Annotated[int, typer.Option("--size", help="Volume edge in voxels.")] = 64,
    steps: Annotated[int, typer.Option("--steps", help="Time steps (= projections).")] = 100,
    dose: Annotated[Optional[float], typer.Option("--dose", help="Counts per unit projected intensity "
                                                                  "(Poisson noise); default noise-free.")] = None,
    read_noise: Annotated[float, typer.Option("--read-noise", help="Gaussian read-noise std.")] = 0.0,
    scheme: Annotated[str, typer.Option("--scheme", help="grs, incremental or dose-symmetric.")] = "grs",
    start: Annotated[float, typer.Option("--start", help="First tilt angle of the range (deg).")] = -70.0,
    stop: Annotated[float, typer.Option("--stop", help="Last tilt angle of the range (deg).")] = 70.0,
    shift_std: Annotated[float, typer.Option("--shift-std", help="Random image shifts (px, std).")] = 0.0,
    axis_rotation: Annotated[float, typer.Option("--axis-rotation", help="Tilt-axis rotation error (deg).")] = 0.0,
    tilt_blur: Annotated[float, typer.Option("--tilt-blur", help="Tilt swept during a frame (deg).")] = 0.0,
    row_lag: Annotated[float, typer.Option("--row-lag", help="STEM scan lag: extra tilt at the last row (deg).")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the scenario and of the noise.")] = 0,
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", help="Scenario parameter name=value (repeatable), e.g. --param sigma=0.09; "
                        "an unknown name lists the accepted ones, a value out of range names its range.")] = None,
    scenario_file: Annotated[Optional[Path], typer.Option(
        "--scenario-file", help="YAML/JSON file of scenario parameters (--param overrides it).")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate an in situ experiment: writes truth.h5, series.mrc/.rawtlt/.times and scenario.json."""
    if scenario not in SCENARIOS:
        raise InputError(f"scenario {scenario!r}: expected one of {', '.join(SCENARIOS)}")
    if dose is not None and dose <= 0:
        raise InputError(f"--dose {dose}: expected a positive number of counts")
    _check_options(size=size, steps=steps, seed=seed, shift_std=shift_std, out=Path(out), dose=dose,
                   read_noise=read_noise, start=start, stop=stop, axis_rotation=axis_rotation, tilt_blur=tilt_blur,
                   row_lag=row_lag)
    parameters = _scenario_parameters(scenario, param or [], scenario_file)
    angles = tilt_scheme(scheme, steps, start, stop)
    began = time.perf_counter()
    volumes = iter_scenario(scenario, size=size, steps=steps, seed=seed, **parameters)  # validates size and steps
    with staged_output(out, SIMULATION_FILES, overwrite=overwrite) as stage:
        with VolumeSeriesWriter(stage / "truth.h5", shape=(steps, size, size, size), times=range(steps)) as writer:
            for t, volume in enumerate(volumes):
                writer.write(t, volume)
        truth = read_volume_series(stage / "truth.h5")
        shape = truth.shape
        series = simulate_acquisition(truth, angles=angles, dose=dose, read_noise=read_noise, shift_std=shift_std,
                                      axis_rotation=axis_rotation, tilt_blur=tilt_blur, row_lag=row_lag, seed=seed)
        _warn_if_empty_views(series.images)
        write_tilt_series(stage / "series.mrc", series)
        write_json(stage / "scenario.json", {
            "command": command_line(ctx), "tomotime_version": __version__, "scenario": scenario,
            "parameters": parameters, "size": size, "steps": steps, "truth_shape": list(shape), "scheme": scheme,
            "start": start, "stop": stop,
            "dose": dose, "read_noise": read_noise, "shift_std": shift_std, "axis_rotation": axis_rotation,
            "tilt_blur": tilt_blur, "row_lag": row_lag, "seed": seed, "true_poses": series.metadata["true_poses"],
            "wall_seconds": round(time.perf_counter() - began, 3),
        })
    typer.echo(f"Wrote {Path(out) / 'truth.h5'} (truth {shape}) and {Path(out) / 'series.mrc'} "
               f"({steps} projections, {scheme} over [{start:g}, {stop:g}] deg)")
