"""``tomotime info``: what a tilt-series file holds, and checks worth doing before reconstructing.

The project's own outputs (volumes, volume series, models) are described by
:mod:`tomotime.cli.describe`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from tomotime.cli.common import EXIT_INPUT_ERROR, AnglesOption, WideAnglesOption, handle_errors, read_input
from tomotime.cli.describe import describe_output, format_output_report, is_model_file, is_volume_series_file
from tomotime.data import TiltSeries
from tomotime.errors import MissingAnglesError, TomotimeError
from tomotime.preprocess.contrast import looks_like_bright_field

__all__ = ["info", "describe_tilt_series", "disk_dtype", "format_report"]

SATURATED_FRACTION = 1e-3
"""A view with more than this fraction of its pixels at the series maximum is reported as saturated."""
PLATEAU_RATIO = 4.0
"""A view's maximum must hold this many times more pixels than its next lower value to count as saturation."""
INTENSITY_SPREAD = 0.1
"""Total intensities deviating from their median by more than this fraction are reported."""
_REPEAT_TOLERANCE_DEG = 1e-3


def disk_dtype(path: str | Path, metadata: dict | None = None) -> str | None:
    """The data type stored in ``path`` (read from the header only), or ``None`` if unknown."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in (".mrc", ".mrcs", ".st", ".ali", ".preali", ".map", ".rec"):
            import mrcfile
            from mrcfile.utils import data_dtype_from_header

            with mrcfile.open(p, header_only=True, permissive=True) as mrc:
                return str(np.dtype(data_dtype_from_header(mrc.header)))
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(p) as tif:
                return str(tif.series[0].dtype)
        if suffix == ".npy":
            return str(np.load(p, mmap_mode="r").dtype)
        if suffix in (".h5", ".hdf5") and metadata and metadata.get("dataset"):
            import h5py

            with h5py.File(p, "r") as f:
                return str(f[metadata["dataset"]].dtype)
    except (OSError, ValueError, KeyError):
        return None
    return None


def _angle_summary(angles: np.ndarray) -> dict[str, Any]:
    steps = np.diff(angles)
    order = "increasing" if (steps > 0).all() else "decreasing" if (steps < 0).all() else "unordered"
    keys = np.round(angles / _REPEAT_TOLERANCE_DEG).astype(np.int64)
    unique_keys, counts = np.unique(keys, return_counts=True)
    spacing = np.diff(np.sort(angles[np.unique(keys, return_index=True)[1]]))
    step = {k: (float(f(spacing)) if spacing.size else None) for k, f in (("min", np.min), ("mean", np.mean),
                                                                           ("max", np.max))}
    moves = np.abs(steps)
    return {
        "min": float(angles.min()),
        "max": float(angles.max()),
        "range": float(np.ptp(angles)),
        "order": order,
        "step_sorted": step,
        "move_mean": float(moves.mean()) if moves.size else None,
        "move_max": float(moves.max()) if moves.size else None,
        "repeated_views": int(angles.size - unique_keys.size),
        "repeated_values": [round(float(k) * _REPEAT_TOLERANCE_DEG, 6) for k in unique_keys[counts > 1]],
        "values": [float(a) for a in angles],
    }


def _view_stats(images: np.ndarray) -> dict[str, list[float]]:
    stats: dict[str, list[float]] = {"mean": [], "std": [], "min": [], "max": [], "total": []}
    for view in images:
        stats["mean"].append(float(view.mean(dtype=np.float64)))
        stats["std"].append(float(view.std(dtype=np.float64)))
        stats["min"].append(float(view.min()))
        stats["max"].append(float(view.max()))
        stats["total"].append(float(view.sum(dtype=np.float64)))
    return stats


def _saturated_views(images: np.ndarray, top: float, bottom: float) -> tuple[np.ndarray, np.ndarray]:
    """Views with a clipped plateau at the series maximum, and each view's fraction of pixels there.

    A detector that saturates piles pixels up at its maximum while the values
    just below it stay as sparse as noise makes them; a noise-free image (a
    simulation) repeats its top value about as often as its other values. So a
    view counts as saturated when more than ``SATURATED_FRACTION`` of its pixels
    (and at least 4) sit at the maximum, and more than ``PLATEAU_RATIO`` times as
    many as at the view's next lower value.
    """
    if top <= bottom:
        return np.array([], dtype=np.int64), np.zeros(len(images))
    at_top = np.array([np.count_nonzero(view == top) for view in images])
    fraction = at_top / (images.shape[1] * images.shape[2])
    saturated = []
    for i in np.flatnonzero((fraction > SATURATED_FRACTION) & (at_top >= 4)):
        below = images[i][images[i] < top]
        at_next = np.count_nonzero(below == below.max()) if below.size else 0
        if at_top[i] > PLATEAU_RATIO * at_next:
            saturated.append(i)
    return np.asarray(saturated, dtype=np.int64), fraction


def _intensity_checks(series: TiltSeries, stats: dict, warnings: list[str]) -> dict[str, Any]:
    images = series.images
    top, bottom = float(max(stats["max"])), float(min(stats["min"]))
    saturated, fraction = _saturated_views(images, top, bottom)
    if top == bottom:
        warnings.append(f"every pixel has the same value {top:g}")
    if saturated.size:
        worst = int(np.argmax(fraction))
        warnings.append(f"{saturated.size} view(s) have more than {SATURATED_FRACTION:.1%} of their pixels at the "
                        f"maximum value {top:g} (saturated detector?); worst: view {worst} ({fraction[worst]:.1%})")
    totals = np.asarray(stats["total"])
    median = float(np.median(totals))
    spread = float(np.max(np.abs(totals / median - 1.0))) if median != 0 else None
    if spread is not None and spread > INTENSITY_SPREAD:
        worst = int(np.argmax(np.abs(totals / median - 1.0)))
        warnings.append(f"total intensity varies by up to {spread:.0%} from its median across views (view {worst} "
                        f"at {series.angles[worst]:.2f} deg); check beam current, drift out of the field of view "
                        "or damage, or normalise the views")
    return {
        "min": bottom,
        "max": top,
        "mean": float(np.mean(stats["mean"])),
        "total_spread": spread,
        "saturated_views": [int(i) for i in saturated],
        "per_view": stats,
    }


def describe_tilt_series(series: TiltSeries, *, dtype_on_disk: str | None = None) -> dict[str, Any]:
    """A JSON-ready description of a tilt series, with warnings about likely problems.

    Parameters
    ----------
    series : TiltSeries
        The series ``(N, Y, X)``; ``metadata`` (``source``, ``format``,
        ``angles_from``, ``times_from``) is reported when present.
    dtype_on_disk : str, optional
        Data type in the file, before conversion to float32.

    Returns
    -------
    dict
        ``file``, ``format``, ``shape``, ``dtype_on_disk``, ``n_views``,
        ``pixel_size_nm``, ``angles`` (range, order, steps between sorted unique
        angles, moves between consecutive views, repeats, values; degrees),
        ``times`` (seconds), ``intensity`` (overall and per-view ``mean``,
        ``std``, ``min``, ``max``, ``total``), ``contrast`` (bright-field
        score, see :func:`~tomotime.preprocess.contrast.looks_like_bright_field`),
        ``files`` (for a folder of images, in view order), ``warnings`` and
        ``notes`` (lists of sentences).
    """
    meta = series.metadata
    warnings: list[str] = list(meta.get("warnings", []))
    notes: list[str] = list(meta.get("notes", []))
    angles = _angle_summary(series.angles)
    if angles["order"] != "increasing":
        notes.append(f"angles are {angles['order']}, not increasing (expected for GRS and dose-symmetric schemes)")
    if angles["repeated_views"]:
        notes.append(f"{angles['repeated_views']} view(s) repeat an earlier angle")
    times = series.times
    if meta.get("times_from", "index") == "index":
        notes.append("no acquisition times found; the view index is used as time in seconds")
    report = {
        "file": meta.get("source"),
        "format": meta.get("format"),
        "shape": list(series.shape),
        "dtype_on_disk": dtype_on_disk,
        "n_views": len(series),
        "pixel_size_nm": series.pixel_size,
        "angles": {"from": meta.get("angles_from"), **angles},
        "times": {
            "from": meta.get("times_from"),
            "first": float(times[0]),
            "last": float(times[-1]),
            "step_mean": float(np.diff(times).mean()) if len(times) > 1 else None,
            "values": [float(t) for t in times],
        },
    }
    report["intensity"] = _intensity_checks(series, _view_stats(series.images), warnings)
    bright, score = looks_like_bright_field(series)
    report["contrast"] = {"bright_field_score": score, "looks_like_bright_field": bright}
    if bright:
        warnings.append(f"the views near 0 deg show a dark object on a bright background ({score:.0%} of the "
                        "pixels off the background level are darker than it): this looks like bright field. "
                        "Reconstructed as is, the object comes out as bright rims around dark holes; convert it "
                        "first: tomotime preprocess FILE --step convert_contrast:mode=log --out DIR "
                        "(mode=invert for thin specimens)")
    if meta.get("files"):
        files = meta["files"]
        report["files"] = files
        notes.append(f"read from {len(files)} image files, {files[0]} .. {files[-1]} in view order; angles from "
                     f"{meta.get('angles_from')}, times from {meta.get('times_from')}")
    report["warnings"] = warnings
    report["notes"] = notes
    return report


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_report(report: dict[str, Any], *, views: bool = False) -> str:
    """Human-readable text of :func:`describe_tilt_series`'s report."""
    a, t, i = report["angles"], report["times"], report["intensity"]
    n, y, x = report["shape"]
    lines = [
        f"file          {report['file']} ({report['format']})",
        f"shape         {n} views x {y} rows x {x} columns (N, Y, X); on disk {report['dtype_on_disk'] or 'unknown'}",
        f"pixel size    {report['pixel_size_nm']:g} nm",
        f"angles        {a['min']:.2f} .. {a['max']:.2f} deg (range {a['range']:.2f}), {a['order']}, from {a['from']}",
        f"angle step    {_fmt(a['step_sorted']['min'])} / {_fmt(a['step_sorted']['mean'])} / "
        f"{_fmt(a['step_sorted']['max'])} deg (min / mean / max between sorted angles); "
        f"mean move between views {_fmt(a['move_mean'])} deg",
        f"repeats       {a['repeated_views']} view(s)"
        + (f" at {', '.join(f'{v:g}' for v in a['repeated_values'][:8])} deg" if a["repeated_views"] else ""),
        f"times         {t['first']:g} .. {t['last']:g} s, mean step {_fmt(t['step_mean'], 'g')} s, from {t['from']}",
        f"intensity     min {i['min']:.4g}, max {i['max']:.4g}, mean {i['mean']:.4g}; "
        f"total per view within {_fmt(i['total_spread'], '.1%')} of its median",
    ]
    if views:
        pv = i["per_view"]
        lines.append(f"{'view':>5} {'angle':>8} {'time':>8} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}")
        for k in range(n):
            lines.append(f"{k:>5} {a['values'][k]:8.2f} {t['values'][k]:8.3g} {pv['mean'][k]:10.4g} "
                         f"{pv['std'][k]:10.4g} {pv['min'][k]:10.4g} {pv['max'][k]:10.4g}")
    lines += [f"note: {text}" for text in report["notes"]]
    lines += [f"warning: {text}" for text in report["warnings"]]
    return "\n".join(lines)


def _report_text(file: Path, *, angles: Path | None, allow_wide_angles: bool, views: bool) -> tuple[dict, str]:
    """The report of ``file`` (a tilt series, or one of the project's outputs) and its text."""
    if is_model_file(file) or is_volume_series_file(file):
        report = describe_output(file)
        return report, format_output_report(report)
    try:
        series = read_input(file, angles=angles, allow_wide_angles=allow_wide_angles)
    except MissingAnglesError as exc:
        try:
            report = describe_output(file)  # a volume: no angles, as expected
        except TomotimeError:
            raise exc from None
        if report["made_by"] is None:  # not a tomotime output: perhaps a tilt series without its angles
            report["notes"] = [f"no tilt angles found, so described as a volume; for a tilt series put the angles "
                               f"in {Path(file).with_suffix('.rawtlt').name} next to it or pass --angles"]
        return report, format_output_report(report)
    report = describe_tilt_series(series, dtype_on_disk=disk_dtype(file, series.metadata))
    return report, format_report(report, views=views)


@handle_errors
def info(
    file: Annotated[Path, typer.Argument(help="Tilt series (MRC, TIFF, NPY, HDF5, EMD, DM3/DM4, SER), or a volume, "
                                              "volume series (.h5) or model (.pt) written by tomotime.")],
    angles: AnglesOption = None,
    allow_wide_angles: WideAnglesOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (also for errors).")] = False,
    views: Annotated[bool, typer.Option("--views", help="Also list per-view statistics.")] = False,
) -> None:
    """Describe a tilt series (shape, angles, times, pixel size, intensities, warnings), a volume, or a model."""
    try:
        report, text = _report_text(file, angles=angles, allow_wide_angles=allow_wide_angles, views=views)
    except (TomotimeError, OSError) as exc:
        if not as_json:
            raise
        typer.echo(json.dumps({"error": str(exc), "file": str(file)}))
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    typer.echo(json.dumps(report, indent=2) if as_json else text)
