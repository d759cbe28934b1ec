"""What every command of a learned method shares: its configuration and its guarded output folder.

* :func:`method_config`: defaults, then the run file (with ``--resume`` and no
  ``--config``: ``OUT/run/config.json``, the run being continued), then the
  command-line options.
* :func:`training_output`: the output folder locked for this run, what a killed
  run left there removed, the results staged and published together, and an
  interruption (Ctrl-C, SIGTERM) turned into the shell's exit code once the
  checkpoint is saved. Under ``torchrun`` only rank 0 touches the folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

from tomotime.cli.common import staged_output
from tomotime.training import (
    CHECKPOINT_NAME,
    TrainingConfig,
    TrainingInterrupted,
    remove_partials,
    resolve_config,
    run_lock,
)

__all__ = ["method_config", "training_output", "EXIT_INTERRUPTED", "RUN_FOLDER"]

C = TypeVar("C", bound=TrainingConfig)
RUN_FOLDER = "run"  # the training run folder inside OUT
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C (143 after SIGTERM)


def method_config(cls: type[C], run_file: Path | None, overrides: Mapping[str, Any], *, run_dir: Path,
                  resume: bool, device: str, clear_steps: bool = False) -> C:
    """The validated configuration of a run (see the module description).

    ``device="auto"`` does not override a run file's device, except that of a
    resumed run's own ``config.json`` (resolved for the machine it ran on).
    ``clear_steps`` (``--epochs`` without ``--steps``) drops a run file's ``steps``.
    """
    overrides = {**overrides, "device": None if device == "auto" else device}
    if run_file is None and resume and (run_dir / "config.json").is_file():
        run_file = run_dir / "config.json"
        overrides["device"] = device
    config = resolve_config(cls, run_file, overrides)
    return config.replace(steps=None) if clear_steps and config.steps is not None else config


@contextlib.contextmanager
def training_output(out: Path, names: Sequence[str], run_dir: Path, *, overwrite: bool, resume: bool,
                    main: bool = True) -> Iterator[Path | None]:
    """Yield the staging folder for ``names`` in ``out`` (None on ranks other than 0); see the module description.

    Raises
    ------
    typer.Exit
        With 130 (Ctrl-C) or 143 (SIGTERM) when interrupted.
    """
    try:
        with contextlib.ExitStack() as stack:
            stage = None
            if main:
                stack.enter_context(run_lock(out))
                remove_partials(out)
                stage = stack.enter_context(staged_output(out, names, overwrite=overwrite or resume))
            yield stage
    except KeyboardInterrupt as exc:
        if main and (run_dir / CHECKPOINT_NAME).is_file():
            typer.echo(f"interrupted: checkpoint saved in {run_dir}; rerun with --resume", err=True)
        elif main:
            typer.echo("interrupted before training started; nothing was saved", err=True)
        raise typer.Exit(exc.exit_code if isinstance(exc, TrainingInterrupted) else EXIT_INTERRUPTED) from None
