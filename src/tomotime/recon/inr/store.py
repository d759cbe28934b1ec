"""Saving and loading a trained INR model (field, poses and geometry in one file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tomotime.errors import FormatError
from tomotime.io import atomic_path, check_output
from tomotime.recon.inr.config import InrConfig
from tomotime.recon.inr.model import InrModel

__all__ = ["save_model", "load_model"]

_KIND = "tomotime-inr"


def save_model(path: str | Path, model: InrModel, *, overwrite: bool = False, extra: dict[str, Any] | None = None
               ) -> Path:
    """Write ``model`` (weights, configuration, angles, times, poses, scale) to ``path``."""
    path = check_output(path, overwrite=overwrite)
    payload = {
        "kind": _KIND, "config": model.config.to_dict(), "state": {k: v.cpu() for k, v in model.state_dict().items()},
        "angles": np.rad2deg(model.theta.cpu().numpy()).astype(np.float64), "time_range": list(model.time_range),
        "times": model.time.cpu().numpy(), "vol_shape": list(model.vol_shape), "scale": model.scale,
        "extra": dict(extra or {}),
    }
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)
    return path


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> InrModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    FormatError
        If the file is missing or not an INR model.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a format problem
        raise FormatError(f"{path}: not a tomotime model ({exc})") from None
    if not isinstance(payload, dict) or payload.get("kind") != _KIND:
        raise FormatError(f"{path}: not an INR model written by tomotime")
    config = InrConfig.from_dict(payload["config"])
    first, last = payload["time_range"]
    times = first + (np.asarray(payload["times"], np.float64) + 1) / 2 * (last - first)
    model = InrModel(config, payload["angles"], times, tuple(payload["vol_shape"]), scale=payload["scale"])
    model.load_state_dict(payload["state"])
    return model.to(device).eval()
