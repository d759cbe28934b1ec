"""Registry of the dynamic ground-truth scenarios.

Each scenario is a function returning a :class:`~tomotime.data.VolumeSeries`
of T volumes at times ``0 .. T-1`` s, and has a generator twin yielding the
volumes one at a time, so that a long run can stream to disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.sim._grid import check_options, check_steps, volume_shape
from tomotime.sim.alloying import iter_nanorod_alloying, nanorod_alloying
from tomotime.sim.beam_damage import iter_nanoshell_damage, nanoshell_damage
from tomotime.sim.experiments import (iter_nanocube_silica_alloying, iter_nanostar_retraction,
                                      nanocube_silica_alloying, nanostar_retraction)
from tomotime.sim.reshaping import iter_nanostar_reshaping, nanostar_reshaping

__all__ = ["SCENARIOS", "make_scenario", "iter_scenario"]

SCENARIOS: dict[str, Callable[..., VolumeSeries]] = {
    "nanorod-alloying": nanorod_alloying,
    "nanoshell-damage": nanoshell_damage,
    "nanostar-reshaping": nanostar_reshaping,
    "nanostar-retraction": nanostar_retraction,
    "nanocube-silica-alloying": nanocube_silica_alloying,
}

_ITERATORS: dict[str, Callable[..., Iterator[np.ndarray]]] = {
    "nanorod-alloying": iter_nanorod_alloying,
    "nanoshell-damage": iter_nanoshell_damage,
    "nanostar-reshaping": iter_nanostar_reshaping,
    "nanostar-retraction": iter_nanostar_retraction,
    "nanocube-silica-alloying": iter_nanocube_silica_alloying,
}


def iter_scenario(
    name: str,
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    **options,
) -> Iterator[np.ndarray]:
    """Yield the volumes ``(Z, Y, X)`` of scenario ``name`` one step at a time.

    Arguments as in :func:`make_scenario`; all are checked before the first
    volume is computed.
    """
    if name not in SCENARIOS:
        raise InputError(f"scenario {name!r} is unknown; choose one of: {', '.join(SCENARIOS)}")
    volume_shape(size, shape)
    check_steps(steps)
    func = _ITERATORS[name]
    check_options(func, name, "scenario", options)
    return func(size, steps, shape=shape, seed=seed, **options)


def make_scenario(
    name: str,
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    **options,
) -> VolumeSeries:
    """Build the ground truth of the registered dynamic scenario ``name``.

    Parameters
    ----------
    name : str
        One of ``nanorod-alloying``, ``nanoshell-damage``, ``nanostar-reshaping``,
        ``nanostar-retraction``, ``nanocube-silica-alloying``.
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    steps : int
        Number of time points T (>= 2); times are ``0 .. T-1`` s.
    seed : int
        Seeds all randomness of the scenario.
    shape : (int, int, int), optional
        Alternative to ``size``.
    **options
        Passed to the scenario (e.g. ``knock_on``, ``elastic``, ``tau``).

    Returns
    -------
    VolumeSeries
        Shape ``(T, Z, Y, X)``, float32, values in [0, 1].

    Raises
    ------
    InputError
        For an unknown name or option, a size below 16 voxels or fewer than 2 steps.
    """
    return VolumeSeries(np.stack(list(iter_scenario(name, size, steps, seed, shape=shape, **options))))
