"""Run-folder files of a DIP-STER training: checkpoints, metrics table, Ctrl-C handling.

A checkpoint holds everything a run needs to continue bit for bit: model,
optimiser and scheduler states, the RNG states of torch, numpy and Python,
the step, the best state and the holdout history. It is written atomically,
so an interrupted write never replaces a good checkpoint with a broken one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import random
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tomotime.data import TiltSeries
from tomotime.errors import FormatError
from tomotime.io.atomic import atomic_path

__all__ = [
    "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "write_checkpoint", "read_checkpoint", "get_rng_state",
    "set_rng_state", "InterruptFlag", "write_metrics_csv", "data_fingerprint",
]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = ("tomotime-dipster-checkpoint", 1)
METRIC_COLUMNS = ("step", "train_loss", "holdout_loss", "lr", "seconds")


def write_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) atomically to ``path``."""
    payload = {"format": CHECKPOINT_FORMAT[0], "format_version": CHECKPOINT_FORMAT[1], **payload}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`write_checkpoint` onto the CPU.

    Raises
    ------
    FormatError
        If the file is not a readable DIP-STER checkpoint of this format version.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise FormatError(f"{path}: not a readable DIP-STER checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT[0]:
        raise FormatError(f"{path}: not a DIP-STER checkpoint")
    if payload.get("format_version") != CHECKPOINT_FORMAT[1]:
        raise FormatError(f"{path}: checkpoint format version {payload.get('format_version')!r}; "
                          f"this tomotime reads version {CHECKPOINT_FORMAT[1]}")
    return payload


def get_rng_state(device: torch.device) -> dict[str, Any]:
    """RNG states of torch (CPU and ``device``), numpy's global generator and Python's ``random``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore the states saved by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class InterruptFlag(contextlib.AbstractContextManager):
    """Turn the first Ctrl-C into a request checked between training steps.

    A step is never cut in half by the first Ctrl-C, so the checkpoint written
    on interruption is consistent; a second Ctrl-C interrupts at once. Only
    active in the main thread (signals cannot be handled elsewhere).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def write_metrics_csv(path: Path, history: Sequence[dict[str, float]]) -> Path:
    """Write ``metrics.csv`` (step, train_loss, holdout_loss, lr, seconds) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(METRIC_COLUMNS)
    for row in history:
        writer.writerow([int(row["step"]), *(f"{float(row[k]):.6g}" for k in METRIC_COLUMNS[1:])])
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(buffer.getvalue())
    return Path(path)


def data_fingerprint(series: TiltSeries) -> str:
    """SHA-256 of the images, angles and times: a resumed run must see the same data."""
    digest = hashlib.sha256()
    for arr in (series.images, series.angles, series.times):
        digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update(str(series.images.shape).encode())
    return digest.hexdigest()
