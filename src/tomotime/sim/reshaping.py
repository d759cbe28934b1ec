"""Reshaping of a nanostar: branches retract into a growing core at constant volume.

Surface diffusion driven by curvature carries atoms from the sharp branch tips
to the flatter core, fast while the tips are sharp and ever slower as the
particle rounds off. Modelled here by branch lengths relaxing exponentially,

    L(t) = L0 * (p + (1 - p) * exp(-t / tau)),

with ``p`` the fraction of the branches left at the plateau (0 by default),
while the core radius ``R(t)`` is solved (Brent's method) so that the
particle's volume, computed analytically for the sphere-plus-cones geometry of
:func:`~tomotime.sim.nanoparticles.nanostar`, stays at its initial value.
Overlaps between neighbouring branches outside the core are neglected; they
are small for well-separated branches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.optimize import brentq

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.sim._grid import check_nonnegative, check_steps, soft_fill, unit_coordinates, volume_shape, voxel_length
from tomotime.sim.nanoparticles import star_directions, star_distance

__all__ = ["nanostar_reshaping", "iter_nanostar_reshaping", "star_volume"]


def star_volume(core_radius: float, branch_length: float, branch_radius: float, n_branches: int) -> float:
    """Volume, in cubed unit coordinates, of a sphere plus ``n_branches`` non-overlapping cones.

    Geometry as in :func:`~tomotime.sim.nanoparticles.star_distance`: each cone
    has base radius ``branch_radius`` at the centre and its apex
    ``branch_length`` beyond the sphere.
    """
    sphere = 4.0 / 3.0 * np.pi * core_radius**3
    if branch_length <= 0 or n_branches == 0:
        return sphere
    apex = core_radius + branch_length
    s = np.linspace(0.0, apex, 2049)
    cone = (branch_radius * (1.0 - s / apex)) ** 2
    core = np.maximum(core_radius**2 - s * s, 0.0)
    outside = np.pi * np.maximum(cone - core, 0.0)
    tip = float(np.sum(0.5 * (outside[1:] + outside[:-1]) * np.diff(s)))
    return sphere + n_branches * tip


def _schedule(steps: int, tau: float, core_radius: float, branch_length: float, branch_radius: float,
              n_branches: int, plateau: float = 0.0) -> list[tuple[float, float]]:
    """``(core_radius, branch_length)`` for each step at constant :func:`star_volume`."""
    target = star_volume(core_radius, branch_length, branch_radius, n_branches)
    out = []
    for t in range(steps):
        length = branch_length * (plateau + (1.0 - plateau) * np.exp(-t / tau))
        radius = brentq(lambda r, length=length: star_volume(r, length, branch_radius, n_branches) - target,
                        0.5 * core_radius, 2.0 * core_radius + branch_length, xtol=1e-10)
        out.append((float(radius), float(length)))
    return out


def iter_nanostar_reshaping(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    n_branches: int = 6,
    tau: float | None = None,
    core_radius: float = 0.3,
    branch_length: float = 0.55,
    branch_radius: float = 0.14,
    plateau: float = 0.0,
) -> Iterator[np.ndarray]:
    """Yield the reshaping nanostar one time step at a time (see :func:`nanostar_reshaping`).

    Arguments are checked when this function is called, before the first volume.

    Yields
    ------
    numpy.ndarray, shape (Z, Y, X), float32
        ``steps`` volumes; the first is the :func:`~tomotime.sim.nanoparticles.nanostar`.
    """
    shp = volume_shape(size, shape)
    steps = check_steps(steps)
    directions = star_directions(n_branches, seed)
    tau = steps / 4.0 if tau is None else check_nonnegative(tau, "tau")
    if tau <= 0:
        raise InputError(f"tau={tau!r}: expected a positive relaxation time in seconds (time steps)")
    if not 0 < branch_radius <= core_radius < 1:
        raise InputError(f"branch_radius={branch_radius}, core_radius={core_radius}: "
                         "expected 0 < branch_radius <= core_radius < 1")
    check_nonnegative(branch_length, "branch_length")
    if not 0 <= check_nonnegative(plateau, "plateau") < 1:
        raise InputError(f"plateau={plateau!r}: expected a fraction of the branch length in [0, 1)")
    schedule = _schedule(steps, tau, core_radius, branch_length, branch_radius, len(directions), plateau)
    if schedule[-1][0] >= 1:
        raise InputError(f"core_radius={core_radius}, branch_length={branch_length}: the grown core "
                         f"(radius {schedule[-1][0]:.2f}) would not fit in the volume; use smaller values")
    return _reshaping(shp, directions, schedule, branch_radius)


def _reshaping(shp, directions: np.ndarray, schedule, branch_radius: float) -> Iterator[np.ndarray]:
    coords = unit_coordinates(shp)
    voxel = voxel_length(shp)
    for radius, length in schedule:
        dist = star_distance(coords, directions, core_radius=radius, branch_length=length,
                             branch_radius=branch_radius)
        yield soft_fill(dist, voxel)


def nanostar_reshaping(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    n_branches: int = 6,
    tau: float | None = None,
    core_radius: float = 0.3,
    branch_length: float = 0.55,
    branch_radius: float = 0.14,
    plateau: float = 0.0,
) -> VolumeSeries:
    """Ground truth of a nanostar whose branches retract while its core grows.

    The branch length decays as ``L0 * exp(-t / tau)`` (fast at first, then
    slowing) and the core radius follows so that the particle volume stays
    constant; see this module's description. Edges are partial-volume, so the
    summed intensity tracks the volume closely (within a few per cent even at
    32 voxels).

    Parameters
    ----------
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    steps : int
        Number of time points T (>= 2); times are ``0 .. T-1`` s.
    seed : int
        Seeds the branch directions.
    shape : (int, int, int), optional
        Alternative to ``size``.
    n_branches : int
        Number of branches.
    tau : float, optional
        Relaxation time of the branch length in seconds (time steps); default
        ``steps / 4``, so the branches are nearly gone by the end.
    core_radius, branch_length, branch_radius : float
        Initial star geometry in unit coordinates, as in
        :func:`~tomotime.sim.nanoparticles.nanostar`.
    plateau : float
        Fraction of the initial branch length left once the retraction has
        levelled off (0: the branches vanish).

    Returns
    -------
    VolumeSeries
        Shape ``(T, Z, Y, X)``, float32, values in [0, 1].
    """
    volumes = iter_nanostar_reshaping(size, steps, seed, shape=shape, n_branches=n_branches, tau=tau,
                                      core_radius=core_radius, branch_length=branch_length,
                                      branch_radius=branch_radius, plateau=plateau)
    return VolumeSeries(np.stack(list(volumes)))
