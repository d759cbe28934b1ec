"""``tomotime evaluate``: metrics of a reconstructed volume series against the ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from tomotime.cli.common import OverwriteOption, handle_errors, staged_output
from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.io import read_volume_series
from tomotime.metrics.evaluate import (ALLOYING_SCENARIOS, SHAPE_SCENARIOS, evaluate_against_truth,
                                       format_summary_table, format_time_table, truth_free_quantities, write_metrics)
from tomotime.metrics.temporal import TIME_TOLERANCE_S
from tomotime.viz import plot_metric_curves

__all__ = ["evaluate"]

EVALUATION_FILES = ("metrics.csv", "metrics.json", "metrics.png")


def _check_pair(series: VolumeSeries, reference: VolumeSeries, result: Path, truth: Path) -> None:
    """Refuse series that cannot be compared time point by time point, naming both files."""
    if series.shape[0] != reference.shape[0]:
        raise InputError(f"{result} holds {series.shape[0]} time points but --truth {truth} holds "
                         f"{reference.shape[0]}; expected the same times (reconstruct with --times matching the truth)")
    if tuple(series.shape[1:]) != tuple(reference.shape[1:]):
        raise InputError(f"{result} holds volumes of shape {tuple(series.shape[1:])} but --truth {truth} holds "
                         f"{tuple(reference.shape[1:])}; expected the same (Z, Y, X): check --thickness")
    gap = np.abs(series.times - reference.times)
    if (gap > TIME_TOLERANCE_S).any():
        i = int(np.argmax(gap))
        raise InputError(f"{result} and --truth {truth}: times differ at index {i} ({series.times[i]} vs "
                         f"{reference.times[i]} s); expected the same times")


def _scenario_of(truth: Path, scenario: str | None) -> str | None:
    """``--scenario``, else the scenario recorded by ``tomotime simulate`` next to the truth (scenario.json)."""
    if scenario is not None:
        known = (*ALLOYING_SCENARIOS, *SHAPE_SCENARIOS)
        if scenario not in known:
            raise InputError(f"--scenario {scenario!r}: expected one of {', '.join(known)}")
        return scenario
    record = Path(truth).parent / "scenario.json"
    if record.is_file():
        try:
            return json.loads(record.read_text()).get("scenario")
        except (json.JSONDecodeError, AttributeError):
            return None
    return None


def _figure(evaluation: dict, name: str, path: Path) -> None:
    panels = {}
    for key, title in (("ssim", "SSIM (Otsu mask)"), ("paper_ssim", "SSIM (paper)"), ("rmse", "RMSE (%)"),
                       ("paper_rmse", "RMSE (%, paper)"), ("surface_to_volume", "S/V (1/voxel)"),
                       ("paper_alloying", "alloying (%, paper)"), ("redistribution_nm3", "redistributed (nm^3)")):
        if key in evaluation:
            panels[title] = {name: evaluation[key]}
            truth_key = key.replace("_nm3", "_truth_nm3") if key.endswith("_nm3") else f"{key}_truth"
            if truth_key in evaluation:
                panels[title]["truth"] = evaluation[truth_key]
    plot_metric_curves(panels, evaluation["times"], path)


@handle_errors
def evaluate(
    result: Annotated[Path, typer.Argument(help="Reconstructed series (volumes.h5 written by reconstruct).")],
    truth: Annotated[Optional[Path], typer.Option(
        "--truth", help="Ground-truth series (truth.h5 written by simulate); without it only the truth-free "
                        "quantities (alloying with sigma_inf = 0, redistribution, S/V) are computed.")] = None,
    scenario: Annotated[Optional[str], typer.Option(
        "--scenario", help="Scenario whose quantities to add (default: read from scenario.json next to --truth).")]
    = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: RESULT's folder).")]
    = None,
    name: Annotated[str, typer.Option("--name", help="Method name used in the table and files.")] = "result",
    overwrite: OverwriteOption = False,
) -> None:
    """Print per-time metrics (strict and the paper's); write metrics.csv, metrics.json and metrics.png."""
    recon_series = read_volume_series(result)
    out = Path(out) if out is not None else Path(result).parent
    if truth is None:
        if scenario is not None:
            raise InputError("--scenario: needs --truth (the scenario's quantities compare with the truth)")
        with staged_output(out, EVALUATION_FILES, overwrite=overwrite) as stage:
            evaluation = truth_free_quantities(recon_series)
            write_metrics(stage, {name: evaluation})
            _figure(evaluation, name, stage / "metrics.png")
        last = len(evaluation["times"]) - 1
        typer.echo(f"{name}: alloying (paper, sigma_inf = 0) {evaluation['paper_alloying'][last]:.1f} % and "
                   f"cumulative redistributed volume {evaluation['redistribution_nm3'][last]:.4g} nm^3 at "
                   f"{evaluation['times'][last]:g} s (no --truth: truth-free quantities only)")
        typer.echo(f"\nWrote {out / 'metrics.csv'}, {out / 'metrics.json'} and {out / 'metrics.png'}")
        return
    truth_series = read_volume_series(truth)
    _check_pair(recon_series, truth_series, result, truth)
    scenario = _scenario_of(truth, scenario)
    with staged_output(out, EVALUATION_FILES, overwrite=overwrite) as stage:
        evaluation = evaluate_against_truth(recon_series, truth_series, scenario=scenario)
        write_metrics(stage, {name: evaluation})
        _figure(evaluation, name, stage / "metrics.png")
    typer.echo(format_time_table(evaluation))
    typer.echo("")
    typer.echo(format_summary_table({name: evaluation}))
    typer.echo(f"\nWrote {out / 'metrics.csv'}, {out / 'metrics.json'} and {out / 'metrics.png'}")
