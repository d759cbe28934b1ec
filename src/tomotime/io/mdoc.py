"""SerialEM ``.mdoc`` files: the tilt angle and acquisition time of each section of a stack.

An mdoc is a text file of ``key = value`` lines in sections ``[ZValue = k]``,
one per image of the stack; ``TiltAngle`` is in degrees and ``DateTime``
reads ``31-Mar-23  16:24:15``. SerialEM names it after the stack plus
``.mdoc`` (``tilt.mrc.mdoc``); ``tilt.mdoc`` is found as well.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np

from tomotime.errors import FormatError
from tomotime.io._common import existing_file

__all__ = ["read_mdoc", "find_mdoc"]

_SECTION = re.compile(r"^\[\s*ZValue\s*=\s*(\d+)\s*\]")
_DATE_FORMATS = ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")


def _parse_time(text: str) -> datetime | None:
    text = " ".join(text.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def read_mdoc(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Angles, times and global values of a SerialEM ``.mdoc`` file.

    Returns
    -------
    angles : numpy.ndarray, shape (N,), float64
        ``TiltAngle`` of each ``ZValue`` section in degrees, ordered by ZValue.
    times : numpy.ndarray, shape (N,), or None
        Seconds since the first section's ``DateTime``; None when a section
        lacks a readable ``DateTime`` (SerialEM records whole seconds).
    info : dict
        ``pixel_size_nm`` (from ``PixelSpacing`` in angstrom) and
        ``image_file`` when present.

    Raises
    ------
    FormatError
        Without ``ZValue`` sections, or when a section lacks ``TiltAngle``.
    """
    p = existing_file(path)
    sections: dict[int, dict[str, str]] = {}
    header: dict[str, str] = {}
    current = header
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _SECTION.match(line.strip())
        if match:
            current = sections.setdefault(int(match.group(1)), {})
            continue
        key, eq, value = line.partition("=")
        if eq and not line.lstrip().startswith("["):
            current[key.strip()] = value.strip()
    if not sections:
        raise FormatError(f"{p}: no [ZValue = k] sections; not a SerialEM .mdoc file")
    order = sorted(sections)
    angles = []
    for z in order:
        try:
            angles.append(float(sections[z]["TiltAngle"].split()[0]))
        except (KeyError, ValueError, IndexError):
            raise FormatError(f"{p}: section [ZValue = {z}] has no readable TiltAngle") from None
    stamps = [_parse_time(sections[z].get("DateTime", "")) for z in order]
    times = None
    if all(s is not None for s in stamps):
        times = np.array([(s - stamps[0]).total_seconds() for s in stamps], dtype=np.float64)
    info: dict = {}
    spacing = header.get("PixelSpacing") or sections[order[0]].get("PixelSpacing")
    if spacing:
        try:
            info["pixel_size_nm"] = float(spacing.split()[0]) / 10.0
        except ValueError:
            pass
    if "ImageFile" in header:
        info["image_file"] = header["ImageFile"]
    return np.asarray(angles, dtype=np.float64), times, info


def find_mdoc(path: str | Path) -> Path | None:
    """The ``.mdoc`` of the stack ``path``: ``path.mdoc`` or the same stem with ``.mdoc``."""
    p = Path(path)
    for candidate in (p.with_name(p.name + ".mdoc"), p.with_suffix(".mdoc")):
        if candidate != p and candidate.is_file():
            return candidate
    return None
