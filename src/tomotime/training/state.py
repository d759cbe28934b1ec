"""The mutable state of one training run: model, optimiser, schedule, averaged weights, bookkeeping.

Everything that changes during training lives in :class:`TrainState` and
round-trips through :meth:`TrainState.payload` / :meth:`TrainState.restore`,
which checkpoints, resumes and non-finite-loss rollbacks use. Samples are
drawn as one endless stream of per-epoch permutations, so every training
sample is used exactly once per epoch and the batch of a step is a pure
function of ``(seed, step)``: a resumed run follows the uninterrupted path.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from tomotime.training.checkpoint import get_rng_state, set_rng_state
from tomotime.training.config import TrainingConfig
from tomotime.training.distributed import LOCAL, DistributedContext
from tomotime.training.stopping import StoppingRule

__all__ = ["TrainState", "epoch_order", "lr_factor", "warmup_steps"]


def epoch_order(n_samples: int, epoch: int, *, seed: int) -> torch.Tensor:
    """Random permutation of ``n_samples`` for one epoch, a pure function of ``(seed, epoch)``."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n_samples, generator=gen)


def warmup_steps(config: TrainingConfig, total: int) -> int:
    """Length of the learning-rate warm-up in steps."""
    return round(config.lr_warmup * total)


def lr_factor(step: int, config: TrainingConfig, total: int, lr_step: int) -> float:
    """Learning rate at ``step`` as a fraction of ``config.lr``: linear warm-up, then the decay."""
    warm = warmup_steps(config, total)
    factor = min(1.0, (step + 1) / warm) if warm else 1.0
    if config.lr_schedule == "step":
        return factor * config.lr_gamma ** (step // lr_step)
    if config.lr_schedule == "cosine" and step >= warm:
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return factor * (config.lr_final + (1 - config.lr_final) * 0.5 * (1 + math.cos(math.pi * progress)))
    return factor


class TrainState:
    """Mutable state of one run.

    Parameters
    ----------
    model : nn.Module
        Freshly initialised (or to be restored) network, on the device.
    config : TrainingConfig
        Validated options.
    n_train : int
        Training samples (one epoch).
    total_steps, lr_step : int
        Resolved training length and StepLR period.
    dist : DistributedContext, optional
        This process's place in a data-parallel run (default: a single process).
    lr_scales : list of (parameters, float), optional
        Parameter groups with their learning rate as a multiple of ``config.lr``
        (e.g. pose parameters that need a much larger step); default one group.
        The schedule, warm-up and rollback halving apply to every group alike.
    """

    def __init__(self, model: nn.Module, config: TrainingConfig, *, n_train: int, total_steps: int,
                 lr_step: int, dist: DistributedContext = LOCAL,
                 lr_scales: list[tuple[list[nn.Parameter], float]] | None = None) -> None:
        self.model, self.config, self.dist = model, config, dist
        self.net = dist.wrap(model)  # what training calls; ``model`` is what is saved
        self.device = next(model.parameters()).device
        self.n_train, self.total_steps, self.lr_step = int(n_train), int(total_steps), int(lr_step)
        self.batch = min(config.batch_size, self.n_train)
        groups = [{"params": list(model.parameters())}] if lr_scales is None else \
            [{"params": params, "lr": config.lr * scale} for params, scale in lr_scales]
        self.optimizer = torch.optim.Adam(groups, lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.config, self.total_steps, self.lr_step))
        self.ema = None if config.ema_decay is None else AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(min(config.ema_decay, 1 - 10 / max(self.total_steps, 20))),
            use_buffers=True)
        self.stopping = StoppingRule(
            smoothing=config.holdout_smoothing, patience=config.patience, warmup=warmup_steps(config, self.total_steps),
            min_step=math.ceil(config.min_fraction * self.total_steps), min_improvement=config.min_improvement,
            margin=config.stop_margin)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.best_state = copy.deepcopy(self.eval_model.state_dict())
        self.stopped_early = False
        self.timed_out = False  # not saved: a resumed run may have a larger limit
        self.nan_events: list[int] = []
        self.loss_sum, self.loss_count = 0.0, 0
        self.elapsed, self._clock = 0.0, time.perf_counter()
        self._orders: dict[int, torch.Tensor] = {}

    # --- stepping -------------------------------------------------------------------------
    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated and exported: the moving average when enabled."""
        return self.model if self.ema is None else self.ema.module

    @property
    def done(self) -> bool:
        return self.stopped_early or self.timed_out or self.step >= self.total_steps

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self._clock

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            self._orders = {k: v for k, v in self._orders.items() if k >= epoch - 1}
            self._orders[epoch] = epoch_order(self.n_train, epoch, seed=self.config.seed)
        return self._orders[epoch]

    def batch_indices(self) -> torch.Tensor:
        """Training-sample indices of the current step (all ranks together)."""
        start = self.step * self.batch
        first, last = start // self.n_train, (start + self.batch - 1) // self.n_train
        stream = torch.cat([self._order(epoch) for epoch in range(first, last + 1)])
        offset = start - first * self.n_train
        return stream[offset:offset + self.batch]

    def train_step(self, loss_of) -> float:
        """One optimiser step with ``loss_of(net, indices)``; returns the loss (non-finite: nothing changed)."""
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        indices = self.batch_indices()
        share = self.dist.share(indices)
        loss = loss_of(self.net, share)
        if self.dist.active:
            # DDP averages over ranks; weighting by share size makes that the mean over the whole batch.
            loss = loss * (share.shape[0] * self.dist.world_size / indices.shape[0])
            value = self.dist.all_reduce_mean(float(loss.detach()))
        else:
            value = float(loss.detach())
        if not math.isfinite(value):
            return value
        loss.backward()
        clip = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if not torch.isfinite(grad_norm):
            return math.nan
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.step += 1
        self.loss_sum += value
        self.loss_count += 1
        return value

    def record(self, holdout_mean: float, holdout_se: float) -> dict[str, float]:
        """Feed the stopping rule, keep the best state, append and return a metrics row."""
        if self.stopping.update(self.step, holdout_mean, holdout_se):
            self.best_state = copy.deepcopy(self.eval_model.state_dict())
        self.stopped_early = self.dist.broadcast_flag(self.stopping.should_stop(self.step))
        row = {"step": self.step, "train_loss": self.loss_sum / self.loss_count if self.loss_count else math.nan,
               "holdout_loss": holdout_mean, "holdout_se": holdout_se, "holdout_smoothed": self.stopping.smoothed,
               "lr": self.lr, "seconds": self.seconds}
        self.history.append(row)
        self.loss_sum, self.loss_count = 0.0, 0
        return row

    def halve_lr(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] *= 0.5
        self.scheduler.base_lrs = [lr * 0.5 for lr in self.scheduler.base_lrs]

    def finish(self, use_best: bool) -> nn.Module:
        """Put the exported weights (best by holdout, else the averaged or last ones) into the model."""
        if use_best:
            self.eval_model.load_state_dict(self.best_state)
        if self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())
        return self.model.eval()

    # --- persistence ----------------------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        """A deep copy of the full state (for checkpoints and rollbacks)."""
        return copy.deepcopy({
            "step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": get_rng_state(self.device), "best_state": self.best_state, "stopping": self.stopping.state(),
            "stopped_early": self.stopped_early, "history": self.history, "nan_events": self.nan_events,
            "loss_accumulator": [self.loss_sum, self.loss_count], "seconds": self.seconds,
        })

    def incompatible(self, payload: dict[str, Any]) -> str | None:
        """Why ``payload`` cannot be restored here (other parameter names, shapes or groups), or None."""
        saved, own = payload["model"], self.model.state_dict()
        differ = sorted(k for k in set(saved) | set(own)
                        if k not in saved or k not in own or saved[k].shape != own[k].shape)
        if differ:
            return f"its model's parameters differ from this run's ({', '.join(differ[:4])})"
        groups, own_groups = len(payload["optimizer"]["param_groups"]), len(self.optimizer.param_groups)
        if groups != own_groups:
            return f"its optimiser has {groups} parameter group(s), this run {own_groups}"
        return None

    def restore(self, payload: dict[str, Any]) -> None:
        """Inverse of :meth:`payload` (the payload is copied, not shared)."""
        payload = copy.deepcopy(payload)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if self.ema is not None and payload["ema"] is not None:
            self.ema.load_state_dict(payload["ema"])
        set_rng_state(payload["rng"], self.device)
        self.step = int(payload["step"])
        self.best_state = payload["best_state"]
        self.stopping.load(payload["stopping"])
        self.stopped_early = bool(payload["stopped_early"])
        self.history = list(payload["history"])
        self.nan_events = list(payload["nan_events"])
        self.loss_sum, self.loss_count = float(payload["loss_accumulator"][0]), int(payload["loss_accumulator"][1])
        self.elapsed, self._clock = float(payload["seconds"]), time.perf_counter()
