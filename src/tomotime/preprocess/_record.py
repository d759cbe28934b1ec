"""The one way a step builds its result: a new series with the step's record appended."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tomotime.data import TiltSeries

HISTORY_KEY = "preprocessing"


def derived(series: TiltSeries, images: np.ndarray | None, step: str, **record: Any) -> TiltSeries:
    """A copy of ``series`` with new ``images`` (None: unchanged) and ``{"step": step, **record}`` recorded.

    ``record`` may hold ``pixel_size`` and ``poses`` too; they replace the series' own.
    """
    changes: dict[str, Any] = {}
    for key in ("pixel_size", "poses"):
        if key in record:
            changes[key] = record.pop(key) if key == "poses" else record[key]
    history = [*series.metadata.get(HISTORY_KEY, []), {"step": step, **record}]
    return replace(series, images=series.images if images is None else images,
                   metadata={**series.metadata, HISTORY_KEY: history}, **changes)


def history(series: TiltSeries) -> list[dict[str, Any]]:
    """The records of the steps applied to ``series``, in order."""
    return list(series.metadata.get(HISTORY_KEY, []))
