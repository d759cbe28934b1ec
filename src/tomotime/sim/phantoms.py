"""Static test volumes: 3-D Shepp-Logan, the "sea-mine" materials phantom, and a registry.

Every phantom is a float32 volume ``(Z, Y, X)`` with values in [0, 1], defined
in unit coordinates (origin at the centre, one unit = half the smallest edge)
so that it looks the same at any resolution. The nanoparticle phantoms live in
:mod:`tomotime.sim.nanoparticles`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tomotime.errors import InputError
from tomotime.sim._grid import check_options, unit_coordinates, volume_shape, voxel_length
from tomotime.sim.nanoparticles import core_shell_nanocube, core_shell_nanorod, nanoshell, nanostar

__all__ = ["shepp_logan_3d", "sea_mine", "PHANTOMS", "make_phantom", "SHEPP_LOGAN_ELLIPSOIDS"]

Size = int | Sequence[int] | None

#: Modified-contrast 3-D Shepp-Logan head (Kak & Slaney geometry, Toft's
#: intensities): ``A, a, b, c, x0, y0, z0, phi, theta, psi`` per ellipsoid, with
#: intensity change ``A``, semi-axes ``a, b, c``, centre ``x0, y0, z0`` and
#: Euler angles in degrees.
SHEPP_LOGAN_ELLIPSOIDS = np.array([
    [1.0, 0.6900, 0.920, 0.810, 0.00, 0.0000, 0.00, 0, 0, 0],
    [-0.8, 0.6624, 0.874, 0.780, 0.00, -0.0184, 0.00, 0, 0, 0],
    [-0.2, 0.1100, 0.310, 0.220, 0.22, 0.0000, 0.00, -18, 0, 10],
    [-0.2, 0.1600, 0.410, 0.280, -0.22, 0.0000, 0.00, 18, 0, 10],
    [0.1, 0.2100, 0.250, 0.410, 0.00, 0.3500, -0.15, 0, 0, 0],
    [0.1, 0.0460, 0.046, 0.050, 0.00, 0.1000, 0.25, 0, 0, 0],
    [0.1, 0.0460, 0.046, 0.050, 0.00, -0.1000, 0.25, 0, 0, 0],
    [0.1, 0.0460, 0.023, 0.050, -0.08, -0.6050, 0.00, 0, 0, 0],
    [0.1, 0.0230, 0.023, 0.020, 0.00, -0.6060, 0.00, 0, 0, 0],
    [0.1, 0.0230, 0.046, 0.020, 0.06, -0.6050, 0.00, 0, 0, 0],
])


def _rotation(phi: float, theta: float, psi: float) -> np.ndarray:
    """``Rz(phi) @ Ry(theta) @ Rx(psi)`` in phantom ``(x, y, z)`` axes, angles in degrees."""
    p, t, s = np.deg2rad([phi, theta, psi])
    rz = np.array([[np.cos(p), -np.sin(p), 0], [np.sin(p), np.cos(p), 0], [0, 0, 1]])
    ry = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    rx = np.array([[1, 0, 0], [0, np.cos(s), -np.sin(s)], [0, np.sin(s), np.cos(s)]])
    return rz @ ry @ rx


def shepp_logan_3d(size: Size = None, *, shape: Sequence[int] | None = None) -> np.ndarray:
    """The 3-D modified Shepp-Logan head phantom (10 ellipsoids, Toft's contrast).

    Axes: the phantom's ``x`` runs along volume X, its ``y`` (head up) along
    *decreasing* Z, and its ``z`` along Y, the tilt axis. Hence every slice
    perpendicular to the tilt axis, ``vol[:, k, :]``, is a head section shown
    the usual way up, and the central one reproduces the 2-D modified
    Shepp-Logan phantom (``skimage.data.shepp_logan_phantom``) apart from the
    two small ellipsoids at ``z = 0.25``. Each ellipsoid is rotated about its
    own centre by ``Rz(phi) Ry(theta) Rx(psi)``, so the ventricles keep the
    2-D phantom's -18 and +18 degree in-plane tilt; the table's ``psi`` is read
    as a tilt out of that plane (implementations differ on this angle).

    Parameters
    ----------
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    shape : (int, int, int), optional
        Alternative to ``size``.

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
        Values in [0, 1]: 1 skull, 0.2 brain, 0 ventricles, 0.3-0.4 small features.
    """
    shp = volume_shape(size, shape)
    zz, yy, xx = unit_coordinates(shp)
    px, py, pz = xx, -zz, yy
    vol = np.zeros(shp, dtype=np.float32)
    for amp, a, b, c, x0, y0, z0, phi, theta, psi in SHEPP_LOGAN_ELLIPSOIDS:
        rot = _rotation(phi, theta, psi).astype(np.float32)
        d = (px - np.float32(x0), py - np.float32(y0), pz - np.float32(z0))
        q = [rot[0, k] * d[0] + rot[1, k] * d[1] + rot[2, k] * d[2] for k in range(3)]
        inside = (q[0] / a) ** 2 + (q[1] / b) ** 2 + (q[2] / c) ** 2 <= 1
        vol[np.broadcast_to(inside, shp)] += np.float32(amp)
    return np.clip(vol, 0.0, 1.0)


def _smooth_field(coords, rng: np.random.Generator, *, waves: int = 6, max_frequency: float = 1.5) -> np.ndarray:
    """A seeded low-frequency field in [0, 1]: a sum of a few random plane waves."""
    z, y, x = coords
    field = 0.0
    for _ in range(waves):
        k = rng.normal(size=3)
        k *= rng.uniform(0.5, max_frequency) / np.linalg.norm(k)
        phase = rng.uniform(0, 2 * np.pi)
        field = field + np.cos(2 * np.pi * (k[0] * z + k[1] * y + k[2] * x) + phase)
    return (0.5 + 0.5 * field / waves).astype(np.float32)


def _atom_centres(rng: np.random.Generator, n: int, *, radius: float, spread: float) -> np.ndarray:
    """Up to ``n`` points in a ball of radius ``spread``, at least ``2.4 * radius`` apart."""
    centres: list[np.ndarray] = []
    for _ in range(200 * n):
        p = rng.uniform(-spread, spread, size=3)
        if np.linalg.norm(p) <= spread and all(np.linalg.norm(p - c) >= 2.4 * radius for c in centres):
            centres.append(p)
            if len(centres) == n:
                break
    return np.array(centres)


def sea_mine(size: Size = None, seed: int = 0, *, shape: Sequence[int] | None = None) -> np.ndarray:
    """The "sea-mine" materials phantom: a thin membrane around features of mixed frequency.

    Built after the simulated test object of the INR tomography paper:

    - a thin ellipsoidal membrane (intensity 0.5, about 0.035 units or at least
      1.5 voxels thick) with semi-axes 0.62, 0.85, 0.75 along Z, Y, X;
    - a stepped square pyramid pointing along +Y whose terraces alternate
      between 1.0 and 0.55 every 0.04 units (at least one voxel): high
      spatial frequencies;
    - 14 small atom-like spheres (0.85) clustered at random (seeded);
    - a "cheese wedge": a 90-degree sector of a cylinder along Y, filled with a
      seeded smooth field between 0.2 and 0.65: low spatial frequencies.

    Parameters
    ----------
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    seed : int
        Seeds the atom positions and the wedge's smooth field.
    shape : (int, int, int), optional
        Alternative to ``size``.

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
        Values in [0, 1].
    """
    shp = volume_shape(size, shape)
    rng = np.random.default_rng(seed)
    voxel = voxel_length(shp)
    z, y, x = unit_coordinates(shp)
    vol = np.zeros(shp, dtype=np.float32)

    axes = (0.62, 0.85, 0.75)
    rho = np.sqrt((z / axes[0]) ** 2 + (y / axes[1]) ** 2 + (x / axes[2]) ** 2)
    thickness = max(0.035, 1.5 * voxel) / min(axes)
    vol[(rho <= 1) & (rho > 1 - thickness)] = 0.5

    layer = max(0.04, voxel)
    base, height, half_width = -0.55, 0.45, 0.18
    level = np.floor((y - base) / layer)
    terrace_top = np.minimum((level + 1) * layer, height)
    width = half_width * (1 - terrace_top / height)
    pyramid = (level >= 0) & (y - base <= height) & (np.maximum(np.abs(z), np.abs(x + 0.25)) <= width)
    pyramid = np.broadcast_to(pyramid, shp)
    vol[pyramid] = np.where(np.broadcast_to(level, shp)[pyramid] % 2 == 0, 1.0, 0.55)

    atom_radius = max(0.04, voxel)
    cluster = np.array([0.05, 0.4, -0.25])
    for c in _atom_centres(rng, 14, radius=atom_radius, spread=0.2 - atom_radius) + cluster:
        ball = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= atom_radius**2
        vol[np.broadcast_to(ball, shp)] = 0.85

    axis_x = 0.05
    dx = x - axis_x
    wedge = (np.abs(y) <= 0.25) & (dx * dx + z * z <= 0.5**2) & (dx >= np.abs(z))
    wedge = np.broadcast_to(wedge, shp)
    field = np.broadcast_to(_smooth_field((z, y, x), rng), shp)
    vol[wedge] = 0.2 + 0.45 * field[wedge]
    return np.clip(vol, 0.0, 1.0)


PHANTOMS: dict[str, Callable[..., np.ndarray]] = {
    "shepp-logan": shepp_logan_3d,
    "sea-mine": sea_mine,
    "nanorod": core_shell_nanorod,
    "nanoshell": nanoshell,
    "nanostar": nanostar,
    "nanocube": core_shell_nanocube,
}


def make_phantom(name: str, size: Size = None, *, shape: Sequence[int] | None = None, **options) -> np.ndarray:
    """Build the registered phantom ``name`` (see :data:`PHANTOMS`).

    Parameters
    ----------
    name : str
        One of ``shepp-logan``, ``sea-mine``, ``nanorod``, ``nanoshell``,
        ``nanostar``, ``nanocube``.
    size : int or (int, int, int), optional
        Cube edge (default 64) or ``(Z, Y, X)``; each edge >= 16 voxels.
    shape : (int, int, int), optional
        Alternative to ``size``.
    **options
        Passed to the phantom function (e.g. ``seed``, ``n_branches``).

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32

    Raises
    ------
    InputError
        For an unknown name or option, or a size below 16 voxels.
    """
    if name not in PHANTOMS:
        raise InputError(f"phantom {name!r} is unknown; choose one of: {', '.join(PHANTOMS)}")
    volume_shape(size, shape)
    func = PHANTOMS[name]
    check_options(func, name, "phantom", options)
    return func(size, shape=shape, **options)
