"""What ``tomotime info`` says about the project's own outputs: volumes, volume series and models.

Each description is a JSON-ready dict with ``kind`` (``volume``, ``volume
series`` or ``model``), the file, its shape and voxel size, and ``made_by``:
how the file was made, from the ``summary.json`` (or ``scenario.json``) of the
run that wrote it, when one lies in the file's folder or the folder above.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from tomotime.errors import FormatError
from tomotime.io import read_volume, read_volume_series

__all__ = ["describe_output", "format_output_report", "is_model_file", "is_volume_series_file"]

_PROVENANCE_FILES = ("summary.json", "scenario.json")


def is_model_file(path: Path) -> bool:
    """Whether ``path`` is named like a model file (``.pt``/``.pth``)."""
    return path.suffix.lower() in (".pt", ".pth")


def is_volume_series_file(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file holding a 4-D ``volumes`` dataset."""
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return isinstance(f.get("volumes"), h5py.Dataset) and f["volumes"].ndim == 4
    except OSError:
        return False


def _made_by(path: Path) -> dict[str, Any] | None:
    """The command, method and version that wrote ``path``, from a run record next to it or one folder up."""
    for folder in (path.parent, path.parent.parent):
        for name in _PROVENANCE_FILES:
            record = folder / name
            if not record.is_file():
                continue
            try:
                data = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            keys = ("command", "method", "scenario", "tomotime_version", "started", "wall_seconds")
            return {"record": str(record), **{k: data[k] for k in keys if k in data}}
    return None


def _values(array: np.ndarray) -> dict[str, float]:
    return {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean(dtype=np.float64))}


def _describe_model(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise FormatError(f"{path}: not a readable model file ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise FormatError(f"{path}: not a tomotime model file (no model description)")
    model = payload["model"]
    acquisition = model.get("acquisition", {})
    weights = payload.get("state_dict", {})
    return {
        "kind": "model",
        "format": payload.get("format"),
        "format_version": payload.get("format_version"),
        "written_by": payload.get("tomotime_version"),
        "slice_shape": model.get("slice_shape"),
        "rows": model.get("n_rows"),
        "pixel_size_nm": model.get("pixel_size"),
        "time_range_s": model.get("time_range"),
        "angle_range_deg": model.get("angle_range"),
        "acquisitions": len(acquisition.get("times", [])),
        "manifold": model.get("config", {}).get("manifold"),
        "parameters": int(sum(int(np.prod(v.shape)) for v in weights.values() if hasattr(v, "shape"))),
        "bytes": path.stat().st_size,
    }


def _describe_volume_series(path: Path) -> dict[str, Any]:
    series = read_volume_series(path)
    try:
        times = series.times
        return {"kind": "volume series", "shape": list(series.shape), "axes": "TZYX",
                "voxel_size_nm": series.voxel_size,
                "times": {"first": float(times[0]), "last": float(times[-1]), "count": len(times),
                          "values": [float(t) for t in times]},
                "first_volume": _values(np.asarray(series[0]))}
    finally:
        series.data.file.close()


def describe_output(path: str | Path) -> dict[str, Any]:
    """Describe a volume, a volume series (HDF5) or a model file written by tomotime.

    Raises
    ------
    FormatError
        If the file is none of these, or unreadable.
    """
    p = Path(path)
    if is_model_file(p):
        report = _describe_model(p)
    elif is_volume_series_file(p):
        report = _describe_volume_series(p)
    else:
        volume, voxel = read_volume(p)
        report = {"kind": "volume", "shape": list(volume.shape), "axes": "ZYX", "voxel_size_nm": voxel,
                  "values": _values(volume)}
    return {"file": str(p), **report, "made_by": _made_by(p)}


def format_output_report(report: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe_output`'s report."""
    lines = [f"file          {report['file']} ({report['kind']})"]
    if report["kind"] == "model":
        lines += [
            f"model         {report['format']} v{report['format_version']}, written by tomotime "
            f"{report['written_by']}; {report['parameters']} parameters, {report['bytes']} bytes",
            f"volumes       slices {report['slice_shape']} (Z, X) x {report['rows']} rows; pixel size "
            f"{report['pixel_size_nm']:g} nm; manifold {report['manifold']}",
            f"trained on    {report['acquisitions']} acquisitions, times {report['time_range_s']} s, "
            f"angles {report['angle_range_deg']} deg",
        ]
    else:
        lines.append(f"shape         {' x '.join(map(str, report['shape']))} ({', '.join(report['axes'])}); voxel "
                     f"size {report['voxel_size_nm']:g} nm")
        if report["kind"] == "volume series":
            t = report["times"]
            lines.append(f"times         {t['count']} from {t['first']:g} to {t['last']:g} s")
        values = report.get("values") or report.get("first_volume")
        lines.append(f"values        min {values['min']:.4g}, max {values['max']:.4g}, mean {values['mean']:.4g}"
                     + (" (first time point)" if "first_volume" in report else ""))
    made = report.get("made_by")
    if made:
        lines.append(f"made by       {made.get('command', '?')}")
        lines.append(f"record        {made['record']} (tomotime {made.get('tomotime_version', '?')}"
                     + (f", {made['started']}" if "started" in made else "") + ")")
    lines += [f"note: {text}" for text in report.get("notes", [])]
    return "\n".join(lines)
