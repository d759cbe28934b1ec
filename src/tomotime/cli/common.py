"""Pieces shared by the ``tomotime`` commands: error reporting, common options, outputs.

Every command is wrapped in :func:`handle_errors`, so a :class:`~tomotime.errors.TomotimeError`
reaches the user as one line ``error: <message>`` on stderr with exit code 2 (the
code click uses for usage errors), never as a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import numpy as np
import typer

from tomotime.data import TiltSeries
from tomotime.errors import InputError, OutputExistsError, TomotimeError
from tomotime.io import read_tilt_series, write_json
from tomotime.io.atomic import unwritable

__all__ = [
    "EXIT_INPUT_ERROR",
    "handle_errors",
    "DeviceOption",
    "AnglesOption",
    "WideAnglesOption",
    "OutDirOption",
    "OverwriteOption",
    "read_input",
    "parse_times",
    "command_line",
    "check_outputs",
    "staged_output",
    "write_json",
    "check_finite",
    "check_memory",
    "check_run_outputs",
    "MAX_TIMES",
]

log = logging.getLogger(__name__)

EXIT_INPUT_ERROR = 2

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Report tomotime errors as ``error: <message>`` on stderr and exit with code 2.

    Other ``OSError``\\ s (permission denied, disk full, ...) are reported the
    same way with exit code 1. Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TomotimeError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT_ERROR) from None
        except OSError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


DeviceOption = Annotated[
    str, typer.Option("--device", help="Compute device: auto (CUDA if available), cpu, cuda or cuda:N.")
]
AnglesOption = Annotated[
    Optional[Path],
    typer.Option("--angles", help="Text file of tilt angles in degrees (.rawtlt/.tlt/.csv); "
                                  "default: a sidecar with the same stem, or angles stored in FILE."),
]
WideAnglesOption = Annotated[
    bool, typer.Option("--allow-wide-angles", help="Accept tilt angles outside [-90, 90] degrees.")
]
OutDirOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]


def read_input(file: Path, *, angles: Path | None = None, allow_wide_angles: bool = False) -> TiltSeries:
    """Read the tilt series ``file`` (see :func:`tomotime.io.read_tilt_series`)."""
    series = read_tilt_series(file, angles=angles, allow_wide_angles=allow_wide_angles)
    log.info("read %r", series)
    return series


_RANGE = re.compile(r"^\s*([^:]+):([^:]+):([^:]+)\s*$")

MAX_TIMES = 100_000
"""The most time points ``--times`` may ask for (each is a whole volume)."""


def parse_times(text: str, *, name: str = "--times") -> np.ndarray:
    """Parse a list ``"0,5,10"`` or a range ``"start:stop:step"`` of times in seconds.

    A range includes ``stop`` when it falls on the step grid. The result must
    strictly increase.

    Returns
    -------
    numpy.ndarray, shape (T,), float64
    """
    match = _RANGE.match(text)
    try:
        values = [float(v) for v in (match.groups() if match else [v for v in text.split(",") if v.strip()])]
    except ValueError:
        raise InputError(f"{name}={text!r}: expected numbers in seconds, as 0,5,10 or start:stop:step") from None
    if match:
        start, stop, step = values
        if not (np.isfinite(values).all() and step > 0 and stop >= start):
            raise InputError(f"{name}={text!r}: expected finite start:stop:step with step > 0 and stop >= start")
        count = np.floor((stop - start) / step + 1e-9) + 1
        if not count <= MAX_TIMES:
            raise InputError(f"{name}={text!r}: asks for {count:.3g} time points; at most {MAX_TIMES} "
                             "(each is a whole volume): use a larger step")
        times = start + step * np.arange(int(count), dtype=np.float64)
    else:
        times = np.array(values, dtype=np.float64)
    if times.size == 0 or not np.isfinite(times).all():
        raise InputError(f"{name}={text!r}: expected at least one finite time in seconds")
    if times.size > MAX_TIMES:
        raise InputError(f"{name}: {times.size} time points; at most {MAX_TIMES}")
    if (np.diff(times) <= 0).any():
        raise InputError(f"{name}={text!r}: times must strictly increase")
    return times


def check_finite(**options: float | None) -> None:
    """Refuse NaN or infinite values of number options, given as ``name=value`` (``tilt_blur`` -> ``--tilt-blur``).

    Raises
    ------
    InputError
        Naming the first option whose value is not finite.
    """
    for key, value in options.items():
        if value is not None and not np.isfinite(value):
            raise InputError(f"--{key.replace('_', '-')}={value}: expected a finite number")


def check_memory(nbytes: float, what: str, *, device: Any = "cpu") -> None:
    """Refuse work that needs more memory than the machine (or the GPU) has, before it starts.

    Parameters
    ----------
    nbytes : float
        Estimated peak memory in bytes.
    what : str
        What needs it, naming the option that sets the size (for the message).
    device : str or torch.device
        Where the work runs; for CUDA the GPU's total memory is the limit.

    Raises
    ------
    InputError
        If ``nbytes`` exceeds the total physical memory of the device.
    """
    total = _total_memory(device)
    if total is not None and nbytes > total:
        raise InputError(f"{what} needs about {_gib(nbytes)} of memory; this machine has {_gib(total)}"
                         + (" on the GPU" if str(device).startswith("cuda") else ""))


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


def _total_memory(device: Any) -> float | None:
    if str(device).startswith("cuda"):
        import torch

        return float(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def command_line(ctx: typer.Context, program: str = "tomotime") -> str:
    """The command line equivalent to the running command, rebuilt from its parsed parameters."""
    words = [program, ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value is False or not param.expose_value:
            continue
        if param.param_type_name == "argument":
            words.append(str(value))
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0])
        else:
            words.extend([param.opts[0], str(value)])
    return " ".join(_quote(w) for w in words if w)


def _quote(word: str) -> str:
    return word if re.fullmatch(r"[\w@%+=:,./-]+", word) else "'" + word.replace("'", "'\"'\"'") + "'"


def check_outputs(folder: Path, names: Sequence[str], *, overwrite: bool) -> Path:
    """Check that the files ``names`` may be written in ``folder``; return ``folder``.

    Raises
    ------
    OutputExistsError
        If ``folder`` is a file, or one of ``folder / name`` exists and
        ``overwrite`` is false; the message names the path.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder}: exists and is not a folder; expected an output folder")
    if not overwrite:
        for name in names:
            if (folder / name).exists():
                raise OutputExistsError(f"{folder / name}: exists already; pass --overwrite to replace it")
    return folder


def check_run_outputs(out: Path, run_dir: Path, names: Sequence[str], *, overwrite: bool, resume: bool) -> None:
    """Check the outputs ``names`` in ``out`` and the training run folder ``run_dir`` of a learned method.

    Raises
    ------
    OutputExistsError
        If ``out`` or ``run_dir`` is a file, or results of an earlier run exist
        and neither ``overwrite`` nor ``resume`` is set; the message names the
        path and the option to pass.
    """
    from tomotime.training import RUN_FILES

    check_outputs(out, names, overwrite=True)
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputExistsError(f"{run_dir}: exists and is not a folder; expected the training run folder")
    if overwrite or resume:
        return
    run = [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]
    if run:
        raise OutputExistsError(f"{run[0]}: exists already; pass --resume to continue the run in {run_dir}, "
                                "or --overwrite to start again")
    check_outputs(out, names, overwrite=False)


@contextmanager
def staged_output(folder: Path, names: Sequence[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden staging folder in which to write ``names``; publish them on success.

    The staging folder lies inside ``folder`` (same file system, so the final
    moves are renames) and has a short name. A folder that cannot be written
    raises :class:`~tomotime.errors.OutputError` naming ``folder``. On a clean exit each of ``names`` is moved into
    ``folder`` in the given order, so put ``summary.json`` last: a folder with a
    summary holds a complete result. On any exception, ``KeyboardInterrupt``
    included, the staging folder is deleted, as is ``folder`` if this call
    created it, and nothing under ``folder`` changes.

    Parameters
    ----------
    folder : Path
        Output folder.
    names : sequence of str
        Files or sub-folders the caller writes into the staging folder.
    overwrite : bool
        Replace existing outputs of the same names.
    """
    folder = check_outputs(folder, names, overwrite=overwrite)
    created = not folder.exists()
    stage = folder / f".partial-{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
    except OSError as exc:
        raise unwritable(folder, exc) from None
    try:
        yield stage
        missing = [name for name in names if not (stage / name).exists()]
        if missing:
            raise RuntimeError(f"staged_output: {missing} were not written")
        check_outputs(folder, names, overwrite=overwrite)
        for name in names:
            _publish(stage / name, folder / name)
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError) and not isinstance(exc, TomotimeError):
            raise unwritable(folder, exc) from None
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _publish(source: Path, target: Path) -> None:
    if source.is_dir() and target.exists():
        old = target.with_name(f".old-{secrets.token_hex(4)}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)

