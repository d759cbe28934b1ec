"""Saving and loading a trained INR model (field, poses and geometry in one file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tomotime.io.tagged import load_tagged, save_tagged
from tomotime.recon.inr.config import InrConfig
from tomotime.recon.inr.model import InrModel

__all__ = ["save_model", "load_model"]

MODEL_FORMAT, MODEL_FORMAT_VERSION = "tomotime-inr-model", 1


def save_model(path: str | Path, model: InrModel, *, overwrite: bool = False, extra: dict[str, Any] | None = None
               ) -> Path:
    """Write ``model`` (weights, configuration, angles, times, poses, scale) to ``path``."""
    payload = {
        "config": model.config.to_dict(), "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "angles": np.rad2deg(model.theta.cpu().numpy()).astype(np.float64).tolist(),
        "time_range": [float(t) for t in model.time_range], "times": model.time.cpu().double().tolist(),
        "vol_shape": list(model.vol_shape), "scale": float(model.scale), "extra": dict(extra or {}),
    }
    return save_tagged(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, payload, overwrite=overwrite)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> InrModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    FormatError
        If the file is missing, damaged, not an INR model, or of another format version.
    """
    payload = load_tagged(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, what="INR model")
    config = InrConfig.from_dict(payload["config"])
    first, last = payload["time_range"]
    times = first + (np.asarray(payload["times"], np.float64) + 1) / 2 * (last - first)
    model = InrModel(config, np.asarray(payload["angles"], np.float64), times, tuple(payload["vol_shape"]),
                     scale=payload["scale"])
    model.load_state_dict(payload["state"])
    return model.to(device).eval()
