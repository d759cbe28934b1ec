"""Evaluation of reconstructed series against ground truth, as tables, files and figures."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tomotime.data import VolumeSeries
from tomotime.io.atomic import atomic_path, check_output
from tomotime.io.jsonfile import write_json
from tomotime.metrics import alloying_curve, evaluate_series

__all__ = ["evaluate_against_truth", "write_metrics", "format_summary_table", "format_time_table"]

CURVES = ("ssim", "rmse", "psnr", "ssim_unmasked", "rmse_unmasked")


def evaluate_against_truth(recon: VolumeSeries, truth: VolumeSeries, *,
                           alloying_sigma_mixed: float | None = None) -> dict[str, Any]:
    """Per-time SSIM / RMSE % / PSNR (Otsu-masked and unmasked) and their summaries.

    With ``alloying_sigma_mixed`` (the intensity spread of the fully mixed truth),
    the alloying percentage of reconstruction and truth are added as
    ``alloying`` / ``alloying_truth`` curves and ``alloying_error_mean`` /
    ``alloying_error_worst`` (percentage points, from step 5 on as the papers
    report). Both use the truth's particle support and the truth's initial
    spread, so blur in a reconstruction shows up as an alloying error.
    """
    result = evaluate_series(recon, truth)
    if alloying_sigma_mixed is not None:
        mask = truth[0] > 0  # the particle: ground truth lies on an empty background
        kw = dict(mask=mask, sigma_initial=float(truth[0][mask].std()), sigma_mixed=alloying_sigma_mixed)
        truth_curve = alloying_curve(truth, **kw)
        recon_curve = alloying_curve(recon, **kw)
        error = np.abs(recon_curve - truth_curve)[5:]
        result.update(alloying=recon_curve, alloying_truth=truth_curve,
                      alloying_error_mean=float(error.mean()) if error.size else float("nan"),
                      alloying_error_worst=float(error.max()) if error.size else float("nan"))
    return result


def write_metrics(out_dir: str | Path, results: Mapping[str, Mapping[str, Any]], *,
                  overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``metrics.csv`` (one row per method and time) and ``metrics.json``.

    ``results`` maps a method name to the output of :func:`evaluate_against_truth`.
    """
    out_dir = Path(out_dir)
    csv_path, json_path = out_dir / "metrics.csv", out_dir / "metrics.json"
    for path in (csv_path, json_path):  # both checked first, so a refusal writes neither
        check_output(path, overwrite=overwrite)
    buffer = _io.StringIO()
    writer = csv.writer(buffer)
    curve_keys = [k for k in (*CURVES, "alloying", "alloying_truth") if any(k in r for r in results.values())]
    writer.writerow(["method", "time_s", *curve_keys])
    for method, result in results.items():
        for t, time in enumerate(result["times"]):
            writer.writerow([method, f"{time:g}", *(f"{result[k][t]:.6g}" if k in result else "" for k in curve_keys)])
    with atomic_path(csv_path, overwrite=overwrite) as tmp:
        tmp.write_text(buffer.getvalue())
    write_json(json_path, results, overwrite=overwrite)
    return csv_path, json_path


def format_summary_table(summary: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table with one row per method of the summary keys present."""
    columns = [("ssim_mean", "SSIM mean", "{:.3f}"), ("ssim_worst", "SSIM worst", "{:.3f}"),
               ("rmse_mean", "RMSE% mean", "{:.2f}"), ("rmse_worst", "RMSE% worst", "{:.2f}"),
               ("alloying_error_mean", "alloy err pp", "{:.2f}"), ("seconds", "time (s)", "{:.1f}")]
    columns = [c for c in columns if any(c[0] in s for s in summary.values())]
    width = max(12, *(len(m) + 2 for m in summary))
    lines = ["method".ljust(width) + "".join(title.rjust(13) for _, title, _ in columns)]
    for method, values in summary.items():
        cells = "".join((fmt.format(values[key]) if key in values else "-").rjust(13) for key, _, fmt in columns)
        lines.append(method.ljust(width) + cells)
    return "\n".join(lines)


def format_time_table(result: Mapping[str, Any], *, max_rows: int = 25) -> str:
    """Per-time SSIM / RMSE % / PSNR of one evaluation (every k-th time when there are many)."""
    times = result["times"]
    step = max(1, -(-len(times) // max_rows))
    lines = [f"{'time (s)':>10}{'SSIM':>9}{'RMSE %':>9}{'PSNR dB':>9}"]
    for t in range(0, len(times), step):
        lines.append(f"{times[t]:>10g}{result['ssim'][t]:>9.3f}{result['rmse'][t]:>9.2f}{result['psnr'][t]:>9.2f}")
    return "\n".join(lines)
