"""Text files of tilt angles and acquisition times, and sidecar discovery.

An angle file is IMOD-style (``.rawtlt`` / ``.tlt``: one angle in degrees per
line) or a CSV/TXT table with columns ``angle[, time]``, optionally under a
header line naming them. Blank lines and lines starting with ``#`` are skipped.
Decimal commas (``-70,5``, as written in many European locales) are read as
decimal points when the file shows them unambiguously (see
:func:`uses_decimal_comma`); columns are then separated by ``;``, tabs or
spaces.
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
    "uses_decimal_comma",
    "angle_remarks",
]

ANGLE_SIDECAR_SUFFIXES = (".rawtlt", ".tlt", ".csv", ".txt")
TIMES_SIDECAR_SUFFIX = ".times"

_ANGLE_NAMES = ("angle", "tilt", "theta", "alpha")
_TIME_NAMES = ("time", "t", "seconds")


RADIAN_RANGE_DEG = 3.2
"""Angles spanning less than this, all within +-pi/2, look like radians (degrees)..."""
RADIAN_MIN_VIEWS = 5
"""... when there are more than this many distinct values (a frame series at one tilt is not radians)."""

_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def uses_decimal_comma(lines: list[str]) -> bool:
    """Whether the data ``lines`` of a table write decimals with a comma.

    True when no line holds a decimal point and either a ``;``/tab separates
    the columns while a number holds a comma, or every line is one
    ``integer,digits`` pair whose digits after the comma all have the same
    length of at least two or start with a zero (``-70,000``, ``12,05``) -- a
    fixed number of decimals -- or do not increase, as a column of
    acquisition times would.
    """
    if not lines or any("." in line for line in lines):
        return False
    if any(re.search(r"[;\t]", line) for line in lines):
        return any("," in line for line in lines)
    if not all(_DECIMAL_COMMA.match(line.replace(" ", "")) for line in lines):
        return False
    fractions = [line.replace(" ", "").split(",")[1] for line in lines]
    same_width = len({len(f) for f in fractions}) == 1 and len(fractions[0]) >= 2
    not_times = len(lines) > 1 and bool((np.diff([int(f) for f in fractions]) <= 0).any())  # times must increase
    return same_width or not_times or any(len(f) > 1 and f.startswith("0") for f in fractions)


def _split(line: str, decimal_comma: bool) -> list[str]:
    if decimal_comma:
        return [f.strip().replace(",", ".") for f in re.split(r"[;\t ]+", line) if f.strip()]
    if any(d in line for d in ",;\t"):
        return [f.strip().strip('"').strip("'") for f in re.split(r"[,;\t]", line)]
    return line.split()


def _read_table(path: str | Path, notes: list[str] | None = None) -> tuple[list[str] | None, np.ndarray]:
    """Header names (lower case, or ``None``) and the numbers ``(rows, columns)``.

    Sentences about how the file was read (a header line, decimal commas) are
    appended to ``notes``.
    """
    p = existing_file(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{p}: not a text file of numbers ({exc})") from exc
    numbered = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    numbered = [(n, line) for n, line in numbered if line and not line.startswith("#")]
    lines = [line for _, line in numbered]
    first_is_data = bool(lines) and re.fullmatch(r"[\s\d.,;+eE-]+", lines[0]) is not None
    named_columns = bool(lines) and "," in lines[0] and not first_is_data
    decimal_comma = not named_columns and uses_decimal_comma(lines if first_is_data else lines[1:])
    header: list[str] | None = None
    rows: list[list[float]] = []
    for lineno, stripped in numbered:
        fields = _split(stripped, decimal_comma)
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if header is None and not rows:
                header = [f.lower() for f in fields]
                header_line = (lineno, stripped[:60])
                continue
            raise FormatError(f"{p}: line {lineno}: expected numbers, got {stripped!r}") from None
        if rows and len(values) != len(rows[0]):
            raise FormatError(f"{p}: line {lineno}: {len(values)} columns where earlier lines have {len(rows[0])}")
        rows.append(values)
    if not rows:
        raise FormatError(f"{p}: holds no numbers; expected one value per line or CSV columns angle[,time]")
    if decimal_comma and notes is not None:
        notes.append(f"{p}: decimal commas (as in {numbered[-1][1]!r}) were read as decimal points")
    table = np.asarray(rows, dtype=np.float64)
    if header is not None:
        known = _find_column(header, _ANGLE_NAMES) is not None or _find_column(header, _TIME_NAMES) is not None
        named = len(header) == table.shape[1] and (known or table.shape[1] > 1)  # names, checked by the caller
        if notes is not None:
            lineno, shown = header_line
            notes.append(f"{p}: line {lineno} ({shown!r}) is not numbers; " +
                         ("it was read as column names" if named else "it does not name the columns and was skipped"))
        if not named:
            header = None
    if header is not None and len(header) != table.shape[1]:
        raise FormatError(f"{p}: the header names {len(header)} columns but the rows have {table.shape[1]}")
    bad = ~np.isfinite(table)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise FormatError(f"{p}: holds NaN or Inf values (data row {row + 1})")
    return header, table


def angle_remarks(angles: np.ndarray) -> tuple[list[str], list[str]]:
    """Warnings and notes about tilt angles (degrees) that are legal but likely to mislead.

    Returns
    -------
    warnings : list of str
        Angles that look like radians: more than ``RADIAN_MIN_VIEWS`` distinct
        values spanning less than ``RADIAN_RANGE_DEG`` degrees, all within
        +-pi/2.
    notes : list of str
        Both -90 and +90 degrees present: the same projection, mirrored.
    """
    a = np.asarray(angles, dtype=np.float64)
    warnings, notes = [], []
    span = float(np.ptp(a)) if a.size else 0.0
    if np.unique(a).size > RADIAN_MIN_VIEWS and span < RADIAN_RANGE_DEG and np.abs(a).max() <= np.pi / 2 + 1e-6:
        warnings.append(f"the {a.size} tilt angles span only {span:.2f} deg ({a.min():.3g} .. {a.max():.3g}); "
                        f"these look like radians, but angles must be in degrees (multiply by 57.2958)")
    if np.isclose(a, -90.0).any() and np.isclose(a, 90.0).any():
        notes.append("both -90 and +90 deg are present: they are the same projection, mirrored")
    return warnings, notes


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    for i, name in enumerate(header):
        word = re.split(r"[^a-z]", name, maxsplit=1)[0]
        if word in names or word.rstrip("s") in names:
            return i
    return None


def read_angle_table(path: str | Path, *, notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Angles and (when the file has a time column) times from a text table.

    Without a header, column 0 holds angles and column 1, if present, times.
    With a header, the columns named ``angle``/``tilt``/``theta`` and
    ``time``/``t`` are used. Sentences about how the file was read (a skipped
    header line, decimal commas) are appended to ``notes`` when given.

    Returns
    -------
    angles : numpy.ndarray, shape (N,), float64
        Degrees.
    times : numpy.ndarray, shape (N,), float64, or None
        Seconds.
    """
    header, table = _read_table(path, notes)
    if header is None:
        return table[:, 0], (table[:, 1] if table.shape[1] > 1 else None)
    col = _find_column(header, _ANGLE_NAMES)
    if col is None:
        if table.shape[1] > 1:
            raise FormatError(f"{path}: no angle column in header {header}; expected one named angle, tilt or theta")
        col = 0
    tcol = _find_column(header, _TIME_NAMES)
    return table[:, col], (table[:, tcol] if tcol is not None and tcol != col else None)


def read_angles(path: str | Path, *, notes: list[str] | None = None) -> np.ndarray:
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
    return read_angle_table(path, notes=notes)[0]


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
