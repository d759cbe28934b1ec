"""``tomotime evaluate``: metrics of a reconstructed volume series against the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from tomotime.cli.common import OverwriteOption, handle_errors, staged_output
from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.io import read_volume_series
from tomotime.metrics.evaluate import evaluate_against_truth, format_summary_table, format_time_table, write_metrics
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


@handle_errors
def evaluate(
    result: Annotated[Path, typer.Argument(help="Reconstructed series (volumes.h5 written by reconstruct).")],
    truth: Annotated[Path, typer.Option("--truth", help="Ground-truth series (truth.h5 written by simulate).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: RESULT's folder).")]
    = None,
    name: Annotated[str, typer.Option("--name", help="Method name used in the table and files.")] = "result",
    overwrite: OverwriteOption = False,
) -> None:
    """Print a per-time SSIM / RMSE / PSNR table; write metrics.csv, metrics.json and metrics.png."""
    recon_series = read_volume_series(result)
    truth_series = read_volume_series(truth)
    _check_pair(recon_series, truth_series, result, truth)
    out = Path(out) if out is not None else Path(result).parent
    with staged_output(out, EVALUATION_FILES, overwrite=overwrite) as stage:
        evaluation = evaluate_against_truth(recon_series, truth_series)
        write_metrics(stage, {name: evaluation})
        plot_metric_curves({"SSIM (Otsu mask)": {name: evaluation["ssim"]}, "RMSE (%)": {name: evaluation["rmse"]}},
                           evaluation["times"], stage / "metrics.png")
    typer.echo(format_time_table(evaluation))
    typer.echo("")
    typer.echo(format_summary_table({name: evaluation}))
    typer.echo(f"\nWrote {out / 'metrics.csv'}, {out / 'metrics.json'} and {out / 'metrics.png'}")
