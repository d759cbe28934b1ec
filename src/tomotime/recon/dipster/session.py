"""One DIP-STER training session: model, optimiser, schedule and bookkeeping, steppable and restorable.

Everything that changes during training lives here and round-trips through
:meth:`TrainingSession.payload` / :meth:`TrainingSession.restore`, which is
what checkpoints, resumes and NaN rollbacks use. Under ``torchrun`` each rank
trains on its share of every batch, see :mod:`.distributed`.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch

from tomotime.physics import project_slices
from tomotime.recon.dipster.checkpoint import get_rng_state, set_rng_state
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.distributed import LOCAL, DistributedContext
from tomotime.recon.dipster.losses import data_loss, total_variation
from tomotime.recon.dipster.model import SpaceTimeDIP
from tomotime.recon.dipster.problem import TrainingProblem
from tomotime.recon.dipster.sampling import epoch_order

__all__ = ["TrainingSession", "batch_loss"]

_EVAL_CHUNK = 256
#: Relative decrease of the holdout loss that counts as an improvement (for patience).
MIN_IMPROVEMENT = 1e-4


def batch_loss(model: SpaceTimeDIP | torch.nn.Module, problem: TrainingProblem, pairs: torch.Tensor, *,
               kind: str, beta: float, tv_weight: float) -> torch.Tensor:
    """Data loss plus TV for a batch of ``(projection, row)`` samples ``(B, 2)``.

    Each of the ``B`` generated slices is projected at its own angle: one call
    of :func:`~tomotime.physics.project_slices` with ``B`` slices, cost linear in ``B``.
    ``model`` may be wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
    (called, not ``.slices``, so that its gradient hooks run).
    """
    proj, rows = pairs[:, 0].to(problem.images.device), pairs[:, 1].to(problem.images.device)
    theta = problem.angles[proj]
    slices = model(problem.times[proj], rows.to(torch.float64), theta)
    residual = project_slices(slices, theta) - problem.images[proj, rows]
    loss = data_loss(residual, kind=kind, scale=problem.gm_scale, beta=beta)
    if tv_weight > 0:
        loss = loss + tv_weight * total_variation(slices)
    return loss


class TrainingSession:
    """Mutable state of one run.

    Parameters
    ----------
    model : SpaceTimeDIP
        Freshly initialised (or to be restored) network, on the device.
    problem : TrainingProblem
        The data.
    config : DipsterConfig
        Validated options.
    total_steps, lr_step : int
        Resolved training length and StepLR period.
    dist : DistributedContext, optional
        This process's place in a data-parallel run (default: a single process).
    """

    def __init__(self, model: SpaceTimeDIP, problem: TrainingProblem, config: DipsterConfig, *,
                 total_steps: int, lr_step: int, dist: DistributedContext = LOCAL) -> None:
        self.model, self.problem, self.config, self.dist = model, problem, config, dist
        self.net = dist.wrap(model)  # what training calls; ``model`` is what is saved and evaluated
        self.total_steps = int(total_steps)
        self.device = problem.images.device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=lr_step, gamma=config.lr_gamma)
        self.batch = min(config.batch_size, problem.train_pairs.shape[0])
        self.steps_per_epoch = max(1, problem.train_pairs.shape[0] // self.batch)
        self.step = 0
        self._order: tuple[int, torch.Tensor | None] = (-1, None)
        self.history: list[dict[str, float]] = []
        self.best = {"loss": math.inf, "step": 0, "state": copy.deepcopy(model.state_dict())}
        self.bad_evals = 0
        self.stopped_early = False
        self.nan_events: list[int] = []
        self.loss_sum, self.loss_count = 0.0, 0
        self.elapsed = 0.0
        self._clock = time.perf_counter()

    # --- stepping -------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.stopped_early or self.step >= self.total_steps

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self._clock

    def next_pairs(self) -> torch.Tensor:
        """The samples of the current step (all ranks together), a pure function of ``(seed, step)``."""
        epoch, offset = divmod(self.step, self.steps_per_epoch)
        if self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.problem.train_pairs.shape[0], epoch, seed=self.config.seed))
        return self.problem.train_pairs[self._order[1][offset * self.batch:(offset + 1) * self.batch]]

    def train_step(self) -> float:
        """One optimiser step; returns the loss (non-finite: nothing was updated)."""
        cfg = self.config
        kind = "l2" if self.step < cfg.warmup_steps else cfg.loss
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        pairs = self.next_pairs()
        share = self.dist.share(pairs)
        loss = batch_loss(self.net, self.problem, share, kind=kind, beta=cfg.smooth_l1_beta,
                          tv_weight=cfg.tv_weight)
        if self.dist.active:
            # DDP averages over ranks; weighting by share size makes that the mean over the whole batch.
            loss = loss * (share.shape[0] * self.dist.world_size / pairs.shape[0])
            value = self.dist.all_reduce_mean(float(loss.detach()))
        else:
            value = float(loss.detach())
        if not math.isfinite(value):
            return value
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), math.inf)
        if not torch.isfinite(grad_norm):
            return math.nan
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.loss_sum += value
        self.loss_count += 1
        return value

    @torch.no_grad()
    def holdout_loss(self) -> float:
        """Mean data loss (the configured loss, no TV) over every row of the held-out projections.

        With several ranks each evaluates its share; the value is rank 0's sum
        of all shares, identical on every rank.
        """
        pairs = self.problem.holdout_pairs
        if pairs.shape[0] == 0:
            return math.nan
        self.model.eval()
        share = self.dist.share(pairs)
        total = 0.0
        for start in range(0, share.shape[0], _EVAL_CHUNK):
            chunk = share[start:start + _EVAL_CHUNK]
            loss = batch_loss(self.model, self.problem, chunk, kind=self.config.loss,
                              beta=self.config.smooth_l1_beta, tv_weight=0.0)
            total += float(loss) * chunk.shape[0]
        if self.dist.active:
            total = self.dist.broadcast_value(self.dist.all_reduce_sum(total))
        return total / pairs.shape[0]

    def evaluate(self) -> dict[str, float]:
        """Holdout loss, best-state and patience bookkeeping; appends and returns a metrics row."""
        holdout = self.holdout_loss()
        if math.isfinite(holdout):
            if holdout < self.best["loss"] * (1 - MIN_IMPROVEMENT):
                self.best = {"loss": holdout, "step": self.step, "state": copy.deepcopy(self.model.state_dict())}
                self.bad_evals = 0
            elif self.step > self.config.warmup_steps:
                self.bad_evals += 1
            patience = self.config.patience
            self.stopped_early = self.dist.broadcast_flag(patience is not None and self.bad_evals >= patience)
        row = {"step": self.step, "train_loss": self.loss_sum / max(self.loss_count, 1), "holdout_loss": holdout,
               "lr": self.lr, "seconds": self.seconds}
        self.history.append(row)
        self.loss_sum, self.loss_count = 0.0, 0
        return row

    def halve_lr(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] *= 0.5
        self.scheduler.base_lrs = [lr * 0.5 for lr in self.scheduler.base_lrs]

    def finish(self) -> None:
        """Load the best state (by holdout loss) into the model, when there is a holdout."""
        if self.problem.holdout.size and math.isfinite(self.best["loss"]):
            self.model.load_state_dict(self.best["state"])

    # --- persistence ----------------------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        """A deep copy of the full state (for checkpoints and rollbacks)."""
        return copy.deepcopy({
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": get_rng_state(self.device),
            "best": self.best,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "nan_events": self.nan_events,
            "loss_accumulator": [self.loss_sum, self.loss_count],
            "seconds": self.seconds,
        })

    def restore(self, payload: dict[str, Any]) -> None:
        """Inverse of :meth:`payload` (the payload is copied, not shared)."""
        payload = copy.deepcopy(payload)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        set_rng_state(payload["rng"], self.device)
        self.step = int(payload["step"])
        self.best = payload["best"]
        self.bad_evals = int(payload["bad_evals"])
        self.stopped_early = bool(payload["stopped_early"])
        self.history = list(payload["history"])
        self.nan_events = list(payload["nan_events"])
        self.loss_sum, self.loss_count = float(payload["loss_accumulator"][0]), int(payload["loss_accumulator"][1])
        self.elapsed, self._clock = float(payload["seconds"]), time.perf_counter()
