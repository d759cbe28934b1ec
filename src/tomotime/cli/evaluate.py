"""``tomotime evaluate``: metrics of a reconstructed volume series against the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tomotime.cli.common import OverwriteOption, handle_errors, staged_output
from tomotime.io import read_volume_series
from tomotime.metrics.evaluate import evaluate_against_truth, format_summary_table, format_time_table, write_metrics
from tomotime.viz import plot_metric_curves

__all__ = ["evaluate"]

EVALUATION_FILES = ("metrics.csv", "metrics.json", "metrics.png")


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
