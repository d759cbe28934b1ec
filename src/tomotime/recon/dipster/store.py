"""Saving and loading trained DIP-STER models as self-describing files.

A model file is a ``torch.save`` dictionary (read back with
``weights_only=True``, so loading never runs code from the file) holding:
``format`` and ``format_version``, ``tomotime_version``, the full model
description (configuration with manifold, sizes and activation; slice shape;
rows; time and angle ranges of training; intensity normalisation; the
acquisition times and angles; pixel size), free ``extra`` metadata, and the
``state_dict``. The trained network is itself a compressed store of the 4D
result: any time point can be regenerated from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tomotime.device import resolve_device
from tomotime.errors import FormatError, InputError
from tomotime.io.tagged import load_tagged, save_tagged
from tomotime.recon.dipster.model import SpaceTimeDIP

__all__ = ["save_model", "load_model", "MODEL_FORMAT", "MODEL_FORMAT_VERSION"]

MODEL_FORMAT = "tomotime-dipster-model"
MODEL_FORMAT_VERSION = 1


def save_model(path: str | Path, model: SpaceTimeDIP, *, overwrite: bool = False,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (see the module description).

    Parameters
    ----------
    path : str or Path
        Output file, conventionally ``*.pt``.
    model : SpaceTimeDIP
        The trained model.
    overwrite : bool
        Replace an existing file.
    extra : dict, optional
        Additional plain metadata (numbers, strings, lists) stored as ``extra``.

    Returns
    -------
    Path
    """
    if not isinstance(model, SpaceTimeDIP):
        raise InputError(f"model: expected a SpaceTimeDIP, got {type(model).__name__}")
    payload = {
        "model": model.describe(),
        "extra": dict(extra or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_tagged(path, MODEL_FORMAT, MODEL_FORMAT_VERSION, payload, overwrite=overwrite)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> SpaceTimeDIP:
    """Rebuild a model written by :func:`save_model`, in eval mode, on ``device``.

    Raises
    ------
    FormatError
        If the file is missing, empty, corrupted, not a DIP-STER model, or of
        another format version.
    """
    p = Path(path)
    payload = load_tagged(p, MODEL_FORMAT, MODEL_FORMAT_VERSION, what="DIP-STER model")
    try:
        model = SpaceTimeDIP.from_description(payload["model"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise FormatError(f"{p}: the model description or weights are inconsistent ({exc})") from None
    model.extra = dict(payload.get("extra", {}))
    return model.to(resolve_device(device)).eval()
