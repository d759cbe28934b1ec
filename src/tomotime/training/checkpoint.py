"""Checkpoints, the metrics table and data fingerprints of a training run.

A checkpoint holds everything a run needs to continue bit for bit: the run's
description (method, resolved configuration, data fingerprint) and the
training state (model, optimiser, scheduler, averaged weights, RNG states of
torch, numpy and Python, step, stopping-rule state, history). It is written
atomically, so an interrupted or failed write never replaces a good
checkpoint; a full disk is reported with the space the checkpoint needs.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tomotime
from tomotime.errors import FormatError, TomotimeError
from tomotime.io.atomic import atomic_path
from tomotime.io.tagged import load_tagged

__all__ = [
    "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "write_checkpoint", "read_checkpoint", "get_rng_state",
    "set_rng_state", "write_metrics_csv", "fingerprint", "NoSpaceError", "write_bytes",
]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = ("tomotime-checkpoint", 2)
METRIC_COLUMNS = ("step", "train_loss", "holdout_loss", "holdout_se", "holdout_smoothed", "lr", "seconds")
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class NoSpaceError(TomotimeError, OSError):
    """A run file could not be written because its disk is full."""


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` atomically to ``path``; a full disk raises :class:`NoSpaceError` and keeps the old file."""
    path = Path(path)
    try:
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
        kept = f"; the previous {path.name} is kept" if path.exists() else ""
        raise NoSpaceError(f"no space left on the disk of {path.parent} (needs about "
                           f"{len(data) / 1e6:.3g} MB for {path.name}, {free / 1e6:.3g} MB free){kept}") from None
    return path


def write_checkpoint(path: Path, method: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) of ``method`` atomically to ``path``."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT[0], "format_version": CHECKPOINT_FORMAT[1],
                "tomotime_version": tomotime.__version__, "method": method, **payload}, buffer)
    return write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path, method: str) -> dict[str, Any]:
    """Read a checkpoint of ``method`` written by :func:`write_checkpoint` onto the CPU.

    Raises
    ------
    FormatError
        If the file is damaged, not a tomotime checkpoint, of another format
        version, or written by another method.
    """
    payload = load_tagged(path, *CHECKPOINT_FORMAT, what="tomotime training checkpoint", kind="checkpoint")
    if payload.get("method") != method:
        raise FormatError(f"{path}: a checkpoint of the method {payload.get('method')!r}, not {method!r}")
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


def write_metrics_csv(path: Path, history: Sequence[dict[str, float]]) -> Path:
    """Write ``metrics.csv`` (one row per evaluation, columns ``METRIC_COLUMNS``) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(METRIC_COLUMNS)
    for row in history:
        writer.writerow([int(row["step"]), *(f"{float(row.get(k, float('nan'))):.6g}" for k in METRIC_COLUMNS[1:])])
    return write_bytes(path, buffer.getvalue().encode())


def fingerprint(*arrays: Any) -> str:
    """SHA-256 of arrays' shapes and bytes: a resumed run must see the same data."""
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()
