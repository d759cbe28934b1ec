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
from tomotime.metrics.histogram import intensity_histograms
from tomotime.metrics.morphology import redistribution_curve, surface_to_volume
from tomotime.metrics.paper import paper_alloying_curve, paper_rmse, paper_ssim

__all__ = ["evaluate_against_truth", "truth_free_quantities", "scenario_quantities", "write_metrics",
           "format_summary_table", "format_time_table", "ALLOYING_FROM_STEP"]

CURVES = ("ssim", "rmse", "psnr", "ssim_unmasked", "rmse_unmasked", "paper_ssim", "paper_rmse",
          "surface_to_volume", "surface_to_volume_truth", "paper_alloying", "paper_alloying_truth",
          "redistribution_nm3", "redistribution_truth_nm3")
ALLOYING_FROM_STEP = 5
"""Alloying errors are reported from this step on, as the paper does."""
SHAPE_SCENARIOS = ("nanoshell-damage", "nanostar-reshaping", "nanostar-retraction")
ALLOYING_SCENARIOS = ("nanorod-alloying", "nanocube-silica-alloying")


def _summary(result: dict[str, Any], key: str, *, higher_is_better: bool) -> None:
    curve = np.asarray(result[key], dtype=np.float64)
    result[f"{key}_mean"] = float(curve.mean())
    result[f"{key}_worst"] = float(curve.min() if higher_is_better else curve.max())


def truth_free_quantities(series: VolumeSeries) -> dict[str, Any]:
    """Quantities that need no ground truth: the paper's alloying with ``s_inf = 0`` and the redistribution.

    Returns
    -------
    dict
        ``paper_alloying`` (T,) in %, masks from each volume itself (an
        underestimate, as the paper notes); ``redistribution_nm3``,
        ``redistribution_gained_nm3``, ``redistribution_lost_nm3`` (T,),
        cumulative, in nm^3 of the series' voxel size; ``surface_to_volume`` (T,) in 1/voxel;
        ``histograms`` (T, 64) intensity densities on the shared ``histogram_edges`` (65,).
    """
    redistribution = redistribution_curve(series, voxel_size=series.voxel_size)
    histograms = intensity_histograms(series, bins=64)
    return {"times": np.asarray(series.times, dtype=np.float64),
            "paper_alloying": paper_alloying_curve(series),
            "redistribution_nm3": redistribution["total_nm3"],
            "redistribution_gained_nm3": redistribution["gained_nm3"],
            "redistribution_lost_nm3": redistribution["lost_nm3"],
            "surface_to_volume": np.array([surface_to_volume(v) for v in series]),
            "histograms": histograms["counts"], "histogram_edges": histograms["edges"]}


def scenario_quantities(recon: VolumeSeries, truth: VolumeSeries, scenario: str, *,
                        fixed_mask: bool = False) -> dict[str, Any]:
    """The quantities the paper reports for ``scenario``, for a reconstruction and its truth.

    - alloying scenarios: ``paper_alloying`` and ``paper_alloying_truth`` (masks
      from the truth, ``s0``/``s_inf`` on the initial and fully mixed truth) and
      the absolute error in percentage points from step 5 on
      (``paper_alloying_error_mean`` / ``_worst``);
    - shape scenarios (nanoshell, nanostar): ``surface_to_volume`` and
      ``surface_to_volume_truth`` (1/voxel), their relative error in %
      (``surface_to_volume_error_mean`` / ``_std``, signed), and the cumulative
      redistributed volume of both (``redistribution_nm3``, ``redistribution_truth_nm3``).

    Other scenario names add nothing. ``fixed_mask`` is passed to
    :func:`~tomotime.metrics.paper_alloying_curve`.
    """
    out: dict[str, Any] = {}
    if scenario in ALLOYING_SCENARIOS:
        rec = paper_alloying_curve(recon, truth=truth, fixed_mask=fixed_mask)
        tru = paper_alloying_curve(truth, truth=truth, fixed_mask=fixed_mask)
        err = np.abs(rec - tru)[ALLOYING_FROM_STEP:]
        out.update(paper_alloying=rec, paper_alloying_truth=tru,
                   paper_alloying_error_mean=float(err.mean()) if err.size else float("nan"),
                   paper_alloying_error_worst=float(err.max()) if err.size else float("nan"))
    elif scenario in SHAPE_SCENARIOS:
        sv = np.array([surface_to_volume(v) for v in recon])
        sv_truth = np.array([surface_to_volume(v) for v in truth])
        rel = 100.0 * (sv - sv_truth) / sv_truth
        out.update(surface_to_volume=sv, surface_to_volume_truth=sv_truth,
                   surface_to_volume_error_mean=float(rel.mean()), surface_to_volume_error_std=float(rel.std()),
                   redistribution_nm3=redistribution_curve(recon, voxel_size=truth.voxel_size)["total_nm3"],
                   redistribution_truth_nm3=redistribution_curve(truth, voxel_size=truth.voxel_size)["total_nm3"])
    return out


def evaluate_against_truth(recon: VolumeSeries, truth: VolumeSeries, *,
                           alloying_sigma_mixed: float | None = None, scenario: str | None = None,
                           paper: bool = True, alloying_fixed_mask: bool = False) -> dict[str, Any]:
    """Per-time SSIM / RMSE % / PSNR (Otsu-masked and unmasked) and their summaries.

    With ``paper`` (default) the paper's definitions are added beside the
    strict ones: ``paper_ssim`` and ``paper_rmse`` per time
    (:func:`~tomotime.metrics.paper_ssim`, :func:`~tomotime.metrics.paper_rmse`)
    with their ``_mean`` and ``_worst``. With ``scenario`` the scenario's own
    quantities of :func:`scenario_quantities` are added.

    With ``alloying_sigma_mixed`` (the intensity spread of the fully mixed truth),
    the alloying percentage of reconstruction and truth are added as
    ``alloying`` / ``alloying_truth`` curves and ``alloying_error_mean`` /
    ``alloying_error_worst`` (percentage points, from step 5 on as the papers
    report). Both use the truth's particle support and the truth's initial
    spread, so blur in a reconstruction shows up as an alloying error.
    """
    result = evaluate_series(recon, truth)
    if paper:
        result["paper_ssim"] = np.array([paper_ssim(r, t) for r, t in zip(recon, truth, strict=True)])
        result["paper_rmse"] = np.array([paper_rmse(r, t) for r, t in zip(recon, truth, strict=True)])
        _summary(result, "paper_ssim", higher_is_better=True)
        _summary(result, "paper_rmse", higher_is_better=False)
    if scenario is not None:
        result.update(scenario_quantities(recon, truth, scenario, fixed_mask=alloying_fixed_mask))
    if alloying_sigma_mixed is not None:
        mask = truth[0] > 0  # the particle: ground truth lies on an empty background
        kw = dict(mask=mask, sigma_initial=float(truth[0][mask].std()), sigma_mixed=alloying_sigma_mixed)
        truth_curve = alloying_curve(truth, **kw)
        recon_curve = alloying_curve(recon, **kw)
        error = np.abs(recon_curve - truth_curve)[ALLOYING_FROM_STEP:]
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
    # a method may lack a curve another has (e.g. truth-free results): the cell stays empty
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
               ("paper_ssim_worst", "p-SSIM worst", "{:.3f}"), ("paper_rmse_worst", "p-RMSE% wst", "{:.2f}"),
               ("alloying_error_mean", "alloy err pp", "{:.2f}"),
               ("paper_alloying_error_mean", "p-alloy pp", "{:.2f}"),
               ("surface_to_volume_error_mean", "S/V err %", "{:+.2f}"), ("seconds", "time (s)", "{:.1f}")]
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
