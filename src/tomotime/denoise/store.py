"""Saving and loading trained blind-spot denoisers as self-describing files.

A model file is a ``torch.save`` dictionary (read back with
``weights_only=True``): ``format``, ``format_version``, the network's
keyword arguments, the intensity normalisation of the movie it was trained
on, free ``extra`` metadata and the ``state_dict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from tomotime.denoise.movie import Normalisation
from tomotime.io.tagged import load_tagged, save_tagged
from tomotime.models.blindspot import BlindSpotNet

__all__ = ["save_denoiser", "load_denoiser", "DENOISER_FORMAT"]

DENOISER_FORMAT = "tomotime-blindspot-denoiser"
_VERSION = 1


def save_denoiser(path: str | Path, model: nn.Module, normalisation: Normalisation, *, overwrite: bool = False,
                  extra: dict[str, Any] | None = None) -> Path:
    """Write a trained :class:`BlindSpotNet` and its normalisation to ``path`` atomically."""
    payload = {
        "network": {"frames": model.frames, "width": model.width, "stages": model.stages,
                    "blind_spot": model.blind_spot},
        "normalisation": {"offset": normalisation.offset, "scale": normalisation.scale},
        "extra": dict(extra or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_tagged(path, DENOISER_FORMAT, _VERSION, payload, overwrite=overwrite)


def load_denoiser(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[BlindSpotNet, Normalisation]:
    """The network (eval mode, on ``device``) and normalisation written by :func:`save_denoiser`.

    Raises
    ------
    FormatError
        If the file is missing, unreadable, or not a denoiser of this format version.
    """
    payload = load_tagged(path, DENOISER_FORMAT, _VERSION, what="blind-spot denoiser")
    model = BlindSpotNet(**payload["network"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), Normalisation(**payload["normalisation"])
