"""Noise2Noise training of the U-Net filter: independent single frames of the same area, no averaged references.

The paper's training data are many single fast frames of each area; the
reference is their average. Noise2Noise (Lehtinen et al., ICML 2018) trains
the same network on pairs of those single frames instead: for an input frame
``x`` and another frame ``y`` of the same area with independent, zero-mean
noise, ``E[y | x]`` is the clean image, so minimising the MSE to ``y`` has the
same minimiser as minimising it to the clean image. Each training sample
draws an area, then an ordered pair of two *different* frames of it
(:func:`draw_pair`), then a patch with the same random flip and rotation on
both.

Normalisation: the paper min-shifts each image and divides by its maximum.
For a noisy target those extremes are set by the noise (the minimum of a
noisy frame lies below the clean minimum), so normalising the target by its
own extremes would make the learnt output depend on the noise level. Here
input and target are both normalised with the *input's* transform
(:func:`~tomotime.rapid.unet_filter.robust_normalise`: its 0.5 and 99.5
percentiles): an affine map fixed by the input, so ``E[target | input]`` is
still the clean image in the input's units. ``normalisation="paper"`` keeps
the paper's per-image min/max on both images for comparison. The filter's
output is min-shifted and divided by its maximum at inference (see
:func:`~tomotime.rapid.unet_filter.apply_filter`).

Held-out units are whole areas: frame 1 is the target of frame 0, over the
whole image (the loss includes the target's noise variance, a constant that
does not change which state is best).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.rapid.unet_filter import NORMALISERS, UnetFilterConfig, UnetFilterMethod
from tomotime.training import TrainResult, fingerprint, train

__all__ = ["check_repeats", "draw_pair", "NoisyPairFilterMethod", "train_filter_noise2noise"]


def check_repeats(frames: np.ndarray, *, name: str = "frames") -> np.ndarray:
    """Check repeated noisy frames ``(A, K, H, W)``: ``K >= 2`` independent frames of each of ``A`` areas.

    Returns them as float32.

    Raises
    ------
    InputError
        Not 4-D, fewer than 2 frames per area, frames smaller than 8 x 8, or NaN/Inf.
    """
    f = np.asarray(frames)
    if f.ndim != 4:
        raise InputError(f"{name}: expected repeated frames (areas, frames per area, H, W), got shape {f.shape}")
    if f.shape[0] < 1 or f.shape[1] < 2:
        raise InputError(f"{name}: {f.shape[1]} frame(s) per area; Noise2Noise needs at least 2 independent noisy "
                         "frames of each area")
    if min(f.shape[2:]) < 8:
        raise InputError(f"{name}: frames of {f.shape[2]} x {f.shape[3]} px; expected at least 8 x 8")
    f = f.astype(np.float32)
    if not np.isfinite(f).all():
        raise InputError(f"{name}: NaN or Inf in the frames")
    return f


def draw_pair(k: int, generator: torch.Generator) -> tuple[int, int]:
    """An ordered pair ``(input, target)`` of two different frame indices out of ``k >= 2``, uniformly."""
    i = int(torch.randint(0, k, (1,), generator=generator))
    j = int(torch.randint(0, k - 1, (1,), generator=generator))
    return i, j + (j >= i)


class NoisyPairFilterMethod(UnetFilterMethod):
    """The engine's view of Noise2Noise U-Net filter training on repeated frames ``(A, K, H, W)``."""

    name = "unet-filter-noise2noise"

    def __init__(self, frames: np.ndarray, config: UnetFilterConfig, device: torch.device) -> None:
        if config.target != "noisy-pair":
            raise InputError(f"target={config.target!r}: Noise2Noise training needs target='noisy-pair'")
        frames = check_repeats(frames)
        self._setup(config, device, frames.shape)
        _, lo, scale = NORMALISERS[config.normaliser](frames)
        self.raw = torch.from_numpy(frames).to(device)
        self.lo = torch.from_numpy(lo).to(device)  # (A, K, 1, 1)
        self.scale = torch.from_numpy(scale).to(device)
        # Whole-image pairs for holdout and collapse checks: frame 0 -> frame 1 of every area.
        self.x = torch.stack([self._normalised(a, 0, 0) for a in range(frames.shape[0])])
        self.y = torch.stack([self._normalised(a, 1, 0) for a in range(frames.shape[0])])
        self._split(frames.shape[0])

    def _normalised(self, area: int, frame: int, source: int) -> torch.Tensor:
        """Frame ``frame`` of ``area`` ``(H, W)`` normalised as the target of input frame ``source``."""
        by = source if self.config.normaliser == "robust" else frame
        return (self.raw[area, frame] - self.lo[area, by]) / self.scale[area, by]

    def _pair(self, p: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        i, j = draw_pair(self.raw.shape[1], generator)
        return self._normalised(p, i, i)[None], self._normalised(p, j, i)[None]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["derived"].update({"holdout_areas": info["derived"].pop("holdout_pairs"),
                                "train_areas": info["derived"].pop("train_pairs"),
                                "frames_per_area": int(self.raw.shape[1]), "target": "noisy-pair (Noise2Noise)"})
        info["data"]["fingerprint"] = fingerprint(self.raw.cpu().numpy())
        return info


def train_filter_noise2noise(frames: np.ndarray, config: UnetFilterConfig | None = None, *,
                             run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
                             progress: bool | None = None) -> TrainResult:
    """Train the U-Net filter on repeated noisy frames ``(A, K, H, W)`` alone; ``result.model`` is the best U-Net.

    ``config`` defaults to ``UnetFilterConfig(target="noisy-pair")``; filter
    with :func:`~tomotime.rapid.unet_filter.apply_filter`.
    """
    config = config if config is not None else UnetFilterConfig(target="noisy-pair")
    method = NoisyPairFilterMethod(frames, config, resolve_device(config.device))
    return train(method, run_dir=run_dir, resume=resume, overwrite=overwrite, progress=progress)
