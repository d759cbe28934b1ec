"""DIP-STER as a method of the training engine: samples are (projection, detector row) pairs.

Training sample ``(i, k)``: the slice generated at ``(t_ik, y_k, theta_ik)`` is
projected at ``theta_ik`` and compared with row ``k`` of projection ``i``;
``t_ik`` and ``theta_ik`` are the time and angle at which that row was
recorded (those of the projection unless the frame has a row lag, see
``DipsterConfig.row_lag``). With learned corrections (``config.corrections``)
the slice of the row the detector saw is generated and the projected row
corrected (see :mod:`.corrections`). Held-out units are such pairs too (see
``DipsterConfig.holdout_unit``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from tomotime.data import TiltSeries
from tomotime.models.generator import auto_seed_size
from tomotime.physics import project_slices
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.corrections import warn_if_unidentifiable
from tomotime.recon.dipster.losses import data_loss, ramp_filter, total_variation, total_variation_1d
from tomotime.recon.dipster.model import SpaceTimeDIP
from tomotime.recon.dipster.problem import TrainingProblem, prepare_problem
from tomotime.recon.dipster.store import save_model
from tomotime.training import fingerprint

__all__ = ["DipsterMethod", "pair_losses", "predict_rows", "COLLAPSE_RELATIVE_SPREAD"]

#: Generated slices whose spread is below this fraction of the data's (normalised) level count as collapsed.
COLLAPSE_RELATIVE_SPREAD = 1e-4


def predict_rows(model: nn.Module, problem: TrainingProblem, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated slices ``(B, Z, X)`` and predicted detector rows ``(B, X)`` of ``(projection, row)`` pairs ``(B, 2)``.

    Each slice is made at the time and angle of its row and projected at that
    angle in one call of :func:`~tomotime.physics.project_slices` (cost linear
    in ``B``); learned corrections are applied. ``model`` may be wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` (called, so that its gradient hooks run).
    """
    proj, rows = pairs[:, 0].to(problem.images.device), pairs[:, 1].to(problem.images.device)
    theta = problem.row_angles[proj, rows]
    corrections = getattr(model, "module", model).corrections
    source = rows.to(torch.float64) if corrections is None else corrections.source_rows(proj, rows)
    slices = model(problem.row_times[proj, rows], source, theta)
    projected = project_slices(slices, theta)
    if corrections is not None:
        projected = corrections.apply(projected, proj)
    return slices, projected


def pair_losses(model: nn.Module, problem: TrainingProblem, pairs: torch.Tensor, *, kind: str, beta: float,
                tv_weight: float = 0.0, projection_tv_weight: float = 0.0, per_pair: bool = False,
                residual_filter: str = "none") -> torch.Tensor:
    """Data loss (plus TV terms) of ``(projection, row)`` samples ``(B, 2)``: the batch mean, or one per pair.

    ``tv_weight`` weights the 2D TV of the generated slices, ``projection_tv_weight``
    the 1D TV of the predicted rows along the detector (see :func:`predict_rows`);
    ``residual_filter="ramp"`` filters the residual with :func:`.losses.ramp_filter` first.
    """
    slices, projected = predict_rows(model, problem, pairs)
    residual = projected - problem.images[pairs[:, 0].to(problem.images.device), pairs[:, 1].to(problem.images.device)]
    if residual_filter == "ramp":
        residual = ramp_filter(residual)
    loss = data_loss(residual, kind=kind, scale=problem.gm_scale, beta=beta, dim=-1 if per_pair else None)
    if tv_weight > 0:
        loss = loss + tv_weight * total_variation(slices)
    if projection_tv_weight > 0:
        loss = loss + projection_tv_weight * total_variation_1d(projected)
    return loss


class DipsterMethod:
    """The engine's view of a DIP-STER run on one tilt series (see :class:`tomotime.training.Method`).

    Parameters
    ----------
    series : TiltSeries
        Projections ``(N, Y, X)`` with angles (degrees), times (seconds) and optional poses.
    config : DipsterConfig
    device : torch.device
        Where the data and the model live.
    """

    name = "dipster"

    def __init__(self, series: TiltSeries, config: DipsterConfig, device: torch.device) -> None:
        self.series, self.config, self.device = series, config, device
        self.problem = prepare_problem(series, config, device)
        self.n_train = int(self.problem.train_pairs.shape[0])
        self.n_holdout = int(self.problem.holdout_pairs.shape[0])
        if config.corrections:
            warn_if_unidentifiable(series.times, config.correction_window)

    def build_model(self) -> SpaceTimeDIP:
        s, p = self.series, self.problem
        torch.manual_seed(self.config.seed)
        model = SpaceTimeDIP(
            self.config, p.slice_shape, (float(p.row_times.min()), float(p.row_times.max())),
            (float(p.row_angles.min()), float(p.row_angles.max())), p.normalisation, n_rows=s.shape[1],
            acquisition={"times": s.times, "angles": s.angles}, pixel_size=s.pixel_size)
        return model.to(self.device)

    def lr_scales(self, model: nn.Module) -> list[tuple[list[nn.Parameter], float]]:
        """The network at ``lr``; the per-view corrections at ``correction_lr_scale`` times it."""
        if model.corrections is None:
            return [(list(model.parameters()), 1.0)]
        extra = list(model.corrections.parameters())
        ids = {id(q) for q in extra}
        return [([q for q in model.parameters() if id(q) not in ids], 1.0), (extra, self.config.correction_lr_scale)]

    def batch_loss(self, net: nn.Module, indices: torch.Tensor, step: int) -> torch.Tensor:
        cfg = self.config
        kind = "l2" if step < cfg.warmup_steps else cfg.loss
        loss = pair_losses(net, self.problem, self.problem.train_pairs[indices], kind=kind, beta=cfg.smooth_l1_beta,
                           tv_weight=cfg.tv_weight, projection_tv_weight=cfg.projection_tv_weight,
                           residual_filter=cfg.residual_filter)
        corrections = getattr(net, "module", net).corrections
        if corrections is not None and cfg.correction_weight > 0:
            loss = loss + cfg.correction_weight * corrections.penalty(self.problem.data_range)
        return loss

    def holdout_losses(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        return pair_losses(model, self.problem, self.problem.holdout_pairs[indices], kind=self.config.loss,
                           beta=self.config.smooth_l1_beta, per_pair=True)

    @torch.no_grad()
    def collapsed(self, model: nn.Module) -> str | None:
        """A model whose slices are constant (e.g. all zero after a far too large learning rate)."""
        pairs = self.problem.train_pairs[torch.linspace(0, self.n_train - 1, 16).long()]
        proj, rows = pairs[:, 0].to(self.device), pairs[:, 1].to(self.device)
        slices = model(self.problem.times[proj], rows.to(torch.float64), self.problem.angles[proj])
        level = float(self.problem.images.abs().mean()) / max(self.problem.slice_shape[0], 1)
        spread = float(slices.max() - slices.min())
        if spread <= COLLAPSE_RELATIVE_SPREAD * max(level, 1e-12):
            return f"the generated slices are constant ({float(slices.mean()):.3g} everywhere)"
        return None

    def describe(self) -> dict[str, Any]:
        p, s, cfg = self.problem, self.series, self.config
        resolved = {**cfg.to_dict(), "gm_scale": p.gm_scale, "data_offset": p.normalisation.offset,
                    "thickness": p.slice_shape[0], "device": str(self.device),
                    "seed_size": cfg.seed_size or auto_seed_size(max(p.slice_shape))}
        return {
            "config": resolved,
            "derived": {"noise_estimate": p.noise_estimate, "normalisation": p.normalisation.to_dict(),
                        "holdout_unit": cfg.holdout_unit, "holdout_samples": self.n_holdout,
                        "train_samples": self.n_train, "slice_shape": list(p.slice_shape),
                        "poses_applied": s.poses is not None},
            "data": {"shape": list(s.shape),
                     "fingerprint": fingerprint(s.images, s.angles, s.times,
                                                *(() if s.poses is None else (s.poses,))),
                     "time_range": [float(s.times[0]), float(s.times[-1])],
                     "angle_range": [float(s.angles.min()), float(s.angles.max())], "pixel_size": s.pixel_size},
        }

    def save(self, path: Path, model: nn.Module, extra: dict[str, Any]) -> None:
        save_model(path, model, overwrite=True, extra=extra)
