"""The run report: one self-contained HTML file that shows what a run did and how well.

Sections appear when the run has the data for them (see :mod:`tomotime.viz.rundata`):
input (montage, angles and times against view index, dose), training (loss and
holdout curves, stopping point, learning rate), result (orthoslices with a time
slider, a movie, gain/loss isosurfaces), quality (per-view reprojection error,
per-time metrics against a truth) and provenance (command, configuration,
versions, device, wall time). Every image and the movie are embedded as
``data:`` URIs, so the file opens anywhere, offline, e.g. from an e-mail.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

import tomotime
from tomotime.data import VolumeSeries
from tomotime.errors import InputError, TomotimeError
from tomotime.io.atomic import atomic_path, check_output
from tomotime.viz import report_html as H
from tomotime.viz.encode import data_uri, figure_data_uri, png_data_uri
from tomotime.viz.rundata import RunContents, load_run
from tomotime.viz.slices import intensity_range, orthoslices

__all__ = ["write_report", "ReportResult", "REPORT_NAME", "MAX_SLIDER_FRAMES"]

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
MAX_SLIDER_FRAMES = 120
_TRUTH = "truth"


@dataclass
class ReportResult:
    """What :func:`write_report` wrote: the file, its size, the time taken, the sections and the notes."""

    path: Path
    bytes: int
    seconds: float
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _frame_picks(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, MAX_SLIDER_FRAMES)).round().astype(int))


def _chosen_indices(series: VolumeSeries, times: Sequence[float] | None) -> list[int]:
    if times is None:
        return sorted({int(i) for i in np.linspace(0, len(series) - 1, min(3, len(series))).round()})
    first, last = float(series.times[0]), float(series.times[-1])
    bad = [t for t in times if not (first - 1e-9 <= t <= last + 1e-9)]
    if bad:
        raise InputError(f"--times: {bad[0]:g} s lies outside the result ({first:g} .. {last:g} s)")
    return sorted({series.index_at(float(t)) for t in times})


def _aligned(other: VolumeSeries, reference: VolumeSeries) -> list[int] | None:
    """Indices of ``other`` at the times of ``reference`` (None when a time is missing or shapes differ)."""
    if other.shape[1:] != reference.shape[1:]:
        return None
    index = [other.index_at(float(t)) for t in reference.times]
    if np.max(np.abs(other.times[index] - reference.times)) > 1e-6:
        return None
    return index


# --- sections -------------------------------------------------------------------------------------

def _input_section(run: RunContents) -> str | None:
    from tomotime.viz.run_figures import plot_acquisition, plot_montage

    series = run.series
    if series is None:
        return None
    info = run.summary.get("input") or {}
    parts = [H.figure(figure_data_uri(plot_montage(series)),
                      f"Views of the tilt series {Path(str(info.get('file', ''))).name} "
                      f"({series.shape[0]} × {series.shape[1]} × {series.shape[2]}, pixel {series.pixel_size:g} nm)"),
             H.figure(figure_data_uri(plot_acquisition(series, dose=run.dose)),
                      "Tilt angle and acquisition time of each view, in acquisition order.")]
    if run.dose is None:
        parts.append("<p>Dose: not recorded with this input.</p>")
    return "".join(parts)


def _training_section(run: RunContents) -> str | None:
    from tomotime.viz.run_figures import plot_training

    history = run.history
    if not history:
        return None
    parts = [H.figure(figure_data_uri(plot_training(history, best_step=run.best_step)),
                      "Training loss and holdout loss (held-out projections) against step; the dashed line is the "
                      "state that was kept. Right: the learning-rate schedule.")]
    training = run.summary.get("training") or {}
    rows = [(k.replace("_", " "), v) for k, v in training.items() if isinstance(v, (int, float, bool))]
    if rows:
        parts.append(H.table(("training", "value"), rows))
    return "".join(parts)


def _result_section(run: RunContents, main: str, chosen: list[int], *, movie: bool) -> str:
    from tomotime.viz.isosurface import plot_gain_loss
    from tomotime.viz.figures import plot_orthoslice_grid

    reference = run.volumes[main]
    shown: dict[str, tuple[VolumeSeries, list[int]]] = {}
    if run.truth is not None:
        index = _aligned(run.truth, reference)
        if index is not None:
            shown[_TRUTH] = (run.truth, index)
    for name, series in run.volumes.items():
        index = list(range(len(series))) if name == main else _aligned(series, reference)
        if index is not None:
            shown[name] = (series, index)
    display_source = shown[_TRUTH] if _TRUTH in shown else shown[main]
    display = intensity_range(display_source[0][display_source[1][i]] for i in chosen)
    parts = []
    n = len(reference)
    scale = max(1, min(4, round(160 / max(reference.shape[1:]))))
    if n > 1:
        picks = _frame_picks(n)
        frames, labels, widths = {}, {}, {}
        for k, (name, (series, index)) in enumerate(shown.items()):
            key = f"frames-{k}"
            images = [orthoslices(series[index[i]], *display) for i in picks]
            frames[key] = [png_data_uri(image) for image in images]
            labels[key] = name
            widths[key] = images[0].shape[1] * scale
        parts.append("<h3>Orthoslices over time</h3>"
                     "<p>Central XY, XZ and YZ sections (left to right); drag the slider or press play. "
                     "One grey scale for all rows and times.</p>")
        parts.append(H.slider_block(frames, labels, reference.times[picks], width_px=widths))
    rows = {name: [series[index[i]] for i in chosen] for name, (series, index) in shown.items()}
    parts.append("<h3>Orthoslices at chosen times</h3>")
    parts.append(H.figure(figure_data_uri(plot_orthoslice_grid(rows, reference.times[chosen], display=display),
                                          dpi=110),
                          "Central XY / XZ / YZ sections, one row per method, at the chosen times."))
    if movie and n > 1:
        from tomotime.viz.movie import movie_bytes

        payload, mime = movie_bytes(reference, fmt=".mp4", plane="ortho", fps=float(min(20, max(5, n // 10))),
                                    stride=max(1, n // 200))
        parts.append("<h3>Movie</h3>")
        parts.append(H.video_block(data_uri(payload, mime), f"{main}: central XY, XZ and YZ sections over time "
                                   "(MP4). Save it from the player, or write one with 'tomotime movie'."))
    if n > 1 and min(reference.shape[1:]) >= 4:
        first, last = chosen[0], chosen[-1]
        if first == last:
            first, last = 0, n - 1
        try:
            fig = plot_gain_loss(reference[first], reference[last], voxel_nm=reference.voxel_size,
                                 times=(float(reference.times[first]), float(reference.times[last])))
            parts.append("<h3>Isosurfaces: gain and loss</h3>")
            parts.append(H.figure(figure_data_uri(fig, dpi=90),
                                  f"{main}: isosurface at the Otsu threshold of the later volume; colour is the "
                                  "change of density between the two times at the surface."))
        except (TomotimeError, ValueError, RuntimeError) as exc:
            run.notes.append(f"isosurfaces omitted: {exc}")
    return "".join(parts)


def _quality_section(run: RunContents, main: str) -> str | None:
    from tomotime.metrics.evaluate import evaluate_against_truth
    from tomotime.metrics.reprojection import reprojection_error
    from tomotime.viz.run_figures import plot_reprojection, plot_truth_metrics

    parts = []
    if run.series is not None:
        errors = {}
        for name, series in run.volumes.items():
            try:
                errors[name] = reprojection_error(series, run.series)
            except TomotimeError as exc:
                run.notes.append(f"reprojection error of {name} omitted: {exc}")
        if errors:
            parts.append("<h3>Reprojection error per view</h3>")
            parts.append(H.figure(figure_data_uri(plot_reprojection(errors, run.series)),
                                  "Each measured view against the projection, at its angle, of the volume nearest "
                                  "to it in time. Views that stand out point at misalignment, a jump in the "
                                  "specimen or a bad frame."))
            parts.append(H.table(("method", "mean error", "worst error", "worst view"),
                                 [(n, f"{np.nanmean(e):.4f}", f"{np.nanmax(e):.4f}", int(np.nanargmax(e)))
                                  for n, e in errors.items() if np.isfinite(e).any()]))
    results = run.evaluation
    if results is None and run.truth is not None:
        results = {}
        for name, series in run.volumes.items():
            index = _aligned(run.truth, series)
            if index is None:
                run.notes.append(f"truth {run.truth.shape} does not match {name} {series.shape} in shape or "
                                 "times; metrics against the truth omitted")
                continue
            truth = run.truth if index == list(range(len(run.truth))) else run.truth.select_times(index)
            try:
                results[name] = evaluate_against_truth(series, truth)
            except TomotimeError as exc:
                run.notes.append(f"metrics of {name} against the truth omitted: {exc}")
    if results:
        parts.append("<h3>Against the ground truth</h3>")
        if all(len(r["times"]) > 1 for r in results.values()):
            parts.append(H.figure(figure_data_uri(plot_truth_metrics(results)),
                                  "Per-time metrics against the truth (Otsu mask of the truth), every method of "
                                  "the run side by side."))
        keys = [k for k in ("ssim_mean", "ssim_worst", "rmse_mean", "rmse_worst", "psnr_mean",
                            "alloying_error_mean") if any(k in r for r in results.values())]
        parts.append(H.table(("method", *[k.replace("_", " ") for k in keys]),
                             [(n, *(f"{float(r[k]):.4g}" if k in r else "-" for k in keys))
                              for n, r in results.items()]))
    poses = run.summary.get("poses") or (run.config or {}).get("poses")
    if isinstance(poses, list) and poses and run.series is not None:
        parts.append("<h3>Learned poses</h3>" + H.preformatted(json.dumps(poses, indent=1)[:4000]))
    return "".join(parts) or None


def _frames_section(run: RunContents) -> str | None:
    """Noisy and denoised frames side by side, and the unsupervised quality before and after."""
    if not run.frames:
        return None
    import matplotlib.pyplot as plt

    n = min(len(f) for f in run.frames.values())
    picks = np.unique(np.linspace(0, n - 1, min(n, 4)).round().astype(int))
    fig, axes = plt.subplots(len(run.frames), len(picks), figsize=(2.4 * len(picks), 2.5 * len(run.frames)),
                             squeeze=False)
    for row, (label, movie) in zip(axes, run.frames.items()):
        lo, hi = np.percentile(movie[picks], [0.5, 99.5])
        for ax, i in zip(row, picks):
            ax.imshow(movie[i], cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{label}, frame {i}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    parts = [H.figure(figure_data_uri(fig), "Frames of the input and of the result, each movie on its own "
                      "grey scale (0.5-99.5 percentiles).")]
    plt.close(fig)
    quality = run.summary.get("quality") or {}
    rows = []
    for key in ("before", "after"):
        q = quality.get(key) or {}
        if q:
            ci = q.get("upsnr_ci") or [None, None]
            rows.append([key, _db(q.get("upsnr")), f"{_db(ci[0])} .. {_db(ci[1])}", q.get("note") or ""])
    if rows:
        parts.append(H.table(["", "uPSNR", "90 % interval", "note"], rows))
    return "".join(parts)


def _db(value) -> str:
    return "undefined" if value is None else f"{float(value):.2f} dB"


def _provenance_section(run: RunContents) -> str:
    summary = run.summary
    rows = []
    for key, label in (("command", "command line"), ("method", "method"), ("tomotime_version", "tomotime version"),
                       ("torch_version", "PyTorch version"), ("python", "Python"), ("device", "device"),
                       ("started", "started"), ("wall_seconds", "wall time (s)"),
                       ("total_seconds", "wall time (s)")):
        if key in summary:
            rows.append((label, summary[key]))
    rows.append(("report written", f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} by tomotime "
                                   f"{tomotime.__version__} (Python {platform.python_version()})"))
    parts = [H.table(("", ""), rows)]
    config = run.config if run.config is not None else summary.get("options")
    if config:
        parts.append("<h3>Resolved configuration</h3>" + H.preformatted(json.dumps(config, indent=2, default=str)))
    if summary:
        parts.append("<h3>summary.json</h3>" + H.preformatted(json.dumps(summary, indent=2, default=str)[:20000]))
    return "".join(parts)


# --- the report -----------------------------------------------------------------------------------

def write_report(run_dir: str | Path, out: str | Path | None = None, *, times: Sequence[float] | None = None,
                 movie: bool = True, overwrite: bool = False) -> ReportResult:
    """Write the HTML report of the run in ``run_dir``.

    Parameters
    ----------
    run_dir : path
        A run folder (``--out`` of ``tomotime reconstruct`` or ``tomotime demo``).
    out : path, optional
        The HTML file (default ``run_dir/report.html``).
    times : sequence of float, optional
        Times (s) shown as static orthoslices, the first and last also as
        isosurfaces (default: first, middle and last time point).
    movie : bool
        Embed an MP4 movie of the result.
    overwrite : bool
        Replace an existing report.

    Returns
    -------
    ReportResult

    Raises
    ------
    InputError
        If ``run_dir`` is not a run folder (the message says what is missing),
        or a time lies outside the result.
    OutputExistsError
        If ``out`` exists and ``overwrite`` is false.
    """
    began = time.perf_counter()
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / REPORT_NAME
    check_output(out, overwrite=overwrite)
    with load_run(run_dir) as run:
        sections: list[tuple[str, str, str]] = []
        main = next(iter(run.volumes), None)
        chosen = _chosen_indices(run.volumes[main], times) if main else []
        for anchor, title, build in (
            ("input", "Input", lambda: _input_section(run)),
            ("frames", "Frames", lambda: _frames_section(run)),
            ("training", "Training", lambda: _training_section(run)),
            ("result", "Result", lambda: _result_section(run, main, chosen, movie=movie) if main else None),
            ("quality", "Quality", lambda: _quality_section(run, main) if main else None),
            ("provenance", "Provenance", lambda: _provenance_section(run)),
        ):
            content = build()
            if content:
                sections.append((anchor, title, content))
        if run.notes:
            items = "".join(f"<li>{H.escape(note)}</li>" for note in run.notes)
            sections.insert(0, ("notes", "What this report could not show", f"<ul>{items}</ul>"))
        method = ", ".join(run.volumes) or str(run.summary.get("method", "unknown method"))
        shape = f", volumes {tuple(run.volumes[main].shape)} (T, Z, Y, X)" if main else ""
        document = H.page(f"tomotime run report: {run_dir.resolve().name}", f"{method}{shape}", sections,
                          script=any(anchor == "result" and "time-slider" in content
                                     for anchor, _, content in sections))
        notes = list(run.notes)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.write_text(document, encoding="utf-8")
    result = ReportResult(path=out, bytes=out.stat().st_size, seconds=time.perf_counter() - began,
                          sections=[anchor for anchor, _, _ in sections], notes=notes)
    log.info("wrote %s (%.1f MB) in %.1f s", out, result.bytes / 1e6, result.seconds)
    return result
