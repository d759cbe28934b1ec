"""Electron-beam damage of a hollow nanoshell: the wall thins, gaps and cavities open, the shell bends.

Two models (``model=``), all randomness from one seed.

``"thinning"`` (default), the damage the DIP-STER paper describes (knock-on and
elastic damage, strengths 0.5 and 0.55), built from smooth signed distances
so the wall stays smooth (partial-volume edges) instead of roughening voxel by
voxel:

- **Knock-on thinning.** The wall of mid radius ``R`` and thickness ``h``
  thins from both sides at ``dh/dt = -0.008 * knock_on * s * h0`` per step,
  where ``s`` is 1 plus four Gaussian caps (height 16, width 0.25 rad) around
  random directions: weak spots. Where ``h`` reaches 0 a gap opens and widens
  as more of the cap crosses the threshold (with the defaults the first gaps
  open after about 15 steps; the rest of the wall loses 40 % of its thickness
  in 100 steps).
- **Elastic damage: cavities and bending.** Six voids nucleate inside the
  wall at random directions and times (within the first half of 100 steps)
  and grow at ``0.01 * elastic * h0`` per step; a void wider than the
  remaining wall breaks through as a pit or gap. The mid radius bends
  smoothly, ``R(t) = R0 + 0.0004 * elastic * t * g``, with ``g`` a sum of
  random low-frequency plane waves of unit RMS.
- **Observation.** Any rise of the total intensity over the previous step
  (the bending can stretch the wall) is removed by scaling.

``"sputter"``, the earlier voxel model:

- **Knock-on sputtering.** The wall is tracked as a binary solid in its own
  (material) frame. Each step every solid voxel with ``k`` empty face
  neighbours is removed with probability ``1 - exp(-rate * k / 6)``, where
  ``rate = 0.03 * knock_on * s * min(Z, Y, X) / 64``. Exposed atoms (edges,
  thin spots, loose fragments) go first, so walls thin from both sides and
  roughen. The susceptibility ``s`` is 1 plus four Gaussian caps (height 6,
  width about 0.25 rad) around random directions: weak spots where the wall is
  eaten through first and holes open (with the defaults, after roughly a third
  of 100 steps at 64-128 voxels). The rate grows with the volume size so that
  the same fraction of the wall is lost per step at any resolution.
- **Elastic deformation.** A displacement field accumulates as a random walk:
  each step adds a smooth, divergence-free field (six random plane waves of
  0.5-1.5 cycles per unit, amplitudes perpendicular to their wave vectors)
  with RMS amplitude ``0.005 * elastic * min(Z, Y, X)`` voxels. Being
  divergence-free it bends and shears the shell without creating or
  destroying material; locally stretched walls thin.
- **Observation.** The volume at each step is the material-frame solid pulled
  through the accumulated displacement with linear interpolation
  (``scipy.ndimage.map_coordinates``), i.e. one interpolation per step, so
  edges do not blur over time. Interpolation may add a trace of intensity;
  any rise of the total over the previous step is removed by scaling, so the
  total intensity never increases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage as ndi

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.sim._grid import (check_nonnegative, check_steps, fibonacci_directions, soft_fill, unit_coordinates,
                                volume_shape, voxel_length)
from tomotime.sim.nanoparticles import nanoshell

__all__ = ["nanoshell_damage", "iter_nanoshell_damage", "DAMAGE_MODELS"]

DAMAGE_MODELS = ("thinning", "sputter")
_THIN_RATE = 0.008
_THIN_SPOT_BOOST = 16.0
_CAVITIES = 6
_CAVITY_GROWTH = 0.01
_CAVITY_WINDOW = 50
_BEND_RATE = 0.0004

_SPUTTER_RATE = 0.03
_ELASTIC_STEP = 0.005
_WAVES = 6
_SPOTS = 4
_SPOT_BOOST = 6.0
_SPOT_WIDTH = 0.25
_FACES = np.array([[[0, 0, 0], [0, 1, 0], [0, 0, 0]],
                   [[0, 1, 0], [1, 0, 1], [0, 1, 0]],
                   [[0, 0, 0], [0, 1, 0], [0, 0, 0]]], dtype=np.uint8)


def _susceptibility(coords, rng: np.random.Generator, boost: float = _SPOT_BOOST) -> np.ndarray:
    """``1 + boost * sum of Gaussian caps`` around a few random directions: weak spots."""
    z, y, x = coords
    r = np.sqrt(z * z + y * y + x * x) + np.float32(1e-6)
    field = np.ones(np.broadcast_shapes(z.shape, y.shape, x.shape), dtype=np.float32)
    for d in fibonacci_directions(_SPOTS, rng).astype(np.float32):
        cos = (z * d[0] + y * d[1] + x * d[2]) / r
        field += np.float32(boost) * np.exp((cos - 1) / np.float32(_SPOT_WIDTH**2))
    return field


def _sputter(solid: np.ndarray, rate: np.ndarray, rng: np.random.Generator) -> None:
    """Remove exposed voxels of ``solid`` in place (see the module description)."""
    exposure = ndi.convolve((~solid).view(np.uint8), _FACES, mode="constant", cval=1)
    exposed = solid & (exposure > 0)
    k = exposure[exposed]
    gone = rng.random(k.size) < -np.expm1(-rate[exposed] * k / 6.0)
    idx = np.flatnonzero(exposed)
    solid.flat[idx[gone]] = False


def _never_gain(vol: np.ndarray, previous: float) -> tuple[np.ndarray, float]:
    """``vol`` scaled down if its total exceeds ``previous``; returns it and its total."""
    total = float(vol.sum(dtype=np.float64))
    if total > previous:
        # the 1e-6 margin absorbs float32 rounding of the rescaled voxels
        vol *= np.float32(previous / total * (1.0 - 1e-6))
        total = float(vol.sum(dtype=np.float64))
    return vol, total


def _plane_waves(coords, rng: np.random.Generator, *, components: int, frequencies: tuple[float, float],
                 solenoidal: bool = False) -> list[np.ndarray]:
    """Sums of random plane waves in unit coordinates: ``components`` fields of unit RMS.

    With ``solenoidal=True`` (three components) each wave's amplitude is
    perpendicular to its wave vector, so the vector field is divergence-free.
    """
    shape = np.broadcast_shapes(*(c.shape for c in coords))
    field = [np.zeros(shape, dtype=np.float32) for _ in range(components)]
    for _ in range(_WAVES):
        k = rng.normal(size=3)
        k *= rng.uniform(*frequencies) / np.linalg.norm(k)
        amp = np.cross(k, rng.normal(size=3)) if solenoidal else rng.normal(size=components)
        amp *= np.sqrt(2.0 / _WAVES) / np.linalg.norm(amp) * (np.sqrt(components) if solenoidal else 1.0)
        phase = rng.uniform(0, 2 * np.pi)
        parts = [np.exp(1j * (2 * np.pi * k[i] * c + (phase if i == 0 else 0))).astype(np.complex64)
                 for i, c in enumerate(coords)]
        wave = (parts[0] * parts[1] * parts[2]).real
        for i in range(components):
            field[i] += np.float32(amp[i]) * wave
    return field


def iter_nanoshell_damage(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    knock_on: float = 0.5,
    elastic: float = 0.55,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    radius: float = 0.7,
    thickness: float = 0.15,
    model: str = "thinning",
) -> Iterator[np.ndarray]:
    """Yield the damaged nanoshell one time step at a time (see :func:`nanoshell_damage`).

    Arguments are checked when this function is called, before the first volume.

    Yields
    ------
    numpy.ndarray, shape (Z, Y, X), float32
        ``steps`` volumes; the first is the intact shell.
    """
    shp = volume_shape(size, shape)
    steps = check_steps(steps)
    knock_on = check_nonnegative(knock_on, "knock_on")
    elastic = check_nonnegative(elastic, "elastic")
    if model not in DAMAGE_MODELS:
        raise InputError(f"model={model!r}: expected one of {', '.join(DAMAGE_MODELS)}")
    if not 0 < thickness < radius < 1:
        raise InputError(f"thickness={thickness}, radius={radius}: expected 0 < thickness < radius < 1")
    sputter_rng, elastic_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if model == "thinning":
        return _thinning(shp, steps, knock_on, elastic, sputter_rng, elastic_rng, radius, thickness)
    solid = nanoshell(shape=shp, radius=radius, thickness=thickness) > 0
    return _damage(solid, steps, knock_on, elastic, sputter_rng, elastic_rng)


def _thinning(shp, steps, knock_on, elastic, spot_rng, elastic_rng, radius, thickness) -> Iterator[np.ndarray]:
    units = unit_coordinates(shp)
    voxel = voxel_length(shp)
    z, y, x = units
    r = np.sqrt(z * z + y * y + x * x)
    spots = _susceptibility(units, spot_rng, _THIN_SPOT_BOOST)
    bend = _plane_waves(units, elastic_rng, components=1, frequencies=(0.3, 0.8))[0]
    mid = radius - thickness / 2.0
    directions = fibonacci_directions(_CAVITIES, elastic_rng)
    depth = elastic_rng.uniform(-0.25, 0.25, _CAVITIES) * thickness
    centres = (mid + depth)[:, None] * directions
    births = elastic_rng.uniform(0, _CAVITY_WINDOW, _CAVITIES)
    previous = np.inf
    for step in range(steps):
        half = 0.5 * thickness * np.maximum(1.0 - _THIN_RATE * knock_on * step * spots, 0.0)
        sdf = np.abs(r - (mid + np.float32(_BEND_RATE * elastic * step) * bend)) - half
        for c, born in zip(centres, births, strict=True):
            rho = _CAVITY_GROWTH * elastic * thickness * (step - born)
            if rho > 0:
                void = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) - np.float32(rho)
                sdf = np.maximum(sdf, -void)
        vol, previous = _never_gain(soft_fill(sdf.astype(np.float32), voxel), previous)
        yield vol


def _damage(solid, steps, knock_on, elastic, sputter_rng, elastic_rng) -> Iterator[np.ndarray]:
    shp = solid.shape
    n = min(shp)
    units = unit_coordinates(shp)
    rate = _SPUTTER_RATE * knock_on * n / 64.0 * _susceptibility(units, sputter_rng)
    grid = np.indices(shp, dtype=np.float32) if elastic > 0 else None
    displacement = [np.zeros(shp, dtype=np.float32) for _ in range(3)]
    previous = np.inf
    for step in range(steps):
        if step:
            if knock_on > 0:
                _sputter(solid, rate, sputter_rng)
            if elastic > 0:
                waves = _plane_waves(units, elastic_rng, components=3, frequencies=(0.5, 1.5), solenoidal=True)
                for u, du in zip(displacement, waves, strict=True):
                    u += np.float32(_ELASTIC_STEP * elastic * n / np.sqrt(3)) * du
        if grid is None or step == 0:
            vol = solid.astype(np.float32)
        else:
            vol = ndi.map_coordinates(solid.astype(np.float32), grid - np.stack(displacement), order=1, mode="constant")
            np.clip(vol, 0.0, 1.0, out=vol)
        vol, previous = _never_gain(vol, previous)
        yield vol


def nanoshell_damage(
    size: int | Sequence[int] | None = None,
    steps: int = 100,
    knock_on: float = 0.5,
    elastic: float = 0.55,
    seed: int = 0,
    *,
    shape: Sequence[int] | None = None,
    radius: float = 0.7,
    thickness: float = 0.15,
    model: str = "thinning",
) -> VolumeSeries:
    """Ground truth of a hollow nanoshell degrading under the electron beam.

    Starts from a hollow sphere (:func:`~tomotime.sim.nanoparticles.nanoshell`)
    and applies the damage model in this module's description: the wall
    thins, gaps and cavities open, the shell bends; the total intensity
    never increases.

    Parameters
    ----------
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    steps : int
        Number of time points T (>= 2); times are ``0 .. T-1`` s.
    knock_on : float
        Knock-on sputtering strength (>= 0; 0 switches it off).
    elastic : float
        Elastic deformation strength (>= 0; 0 switches it off).
    seed : int
        Seeds sputtering and deformation.
    shape : (int, int, int), optional
        Alternative to ``size``.
    radius, thickness : float
        Initial outer radius and wall thickness, unit coordinates.
    model : {"thinning", "sputter"}
        The damage model (module description).

    Returns
    -------
    VolumeSeries
        Shape ``(T, Z, Y, X)``, float32, values in [0, 1].
    """
    volumes = iter_nanoshell_damage(size, steps, knock_on, elastic, seed, shape=shape, radius=radius,
                                    thickness=thickness, model=model)
    return VolumeSeries(np.stack(list(volumes)))
