"""Text files of tilt angles and acquisition times, and sidecar discovery.

An angle file is IMOD-style (``.rawtlt`` / ``.tlt``: one angle in degrees per
line) or a CSV/TXT table with columns ``angle[, time]``, optionally under a
header line naming them. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from tomotime.errors import FormatError
from tomotime.io._common import existing_file
from tomotime.io.atomic import atomic_path

__all__ = [
    "ANGLE_SIDECAR_SUFFIXES",
    "TIMES_SIDECAR_SUFFIX",
    "read_angles",
    "read_times",
    "read_angle_table",
    "write_angles",
    "write_times",
    "find_sidecar",
]

ANGLE_SIDECAR_SUFFIXES = (".rawtlt", ".tlt", ".csv", ".txt")
TIMES_SIDECAR_SUFFIX = ".times"

_ANGLE_NAMES = ("angle", "tilt", "theta", "alpha")
_TIME_NAMES = ("time", "t", "seconds")


def _split(line: str) -> list[str]:
    if any(d in line for d in ",;\t"):
        return [f.strip().strip('"').strip("'") for f in re.split(r"[,;\t]", line)]
    return line.split()


def _read_table(path: str | Path) -> tuple[list[str] | None, np.ndarray]:
    """Header names (lower case, or ``None``) and the numbers ``(rows, columns)``."""
    p = existing_file(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{p}: not a text file of numbers ({exc})") from exc
    header: list[str] | None = None
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _split(stripped)
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if header is None and not rows:
                header = [f.lower() for f in fields]
                continue
            raise FormatError(f"{p}: line {lineno}: expected numbers, got {stripped!r}") from None
        if rows and len(values) != len(rows[0]):
            raise FormatError(f"{p}: line {lineno}: {len(values)} columns where earlier lines have {len(rows[0])}")
        rows.append(values)
    if not rows:
        raise FormatError(f"{p}: holds no numbers; expected one value per line or CSV columns angle[,time]")
    table = np.asarray(rows, dtype=np.float64)
    if header is not None and len(header) != table.shape[1]:
        raise FormatError(f"{p}: the header names {len(header)} columns but the rows have {table.shape[1]}")
    bad = ~np.isfinite(table)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise FormatError(f"{p}: holds NaN or Inf values (data row {row + 1})")
    return header, table


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    for i, name in enumerate(header):
        word = re.split(r"[^a-z]", name, maxsplit=1)[0]
        if word in names or word.rstrip("s") in names:
            return i
    return None


def read_angle_table(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Angles and (when the file has a time column) times from a text table.

    Without a header, column 0 holds angles and column 1, if present, times.
    With a header, the columns named ``angle``/``tilt``/``theta`` and
    ``time``/``t`` are used.

    Returns
    -------
    angles : numpy.ndarray, shape (N,), float64
        Degrees.
    times : numpy.ndarray, shape (N,), float64, or None
        Seconds.
    """
    header, table = _read_table(path)
    if header is None:
        return table[:, 0], (table[:, 1] if table.shape[1] > 1 else None)
    col = _find_column(header, _ANGLE_NAMES)
    if col is None:
        if table.shape[1] > 1:
            raise FormatError(f"{path}: no angle column in header {header}; expected one named angle, tilt or theta")
        col = 0
    tcol = _find_column(header, _TIME_NAMES)
    return table[:, col], (table[:, tcol] if tcol is not None and tcol != col else None)


def read_angles(path: str | Path) -> np.ndarray:
    """Tilt angles in degrees from a text file.

    Parameters
    ----------
    path : str or Path
        ``.rawtlt``/``.tlt`` (one angle per line) or a CSV/TXT table, see
        :func:`read_angle_table`.

    Returns
    -------
    numpy.ndarray, shape (N,), float64

    Raises
    ------
    FormatError
        If the file is missing, empty, not numeric or holds NaN/Inf.
    """
    return read_angle_table(path)[0]


def read_times(path: str | Path) -> np.ndarray:
    """Acquisition times in seconds from a text file.

    A single-column file holds one time per line; in a table without header
    the times are column 1; with a header, the column named ``time``/``t``.

    Returns
    -------
    numpy.ndarray, shape (N,), float64
    """
    header, table = _read_table(path)
    if table.shape[1] == 1:
        return table[:, 0]
    if header is None:
        return table[:, 1]
    col = _find_column(header, _TIME_NAMES)
    if col is None:
        raise FormatError(f"{path}: no time column in header {header}; expected one named time or t")
    return table[:, col]


def _write_column(path: str | Path, values: Any, *, fmt: str, overwrite: bool) -> Path:
    column = np.asarray(values, dtype=np.float64).reshape(-1)
    text = "".join(f"{v:{fmt}}\n" for v in column)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_angles(path: str | Path, angles: Any, *, overwrite: bool = False) -> Path:
    """Write angles (degrees) one per line, IMOD ``.rawtlt`` style, atomically."""
    return _write_column(path, angles, fmt=".6f", overwrite=overwrite)


def write_times(path: str | Path, times: Any, *, overwrite: bool = False) -> Path:
    """Write times (seconds) one per line, atomically."""
    return _write_column(path, times, fmt=".6f", overwrite=overwrite)


def find_sidecar(path: str | Path, suffixes: tuple[str, ...] = ANGLE_SIDECAR_SUFFIXES) -> Path | None:
    """The first existing file with the stem of ``path`` and one of ``suffixes``."""
    p = Path(path)
    for suffix in suffixes:
        candidate = p.with_suffix(suffix)
        if candidate != p and candidate.is_file():
            return candidate
    return None
