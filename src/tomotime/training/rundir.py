"""The run folder of a training run: its files, its lock, and what a killed run left behind.

A run folder holds ``config.json`` (the resolved configuration, a valid run
file), ``checkpoint.pt``, ``metrics.csv``, ``model.pt`` and ``summary.json``.
While a run uses it, ``run.lock`` names the owning process; a second run into
the same folder is refused, and a lock whose process is gone (``kill -9``) is
taken over. Temporary files of interrupted atomic writes (``.*.partial*``) and
staging folders (``.partial-*``) are removed once the lock is held, since no
live run can own them then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from tomotime.errors import InputError, OutputExistsError

__all__ = ["RUN_FILES", "LOCK_NAME", "RunLockedError", "run_lock", "remove_partials", "prepare_run_dir"]

log = logging.getLogger(__name__)

RUN_FILES = ("checkpoint.pt", "model.pt", "summary.json", "metrics.csv", "config.json")
LOCK_NAME = "run.lock"
_PARTIALS = (".partial-*", ".*.partial*")


class RunLockedError(InputError):
    """Another live process uses the run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/run.lock`` for the duration of the block.

    Raises
    ------
    RunLockedError
        If a live process on this machine holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _read_lock(path)
            pid, host = held.get("pid"), held.get("host")
            if isinstance(pid, int) and (host != owner["host"] or _alive(pid)):
                where = "" if host == owner["host"] else f" on {host}"
                raise RunLockedError(f"{folder}: in use by another run (process {pid}{where}); wait for it to "
                                     f"finish, choose another output folder, or delete {path} if that process "
                                     "is gone") from None
            log.warning("%s: removing the stale lock of process %s, which is gone", folder, pid)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(owner, handle)
        break
    else:  # pragma: no cover - a third process raced us twice
        raise RunLockedError(f"{folder}: another run keeps taking the lock {path}")
    try:
        yield path
    finally:
        if _read_lock(path).get("pid") == owner["pid"]:
            path.unlink(missing_ok=True)


def remove_partials(folder: str | Path) -> list[Path]:
    """Delete temporary files and staging folders left in ``folder`` by killed runs; return them."""
    folder = Path(folder)
    found = [p for pattern in _PARTIALS for p in folder.glob(pattern)] if folder.is_dir() else []
    for path in found:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if found:
        log.info("%s: removed %d file(s) left by an interrupted run", folder, len(found))
    return found


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check the run folder, clean what a killed run left; return whether a checkpoint exists to resume from.

    Raises
    ------
    InputError
        If ``run_dir`` is a file.
    OutputExistsError
        If it holds an earlier run and neither ``resume`` nor ``overwrite`` is set.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"run_dir={run_dir}: exists and is not a folder")
    remove_partials(run_dir)
    if resume and (run_dir / RUN_FILES[0]).is_file():
        return True
    if resume:
        log.info("%s: no checkpoint to resume from; starting a new run", run_dir)
    existing = [run_dir / f for f in RUN_FILES if (run_dir / f).exists()]
    if existing and not (overwrite or resume):
        raise OutputExistsError(f"{existing[0]} exists; pass resume=True to continue that run, overwrite=True "
                                "to start again, or choose another run folder")
    for path in existing:
        path.unlink()
    return False
