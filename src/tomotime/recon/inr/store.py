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

#: Version 2 stores the learned poses in degrees and pixels (``pose_delta``, ``axis_delta``) and the pixel
#: size; version 1 stored the poses divided by ``pose_lr / lr`` (``pose_raw``, ``axis_raw``), no pixel size
#: (read as 1 nm), and is converted on reading.
MODEL_FORMAT, MODEL_FORMAT_VERSION = "tomotime-inr-model", 2


def _from_version_1(state: dict[str, torch.Tensor], config: InrConfig) -> dict[str, torch.Tensor]:
    """Version-1 pose parameters (``raw``, in units of ``lr / pose_lr``) as version 2's degrees and pixels."""
    scale = config.pose_lr / config.lr
    renamed = {"pose_raw": "pose_delta", "axis_raw": "axis_delta"}
    return {renamed.get(k, k): (v * scale if k in renamed else v) for k, v in state.items()}


def save_model(path: str | Path, model: InrModel, *, overwrite: bool = False, extra: dict[str, Any] | None = None
               ) -> Path:
    """Write ``model`` (weights, configuration, angles, times, poses, scale) to ``path``."""
    payload = {
        "config": model.config.to_dict(), "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "angles": np.rad2deg(model.theta.cpu().numpy()).astype(np.float64).tolist(),
        "time_range": [float(t) for t in model.time_range], "times": model.time.cpu().double().tolist(),
        "vol_shape": list(model.vol_shape), "scale": float(model.scale), "pixel_size": model.pixel_size,
        "extra": dict(extra or {}),
    }
    return save_tagged(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, payload, overwrite=overwrite)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> InrModel:
    """Read a model written by :func:`save_model` (format version 2, or 1 converted).

    Raises
    ------
    FormatError
        If the file is missing, damaged, not an INR model, or of another format version.
    """
    payload = load_tagged(path, MODEL_FORMAT, (1, MODEL_FORMAT_VERSION), what="INR model")
    config = InrConfig.from_dict(payload["config"])
    state = payload["state"] if payload["format_version"] == MODEL_FORMAT_VERSION else \
        _from_version_1(payload["state"], config)
    first, last = payload["time_range"]
    times = first + (np.asarray(payload["times"], np.float64) + 1) / 2 * (last - first)
    model = InrModel(config, np.asarray(payload["angles"], np.float64), times, tuple(payload["vol_shape"]),
                     scale=payload["scale"], pixel_size=payload.get("pixel_size", 1.0))
    model.load_state_dict(state)
    return model.to(device).eval()
