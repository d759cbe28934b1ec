"""A folder or glob of single images, one per tilt (``tilt_*.dm4``), read as one tilt series.

Where the angles come from, first match wins: the ``angles=`` argument (an
array or a text file); an angle file in the folder (``angles.rawtlt``,
``angles.tlt``, ``angles.csv``, ``angles.txt`` or the only ``*.rawtlt`` /
``*.tlt``); the stage tilt recorded in every file's metadata (DM, Velox EMD);
the last number in every file name (``tilt_-60.dm4``, ``img+12.5.tif``;
names numbered ``0, 1, 2, ...`` are an index, not angles). The views are
ordered by the acquisition time in the files' metadata when all have one
(those times become the series' times), else by the number in the names,
else by name.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import FormatError, InputError, MissingAnglesError
from tomotime.io._common import RawStack
from tomotime.io.angles import angle_remarks, read_angle_table, read_angles, read_times
from tomotime.io.emformats import read_em
from tomotime.io.mrc import read_mrc
from tomotime.io.tiff import read_tiff

__all__ = ["IMAGE_SUFFIXES", "is_image_set", "list_images", "read_image_set", "angle_from_name"]

log = logging.getLogger(__name__)


def _read_npy(path: Path) -> RawStack:
    return RawStack(images=np.load(path, allow_pickle=False), format="npy")


_READERS: dict[str, Callable[[Path], RawStack]] = {
    ".dm3": read_em, ".dm4": read_em, ".emd": read_em, ".ser": read_em,
    ".tif": read_tiff, ".tiff": read_tiff, ".mrc": read_mrc, ".npy": _read_npy,
}
IMAGE_SUFFIXES = tuple(_READERS)
_ANGLE_FILES = ("angles.rawtlt", "angles.tlt", "angles.csv", "angles.txt")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def is_image_set(path: str | Path) -> bool:
    """Whether ``path`` names a folder, or holds glob characters (``*``, ``?``, ``[``) and is no existing file."""
    p = Path(path)
    return p.is_dir() or (not p.exists() and any(c in str(path) for c in "*?["))


def angle_from_name(name: str) -> float | None:
    """The last number in a file name without its suffix (``tilt_-60.dm4`` -> -60.0), or None."""
    numbers = _NUMBER.findall(Path(name).stem)
    return float(numbers[-1]) if numbers else None


def list_images(path: str | Path) -> list[Path]:
    """The image files of a folder (all with a known suffix) or matched by a glob pattern.

    Raises
    ------
    FormatError
        If nothing matches, or the matches mix suffixes.
    """
    p = Path(path)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        where = f"{p}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder"
    else:
        files = [Path(f) for f in glob.glob(str(p)) if Path(f).is_file()]
        where = f"{p}: no files match the pattern"
    if not files:
        raise FormatError(where)
    suffixes = sorted({f.suffix.lower() for f in files})
    if len(suffixes) > 1:
        raise FormatError(f"{p}: the images mix formats {suffixes}; keep one kind per series (e.g. {p}/*.dm4)")
    if suffixes[0] not in _READERS:
        raise FormatError(f"{p}: unknown image format {suffixes[0]!r}; expected one of {', '.join(IMAGE_SUFFIXES)}")
    return sorted(files)


def _read_one(f: Path) -> RawStack:
    raw = _READERS[f.suffix.lower()](f)
    images = np.asarray(raw.images)
    if images.ndim == 3 and images.shape[0] == 1:
        images = images[0]
    if images.ndim != 2:
        raise FormatError(f"{f}: holds an array of shape {images.shape}; a folder series needs one 2-D image "
                          "per file (read a stack file directly instead)")
    raw.images = images
    return raw


def _check_same(files: list[Path], raws: list[RawStack], folder: Any) -> None:
    first = raws[0].images
    for f, raw in zip(files[1:], raws[1:]):
        if raw.images.shape != first.shape:
            raise FormatError(f"{folder}: the images differ in size: {files[0].name} is {first.shape[0]} x "
                              f"{first.shape[1]} but {f.name} is {raw.images.shape[0]} x {raw.images.shape[1]}; "
                              "a tilt series needs one size (remove the odd file or crop/bin it to match)")
        if raw.images.dtype != first.dtype:
            raise FormatError(f"{folder}: the images differ in data type: {files[0].name} is {first.dtype} but "
                              f"{f.name} is {raw.images.dtype}; a tilt series needs one detector format "
                              "(an exported preview mixed in?)")


def _parse_acquired(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _angle_file(folder: Path | None) -> Path | None:
    if folder is None:
        return None
    for name in _ANGLE_FILES:
        if (folder / name).is_file():
            return folder / name
    candidates = [f for s in ("*.rawtlt", "*.tlt") for f in folder.glob(s)]
    return candidates[0] if len(candidates) == 1 else None


def _missing_angles(where: Any, files: list[Path]) -> MissingAnglesError:
    return MissingAnglesError(
        f"{where}: no tilt angles found for the {len(files)} images (no stage tilt in their metadata, and their "
        f"names do not carry angles, as tilt_-60.{files[0].suffix.lstrip('.')} would). Supply them: write one angle "
        f"in degrees per line, in the order of the files ({files[0].name} first, {files[-1].name} last), to a "
        "text file and pass it with --angles FILE (Python: angles='FILE'), or save it as angles.rawtlt in the "
        "folder")


def read_image_set(path: str | Path, *, angles: Any = None, times: Any = None, pixel_size: float | None = None,
                   allow_wide_angles: bool = False) -> TiltSeries:
    """Read a folder or glob of single 2-D images as one tilt series (see the module description).

    Returns
    -------
    TiltSeries
        ``metadata``: ``source``, ``format``, ``files`` (names in view
        order), ``angles_from``, ``times_from``, ``warnings``, ``notes``.

    Raises
    ------
    FormatError
        No files, mixed formats, sizes or data types, a file holding a stack.
    MissingAnglesError
        No angles from any source; the message says how to supply them.
    """
    files = list_images(path)
    raws = [_read_one(f) for f in files]
    _check_same(files, raws, path)
    folder = Path(path) if Path(path).is_dir() else None
    notes: list[str] = []
    stamps = [_parse_acquired(r.extra.get("acquired")) for r in raws]
    name_numbers = [angle_from_name(f.name) for f in files]
    if all(s is not None for s in stamps):
        order = sorted(range(len(files)), key=lambda i: stamps[i])
        ordered_by = "acquisition time in the metadata"
    elif all(v is not None for v in name_numbers):
        order = sorted(range(len(files)), key=lambda i: name_numbers[i])
        ordered_by = "the number in the file names"
    else:
        order = list(range(len(files)))
        ordered_by = "file name"
    files, raws = [files[i] for i in order], [raws[i] for i in order]
    stamps, name_numbers = [stamps[i] for i in order], [name_numbers[i] for i in order]
    notes.append(f"{len(files)} images ordered by {ordered_by}")

    table_times = None
    if angles is not None:
        if isinstance(angles, (str, Path)):
            values, angles_from = read_angles(angles, notes=notes), str(angles)
        else:
            values, angles_from = np.asarray(angles, dtype=np.float64).reshape(-1), "argument"
    elif (angle_file := _angle_file(folder)) is not None:
        values, table_times = read_angle_table(angle_file, notes=notes)
        angles_from = str(angle_file)
    elif all("stage_alpha_deg" in r.extra for r in raws):
        values, angles_from = np.array([r.extra["stage_alpha_deg"] for r in raws]), "stage tilt in each file's metadata"
    elif all(v is not None for v in name_numbers) and not _is_index(name_numbers):
        values, angles_from = np.asarray(name_numbers, dtype=np.float64), "file names (the last number in each)"
    else:
        raise _missing_angles(path, files)
    if values.shape[0] != len(files):
        raise InputError(f"{path}: {values.shape[0]} angles (from {angles_from}) for {len(files)} images; expected "
                         f"one per image, in the order {files[0].name} .. {files[-1].name}")

    if times is not None:
        time_values, times_from = (read_times(times), str(times)) if isinstance(times, (str, Path)) else (
            np.asarray(times, dtype=np.float64).reshape(-1), "argument")
    elif table_times is not None:
        time_values, times_from = table_times, "angle file"
    elif all(s is not None for s in stamps) and len(set(stamps)) == len(stamps):
        time_values = np.array([(s - stamps[0]).total_seconds() for s in stamps])
        times_from = "acquisition time in each file's metadata"
    else:
        time_values, times_from = None, "index"
    pixels = {r.pixel_size for r in raws}
    if pixel_size is None:
        pixel_size = raws[0].pixel_size or 1.0
        if len(pixels) > 1:
            notes.append(f"the files record different pixel sizes {sorted(p for p in pixels if p)}; "
                         f"using the first, {pixel_size:g} nm")
    warnings, angle_notes = angle_remarks(values)
    for text in warnings:
        log.warning("%s (angles from %s): %s", path, angles_from, text)
    metadata = {"source": str(path), "format": f"{files[0].suffix.lower().lstrip('.')} images",
                "files": [f.name for f in files], "angles_from": angles_from, "times_from": times_from,
                "warnings": warnings, "notes": notes + angle_notes}
    stack = np.stack([r.images for r in raws])
    try:
        return TiltSeries(images=stack, angles=values, times=time_values, pixel_size=pixel_size,
                          metadata=metadata, allow_wide_angles=allow_wide_angles)
    except InputError as exc:
        raise type(exc)(f"{path} (angles from {angles_from}): {exc}") from exc


def _is_index(numbers: list[float]) -> bool:
    """Names numbered 0..N-1 or 1..N (in some order) count views, not angles."""
    values = sorted(numbers)
    return all(float(v).is_integer() for v in values) and values in (
        [float(i) for i in range(len(values))], [float(i) for i in range(1, len(values) + 1)])
