"""INR tomography as a method of the training engine: samples and held-out units are detector pixels.

A step draws ``batch_size`` training pixels, traces their rays (with the
views' current poses), integrates the field along them and compares with the
data by smooth-L1 (``beta`` in normalised units), plus ``tv_weight`` times the
field's mean gradient magnitude at a random share of the sample points. The
number of samples per ray ramps up over the first ``sample_ramp_epochs``.
With pose learning, the shifts start at a cross-correlation alignment
(``shift_start``); with a shared tilt axis, its angle starts at the
common-line estimate (``axis_start``) and stays there for the first
``axis_hold`` of the steps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tomotime.data import TiltSeries
from tomotime.recon.inr.pose_start import common_line_axis, xcorr_start
from tomotime.recon.inr.config import InrConfig
from tomotime.recon.inr.model import InrModel
from tomotime.recon.inr.problem import initial_poses, prepare_problem
from tomotime.recon.inr.rays import sample_count
from tomotime.recon.inr.store import save_model
from tomotime.training import fingerprint

__all__ = ["InrMethod", "COLLAPSE_RELATIVE_SPREAD"]

#: A field whose values vary by less than this fraction of its mean counts as collapsed.
COLLAPSE_RELATIVE_SPREAD = 1e-5


class InrMethod:
    """The engine's view of an INR run on one tilt series (see :class:`tomotime.training.Method`).

    Parameters
    ----------
    series : TiltSeries
        Projections ``(N, Y, X)``, angles (degrees), times (seconds), optional starting poses.
    config : InrConfig
    device : torch.device
    """

    name = "inr"

    def __init__(self, series: TiltSeries, config: InrConfig, device: torch.device) -> None:
        self.series, self.config, self.device = series, config, device
        self.problem = prepare_problem(series, config, device)
        self.n_train = int(self.problem.train.numel())
        self.n_holdout = int(self.problem.holdout.numel())
        self.samples = int(config.samples or max(self.problem.vol_shape))
        per_epoch = max(1, math.ceil(self.n_train / config.batch_size))
        self.ramp_steps = int(round(config.sample_ramp_epochs * per_epoch))
        total = config.steps or max(1, math.ceil(config.epochs * self.n_train / config.batch_size))
        self.axis_hold_steps = int(round(config.axis_hold * total))
        static = config.align and not config.dynamic
        use_xcorr = static and config.shift_start == "xcorr"
        self.start = xcorr_start(series) if use_xcorr else series
        estimate = static and config.shared_axis and config.axis_start == "common-lines"
        self.axis_start = common_line_axis(self.start, shifts_aligned=use_xcorr) if estimate else 0.0

    def build_model(self) -> InrModel:
        torch.manual_seed(self.config.seed)
        s = self.series
        model = InrModel(self.config, s.angles, s.times, self.problem.vol_shape,
                         initial_poses=initial_poses(self.start), scale=self.problem.scale,
                         pixel_size=s.pixel_size, axis_start=self.axis_start)
        return model.to(self.device)

    def _split(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _, ny, nx = self.series.shape
        flat = flat.to(self.device)
        return flat // (ny * nx), (flat // nx) % ny, flat % nx

    def lr_scales(self, model: InrModel) -> list[tuple[list[nn.Parameter], float]]:
        """The field at ``lr``, the poses at ``pose_lr`` (their own Adam parameter group)."""
        return model.lr_scales()

    def samples_at(self, step: int) -> int:
        """Samples per ray at ``step`` (the ramp)."""
        return sample_count(step, start=min(self.config.samples_start, self.samples), end=self.samples,
                            ramp_steps=self.ramp_steps)

    def batch_loss(self, net: nn.Module, indices: torch.Tensor, step: int) -> torch.Tensor:
        cfg = self.config
        flat = self.problem.train[indices]
        views, rows, cols = self._split(flat)
        regularised = cfg.tv_weight > 0 or (cfg.dynamic and cfg.time_tv_weight > 0)
        pred, tv = net(views, rows, cols, n_samples=self.samples_at(step), jitter=True,
                       tv_fraction=cfg.tv_fraction if regularised else 0.0, hold_axis=step < self.axis_hold_steps)
        target = self.problem.pixels[flat.to(self.device)]
        return F.smooth_l1_loss(pred, target, beta=cfg.smooth_l1_beta) + cfg.tv_weight * tv[0] + \
            cfg.time_tv_weight * tv[1]

    def holdout_losses(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        flat = self.problem.holdout[indices]
        views, rows, cols = self._split(flat)
        pred, _ = model(views, rows, cols, n_samples=self.samples)
        target = self.problem.pixels[flat.to(self.device)]
        return F.smooth_l1_loss(pred, target, beta=self.config.smooth_l1_beta, reduction="none")

    @torch.no_grad()
    def collapsed(self, model: nn.Module) -> str | None:
        """A field that is constant over the box (e.g. after a far too large learning rate)."""
        coarse = torch.from_numpy(model.volume((8, 8, 8)))
        mean = float(coarse.abs().mean())
        if float(coarse.max() - coarse.min()) <= COLLAPSE_RELATIVE_SPREAD * max(mean, 1e-12):
            return f"the field is constant ({float(coarse.mean()):.3g} everywhere)"
        return None

    def describe(self) -> dict[str, Any]:
        s, p = self.series, self.problem
        return {
            "config": {**self.config.to_dict(), "device": str(self.device), "samples": self.samples},
            "derived": {"scale": p.scale, "vol_shape": list(p.vol_shape), "holdout_pixels": self.n_holdout,
                        "train_pixels": self.n_train, "sample_ramp_steps": self.ramp_steps,
                        "pose_lr_scale": self.config.pose_lr / self.config.lr, "axis_start_deg": self.axis_start,
                        "shift_start_rms_px": float(np.sqrt(np.mean(initial_poses(self.start)[:, 2:] ** 2))),
                        "axis_hold_steps": self.axis_hold_steps},
            "data": {"shape": list(s.shape),
                     "fingerprint": fingerprint(s.images, s.angles, s.times,
                                                *(() if s.poses is None else (s.poses,))),
                     "angle_range": [float(s.angles.min()), float(s.angles.max())], "pixel_size": s.pixel_size},
        }

    def save(self, path: Path, model: nn.Module, extra: dict[str, Any]) -> None:
        save_model(path, model, overwrite=True, extra=extra)
