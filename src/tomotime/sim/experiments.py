"""The DIP-STER paper's two experimental cases as simulated dynamic scenarios.

- :func:`nanostar_retraction`: an Au nanostar whose branches retract into the
  core quickly and then level off (the paper's reshaping experiment);
- :func:`nanocube_silica_alloying`: an Au@Ag nanocube alloying under a silica
  shell of fixed outer shape, slowly at first, fastest at an inflection after
  about a third of the run (the paper: after about 15 min), then levelling off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.sim._grid import check_nonnegative, check_steps, rounded_box_distance, unit_coordinates, volume_shape
from tomotime.sim.alloying import mix_step
from tomotime.sim.nanoparticles import core_shell_nanocube
from tomotime.sim.reshaping import iter_nanostar_reshaping

__all__ = ["nanostar_retraction", "iter_nanostar_retraction", "nanocube_silica_alloying",
           "iter_nanocube_silica_alloying"]

_SILICA = 0.12
_CORE, _SHELL = 1.0, 0.3


def iter_nanostar_retraction(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    n_branches: int = 6,
    tau: float | None = None,
    plateau: float = 0.4,
) -> Iterator[np.ndarray]:
    """Yield the retracting nanostar one step at a time (see :func:`nanostar_retraction`)."""
    steps = check_steps(steps)
    tau = steps / 10.0 if tau is None else tau
    return iter_nanostar_reshaping(size, steps, seed, shape=shape, n_branches=n_branches, tau=tau, plateau=plateau)


def nanostar_retraction(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    n_branches: int = 6,
    tau: float | None = None,
    plateau: float = 0.4,
) -> VolumeSeries:
    """Ground truth of an Au nanostar whose branches retract fast, then level off, at constant volume.

    :func:`~tomotime.sim.reshaping.nanostar_reshaping` with a short relaxation
    time (default ``tau = steps / 10``) and branches that stop at
    ``plateau`` (default 40 %) of their initial length.

    Returns
    -------
    VolumeSeries
        Shape ``(T, Z, Y, X)``, float32, values in [0, 1].
    """
    return VolumeSeries(np.stack(list(iter_nanostar_retraction(size, steps, seed, shape=shape, n_branches=n_branches,
                                                               tau=tau, plateau=plateau))))


def _logistic_fraction(steps: int, inflection: float, width: float) -> np.ndarray:
    """``F(t)`` in [0, 1], ``F(0) = 0``, a logistic of ``t / (steps - 1)`` centred on ``inflection``."""
    t = np.arange(steps) / max(steps - 1, 1)
    f = 1.0 / (1.0 + np.exp(-(t - inflection) / width))
    return (f - f[0]) / (f[-1] - f[0])


def iter_nanocube_silica_alloying(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    mixing: float = 0.6,
    inflection: float = 0.35,
    width: float = 0.08,
) -> Iterator[np.ndarray]:
    """Yield the alloying nanocube one step at a time (see :func:`nanocube_silica_alloying`)."""
    shp = volume_shape(size, shape)
    steps = check_steps(steps)
    mixing = check_nonnegative(mixing, "mixing")
    if not 0 < inflection < 1:
        raise InputError(f"inflection={inflection!r}: expected a fraction of the run in (0, 1)")
    if not 0 < check_nonnegative(width, "width") <= 0.5:
        raise InputError(f"width={width!r}: expected a fraction of the run in (0, 0.5]")
    return _cube_alloying(shp, steps, np.random.default_rng(seed), mixing, _logistic_fraction(steps, inflection, width))


def _cube_alloying(shp, steps: int, rng: np.random.Generator, mixing: float, fraction: np.ndarray):
    cube = core_shell_nanocube(shape=shp, core=_CORE, shell=_SHELL, half_width=0.42, core_half_width=0.25)
    metal = (cube > 0).astype(np.float32)
    z, y, x = unit_coordinates(shp)
    silica = (rounded_box_distance(z, y, x, half_width=0.62, rounding=0.2) <= 0) & (metal == 0)
    conc = (cube - np.float32(_SHELL)) / np.float32(_CORE - _SHELL) * metal
    total = float(conc.sum(dtype=np.float64))
    core_voxels = 0.25 * min(shp) / 2.0
    var_total = (mixing * core_voxels) ** 2  # the mixing variance at the end of the run, voxels^2
    for step in range(steps):
        if step:
            conc = mix_step(conc, metal, var_total * (fraction[step] - fraction[step - 1]), rng, total)
        vol = metal * (np.float32(_SHELL) + np.float32(_CORE - _SHELL) * np.clip(conc, 0.0, 1.0))
        vol[silica] = _SILICA
        yield vol


def nanocube_silica_alloying(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    mixing: float = 0.6,
    inflection: float = 0.35,
    width: float = 0.08,
) -> VolumeSeries:
    """Ground truth of an Au@Ag nanocube alloying under a silica shell, with an inflection.

    An Au cube (intensity 1.0, half width 0.25) in an Ag cube (0.3, half width
    0.42) inside a rounded silica cube (0.12, half width 0.62) whose outer
    shape never changes. Au and Ag mix by the no-flux diffusion of
    :mod:`tomotime.sim.alloying` confined to the metal, so total metal
    intensity and the outer shapes stay constant; the mixing variance follows
    a logistic in time, ``var(t) = (mixing * R)^2 * F(t)`` with ``R`` the Au
    core's half width in voxels, so the alloying is slow at first, fastest
    at ``inflection`` (a fraction of the run; the paper's cube inflects after
    about 15 min) and then levels off.

    Parameters
    ----------
    size, steps, seed, shape
        As in :func:`~tomotime.sim.nanorod_alloying`.
    mixing : float
        Mixing length at the end of the run, in Au-core half widths.
    inflection : float
        Time of the fastest alloying, fraction of the run in (0, 1).
    width : float
        Width of the logistic, fraction of the run.

    Returns
    -------
    VolumeSeries
        Shape ``(T, Z, Y, X)``, float32, values in [0, 1].
    """
    return VolumeSeries(np.stack(list(iter_nanocube_silica_alloying(size, steps, seed, shape=shape, mixing=mixing,
                                                                    inflection=inflection, width=width))))
