"""Alignment files of other programs: IMOD ``.xf`` / ``.tlt`` and the TomViz alignment JSON.

IMOD ``.xf``: one line per view, ``A11 A12 A21 A22 DX DY``, the transform that
maps a measured pixel ``(x, y)`` (column, row, about the image centre) to its
aligned place, ``x' = A11 x + A12 y + DX``, ``y' = A21 x + A22 y + DY``, as
``newstack -xform`` applies it. IMOD centres images at ``n/2``, this project
at ``(n-1)/2``: shifts agree to that half-pixel convention.

Poses are the project's ``[axis_rotation_deg, axis_tilt_deg, shift_y_px,
shift_x_px]`` (see :mod:`tomotime.physics.parallel3d`): the measured image is
the ideal one rotated in-plane by ``axis_rotation`` and shifted by
``(shift_y, shift_x)``; the ``.xf`` row is the inverse of that map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tomotime.errors import FormatError, InputError
from tomotime.io.atomic import atomic_path, check_output

__all__ = ["poses_to_xf", "xf_to_poses", "write_xf", "read_xf", "write_tlt", "read_tlt",
           "read_tomviz_alignment", "tomviz_poses"]


def poses_to_xf(poses) -> np.ndarray:
    """IMOD ``.xf`` rows ``(N, 6)`` that undo ``poses`` ``(N, 4)`` (``axis_tilt`` has no place there)."""
    poses = np.asarray(poses, np.float64).reshape(-1, 4)
    psi, dy, dx = np.deg2rad(poses[:, 0]), poses[:, 2], poses[:, 3]
    c, s = np.cos(psi), np.sin(psi)
    return np.stack([c, s, -s, c, -(c * dx + s * dy), s * dx - c * dy], axis=1)


def xf_to_poses(xf, *, tolerance: float = 1e-3) -> np.ndarray:
    """Poses ``(N, 4)`` of ``.xf`` rows ``(N, 6)`` that are rotations plus shifts.

    Raises
    ------
    InputError
        If a row holds a scale or skew (its 2x2 part is not a rotation within
        ``tolerance``): such a map is no pose; resample the images with it instead.
    """
    xf = np.asarray(xf, np.float64).reshape(-1, 6)
    a = xf[:, :4].reshape(-1, 2, 2)
    gram = a @ a.transpose(0, 2, 1)
    bad = np.flatnonzero(np.abs(gram - np.eye(2)).max(axis=(1, 2)) > tolerance)
    if bad.size:
        raise InputError(f"xf: row {bad[0] + 1} is not a rotation (it scales or skews: {xf[bad[0], :4]}); "
                         "it cannot be expressed as a pose")
    c, s = xf[:, 0], xf[:, 1]
    big_dx, big_dy = xf[:, 4], xf[:, 5]
    dx = -(c * big_dx - s * big_dy)
    dy = -(s * big_dx + c * big_dy)
    return np.stack([np.rad2deg(np.arctan2(s, c)), np.zeros(len(xf)), dy, dx], axis=1)


def write_xf(path: str | Path, xf, *, overwrite: bool = False) -> Path:
    """Write ``.xf`` rows ``(N, 6)`` in IMOD's fixed-width format."""
    rows = np.asarray(xf, np.float64).reshape(-1, 6)
    path = check_output(path, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text("".join("%12.7f%12.7f%12.7f%12.7f%12.3f%12.3f\n" % tuple(r) for r in rows))
    return path


def read_xf(path: str | Path, *, n_views: int | None = None) -> np.ndarray:
    """Read an IMOD ``.xf`` file: ``(N, 6)`` float64.

    Raises
    ------
    FormatError
        If a line does not hold six numbers, or (with ``n_views``) the file has
        another number of lines than the series has views.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such .xf file")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for k, line in enumerate(lines, 1):
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        if len(values) != 6 or not np.isfinite(values).all():
            raise FormatError(f"{path}, line {k}: expected six numbers 'A11 A12 A21 A22 DX DY', got {line.strip()!r}")
        rows.append(values)
    if not rows:
        raise FormatError(f"{path}: the .xf file is empty")
    if n_views is not None and len(rows) != n_views:
        raise FormatError(f"{path}: {len(rows)} transforms for a series of {n_views} views; "
                          "expected one line per view, in the order of the stack")
    return np.asarray(rows, np.float64)


def write_tlt(path: str | Path, angles, *, overwrite: bool = False) -> Path:
    """Write tilt angles (degrees), one per line, as IMOD's ``.tlt``."""
    path = check_output(path, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text("".join(f"{a:.2f}\n" for a in np.asarray(angles, np.float64).reshape(-1)))
    return path


def read_tlt(path: str | Path, *, n_views: int | None = None) -> np.ndarray:
    """Read a ``.tlt``/``.rawtlt`` angle list (degrees), checking the count against ``n_views``."""
    from tomotime.io.angles import read_angles

    angles = read_angles(path)
    if n_views is not None and angles.size != n_views:
        raise FormatError(f"{path}: {angles.size} angles for a series of {n_views} views; expected one per view")
    return angles


def read_tomviz_alignment(path: str | Path) -> np.ndarray:
    """The per-view ``(x, y)`` offsets of a TomViz alignment JSON, ``(N, 2)`` float64 pixels.

    TomViz's image alignment saves a list of ``[x, y]`` integer offsets, one per
    view in stack order: the shifts that *align* the measured views (see
    :func:`tomviz_poses` for their signs).
    A mapping ``{"offsets": [...]}`` or ``{"shifts": [...]}`` is accepted as well.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such TomViz alignment file")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: not a JSON file ({exc})") from None
    if isinstance(value, dict):
        value = next((value[k] for k in ("offsets", "shifts", "alignments") if k in value), None)
    try:
        shifts = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        shifts = np.empty(0)
    if shifts.ndim != 2 or shifts.shape[1] != 2 or shifts.shape[0] == 0 or not np.isfinite(shifts).all():
        raise FormatError(f"{path}: expected a TomViz alignment, a list of [x, y] offsets per view")
    return shifts


def tomviz_poses(offsets, *, n_views: int | None = None) -> np.ndarray:
    """Poses ``(N, 4)`` from TomViz offsets ``(N, 2)``.

    The measured shift is minus the aligning offset across the axis
    (``shift_x = -x``) and plus it along the axis (``shift_y = +y``): TomViz
    (VTK) counts image y upwards, against the rows of the array. Measured on
    the real ``ncem_idp_fib_haadf`` series: with this sign our independent
    cross-correlation agrees with TomViz to 0.3 px RMS along the axis; with the
    other sign the disagreement is 3 px.
    """
    offsets = np.asarray(offsets, np.float64).reshape(-1, 2)
    if n_views is not None and offsets.shape[0] != n_views:
        raise InputError(f"TomViz alignment: {offsets.shape[0]} offsets for a series of {n_views} views; "
                         "select the entries of the views in the stack first")
    poses = np.zeros((offsets.shape[0], 4))
    poses[:, 2], poses[:, 3] = offsets[:, 1], -offsets[:, 0]
    return poses
