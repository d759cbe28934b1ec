"""Tilt schemes, acquisition plans and per-view poses.

Angles are in degrees everywhere in this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tomotime.errors import InputError

GOLDEN_RATIO = (1.0 + 5.0**0.5) / 2.0

__all__ = [
    "GOLDEN_RATIO",
    "grs_angles",
    "incremental_angles",
    "dose_symmetric_angles",
    "tilt_scheme",
    "acquisition_plan",
    "Pose",
    "poses_to_array",
]


def _check_range(n: int, start: float, stop: float) -> None:
    if int(n) != n or n < 1:
        raise InputError(f"n={n!r}: expected a positive integer number of projections")
    if not stop > start:
        raise InputError(f"start={start}, stop={stop}: expected start < stop (degrees)")


def grs_angles(n: int, start: float = -70.0, stop: float = 70.0) -> np.ndarray:
    """Golden-ratio scheme (GRS) tilt angles, in acquisition order.

    ``theta_i = ((i * R * phi) mod R) + start`` for ``i = 0 .. n-1`` with
    ``R = stop - start`` and ``phi`` the golden ratio, as in the DIP-STER paper.
    Consecutive angles jump across the range, so every window of consecutive
    projections samples the whole range nearly uniformly.

    Parameters
    ----------
    n : int
        Number of projections.
    start, stop : float
        Tilt range in degrees; angles lie in ``[start, stop)``.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Angles in degrees.
    """
    _check_range(n, start, stop)
    span = stop - start
    i = np.arange(n, dtype=np.float64)
    return np.mod(i * span * GOLDEN_RATIO, span) + start


def incremental_angles(n: int, start: float = -70.0, stop: float = 70.0) -> np.ndarray:
    """Evenly spaced angles from ``start`` to ``stop`` inclusive, shape ``(n,)``, degrees."""
    _check_range(n, start, stop)
    return np.linspace(start, stop, n) if n > 1 else np.array([0.5 * (start + stop)])


def dose_symmetric_angles(n: int, start: float = -70.0, stop: float = 70.0) -> np.ndarray:
    """Dose-symmetric (Hagen) scheme: 0, +d, -d, +2d, -2d, ... in acquisition order.

    The angular step ``d`` is chosen so that ``n`` angles fit within ``[start, stop]``
    when alternating around the centre ``(start + stop) / 2``; a side that runs out
    of range is continued on the other side only.

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        Angles in degrees.
    """
    _check_range(n, start, stop)
    centre = 0.5 * (start + stop)
    half = 0.5 * (stop - start)
    step = half / (n // 2) if n > 1 else 0.0  # the + side holds n // 2 views, the last at `stop`
    order = [centre]
    k = 1
    while len(order) < n:
        for sign in (1.0, -1.0):
            angle = centre + sign * k * step
            if len(order) < n and start - 1e-9 <= angle <= stop + 1e-9:
                order.append(angle)
        k += 1
    return np.asarray(order, dtype=np.float64)


_SCHEMES = {"grs": grs_angles, "incremental": incremental_angles, "dose-symmetric": dose_symmetric_angles}


def tilt_scheme(name: str, n: int, start: float = -70.0, stop: float = 70.0) -> np.ndarray:
    """Angles of the named scheme (``"grs"``, ``"incremental"`` or ``"dose-symmetric"``)."""
    if name not in _SCHEMES:
        raise InputError(f"scheme={name!r}: expected one of {sorted(_SCHEMES)}")
    return _SCHEMES[name](n, start, stop)


def acquisition_plan(angles: np.ndarray, *, backlash: float = 0.0, approach: str = "+") -> list[dict]:
    """A step-by-step plan a microscope script can follow.

    When ``backlash > 0`` every angle is reached while moving in the ``approach``
    direction: a move against it first overshoots to ``angle -/+ backlash`` (the
    ``pre_angle``) and then comes back, so gear backlash is taken up the same way
    for every view.

    Returns
    -------
    list of dict
        One entry per view with keys ``index``, ``angle_deg``, ``move_deg`` (from
        the previous angle) and ``pre_angle_deg`` (``None`` when no overshoot is needed).
    """
    if approach not in ("+", "-"):
        raise InputError(f"approach={approach!r}: expected '+' or '-'")
    if backlash < 0:
        raise InputError(f"backlash={backlash}: expected a non-negative angle in degrees")
    sign = 1.0 if approach == "+" else -1.0
    plan = []
    previous = None
    for i, angle in enumerate(np.asarray(angles, dtype=float)):
        move = 0.0 if previous is None else angle - previous
        needs_pre = backlash > 0 and (previous is None or move * sign < 0)
        plan.append(
            {
                "index": i,
                "angle_deg": float(angle),
                "move_deg": float(move),
                "pre_angle_deg": float(angle - sign * backlash) if needs_pre else None,
            }
        )
        previous = angle
    return plan


@dataclass(frozen=True)
class Pose:
    """Per-view deviation from the ideal tilt geometry.

    Attributes
    ----------
    axis_rotation : float
        In-plane rotation of the tilt axis about the beam, degrees.
    axis_tilt : float
        Inclination of the tilt axis out of the image plane, from Y towards the
        beam (Z), degrees: the view at tilt angle ``theta`` rotates the object by
        ``R_x(axis_tilt) R_y(theta) R_x(-axis_tilt)``, see
        :mod:`tomotime.physics.parallel3d`. It has no effect at ``theta = 0``.
    shift_y, shift_x : float
        Image shift in pixels (positive = towards larger row/column index).
    """

    axis_rotation: float = 0.0
    axis_tilt: float = 0.0
    shift_y: float = 0.0
    shift_x: float = 0.0

    def as_array(self) -> np.ndarray:
        """``[axis_rotation, axis_tilt, shift_y, shift_x]`` as float32."""
        return np.array([self.axis_rotation, self.axis_tilt, self.shift_y, self.shift_x], np.float32)


def poses_to_array(poses) -> np.ndarray:
    """Stack a sequence of :class:`Pose` (or an ``(N, 4)`` array) into ``(N, 4)`` float32."""
    if len(poses) and isinstance(poses[0], Pose):
        return np.stack([p.as_array() for p in poses])
    arr = np.asarray(poses, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"poses: expected shape (N, 4) [axis_rotation, axis_tilt, shift_y, shift_x], got {arr.shape}")
    return arr
