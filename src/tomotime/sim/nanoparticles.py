"""Static nanoparticle phantoms: core-shell rod and cube, hollow shell, star.

All return float32 volumes ``(Z, Y, X)`` with values in [0, 1]. Sizes are given
in unit coordinates (origin at the centre, one unit = half the smallest edge;
see :mod:`tomotime.sim._grid`), so a phantom looks the same at any resolution.
Elongated particles lie along Y, the tilt axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tomotime.errors import InputError
from tomotime.sim._grid import (
    capsule_distance,
    check_nonnegative,
    fibonacci_directions,
    rounded_box_distance,
    soft_fill,
    unit_coordinates,
    volume_shape,
    voxel_length,
)

__all__ = ["core_shell_nanorod", "nanoshell", "nanostar", "core_shell_nanocube", "star_directions", "star_distance"]

Size = int | Sequence[int] | None


def _check_fraction(value: float, name: str, *, upper: float = 1.0) -> float:
    v = check_nonnegative(value, name)
    if v > upper:
        raise InputError(f"{name}={value!r}: expected a value in [0, {upper}]")
    return v


def _core_shell(core_mask: np.ndarray, shell_mask: np.ndarray, core: float, shell: float) -> np.ndarray:
    core = _check_fraction(core, "core")
    shell = _check_fraction(shell, "shell")
    vol = np.where(shell_mask, np.float32(shell), np.float32(0.0))
    vol[core_mask & shell_mask] = core
    return vol.astype(np.float32, copy=False)


def core_shell_nanorod(
    size: Size = None,
    *,
    shape: Sequence[int] | None = None,
    core: float = 1.0,
    shell: float = 0.3,
    radius: float = 0.3,
    core_radius: float = 0.16,
    length: float = 0.8,
    core_length: float = 0.5,
) -> np.ndarray:
    """Two coaxial rods with hemispherical caps along Y: a dense core inside a lighter shell.

    Models an Au\\@Ag core-shell nanorod (the starting state of the alloying
    scenario). Voxels are binary per phase: exactly ``core`` in the core,
    exactly ``shell`` in the shell, 0 outside.

    Parameters
    ----------
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    shape : (int, int, int), optional
        Alternative to ``size``.
    core, shell : float
        Intensities in [0, 1] of the core (default 1.0) and shell (0.3).
    radius, core_radius : float
        Outer and core radii in unit coordinates (half the smallest edge).
    length, core_length : float
        Half-lengths, tip to centre, of the outer rod and the core as fractions
        of the half Y extent.

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
    """
    shp = volume_shape(size, shape)
    if not 0 < core_radius < radius < 1:
        raise InputError(f"core_radius={core_radius}, radius={radius}: expected 0 < core_radius < radius < 1")
    if not 0 < core_length < length <= 1:
        raise InputError(f"core_length={core_length}, length={length}: expected 0 < core_length < length <= 1")
    z, y, x = unit_coordinates(shp)
    half_y = shp[1] / min(shp)
    outer = capsule_distance(z, y, x, radius=radius, half_length=max(length * half_y - radius, 0.0)) <= 0
    inner = capsule_distance(z, y, x, radius=core_radius, half_length=max(core_length * half_y - core_radius, 0.0)) <= 0
    return _core_shell(inner, outer, core, shell)


def core_shell_nanocube(
    size: Size = None,
    *,
    shape: Sequence[int] | None = None,
    core: float = 1.0,
    shell: float = 0.3,
    half_width: float = 0.5,
    core_half_width: float = 0.3,
    rounding: float = 0.06,
) -> np.ndarray:
    """An axis-aligned cube with slightly rounded edges around a concentric cubic core.

    Parameters
    ----------
    size, shape
        As in :func:`core_shell_nanorod`.
    core, shell : float
        Intensities in [0, 1] of core (default 1.0) and shell (0.3).
    half_width, core_half_width : float
        Half edge lengths of the outer cube and the core, unit coordinates.
    rounding : float
        Radius of the rounded edges and corners, unit coordinates.

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
    """
    shp = volume_shape(size, shape)
    if not 0 < core_half_width < half_width < 1:
        raise InputError(f"core_half_width={core_half_width}, half_width={half_width}: "
                         "expected 0 < core_half_width < half_width < 1")
    rounding = min(check_nonnegative(rounding, "rounding"), core_half_width)
    z, y, x = unit_coordinates(shp)
    outer = rounded_box_distance(z, y, x, half_width=half_width, rounding=rounding) <= 0
    core_rounding = rounding * core_half_width / half_width
    inner = rounded_box_distance(z, y, x, half_width=core_half_width, rounding=core_rounding) <= 0
    return _core_shell(inner, outer, core, shell)


def nanoshell(
    size: Size = None,
    *,
    shape: Sequence[int] | None = None,
    radius: float = 0.7,
    thickness: float = 0.15,
    windows: int = 0,
    window_radius: float = 0.2,
    seed: int = 0,
    value: float = 1.0,
) -> np.ndarray:
    """A hollow sphere; with ``windows > 0`` a nanocage with circular openings.

    Parameters
    ----------
    size, shape
        As in :func:`core_shell_nanorod`.
    radius, thickness : float
        Outer radius and wall thickness in unit coordinates.
    windows : int
        Number of circular openings cut through the wall, in nearly uniform
        random directions (seeded).
    window_radius : float
        Radius of each opening, unit coordinates.
    seed : int
        Seeds the window directions.
    value : float
        Intensity of the wall, in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
        Binary: ``value`` in the wall, 0 elsewhere.
    """
    shp = volume_shape(size, shape)
    if not 0 < thickness < radius < 1:
        raise InputError(f"radius={radius}, thickness={thickness}: expected 0 < thickness < radius < 1")
    if isinstance(windows, bool) or not isinstance(windows, (int, np.integer)) or windows < 0:
        raise InputError(f"windows={windows!r}: expected an integer >= 0")
    value = _check_fraction(value, "value")
    z, y, x = unit_coordinates(shp)
    r = np.sqrt(z * z + y * y + x * x)
    wall = (r <= radius) & (r > radius - thickness)
    if windows:
        for d in fibonacci_directions(int(windows), np.random.default_rng(seed)):
            along = z * d[0] + y * d[1] + x * d[2]
            wall &= ~((along > 0) & (r * r - along * along < window_radius**2))
    return np.where(wall, np.float32(value), np.float32(0.0))


def star_directions(n_branches: int, seed: int = 0) -> np.ndarray:
    """Branch directions of :func:`nanostar`: ``(n_branches, 3)`` unit vectors, ``(z, y, x)``."""
    if isinstance(n_branches, bool) or not isinstance(n_branches, (int, np.integer)) or n_branches < 0:
        raise InputError(f"n_branches={n_branches!r}: expected an integer >= 0")
    if n_branches == 0:
        return np.zeros((0, 3))
    return fibonacci_directions(int(n_branches), np.random.default_rng(seed))


def star_distance(
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    directions: np.ndarray,
    *,
    core_radius: float,
    branch_length: float,
    branch_radius: float,
) -> np.ndarray:
    """Approximate signed distance to a star: a sphere plus one cone per direction.

    Each cone has its base (radius ``branch_radius``) at the centre and its apex
    at ``core_radius + branch_length`` along its direction, so with
    ``branch_length = 0`` it lies inside the core.
    """
    z, y, x = coords
    r2 = z * z + y * y + x * x
    dist = np.sqrt(r2) - np.float32(core_radius)
    apex = core_radius + branch_length
    if branch_length <= 0 or len(directions) == 0:
        return dist
    cos_half = apex / np.hypot(apex, branch_radius)
    for d in directions.astype(np.float32):
        along = z * d[0] + y * d[1] + x * d[2]
        radial = np.sqrt(np.maximum(r2 - along * along, 0.0))
        cone = (radial - branch_radius * (1.0 - along / apex)) * np.float32(cos_half)
        dist = np.minimum(dist, np.maximum(cone, -along))
    return dist


def nanostar(
    size: Size = None,
    n_branches: int = 6,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    core_radius: float = 0.3,
    branch_length: float = 0.55,
    branch_radius: float = 0.14,
    value: float = 1.0,
) -> np.ndarray:
    """A spherical core with conical branches in nearly uniform random directions.

    Edges are partial-volume (a one-voxel ramp), so the summed intensity
    follows the particle volume smoothly when its shape changes.

    Parameters
    ----------
    size, shape
        As in :func:`core_shell_nanorod`.
    n_branches : int
        Number of branches.
    seed : int
        Seeds the branch directions.
    core_radius, branch_length : float
        Core radius and how far a branch tip reaches beyond it, unit coordinates.
    branch_radius : float
        Radius of a branch's (virtual) base at the particle centre.
    value : float
        Intensity of the particle, in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
    """
    shp = volume_shape(size, shape)
    directions = star_directions(n_branches, seed)
    if not 0 < branch_radius <= core_radius < 1:
        raise InputError(f"branch_radius={branch_radius}, core_radius={core_radius}: "
                         "expected 0 < branch_radius <= core_radius < 1")
    check_nonnegative(branch_length, "branch_length")
    value = _check_fraction(value, "value")
    dist = star_distance(unit_coordinates(shp), directions, core_radius=core_radius,
                         branch_length=branch_length, branch_radius=branch_radius)
    return soft_fill(dist, voxel_length(shp)) * np.float32(value)
