"""Neighbor2Neighbor (Huang et al., CVPR 2021): a self-supervised single-frame baseline for UDVD.

Each training crop ``y`` is split by a random neighbour sub-sampler into two
half-resolution images ``g1(y)``, ``g2(y)``: in every 2x2 cell one pixel
goes to ``g1`` and one of its two horizontal or vertical neighbours in the
cell to ``g2``. Their noise is independent (for pixel-independent noise)
while their signal nearly agrees, so an ordinary U-Net ``f`` is trained on

    |f(g1(y)) - g2(y)|**2 + gamma * |f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))|**2,

where ``f(y)`` (no gradient) is the network on the full crop and ``gamma``
rises linearly from 0 to ``gamma`` over the run (the paper's reference code;
``gamma = 2``; the ramp follows the planned steps, so lengthening a resumed run
changes its remaining ramp, as it does a decaying learning rate). Inference
is ``f(y)`` at full resolution. Training is a
method of the shared engine like UDVD (:class:`~tomotime.denoise.method.UdvdMethod`:
same crops, frame holdout, checkpoints); the held-out loss is the first term
with a fixed sub-sampling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from tomotime.denoise.config import DenoiserTrainingConfig
from tomotime.denoise.method import UdvdMethod, _sample_generator, degenerate_output
from tomotime.denoise.movie import Normalisation
from tomotime.device import resolve_device
from tomotime.io.tagged import load_tagged, save_tagged
from tomotime.models.plain_unet import PlainUNet
from tomotime.training import TrainResult, train

__all__ = ["Neighbor2NeighborConfig", "Neighbor2NeighborMethod", "neighbour_subsample", "train_neighbor2neighbor",
           "save_neighbor2neighbor", "load_neighbor2neighbor", "N2N_FORMAT"]

N2N_FORMAT = "tomotime-neighbor2neighbor-denoiser"
_VERSION = 1
#: Partners of each position of a 2x2 cell (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
_NEIGHBOURS = torch.tensor([[1, 2], [0, 3], [0, 3], [1, 2]])
_SAMPLER_STREAM = 2 ** 40  # sampler generators are indexed past every crop index


class Neighbor2NeighborConfig(DenoiserTrainingConfig):
    """Options of :func:`train_neighbor2neighbor` (plus those of :class:`DenoiserTrainingConfig` and the engine).

    Parameters
    ----------
    width : int
        U-Net width (:class:`~tomotime.models.plain_unet.PlainUNet`).
    gamma : float
        Final weight of the regulariser (ramped linearly from 0; the paper: 2).
    crop : int
        Side of the square training crops (px, a multiple of 8: two poolings at half resolution).
    crops_per_frame : int
        Training samples per training frame and epoch.
    holdout_crop : int
        Side of the centred region of each held-out frame whose loss is evaluated (px, multiple of 8).
    """

    method: ClassVar[str] = "neighbor2neighbor"
    frames: ClassVar[int] = 1
    mixed_precision: ClassVar[bool] = False

    width: int = Field(32, ge=4, le=256)
    gamma: float = Field(2.0, ge=0, allow_inf_nan=False)

    @property
    def network(self) -> dict:
        """Keyword arguments of :class:`~tomotime.models.plain_unet.PlainUNet`."""
        return {"width": self.width}

    @model_validator(mode="after")
    def _check_sizes(self) -> Neighbor2NeighborConfig:
        for name in ("crop", "holdout_crop"):
            if getattr(self, name) % 8:
                raise ValueError(f"{name}={getattr(self, name)}: expected a multiple of 8 (two poolings at half "
                                 "resolution)")
        return self


def neighbour_subsample(images: torch.Tensor, generator: torch.Generator
                        ) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Draw one random neighbour sub-sampler for ``images`` (B, C, H, W), H and W even.

    Returns a function mapping any tensor of that shape to ``(g1, g2)``, each
    ``(B, C, H/2, W/2)``, with the same cells and choices (so it applies to the
    network's output as to the input).
    """
    b, _, h, w = images.shape
    first = torch.randint(0, 4, (b, 1, h // 2, w // 2), generator=generator)
    second = _NEIGHBOURS[first, torch.randint(0, 2, first.shape, generator=generator)]
    first, second = first.to(images.device), second.to(images.device)

    def apply(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        cells = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
        pick = lambda k: cells.gather(-1, k.expand(b, c, -1, -1)[..., None])[..., 0]  # noqa: E731
        return pick(first), pick(second)

    return apply


class Neighbor2NeighborMethod(UdvdMethod):
    """The engine's view of Neighbor2Neighbor on one movie (crops, holdout and data as for UDVD, one frame in)."""

    name = "neighbor2neighbor"

    def __init__(self, movie: np.ndarray, config: Neighbor2NeighborConfig, device: torch.device) -> None:
        super().__init__(movie, config, device)
        self.total = config.steps or max(1, math.ceil(config.epochs * self.n_train / config.batch_size))

    def _holdout_region(self) -> tuple[slice, slice]:
        out = []
        for size in self.padded.shape[1:]:
            n = max(8, min(self.config.holdout_crop, size) // 8 * 8)
            start = max(0, (size - n) // 2 // 4 * 4)
            out.append(slice(start, start + n))
        return out[0], out[1]

    def build_model(self) -> PlainUNet:
        torch.manual_seed(self.config.seed)
        return PlainUNet(**self.config.network).to(self.device)

    def _terms(self, net: nn.Module, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator,
               *, regularise: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-sample reconstruction and regulariser terms ``(B,)`` over valid cells."""
        sub = neighbour_subsample(images, generator)
        g1, g2 = sub(images)
        m1, m2 = sub(masks.float())
        mask = m1 * m2
        output = net(g1)
        count = mask.sum(dim=(1, 2, 3)).clamp_min(1)
        rec = ((output - g2) ** 2 * mask).sum(dim=(1, 2, 3)) / count
        if not regularise:
            return rec, None
        with torch.no_grad():
            f1, f2 = sub(net(images))
        reg = ((output - g2 - (f1 - f2)) ** 2 * mask).sum(dim=(1, 2, 3)) / count
        return rec, reg

    def batch_loss(self, net: nn.Module, indices: torch.Tensor, step: int) -> torch.Tensor:
        images, masks = self._crops(indices, step)
        gamma = self.config.gamma * min(step / self.total, 1.0)
        rec, reg = self._terms(net, images, masks, _sample_generator(self.config.seed, step, _SAMPLER_STREAM),
                               regularise=gamma > 0)
        return rec.mean() + (gamma * reg.mean() if reg is not None else 0.0)

    def holdout_losses(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        ys, xs = self.region
        losses = []
        for i in indices.tolist():
            t = self.held[i]
            image = self.padded[t][None, None, ys, xs]
            mask = self.valid[ys, xs][None, None]
            gen = _sample_generator(self.config.seed, 0, _SAMPLER_STREAM + 1 + t)
            losses.append(self._terms(model, image, mask, gen, regularise=False)[0])
        return torch.cat(losses)

    @torch.no_grad()
    def collapsed(self, model: nn.Module) -> str | None:
        """A constant or diverged output on a frame (see :func:`~tomotime.denoise.method.degenerate_output`)."""
        ys, xs = self.region
        frame = self.padded[(self.held or self.train_frames)[0]][None, None, ys, xs]
        return degenerate_output(model(frame), frame, self.valid[ys, xs])

    def save(self, path: Path, model: nn.Module, extra: dict[str, Any]) -> None:
        save_neighbor2neighbor(path, model, self.normalisation, overwrite=True, extra=extra)


def train_neighbor2neighbor(movie: np.ndarray, config: Neighbor2NeighborConfig | None = None, *,
                            run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
                            progress: bool | None = None,
                            callback: Callable[[int, dict[str, Any]], None] | None = None
                            ) -> tuple[TrainResult, Normalisation]:
    """Train Neighbor2Neighbor on the noisy movie (T, H, W) alone; arguments as :func:`~tomotime.denoise.train_udvd`.

    ``result.model`` is a :class:`~tomotime.models.plain_unet.PlainUNet`;
    denoise with :func:`~tomotime.denoise.apply_denoiser`.
    """
    config = config if config is not None else Neighbor2NeighborConfig()
    method = Neighbor2NeighborMethod(movie, config, resolve_device(config.device))
    result = train(method, run_dir=run_dir, resume=resume, overwrite=overwrite, progress=progress,
                   callback=callback)
    return result, method.normalisation


def save_neighbor2neighbor(path: str | Path, model: PlainUNet, normalisation: Normalisation, *,
                           overwrite: bool = False, extra: dict[str, Any] | None = None) -> Path:
    """Write a trained :class:`PlainUNet` and its normalisation (self-describing, weights-only file)."""
    payload = {"network": {"width": model.width},
               "normalisation": {"offset": normalisation.offset, "scale": normalisation.scale},
               "extra": dict(extra or {}),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return save_tagged(path, N2N_FORMAT, _VERSION, payload, overwrite=overwrite)


def load_neighbor2neighbor(path: str | Path, *, device: str | torch.device = "cpu"
                           ) -> tuple[PlainUNet, Normalisation]:
    """The network (eval mode) and normalisation written by :func:`save_neighbor2neighbor`."""
    payload = load_tagged(path, N2N_FORMAT, _VERSION, what="Neighbor2Neighbor denoiser")
    model = PlainUNet(**payload["network"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), Normalisation(**payload["normalisation"])
