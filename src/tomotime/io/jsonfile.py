"""Atomic JSON output (run summaries, metrics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tomotime.io.atomic import atomic_path

__all__ = ["write_json"]


def _convert(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _finite(value: Any) -> Any:
    """Standard JSON has no NaN/Infinity: such floats become ``null``."""
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def write_json(path: str | Path, data: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``data`` as indented UTF-8 JSON atomically.

    numpy values and paths are converted; non-finite floats (e.g. the PSNR of a
    perfect reconstruction) are written as ``null``, so any JSON reader accepts the file.
    """
    text = json.dumps(_finite(data), indent=2, default=_convert, allow_nan=False)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text + "\n", encoding="utf-8")
    return Path(path)
