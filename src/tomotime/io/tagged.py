"""Self-describing ``torch.save`` files: a format name and version in front of the payload.

Models and checkpoints are written atomically with a ``format`` /
``format_version`` header and the writing ``tomotime_version``, and read
back with ``weights_only=True`` (loading never runs code from the file), so
a damaged, foreign or newer file gives one clear :class:`FormatError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import tomotime
from tomotime.errors import FormatError
from tomotime.io.atomic import atomic_path

__all__ = ["save_tagged", "load_tagged", "tagged_format"]


def save_tagged(path: str | Path, fmt: str, version: int, payload: dict[str, Any], *,
                overwrite: bool = False) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) under a ``fmt``/``version`` header."""
    header = {"format": fmt, "format_version": version, "tomotime_version": tomotime.__version__}
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save({**header, **payload}, tmp)
    return Path(path)


def load_tagged(path: str | Path, fmt: str, version: int | tuple[int, ...], *, what: str,
                kind: str = "model") -> dict[str, Any]:
    """Read a file written by :func:`save_tagged` onto the CPU.

    Parameters
    ----------
    path : str or Path
    fmt, version
        The expected format name and version (or the versions the caller can read).
    what : str
        What the file holds, for messages (e.g. ``"DIP-STER model"``).
    kind : str
        The kind of file, for the message about a missing one (``"model"``, ``"checkpoint"``).

    Raises
    ------
    FormatError
        If the file is missing, empty, damaged, of another format, or of another version.
    """
    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: no such {kind} file")
    if p.stat().st_size == 0:
        raise FormatError(f"{p}: the {kind} file is empty")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise FormatError(f"{p}: not a readable {what} file ({type(exc).__name__}); it is damaged or "
                          "truncated, or of another kind") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise FormatError(f"{p}: not a {what} file (no '{fmt}' header)")
    readable = (version,) if isinstance(version, int) else tuple(version)
    if payload.get("format_version") not in readable:
        raise FormatError(f"{p}: {what} format version {payload.get('format_version')!r} (written by tomotime "
                          f"{payload.get('tomotime_version', '?')}); this tomotime {tomotime.__version__} reads "
                          f"version {' or '.join(map(str, readable))}")
    return payload


def tagged_format(path: str | Path) -> str | None:
    """The format name in the header of a file written by :func:`save_tagged`; None for any other or unreadable file."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - the caller reports the file with the reader it picks
        return None
    return payload.get("format") if isinstance(payload, dict) else None
