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


def write_json(path: str | Path, data: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write ``data`` as indented UTF-8 JSON atomically (numpy values and paths converted)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=_convert) + "\n", encoding="utf-8")
    return Path(path)
