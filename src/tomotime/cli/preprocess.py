"""``tomotime preprocess``: run preprocessing steps (or a YAML recipe) on a tilt series.

Writes ``series.mrc`` (with ``.rawtlt`` and ``.times``), the recipe that was
applied (``recipe.yaml``, every parameter spelled out, re-appliable with
``--recipe``), ``preprocess.json`` (what each step did) and, when the HAADF
calibration ran, ``haadf_calibration.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tomotime import __version__
from tomotime.cli.common import (AnglesOption, OutDirOption, OverwriteOption, WideAnglesOption, handle_errors,
                                 read_input, staged_output, write_json)
from tomotime.errors import InputError
from tomotime.io import write_tilt_series
from tomotime.preprocess import STEPS, Recipe, apply_recipe, load_recipe, parse_step_option, save_recipe
from tomotime.preprocess._record import history
from tomotime.preprocess.alignment import resampled
from tomotime.preprocess.haadf import plot_haadf_calibration

__all__ = ["preprocess"]

log = logging.getLogger(__name__)

SERIES_NAME = "series.mrc"
RECIPE_NAME = "recipe.yaml"
SUMMARY = "preprocess.json"
HAADF_FIGURE = "haadf_calibration.png"


def _recipe(steps: list[str] | None, recipe: Path | None) -> Recipe:
    if recipe is not None and steps:
        raise InputError("give either --recipe or --step options, not both")
    if recipe is not None:
        return load_recipe(recipe)
    if not steps:
        raise InputError(f"no steps given: pass --step NAME[:key=value,...] (one per step, in order) or --recipe "
                         f"FILE; known steps: {', '.join(sorted(STEPS))}")
    return Recipe(tuple(parse_step_option(text) for text in steps))


@handle_errors
def preprocess(
    series_file: Annotated[Path, typer.Argument(
        metavar="SERIES", help="Tilt series file, a folder of single images, or a quoted glob ('tilts/*.dm4').")],
    out: OutDirOption,
    step: Annotated[Optional[list[str]], typer.Option(
        "--step", help="A step NAME or NAME:key=value,key=value, repeated in order, e.g. --step bin:factor=2 "
                       "--step mask_background:k=0.9. Steps: " + ", ".join(sorted(STEPS)) + ".")] = None,
    recipe: Annotated[Optional[Path], typer.Option(
        "--recipe", help="YAML recipe (e.g. the recipe.yaml written by an earlier run) instead of --step.")] = None,
    angles: AnglesOption = None,
    allow_wide_angles: WideAnglesOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Preprocess a tilt series step by step (contrast, binning, background, normalisation, HAADF calibration, ...)."""
    plan = _recipe(step, recipe)
    series = read_input(series_file, angles=angles, allow_wide_angles=allow_wide_angles)
    haadf = any(s.name == "calibrate_haadf" for s in plan.steps)
    names = [SERIES_NAME, Path(SERIES_NAME).with_suffix(".rawtlt").name, Path(SERIES_NAME).with_suffix(".times").name,
             RECIPE_NAME, *([HAADF_FIGURE] if haadf else []), SUMMARY]
    result = resampled(apply_recipe(series, plan, progress=lambda name: log.info("preprocessing step %s", name)))
    with staged_output(out, names, overwrite=overwrite) as stage:
        write_tilt_series(stage / SERIES_NAME, result)
        save_recipe(plan, stage / RECIPE_NAME)
        records = history(result)[len(history(series)):]
        if haadf:
            calibration = [r for r in records if r["step"] == "calibrate_haadf"][-1]
            plot_haadf_calibration(calibration, stage / HAADF_FIGURE)
        summary: dict[str, Any] = {
            "tomotime_version": __version__,
            "input": {"file": str(series_file), "shape": list(series.shape), "pixel_size_nm": series.pixel_size,
                      **{k: series.metadata.get(k) for k in ("format", "angles_from", "times_from")}},
            "output": {"file": SERIES_NAME, "shape": list(result.shape), "pixel_size_nm": result.pixel_size},
            "steps": records,
            "dose_e_per_A2": result.metadata.get("dose_e_per_A2"),
        }
        write_json(stage / SUMMARY, summary)
    typer.echo(f"wrote {out / SERIES_NAME} ({len(result)} views of {result.shape[1]} x {result.shape[2]}, "
               f"{len(plan)} step(s)) and {out / RECIPE_NAME}")
