"""Microscope vendor formats via rosettasciio: Velox/NCEM EMD, DigitalMicrograph, TIA.

rosettasciio returns each signal with calibrated axes. The image stack is the
signal with two signal axes and (preferably) one navigation axis. When the
navigation axis is calibrated in degrees (a DigitalMicrograph tilt stack, say:
offset -90, scale 2) it gives the tilt angles; when it is calibrated in
seconds (a Velox frame series) it gives the times.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np

from tomotime.errors import FormatError
from tomotime.io._common import RawStack, existing_file, length_to_nm

__all__ = ["EM_FORMATS", "read_em", "acquisition_metadata"]

log = logging.getLogger(__name__)

EM_FORMATS = {".emd": "emd", ".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph", ".ser": "tia", ".emi": "tia"}

_DEGREE_UNITS = {"deg", "degree", "degrees", "\u00b0", "\u00ba"}
_SECONDS_PER_UNIT = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "\u00b5s": 1e-6, "min": 60.0}


def _sorted_axes(signal: dict) -> list[dict]:
    axes = list(signal["axes"])
    if all("index_in_array" in a for a in axes):
        axes.sort(key=lambda a: int(a["index_in_array"]))
    return axes


def _is_image(signal: dict) -> bool:
    axes = signal.get("axes", [])
    n_signal = sum(not a.get("navigate", False) for a in axes)
    return n_signal == 2 and np.ndim(signal["data"]) == len(axes)


def _pick_signal(signals: list[dict], path: Path) -> dict:
    images = [s for s in signals if _is_image(s)]
    if not images:
        shapes = [tuple(np.shape(s["data"])) for s in signals]
        raise FormatError(f"{path}: holds no image data (signals of shapes {shapes}); expected an image stack")
    stacks = [s for s in images if np.ndim(s["data"]) == 3] or images
    haadf = [s for s in stacks if "haadf" in str(s.get("metadata", {}).get("General", {}).get("title", "")).lower()]
    chosen = (haadf or stacks)[0]
    if len(stacks) > 1:
        title = chosen.get("metadata", {}).get("General", {}).get("title", "?")
        log.info("%s: %d image signals; reading %r", path, len(stacks), title)
    return chosen


def _axis_values(axis: dict) -> np.ndarray:
    return float(axis.get("offset", 0.0)) + float(axis.get("scale", 1.0)) * np.arange(int(axis["size"]))


def read_em(path: str | Path) -> RawStack:
    """Read an image stack from a Velox/NCEM ``.emd``, ``.dm3``/``.dm4`` or TIA ``.ser``/``.emi`` file.

    Returns
    -------
    RawStack
        ``images`` in the file's dtype (navigation axes first); ``pixel_size``
        in nm from the calibration of the last axis; ``angles`` (degrees) or
        ``times`` (seconds) from a calibrated navigation axis, else ``None``.

    Raises
    ------
    FormatError
        If the extension is not one of these formats, rosettasciio cannot read
        the file, or it holds no image.
    """
    p = existing_file(path)
    plugin = EM_FORMATS.get(p.suffix.lower())
    if plugin is None:
        raise FormatError(f"{p}: not a rosettasciio format handled here (expected one of {sorted(EM_FORMATS)})")
    try:
        reader = importlib.import_module(f"rsciio.{plugin}").file_reader
    except ImportError as exc:
        raise FormatError(f"{p}: reading {p.suffix} files needs rosettasciio, a dependency of tomotime: "
                          "reinstall tomotime (pip install rosettasciio)") from exc
    try:
        signals = reader(str(p), lazy=False)
    except Exception as exc:  # third-party parsers raise many types on corrupt files
        raise FormatError(f"{p}: could not be read as {plugin} ({type(exc).__name__}: {exc})") from exc
    signal = _pick_signal(signals, p)
    axes = _sorted_axes(signal)
    x_axis = axes[-1]
    pixel = length_to_nm(float(x_axis.get("scale", 0.0)), x_axis.get("units"))
    angles = times = None
    for axis in axes[:-2]:
        unit = str(axis.get("units") or "").strip().lower()
        if unit in _DEGREE_UNITS:
            angles = _axis_values(axis)
        elif unit in _SECONDS_PER_UNIT:
            times = _axis_values(axis) * _SECONDS_PER_UNIT[unit]
    title = signal.get("metadata", {}).get("General", {}).get("title")
    return RawStack(images=np.asarray(signal["data"]), format=p.suffix.lower().lstrip("."),
                    pixel_size=pixel, angles=angles, times=times,
                    extra={"title": title, **acquisition_metadata(signal.get("metadata", {}))})


def acquisition_metadata(metadata: dict) -> dict:
    """Stage tilt (``stage_alpha_deg``) and acquisition time (``acquired``, ISO text) of a rosettasciio signal.

    rosettasciio maps the vendor's stage alpha (DigitalMicrograph ``Stage
    Alpha``, Velox ``AlphaTilt``) to ``Acquisition_instrument.TEM.Stage.tilt_alpha``
    in degrees, and the acquisition date and time to ``General.date``/``time``.
    Missing entries are left out.
    """
    out: dict = {}
    instrument = metadata.get("Acquisition_instrument", {}) or {}
    for kind in ("TEM", "SEM"):
        alpha = ((instrument.get(kind) or {}).get("Stage") or {}).get("tilt_alpha")
        if alpha is not None and np.isfinite(float(alpha)):
            out["stage_alpha_deg"] = float(alpha)
            break
    general = metadata.get("General", {}) or {}
    if general.get("date") and general.get("time"):
        out["acquired"] = f"{general['date']}T{general['time']}"
    return out
