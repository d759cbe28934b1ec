"""The training loop every learned method runs in, and the interface a method implements.

:func:`train` owns what is common to all methods: the run folder and its lock,
checkpoints (every ``checkpoint_every`` steps, every ``checkpoint_minutes``,
on Ctrl-C/SIGTERM, at the end) and bit-exact resume, progress, the holdout
stopping rule with best-state keeping, rollback on a non-finite loss with a
halved learning rate, detection of a collapsed model, ``metrics.csv``,
``model.pt`` and ``summary.json``, and ``torchrun`` data parallelism. A
method supplies the model, the loss of a batch of its training samples and
the per-unit loss of its held-out units (see :class:`Method`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
from tqdm.auto import tqdm

import tomotime
from tomotime.device import resolve_device
from tomotime.errors import InputError, TomotimeError
from tomotime.io.jsonfile import write_json
from tomotime.training.checkpoint import CHECKPOINT_NAME, read_checkpoint, write_checkpoint, write_metrics_csv
from tomotime.training.config import TrainingConfig
from tomotime.training.distributed import LOCAL, DistributedContext, init_distributed
from tomotime.training.rundir import prepare_run_dir, run_lock
from tomotime.training.signals import InterruptFlag, TrainingInterrupted
from tomotime.training.state import TrainState
from tomotime.training.stopping import HoldoutEstimate

__all__ = ["Method", "TrainResult", "TrainingCollapsed", "train", "train_on", "RESUMABLE", "MAX_NAN_EVENTS"]

log = logging.getLogger(__name__)

MAX_NAN_EVENTS = 3
#: Options that may change when a run is resumed; every other option must match the checkpoint's.
RESUMABLE = ("steps", "epochs", "patience", "min_fraction", "time_limit", "checkpoint_every", "checkpoint_minutes",
             "device")
_EVAL_CHUNK = 256


class TrainingCollapsed(TomotimeError):
    """The model stopped producing anything useful (constant output, or no progress at all)."""


@runtime_checkable
class Method(Protocol):
    """What a learned method gives the engine.

    Attributes
    ----------
    name : str
        Method name, stored in checkpoints and summaries (e.g. ``"dipster"``).
    config : TrainingConfig
        The method's validated configuration (a subclass of :class:`TrainingConfig`).
    n_train : int
        Training samples; an epoch uses each once, ``config.batch_size`` per step.
    n_holdout : int
        Held-out units evaluated for stopping (0: no holdout).
    """

    name: str
    config: TrainingConfig
    n_train: int
    n_holdout: int

    def build_model(self) -> nn.Module:
        """A freshly initialised network on the training device (seeded by the method)."""

    def batch_loss(self, net: nn.Module, indices: torch.Tensor, step: int) -> torch.Tensor:
        """Scalar mean loss of the training samples ``indices`` (CPU int64) at ``step``; call ``net``."""

    def holdout_losses(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        """Loss of each held-out unit ``indices``, shape ``(len(indices),)``; runs under ``no_grad``."""

    def describe(self) -> dict[str, Any]:
        """``{"config": resolved options, "data": {..., "fingerprint": str}, ...}``, plain types."""

    def collapsed(self, model: nn.Module) -> str | None:
        """Why the model's output is degenerate (e.g. constant), or None."""

    def save(self, path: Path, model: nn.Module, extra: dict[str, Any]) -> None:
        """Write the trained model to ``path`` (``overwrite`` allowed)."""

    # Optional: ``lr_scales(model) -> [(parameters, scale), ...]`` gives parameter groups their own
    # learning rate as a multiple of ``config.lr`` (see :class:`~tomotime.training.state.TrainState`).
    # Optional: ``stall_is_collapse = False`` leaves the verdict to ``collapsed`` alone, for methods whose
    # holdout may rightly never improve (a denoiser on pure noise: the initial near-mean output is already best).


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    model : nn.Module
        The trained network in eval mode: the kept state of the stopping rule
        (the latest whose smoothed holdout loss is not clearly above the best,
        see :mod:`.stopping`; without a holdout: the averaged or last weights).
    history : list of dict
        Metrics rows (``step``, ``train_loss``, ``holdout_loss``, ``holdout_se``,
        ``holdout_smoothed``, ``lr``, ``seconds``), one per evaluation, the first at step 0.
    best_step, steps, total_steps : int
        Step of the returned state, steps trained, steps planned.
    seconds : float
        Wall time of the training over all resumed segments.
    stopped_early : bool
        Whether the holdout stopping rule ended the run.
    stop_reason : str
        ``"completed"``, ``"holdout"`` (the stopping rule) or ``"time limit"``.
    best_holdout_loss : float
        Smoothed holdout loss of the returned state (NaN without a holdout).
    nan_events : list of int
        Steps at which a non-finite loss caused a rollback.
    run : dict
        The run's description (method, resolved configuration, data).
    run_dir : Path or None
    """

    model: nn.Module
    history: list[dict[str, float]]
    best_step: int
    steps: int
    total_steps: int
    seconds: float
    stopped_early: bool
    stop_reason: str
    best_holdout_loss: float
    nan_events: list[int]
    run: dict[str, Any]
    run_dir: Path | None


def _describe(method: Method, total: int, lr_step: int, dist: DistributedContext) -> dict[str, Any]:
    desc = method.describe()
    return {
        "method": method.name, **desc,
        "config": {**desc["config"], "steps": total, "lr_step": lr_step},
        "processes": dist.world_size, "tomotime_version": tomotime.__version__,
        "torch_version": str(torch.__version__), "python": platform.python_version(),
    }


def _check_resumable(saved: dict[str, Any], run: dict[str, Any], path: Path, *, lr_step_free: bool) -> None:
    if saved["run"]["data"]["fingerprint"] != run["data"]["fingerprint"]:
        raise InputError(f"{path}: the checkpoint was trained on other data; resume with the same data")
    old, new = saved["run"]["config"], run["config"]
    free = (*RESUMABLE, *(("lr_step",) if lr_step_free else ()))  # a derived period follows the new length
    changed = sorted(k for k in set(old) | set(new) if k not in free and old.get(k) != new.get(k))
    if changed:
        detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise InputError(f"{path}: cannot resume with changed options ({detail}); only "
                         f"{', '.join(RESUMABLE)} may change")


def _holdout(method: Method, state: TrainState) -> HoldoutEstimate:
    """Mean and standard error of the per-unit holdout loss, summed over the ranks' shares."""
    if method.n_holdout == 0:
        return HoldoutEstimate(math.nan, math.nan, 0)
    model = state.eval_model.eval()
    share = state.dist.share(torch.arange(method.n_holdout))
    sums = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, share.numel(), _EVAL_CHUNK):
            losses = method.holdout_losses(model, share[start:start + _EVAL_CHUNK]).double().cpu()
            sums += torch.stack([losses.sum(), (losses ** 2).sum()])
    total, squares = (state.dist.broadcast_value(state.dist.all_reduce_sum(float(v))) for v in sums)
    return HoldoutEstimate.from_sums(total, squares, method.n_holdout)


class _Checkpointer:
    """When and where checkpoints go (rank 0 with a run folder only)."""

    def __init__(self, run_dir: Path | None, method: Method, run: dict[str, Any], state: TrainState) -> None:
        cfg = method.config
        self.run_dir, self.method, self.run = run_dir, method, run
        every = cfg.checkpoint_every
        self.every = min(1000, max(1, math.ceil(state.total_steps / 10))) if every is None else every
        self.seconds = cfg.checkpoint_minutes * 60
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.run_dir is None or self.every == 0:
            return False
        return step % self.every == 0 or time.monotonic() - self.last >= self.seconds

    def write(self, payload: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        write_checkpoint(self.run_dir / CHECKPOINT_NAME, self.method.name, {"run": self.run, "state": payload})
        write_metrics_csv(self.run_dir / "metrics.csv", payload["history"])
        self.last = time.monotonic()


def _rollback(state: TrainState, good: dict[str, Any], value: float, name: str) -> dict[str, Any]:
    """Return to the last good state with half the learning rate, or stop after too many failures."""
    events = [*state.nan_events, state.step + 1]
    if len(events) >= MAX_NAN_EVENTS:
        raise TomotimeError(
            f"{name} training diverged: the loss was {value} (non-finite) at steps {events} even after halving "
            f"the learning rate (now {state.lr:.3g}); no model was written. Try a smaller lr, a longer warm-up "
            "or another loss.")
    seconds = state.seconds
    state.restore(good)
    state.nan_events, state.elapsed = events, seconds
    state.halve_lr()
    log.warning("non-finite loss at step %d: rolled back to step %d, learning rate halved to %.3g",
                events[-1], state.step, state.lr)
    return state.payload()


def _check_collapse(method: Method, state: TrainState) -> None:
    if state.step <= state.stopping.warmup:
        return
    with torch.no_grad():  # the trained weights: a collapse shows there first, the average follows
        why = method.collapsed(state.model.eval()) if hasattr(method, "collapsed") else None
    stuck = state.stopped_early or state.stopping.stale >= max(5, state.config.patience or 5)
    if why is None and stuck and getattr(method, "stall_is_collapse", True) and state.stopping.never_improved():
        why = "the holdout loss never improved on the initial model"
    if why is not None:
        raise TrainingCollapsed(
            f"{method.name} training collapsed at step {state.step}: {why} (learning rate {state.lr:.3g}); "
            "no model was written. Try a smaller lr (e.g. 10x smaller) or a longer warm-up.")


def _evaluate(method: Method, state: TrainState) -> dict[str, float]:
    estimate = _holdout(method, state)
    row = state.record(estimate.mean, estimate.se)
    _check_collapse(method, state)
    return row


def _loop(method: Method, state: TrainState, ckpt: _Checkpointer, *, progress: bool | None,
          callback: Callable[[int, dict[str, Any]], None] | None) -> None:
    cfg = method.config
    if not state.history:
        _evaluate(method, state)  # the initial model: the start of every curve
    good, busy, holdout = state.payload(), False, math.nan
    bar = tqdm(total=state.total_steps, initial=state.step, desc=method.name, unit="step", dynamic_ncols=True,
               disable=(None if progress is None else not progress) if state.dist.is_main else True, leave=False)
    loss_of = lambda net, idx: method.batch_loss(net, idx, state.step)  # noqa: E731
    try:
        with InterruptFlag() as flag:
            while not state.done:
                busy = True
                loss = state.train_step(loss_of)
                if not math.isfinite(loss):
                    good = _rollback(state, good, loss, method.name)
                    bar.reset(total=state.total_steps)
                    bar.update(state.step)
                    continue
                row = None
                limit = cfg.time_limit
                state.timed_out = limit is not None and state.dist.any(state.seconds >= 60 * limit)
                if state.step % cfg.eval_every == 0 or state.step >= state.total_steps or state.timed_out:
                    row = _evaluate(method, state)
                    holdout, good = row["holdout_loss"], state.payload()
                if ckpt.due(state.step):
                    ckpt.write(good if row else state.payload())
                busy = False
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}", holdout=f"{holdout:.4g}", refresh=False)
                if callback is not None:
                    callback(state.step, {"loss": loss, "lr": state.lr,
                                          "holdout_loss": None if row is None else row["holdout_loss"],
                                          "model": None if row is None else state.eval_model})
                if state.dist.any(flag.requested):
                    raise TrainingInterrupted(flag.signum or 2)
    except KeyboardInterrupt:
        if ckpt.run_dir is not None:
            state_now = good if busy else state.payload()  # a second signal may land inside a step
            ckpt.write(state_now)
            log.warning("interrupted; checkpoint of step %d written to %s (resume with resume=True)",
                        state_now["step"], ckpt.run_dir / CHECKPOINT_NAME)
        raise
    finally:
        bar.close()


def _finish(method: Method, state: TrainState, ckpt: _Checkpointer, run: dict[str, Any]) -> TrainResult:
    use_best = method.n_holdout > 0 and math.isfinite(state.stopping.kept)
    ckpt.write(state.payload())
    model = state.finish(use_best)
    result = TrainResult(
        model=model, history=list(state.history), best_step=state.stopping.kept_step if use_best else state.step,
        steps=state.step, total_steps=state.total_steps, seconds=state.seconds, stopped_early=state.stopped_early,
        stop_reason="holdout" if state.stopped_early else "time limit" if state.timed_out else "completed",
        best_holdout_loss=state.stopping.kept if use_best else math.nan, nan_events=list(state.nan_events),
        run=run, run_dir=ckpt.run_dir)
    if ckpt.run_dir is not None:
        method.save(ckpt.run_dir / "model.pt", model, {"best_step": result.best_step})
        write_json(ckpt.run_dir / "summary.json", {
            "method": method.name, "steps": result.steps, "total_steps": result.total_steps,
            "best_step": result.best_step,
            "best_holdout_loss": result.best_holdout_loss if use_best else None,
            "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
            "nan_events": result.nan_events,
            "seconds": round(result.seconds, 3),
            "final_train_loss": next((r["train_loss"] for r in reversed(state.history)
                                      if math.isfinite(r["train_loss"])), None),
            "model": "model.pt", **{k: v for k, v in run.items() if k not in ("method", "config")},
        }, overwrite=True)
    return result


def train(method: Method, *, run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          progress: bool | None = None, callback: Callable[[int, dict[str, Any]], None] | None = None,
          dist: DistributedContext = LOCAL) -> TrainResult:
    """Train ``method``'s model (see the module description).

    Parameters
    ----------
    method : Method
        The method, with its data prepared on the training device.
    run_dir : path, optional
        Folder for ``config.json``, ``checkpoint.pt``, ``metrics.csv``,
        ``model.pt`` and ``summary.json`` (locked while the run uses it).
        Without it nothing is written.
    resume : bool
        Continue from ``run_dir/checkpoint.pt`` bit for bit (on the same
        device); starts afresh when there is none. Only ``RESUMABLE`` options may differ.
    overwrite : bool
        Replace the results of an earlier run in ``run_dir``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    callback : callable, optional
        ``callback(step, info)`` after every step on every rank; ``info`` has
        ``loss``, ``lr``, and at evaluations ``holdout_loss`` and ``model`` (the
        evaluated weights; both None between evaluations).
    dist : DistributedContext
        This process's place under ``torchrun`` (rank 0 alone writes ``run_dir``).

    Raises
    ------
    InputError
        Bad options, a checkpoint of other data or options, a folder in use by another run.
    OutputExistsError
        If ``run_dir`` holds an earlier run and neither ``resume`` nor ``overwrite`` is set.
    TomotimeError
        If the loss became non-finite ``MAX_NAN_EVENTS`` times, the model
        collapsed (:class:`TrainingCollapsed`), or the disk is full.
    TrainingInterrupted
        (a ``KeyboardInterrupt``) on Ctrl-C or SIGTERM, after the checkpoint was written.
    """
    cfg = method.config
    total = cfg.steps or max(1, math.ceil(cfg.epochs * method.n_train / cfg.batch_size))
    lr_step = cfg.lr_step or max(1, total // 3)
    dist.check_batch(min(cfg.batch_size, method.n_train))
    run = _describe(method, total, lr_step, dist)
    path = None if run_dir is None else Path(run_dir)
    writer = path if dist.is_main else None
    with contextlib.ExitStack() as held:  # the run folder's lock, released however the run ends
        saved = None
        with dist.together(f"opening the run folder {path}"):
            if writer is not None:
                held.enter_context(run_lock(writer))
                if prepare_run_dir(writer, resume=resume, overwrite=overwrite):
                    saved = read_checkpoint(writer / CHECKPOINT_NAME, method.name)
        saved = dist.broadcast_object(saved)
        model = method.build_model()
        scales = method.lr_scales(model) if hasattr(method, "lr_scales") else None
        state = TrainState(model, cfg, n_train=method.n_train, total_steps=total, lr_step=lr_step, dist=dist,
                           lr_scales=scales)
        if saved is not None:
            _check_resumable(saved, run, path / CHECKPOINT_NAME,
                             lr_step_free=cfg.lr_step is None or cfg.lr_schedule != "step")
            why = state.incompatible(saved["state"])
            if why is not None:
                raise InputError(f"{path / CHECKPOINT_NAME}: cannot resume: {why} (written by another version of "
                                 f"{method.name}); start afresh with overwrite")
            state.restore(saved["state"])
            log.info("resuming %s at step %d of %d", path, state.step, total)
        if writer is not None:
            write_json(writer / "config.json", run["config"], overwrite=True)
        ckpt = _Checkpointer(writer, method, run, state)
        _loop(method, state, ckpt, progress=progress, callback=callback)
        result = _finish(method, state, ckpt, run)
    dist.barrier()  # every rank returns once the run folder is complete
    return result


def train_on(device: str | torch.device, build: Callable[[torch.device], Method], **kwargs: Any) -> TrainResult:
    """Resolve ``device``, join the ``torchrun`` process group when launched so, build the method there, train it.

    ``build(device)`` returns the method with its data on ``device`` (this
    rank's GPU under ``torchrun``); ``kwargs`` are those of :func:`train`.
    """
    target = resolve_device(device)
    ctx = init_distributed(target)
    return train(build(ctx.place(target)), dist=ctx, **kwargs)
