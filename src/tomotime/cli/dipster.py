"""``tomotime reconstruct --method dipster``: train DIP-STER, keep the model, write the volume series.

Output folder ``OUT``:

* ``volumes.h5`` -- the volume series ``(T, Z, Y, X)``, streamed one time point at a time;
* ``model.pt`` -- the trained network (``tomotime query`` regenerates any time from it);
* ``summary.json`` -- command, input, resolved configuration, device, timings, model size,
  and the learned per-view corrections (``--corrections``);
* ``ensemble.json`` -- with ``--ensemble N``: the band (mean, lower, upper over the
  members) of the alloying %, the surface-to-volume ratio and the redistributed
  volume at each time; members ``1 .. N-1`` train in ``members/member_k/``
  (member 0 is the main run, seed ``--seed``);
* ``run/`` -- the training run folder: ``config.json`` (resolved, a valid run file),
  ``metrics.csv``, ``checkpoint.pt``, ``summary.json`` and ``model.pt`` of the run.

The three results are staged and published together (``summary.json`` last), so
a folder with a summary holds a complete result. The run folder lives outside
the staging area on purpose: on Ctrl-C the training writes a checkpoint there,
the command exits with code 130, and ``--resume`` continues from it. ``run/`` is
a sub-folder rather than ``OUT`` itself because the run has its own
``summary.json`` and ``model.pt``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import check_memory, check_run_outputs, parse_times, read_input, write_json
from tomotime.cli.training_run import EXIT_INTERRUPTED, RUN_FOLDER, method_config, training_output
from tomotime.data import TiltSeries
from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.recon.dipster import (
    LOSSES,
    MANIFOLDS,
    DipsterConfig,
    ExtrapolationWarning,
    save_model,
    train_dipster,
    volume_series,
)
from tomotime.recon.dipster.config import PAPER_PRESET, PAPER_PROJECTION_TV, RESIDUAL_FILTERS
from tomotime.recon.dipster.corrections import CorrectionWarning, check_identifiable
from tomotime.recon.dipster.ensemble import QUANTITIES, check_ensemble_size, ensemble_curves
from tomotime.recon.dipster.problem import choose_holdout
from tomotime.training import CHECKPOINT_NAME, is_main_process

__all__ = [
    "DipsterOptions",
    "run_dipster",
    "dipster_config",
    "ensemble_report",
    "PRESETS",
    "parse_angle",
    "parse_hidden",
    "storage_report",
    "format_storage",
    "extrapolation_warnings_as_lines",
    "RUN_FOLDER",
    "OUTPUTS",
    "EXIT_INTERRUPTED",
]

log = logging.getLogger(__name__)

SERIES_FILE = "volumes.h5"
MODEL_FILE = "model.pt"
SUMMARY = "summary.json"
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_FOLDER = "members"
OUTPUTS = (SERIES_FILE, MODEL_FILE, SUMMARY)

#: ``--preset`` values (applied over the run file, under the other command-line options).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": dict(PAPER_PRESET),
    "paper-experimental": {**PAPER_PRESET, "projection_tv_weight": PAPER_PROJECTION_TV},
}

_PANEL = "DIP-STER (--method dipster)"

RunFileOption = Annotated[Optional[Path], typer.Option(
    "--config", help="Run file (.yaml/.yml, .toml or .json) of DIP-STER options; command-line options override it. "
                     "With --resume and no --config: OUT/run/config.json.", rich_help_panel=_PANEL)]
StepsOption = Annotated[Optional[int], typer.Option("--steps", min=1, help="Training steps (overrides --epochs).",
                                                   rich_help_panel=_PANEL)]
EpochsOption = Annotated[Optional[float], typer.Option("--epochs", help="Training length in passes over all rows.",
                                                       rich_help_panel=_PANEL)]
LrOption = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.", rich_help_panel=_PANEL)]
BatchSizeOption = Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Detector rows per step.",
                                                        rich_help_panel=_PANEL)]
ManifoldOption = Annotated[Optional[Literal[MANIFOLDS]], typer.Option(
    "--manifold", help="Coordinates fed to the mapping network.", rich_help_panel=_PANEL)]
LossOption = Annotated[Optional[Literal[LOSSES]], typer.Option("--loss", help="Data loss.", rich_help_panel=_PANEL)]
HiddenOption = Annotated[Optional[str], typer.Option("--hidden", help="Mapping-network widths, e.g. 256,256.",
                                                     rich_help_panel=_PANEL)]
BaseChannelsOption = Annotated[Optional[int], typer.Option("--base-channels", min=1,
                                                           help="Generator channels at the seed.",
                                                           rich_help_panel=_PANEL)]
HoldoutOption = Annotated[Optional[float], typer.Option(
    "--holdout", help="Fraction of projections held out for early stopping, in [0, 0.5).", rich_help_panel=_PANEL)]
PatienceOption = Annotated[Optional[int], typer.Option("--patience", min=1, help="Holdout evaluations without "
                                                       "improvement before stopping.", rich_help_panel=_PANEL)]
SeedOption = Annotated[Optional[int], typer.Option("--seed", min=0, help="Seed of initialisation, holdout and "
                                                   "sampling.", rich_help_panel=_PANEL)]
QueryAngleOption = Annotated[Optional[str], typer.Option(
    "--query-angle", help="Tilt angle (deg) at which volumes are generated, or 'own' for the acquisition angle "
                          "at each time (default 0).", rich_help_panel=_PANEL)]
PresetOption = Annotated[Optional[Literal[tuple(PRESETS)]], typer.Option(
    "--preset", help="Training recipe: default (measured defaults), paper (the DIP-STER paper's, simulations: "
                     "cos/sin-theta manifold, Geman-McClure, lr 1e-4 with StepLR, batch 4, no TV) or "
                     "paper-experimental (plus the paper's 1D TV on the reprojection). Other options override it.",
    rich_help_panel=_PANEL)]
CorrectionsOption = Annotated[Optional[str], typer.Option(
    "--corrections", help="Per-view corrections learned with the network: some of gain,offset,shift "
                          "(e.g. gain,shift).", rich_help_panel=_PANEL)]
RowLagOption = Annotated[Optional[float], typer.Option(
    "--row-lag", help="Tilt advance during one frame (deg): row y was recorded at theta + lag * y / Y.",
    rich_help_panel=_PANEL)]
ResidualFilterOption = Annotated[Optional[Literal[RESIDUAL_FILTERS]], typer.Option(
    "--residual-filter", help="Filter of the training residual along the detector: ramp (weights its "
                              "frequencies as filtered backprojection does, so edges sharpen sooner) or none "
                              "(the paper's plain residual).", rich_help_panel=_PANEL)]
RowTimeLagOption = Annotated[Optional[float], typer.Option(
    "--row-time-lag", help="Time of one frame (s): row y was recorded at t + lag * y / Y.", rich_help_panel=_PANEL)]
EnsembleOption = Annotated[Optional[int], typer.Option(
    "--ensemble", help="Train N >= 2 members (seeds --seed .. --seed+N-1) and write the band of the alloying %, "
                       "S/V and redistribution to OUT/ensemble.json.", rich_help_panel=_PANEL)]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue the training in OUT/run from its "
                                                             "checkpoint.", rich_help_panel=_PANEL)]


@dataclasses.dataclass(frozen=True)
class DipsterOptions:
    """The DIP-STER options of ``tomotime reconstruct`` as given (None: not given)."""

    run_file: Path | None = None
    steps: int | None = None
    epochs: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    manifold: str | None = None
    loss: str | None = None
    hidden: str | None = None
    base_channels: int | None = None
    holdout: float | None = None
    patience: int | None = None
    seed: int | None = None
    query_angle: str | None = None
    preset: str | None = None
    corrections: str | None = None
    row_lag: float | None = None
    row_time_lag: float | None = None
    residual_filter: str | None = None
    ensemble: int | None = None
    resume: bool = False

    def given(self) -> list[str]:
        """Command-line flags of the options that were given."""
        return [_flag(f.name) for f in dataclasses.fields(self) if getattr(self, f.name) not in (None, False)]

    def overrides(self) -> dict[str, Any]:
        """The given options as :class:`DipsterConfig` values, checked."""
        for name, value, ok, expected in (
            ("lr", self.lr, lambda v: v > 0, "a positive learning rate"),
            ("epochs", self.epochs, lambda v: v > 0, "a positive number of passes"),
            ("holdout", self.holdout, lambda v: 0 <= v < 0.5, "a fraction in [0, 0.5)"),
            ("row_lag", self.row_lag, lambda v: abs(v) <= 90, "a tilt advance in degrees within [-90, 90]"),
            ("row_time_lag", self.row_time_lag, lambda v: v >= 0, "a non-negative frame time in seconds"),
        ):
            if value is not None and not (math.isfinite(value) and ok(value)):
                raise InputError(f"{_flag(name)}={value}: expected {expected}")
        angle = parse_angle(self.query_angle, name="--query-angle")
        if self.ensemble is not None:
            try:
                check_ensemble_size(self.ensemble)
            except InputError as exc:
                raise InputError(f"--ensemble={self.ensemble}: {str(exc).split(': ', 1)[1]}") from None
        if self.preset is not None and self.preset not in PRESETS:
            raise InputError(f"--preset={self.preset!r}: expected one of {', '.join(PRESETS)}")
        return {
            "corrections": self.corrections, "row_lag": self.row_lag, "row_time_lag": self.row_time_lag,
            "residual_filter": self.residual_filter,
            "steps": self.steps, "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
            "manifold": self.manifold, "loss": self.loss, "base_channels": self.base_channels,
            "hidden": None if self.hidden is None else parse_hidden(self.hidden),
            "holdout_fraction": self.holdout, "patience": self.patience, "seed": self.seed,
            "query_angle": angle if isinstance(angle, float) else None,
        }


def _flag(name: str) -> str:
    return "--config" if name == "run_file" else "--" + name.replace("_", "-")


def parse_hidden(text: str) -> tuple[int, ...]:
    """Parse ``--hidden`` widths such as ``"256,256"``."""
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise InputError(f"--hidden={text!r}: expected positive layer widths such as 256,256")
    return widths


def parse_angle(text: str | None, *, name: str) -> float | str | None:
    """Parse a query angle: degrees within [-90, 90], ``"own"``, or None (not given)."""
    if text is None:
        return None
    if text.strip().lower() == "own":
        return "own"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and abs(value) <= 90):
        raise InputError(f"{name}={text!r}: expected an angle in degrees within [-90, 90], or 'own'")
    return value


def dipster_config(options: DipsterOptions, *, run_dir: Path, thickness: int | None = None,
                   device: str = "auto") -> DipsterConfig:
    """The validated configuration: defaults, then the run file, then ``--preset``, then the other options.

    With ``--resume`` and no ``--config`` the run file is ``run_dir/config.json``
    (the configuration of the run being continued); its resolved device is
    replaced by ``device``. ``--epochs`` without ``--steps`` clears the run
    file's ``steps``. ``device="auto"`` does not override a run file's device.
    """
    overrides = {**options.overrides(), "thickness": thickness}
    config = method_config(DipsterConfig, options.run_file, overrides, run_dir=run_dir, resume=options.resume,
                           device=device, clear_steps=options.epochs is not None and options.steps is None)
    preset = PRESETS[options.preset or "default"]
    if not preset:
        return config
    # The preset's None values (no clipping, no averaging) apply too; the other options still win.
    return config.replace(**{**preset, **{k: v for k, v in overrides.items() if v is not None}})


def storage_report(model_bytes: int, shape: tuple[int, ...]) -> dict[str, Any]:
    """Model size against the raw float32 size of the volume series ``(T, Z, Y, X)`` it stands for."""
    raw = 4 * math.prod(int(s) for s in shape)
    return {"model_bytes": int(model_bytes), "series_shape": [int(s) for s in shape], "raw_float32_bytes": raw,
            "compression_ratio": raw / model_bytes if model_bytes else None}


def format_storage(report: dict[str, Any]) -> str:
    """One line: ``model 1.2 MB for a series (T, Z, Y, X) of 4.7 MB as float32 (3.9x smaller)``."""
    ratio = report["compression_ratio"]
    relation = f"{ratio:.3g}x smaller" if ratio >= 1 else f"{1 / ratio:.3g}x larger"
    return (f"model {_bytes(report['model_bytes'])} for a series {tuple(report['series_shape'])} of "
            f"{_bytes(report['raw_float32_bytes'])} as float32 ({relation})")


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{n} B"
        n /= 1000
    return f"{n:.3g} TB"  # pragma: no cover


@contextlib.contextmanager
def extrapolation_warnings_as_lines() -> Iterator[None]:
    """Show each :class:`ExtrapolationWarning` at once as ``warning: ...`` on stderr; others as usual."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", ExtrapolationWarning)
        show = warnings.showwarning

        def show_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ExtrapolationWarning):
                typer.echo(f"warning: {message}", err=True)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = show_line
        yield


def _check_times(times: np.ndarray | None, series: TiltSeries) -> None:
    if times is None:
        return
    first, last = float(series.times[0]), float(series.times[-1])
    tolerance = 1e-9 * max(1.0, last - first)
    outside = times[(times < first - tolerance) | (times > last + tolerance)]
    if outside.size:
        typer.echo(f"warning: --times: {', '.join(f'{t:g}' for t in outside[:3])}{' ...' if outside.size > 3 else ''}"
                   f" s outside the acquisition ({first:g} .. {last:g} s); DIP-STER extrapolates poorly there",
                   err=True)


def _input_summary(file: Path, series: TiltSeries) -> dict[str, Any]:
    return {"file": str(Path(file).resolve()), "shape": list(series.shape), "pixel_size_nm": series.pixel_size,
            **{k: series.metadata.get(k) for k in ("format", "angles_from", "times_from")}}


def ensemble_report(members: list, times: np.ndarray | None, angle: float | str | None,
                    config: DipsterConfig) -> dict[str, Any]:
    """The bands of the built-in quantities over ``members`` (a quantity that fails is reported, not raised)."""
    report: dict[str, Any] = {"members": len(members), "seeds": [config.seed + k for k in range(len(members))],
                              "band": "mean, lower = smallest and upper = largest member value at each time",
                              "quantities": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        volumes = [volume_series(m, times, angle=angle, progress=False) for m in members]
        for name in QUANTITIES:
            try:
                band = ensemble_curves(volumes, {name: name})[name]
                report["quantities"][name] = band.to_dict()
            except InputError as exc:
                report["quantities"][name] = {"error": str(exc)}
    return report


def run_dipster(
    *,
    command: str,
    file: Path,
    out: Path,
    options: DipsterOptions,
    times: str | None = None,
    thickness: int | None = None,
    angles: Path | None = None,
    allow_wide_angles: bool = False,
    overwrite: bool = False,
    device: str = "auto",
) -> dict[str, Any] | None:
    """Train DIP-STER on the tilt series ``file`` and write ``OUT`` (see the module description).

    Every option, the run file and the outputs are checked, and the input
    read, before training starts. Under ``torchrun`` every process trains and
    generates its share, and rank 0 alone writes and reports.

    Returns
    -------
    dict or None
        The summary written to ``OUT/summary.json`` (None on ranks other than 0).

    Raises
    ------
    InputError, FormatError, OutputExistsError
        For bad options, run files, inputs, or existing outputs (before training).
    typer.Exit
        With code 130 after Ctrl-C, once the checkpoint is saved.
    """
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    out = Path(out)
    run_dir = out / RUN_FOLDER
    main = is_main_process()
    outputs = OUTPUTS if options.ensemble is None else (*OUTPUTS[:-1], ENSEMBLE_FILE, SUMMARY)
    options.overrides()  # option errors before any file check
    check_run_outputs(out, run_dir, outputs, overwrite=overwrite, resume=options.resume)
    angle = parse_angle(options.query_angle, name="--query-angle")
    config = dipster_config(options, run_dir=run_dir, thickness=thickness, device=device)
    query_angle = "own" if angle == "own" else float(config.query_angle)  # what the volumes are made at
    query_times = None if times is None else parse_times(times)
    target = resolve_device(config.device)
    series = read_input(file, angles=angles, allow_wide_angles=allow_wide_angles)
    _, ny, nx = series.shape
    nz = config.thickness or nx
    # One exported volume (twice, while written) and the generator's activations of a batch of slices.
    check_memory(8.0 * nz * ny * nx + 32.0 * config.batch_size * config.base_channels * nz * nx,
                 f"DIP-STER with a slice of {nz} x {nx} voxels (--thickness {nz})", device=target)
    try:
        choose_holdout(len(series), series.shape[1], config)
    except InputError as exc:
        raise InputError(f"{file}: {exc} (--holdout 0)") from None
    if main:
        _check_times(query_times, series)
        reason = check_identifiable(series.times, config.correction_window) if config.corrections else None
        if reason is not None:
            typer.echo(f"warning: {reason}", err=True)
        if options.resume and not (run_dir / CHECKPOINT_NAME).is_file():
            typer.echo(f"note: no checkpoint in {run_dir}; starting a new run", err=True)
    log.info("training DIP-STER with %s", config)
    with training_output(out, outputs, run_dir, overwrite=overwrite, resume=options.resume, main=main) as stage, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", CorrectionWarning)  # reported above, once
        began = time.perf_counter()
        result = train_dipster(series, config, run_dir=run_dir, resume=options.resume, overwrite=overwrite)
        members = [result.model]
        for k in range(1, options.ensemble or 1):
            typer.echo(f"ensemble member {k + 1} of {options.ensemble} (seed {config.seed + k})", err=True)
            members.append(train_dipster(series, config.replace(seed=config.seed + k),
                                         run_dir=out / MEMBERS_FOLDER / f"member_{k}", resume=options.resume,
                                         overwrite=overwrite).model)
        train_seconds = time.perf_counter() - began
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)  # reported above, before training
            volumes = volume_series(result.model, query_times, angle=angle,
                                    out=None if stage is None else stage / SERIES_FILE)
        shape, out_times = volumes.shape, np.asarray(volumes.times, dtype=np.float64)
        volumes.data.file.close()
        if stage is None:
            return None
        if options.ensemble is not None:
            write_json(stage / ENSEMBLE_FILE, ensemble_report(members, query_times, angle, config))
        save_model(stage / MODEL_FILE, result.model, extra={
            "best_step": result.best_step, "steps": result.steps, "source": str(Path(file).resolve()),
            "query_angle": query_angle})
        storage = storage_report((stage / MODEL_FILE).stat().st_size, shape)
        summary = {
            "command": command,
            "tomotime_version": __version__,
            "input": _input_summary(file, series),
            "method": "dipster",
            "config": json.loads((run_dir / "config.json").read_text()),
            "options": {"run_file": None if options.run_file is None else str(options.run_file),
                        "resume": options.resume, "query_angle": query_angle,
                        "angles": None if angles is None else str(angles),
                        "allow_wide_angles": allow_wide_angles, "device_requested": device},
            "times": [float(t) for t in out_times],
            "output_shape": list(shape),
            "device": str(result.model.device),
            "training": {"steps": result.steps, "best_step": result.best_step,
                         "stopped_early": result.stopped_early, "best_holdout_loss": result.best_holdout_loss,
                         "nan_events": result.nan_events, "seconds": round(train_seconds, 3),
                         "seconds_all_segments": round(result.seconds, 3)},
            "export_seconds": round(time.perf_counter() - began, 3),
            "storage": storage,
            "corrections": None if result.model.corrections is None else result.model.corrections.to_dict(),
            "ensemble": None if options.ensemble is None else {"members": options.ensemble, "file": ENSEMBLE_FILE,
                                                              "member_runs": MEMBERS_FOLDER},
            "run_dir": RUN_FOLDER,
            "started": started.isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - clock, 3),
            "outputs": list(outputs),
        }
        write_json(stage / SUMMARY, summary)
    typer.echo(f"wrote {', '.join(str(out / n) for n in outputs)} (shape {tuple(shape)}; {result.steps} steps, "
               f"best {result.best_step}) and the run folder {run_dir} in {summary['wall_seconds']:.1f} s")
    typer.echo(format_storage(storage))
    return summary
