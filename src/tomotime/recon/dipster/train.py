"""Training of DIP-STER on a (dynamic) tilt series.

Training sample = (projection ``i``, detector row ``k``): the slice generated
at ``(t_i, y_k, theta_i)`` is projected at ``theta_i`` and compared with
``images[i, k, :]``. A run folder, when given, receives ``config.json`` at the
start (the configuration with every data-derived default resolved, itself a
valid run file), ``checkpoint.pt`` every ``checkpoint_every`` steps and on
Ctrl-C, and ``metrics.csv``, ``model.pt`` and ``summary.json`` (outcome, data
description, normalisation, holdout, versions) at the end. Under ``torchrun``
the processes train one model data-parallel and rank 0 alone writes the run
folder, see :mod:`.distributed`.
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import tomotime
from tomotime.data import TiltSeries
from tomotime.device import resolve_device
from tomotime.errors import InputError, OutputExistsError, TomotimeError
from tomotime.io.jsonfile import write_json
from tomotime.models.generator import auto_seed_size
from tomotime.recon.dipster.checkpoint import (
    CHECKPOINT_NAME,
    InterruptFlag,
    data_fingerprint,
    read_checkpoint,
    write_checkpoint,
    write_metrics_csv,
)
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.distributed import DistributedContext, init_distributed
from tomotime.recon.dipster.model import SpaceTimeDIP
from tomotime.recon.dipster.problem import TrainingProblem, prepare_problem
from tomotime.recon.dipster.session import TrainingSession
from tomotime.recon.dipster.store import save_model

__all__ = ["TrainResult", "train_dipster", "MAX_NAN_EVENTS"]

log = logging.getLogger(__name__)

MAX_NAN_EVENTS = 3
#: Options that may change when a run is resumed; everything else must match the checkpoint.
RESUMABLE = ("steps", "epochs", "patience", "checkpoint_every", "device")
RUN_FILES = (CHECKPOINT_NAME, "model.pt", "summary.json", "metrics.csv", "config.json")


@dataclass
class TrainResult:
    """Outcome of :func:`train_dipster`.

    Attributes
    ----------
    model : SpaceTimeDIP
        The trained network, holding the best state by holdout loss (the last
        state without a holdout), in eval mode.
    history : list of dict
        Metrics rows: ``step``, ``train_loss``, ``holdout_loss``, ``lr``, ``seconds``.
    best_step : int
        Step of the returned state.
    seconds : float
        Wall time of the training, over all resumed segments.
    run_dir : Path or None
        The run folder.
    steps : int
        Steps trained.
    stopped_early : bool
        Whether the holdout patience ended the run.
    best_holdout_loss : float
        Holdout loss of the returned state (NaN without a holdout).
    holdout : numpy.ndarray
        Indices of the held-out projections.
    nan_events : list of int
        Steps at which a non-finite loss caused a rollback.
    gm_scale : float
        Residual scale of the data loss, normalised units.
    """

    model: SpaceTimeDIP
    history: list[dict[str, float]]
    best_step: int
    seconds: float
    run_dir: Path | None
    steps: int
    stopped_early: bool
    best_holdout_loss: float
    holdout: np.ndarray
    nan_events: list[int]
    gm_scale: float


def _describe_run(series: TiltSeries, config: DipsterConfig, problem: TrainingProblem, *, total_steps: int,
                  lr_step: int, device: torch.device) -> dict[str, Any]:
    """What a run is: the resolved configuration (``config.json``), derived values and the data."""
    resolved = {**config.to_dict(), "steps": total_steps, "lr_step": lr_step, "gm_scale": problem.gm_scale,
                "data_offset": problem.normalisation.offset, "thickness": problem.slice_shape[0],
                "seed_size": config.seed_size or auto_seed_size(max(problem.slice_shape)), "device": str(device)}
    return {
        "method": "dipster",
        "config": resolved,
        "derived": {
            "noise_estimate": problem.noise_estimate, "normalisation": problem.normalisation.to_dict(),
            "holdout": problem.holdout.tolist(), "train_samples": int(problem.train_pairs.shape[0]),
            "slice_shape": list(problem.slice_shape),
        },
        "data": {
            "shape": list(series.shape), "fingerprint": data_fingerprint(series),
            "time_range": [float(series.times[0]), float(series.times[-1])],
            "angle_range": [float(series.angles.min()), float(series.angles.max())],
            "pixel_size": series.pixel_size,
        },
        "tomotime_version": tomotime.__version__, "torch_version": str(torch.__version__),
        "python": platform.python_version(),
    }


def _open_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """Check the run folder; return the checkpoint to resume from, if any."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"run_dir={run_dir}: exists and is not a folder")
    checkpoint = run_dir / CHECKPOINT_NAME
    if resume:
        if checkpoint.exists():
            return read_checkpoint(checkpoint)
        log.info("%s: no checkpoint to resume from; starting a new run", run_dir)
        return None
    existing = [run_dir / f for f in RUN_FILES if (run_dir / f).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists; pass resume=True to continue that run, overwrite=True "
                                "to start again, or choose another run folder")
    for path in existing:
        path.unlink()
    return None


def _check_resumable(saved: dict[str, Any], run: dict[str, Any], path: Path, *, lr_step_free: bool) -> None:
    if saved["run"]["data"]["fingerprint"] != run["data"]["fingerprint"]:
        raise InputError(f"{path}: the checkpoint was trained on other data; resume with the same tilt series")
    old, new = saved["run"]["config"], run["config"]
    free = (*RESUMABLE, *(("lr_step",) if lr_step_free else ()))  # the scheduler state keeps its own period
    changed = sorted(k for k in set(old) | set(new) if k not in free and old.get(k) != new.get(k))
    if changed:
        detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise InputError(f"{path}: cannot resume with changed options ({detail}); only "
                         f"{', '.join(RESUMABLE)} may change")


def _rollback(session: TrainingSession, good: dict[str, Any], value: float) -> dict[str, Any]:
    """Return to the last good state with half the learning rate, or stop after too many failures."""
    events = [*session.nan_events, session.step + 1]
    if len(events) >= MAX_NAN_EVENTS:
        raise TomotimeError(
            f"DIP-STER training diverged: the loss was {value} (non-finite) at steps {events} even after "
            f"halving the learning rate (now {session.lr:.3g}); no model was written. Try a smaller lr, a "
            "longer warmup_steps or a different loss."
        )
    seconds = session.seconds
    session.restore(good)
    session.nan_events = events
    session.elapsed = seconds
    session.halve_lr()
    log.warning("non-finite loss at step %d: rolled back to step %d, learning rate halved to %.3g",
                events[-1], session.step, session.lr)
    return session.payload()


def _build_model(series: TiltSeries, config: DipsterConfig, problem: TrainingProblem,
                 device: torch.device) -> SpaceTimeDIP:
    torch.manual_seed(config.seed)
    model = SpaceTimeDIP(
        config, problem.slice_shape, (float(series.times[0]), float(series.times[-1])),
        (float(series.angles.min()), float(series.angles.max())), problem.normalisation,
        n_rows=series.shape[1], acquisition={"times": series.times, "angles": series.angles},
        pixel_size=series.pixel_size,
    )
    return model.to(device)


def _finish(session: TrainingSession, run_dir: Path | None, run: dict[str, Any]) -> TrainResult:
    write = run_dir is not None and session.dist.is_main
    if write:
        write_checkpoint(run_dir / CHECKPOINT_NAME, {"run": run, "session": session.payload()})
    session.finish()
    model = session.model.eval()
    use_best = bool(session.problem.holdout.size) and math.isfinite(session.best["loss"])
    result = TrainResult(
        model=model, history=list(session.history), best_step=session.best["step"] if use_best else session.step,
        seconds=session.seconds, run_dir=run_dir, steps=session.step, stopped_early=session.stopped_early,
        best_holdout_loss=session.best["loss"] if use_best else math.nan, holdout=session.problem.holdout,
        nan_events=list(session.nan_events), gm_scale=session.problem.gm_scale,
    )
    if write:
        write_metrics_csv(run_dir / "metrics.csv", session.history)
        save_model(run_dir / "model.pt", model, overwrite=True, extra={"best_step": result.best_step})
        write_json(run_dir / "summary.json", {
            "method": "dipster", "steps": result.steps, "total_steps": session.total_steps,
            "best_step": result.best_step,
            "best_holdout_loss": result.best_holdout_loss if math.isfinite(result.best_holdout_loss) else None,
            "stopped_early": result.stopped_early, "nan_events": result.nan_events,
            "seconds": round(result.seconds, 3),
            "final_train_loss": session.history[-1]["train_loss"] if session.history else None,
            "model": "model.pt", **{k: v for k, v in run.items() if k not in ("method", "config")},
        }, overwrite=True)
    session.dist.barrier()  # every rank returns once the run folder is complete
    return result


def _open_shared_run_dir(run_dir: Path | None, ctx: DistributedContext, *, resume: bool,
                         overwrite: bool) -> dict[str, Any] | None:
    """:func:`_open_run_dir` on rank 0; the checkpoint to resume from reaches every rank."""
    if run_dir is None:
        return None
    if not ctx.active:
        return _open_run_dir(run_dir, resume=resume, overwrite=overwrite)
    saved = None
    with ctx.together(f"opening the run folder {run_dir}"):
        if ctx.is_main:
            saved = _open_run_dir(run_dir, resume=resume, overwrite=overwrite)
    return ctx.broadcast_object(saved)


def train_dipster(
    series: TiltSeries,
    config: DipsterConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a space-time deep image prior on a tilt series.

    Parameters
    ----------
    series : TiltSeries
        Projections ``(N, Y, X)`` with angles (degrees) and acquisition times (seconds).
    config : DipsterConfig, optional
        Hyperparameters (default: :class:`DipsterConfig()`); validated first.
    run_dir : path, optional
        Folder for ``config.json``, checkpoints, ``metrics.csv``, ``model.pt``
        and ``summary.json``. Without it nothing is written.
    resume : bool
        Continue from ``run_dir/checkpoint.pt`` (bit for bit on the same
        device); starts afresh when there is none. Only the options in
        ``RESUMABLE`` may differ from the checkpoint's.
    overwrite : bool
        Replace the results of an earlier run in ``run_dir``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    callback : callable, optional
        ``callback(step, info)`` after every step (on every rank); ``info`` has
        ``loss``, ``lr`` and ``holdout_loss`` (None between evaluations).

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        For bad options or data, before any training.
    OutputExistsError
        If ``run_dir`` holds an earlier run and neither ``resume`` nor ``overwrite`` is set.
    TomotimeError
        If the loss became non-finite ``MAX_NAN_EVENTS`` times.
    KeyboardInterrupt
        Re-raised after a checkpoint was written (with ``run_dir``).

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls this function
    with the same arguments; they share each batch of ``batch_size`` rows (the
    global batch, so the run follows the single-process optimisation path),
    agree on rollbacks and early stopping, and rank 0 alone writes
    ``run_dir``. Every rank returns the same trained model. See
    :mod:`tomotime.recon.dipster.distributed`.
    """
    config = (config if config is not None else DipsterConfig()).validate()
    device = resolve_device(config.device)
    ctx = init_distributed(device)
    device = ctx.place(device)
    problem = prepare_problem(series, config, device)
    ctx.check_batch(min(config.batch_size, problem.train_pairs.shape[0]))
    total = problem.total_steps(config)
    lr_step = config.lr_step or max(1, total // 3)
    run = _describe_run(series, config, problem, total_steps=total, lr_step=lr_step, device=device)
    run["derived"]["processes"] = ctx.world_size
    run_path = None if run_dir is None else Path(run_dir)
    saved = _open_shared_run_dir(run_path, ctx, resume=resume, overwrite=overwrite)
    session = TrainingSession(_build_model(series, config, problem, device), problem, config, total_steps=total,
                              lr_step=lr_step, dist=ctx)
    if saved is not None:
        _check_resumable(saved, run, run_path / CHECKPOINT_NAME, lr_step_free=config.lr_step is None)
        session.restore(saved["session"])
        log.info("resuming %s at step %d of %d", run_path, session.step, total)
    if run_path is not None and ctx.is_main:
        run_path.mkdir(parents=True, exist_ok=True)
        write_json(run_path / "config.json", run["config"], overwrite=True)
    _train_loop(session, run_path, run, progress=progress, callback=callback)
    return _finish(session, run_path, run)


def _train_loop(session: TrainingSession, run_dir: Path | None, run: dict[str, Any], *, progress: bool | None,
                callback: Callable[[int, dict[str, Any]], None] | None) -> None:
    cfg = session.config
    if not session.dist.is_main:
        run_dir, progress = None, False
    good = session.payload()
    busy = False
    holdout = math.nan
    bar = tqdm(total=session.total_steps, initial=session.step, desc="DIP-STER", unit="step", dynamic_ncols=True,
               disable=None if progress is None else not progress, leave=False)
    try:
        with InterruptFlag() as flag:
            while not session.done:
                busy = True
                loss = session.train_step()
                if not math.isfinite(loss):
                    good = _rollback(session, good, loss)
                    bar.reset(total=session.total_steps)
                    bar.update(session.step)
                    continue
                row = None
                if session.step % cfg.eval_every == 0 or session.step >= session.total_steps:
                    row = session.evaluate()
                    holdout = row["holdout_loss"]
                    good = session.payload()
                if run_dir is not None and cfg.checkpoint_every and session.step % cfg.checkpoint_every == 0:
                    write_checkpoint(run_dir / CHECKPOINT_NAME, {"run": run, "session": good if row else
                                                                 session.payload()})
                    write_metrics_csv(run_dir / "metrics.csv", session.history)
                busy = False
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}", holdout=f"{holdout:.4g}", refresh=False)
                if callback is not None:
                    callback(session.step, {"loss": loss, "lr": session.lr,
                                            "holdout_loss": None if row is None else row["holdout_loss"]})
                if session.dist.any(flag.requested):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if run_dir is not None:
            # A second Ctrl-C may land inside a step: then save the last consistent state.
            state = good if busy else session.payload()
            write_checkpoint(run_dir / CHECKPOINT_NAME, {"run": run, "session": state})
            write_metrics_csv(run_dir / "metrics.csv", state["history"])
            log.warning("interrupted; checkpoint of step %d written to %s (resume with resume=True)",
                        state["step"], run_dir / CHECKPOINT_NAME)
        raise
    finally:
        bar.close()
