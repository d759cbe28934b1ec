"""A thick crystalline slab with curved dislocation lines and surface marker particles.

The specimen is a line-density volume ``(Z, Y, X)`` (Z along the beam at 0
degrees, Y the tilt axis): smooth Gaussian tubes along random curved lines
that thread the slab from its top to its bottom surface (as dislocations in
a thin foil do), plus small particles on both surfaces, the feature points
the tilt-angle tracker follows. Bright-field image formation is in
:func:`bright_field`: a bright background attenuated as ``1 / cos(theta)``
(the effective thickness grows with tilt) with dark lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tomotime.errors import InputError

__all__ = ["Specimen", "dislocation_specimen", "bright_field"]


@dataclass(frozen=True)
class Specimen:
    """A simulated slab.

    Attributes
    ----------
    lines : numpy.ndarray, shape (Z, Y, X), float32
        Dislocation line density (peak about 1 on each line).
    particles : numpy.ndarray, shape (Z, Y, X), float32
        Surface marker density.
    thickness : float
        Slab thickness in pixels (centred on the volume's mid-plane).
    particle_positions : numpy.ndarray, shape (P, 3)
        ``(z, y, x)`` of each particle in centred pixel coordinates.
    """

    lines: np.ndarray
    particles: np.ndarray
    thickness: float
    particle_positions: np.ndarray


def _splat(shape: tuple[int, int, int], points: np.ndarray, weight: float) -> np.ndarray:
    """Add ``weight`` at each point ``(n, 3)`` (index coordinates) with trilinear weights."""
    out = np.zeros(shape, np.float64)
    base = np.floor(points).astype(int)
    frac = points - base
    for corner in np.ndindex(2, 2, 2):
        idx = base + np.array(corner)
        w = np.prod(np.where(np.array(corner), frac, 1 - frac), axis=1) * weight
        ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
        np.add.at(out, tuple(idx[ok].T), w[ok])
    return out


def dislocation_specimen(shape: tuple[int, int, int] = (32, 64, 64), *, n_lines: int = 6,
                         thickness: float | None = None, line_sigma: float = 0.9, n_particles: int = 32,
                         particle_sigma: float = 1.0, seed: int = 0) -> Specimen:
    """Random curved dislocation lines through a slab, and marker particles on its surfaces.

    Parameters
    ----------
    shape : (int, int, int)
        Volume ``(Z, Y, X)`` in pixels.
    n_lines : int
        Number of dislocation lines.
    thickness : float, optional
        Slab thickness in pixels (default ``0.6 * Z``).
    line_sigma, particle_sigma : float
        Gaussian radius of the line tubes and particles (pixels).
    n_particles : int
        Marker particles, half on each surface.
    seed : int
        Seed of the random geometry.
    """
    nz, ny, nx = (int(s) for s in shape)
    if min(nz, ny, nx) < 8:
        raise InputError(f"shape={shape}: expected at least 8 pixels along each axis")
    rng = np.random.default_rng(seed)
    thickness = 0.6 * nz if thickness is None else float(thickness)
    if not 0 < thickness < nz:
        raise InputError(f"thickness={thickness}: expected 0 < thickness < Z={nz}")
    zc, half = (nz - 1) / 2, thickness / 2 - 1.5 * line_sigma
    lines = np.zeros(shape, np.float64)
    margin = 0.12
    for _ in range(n_lines):
        # A line crosses the slab from top to bottom while running a long way in the (x, y) plane.
        start = rng.uniform(margin, 1 - margin, 2) * (ny - 1, nx - 1)
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction)
        length = rng.uniform(0.35, 0.6) * min(ny, nx)
        s = np.linspace(-0.5, 0.5, int(length * 6))
        bend = rng.uniform(-0.15, 0.15) * length * (1 - 4 * s**2)
        normal = np.array([-direction[1], direction[0]])
        yx = start + np.outer(s * length, direction) + np.outer(bend, normal)
        z = zc + np.sign(rng.uniform(-1, 1)) * half * 2 * s
        pts = np.column_stack([z, yx])
        inside = np.all((pts[:, 1:] >= 2) & (pts[:, 1:] <= np.array([ny, nx]) - 3), axis=1)
        lines += _splat(shape, pts[inside], 1 / 6)
    lines = ndimage.gaussian_filter(lines, line_sigma)
    lines *= 2 * np.pi * line_sigma**2  # unit line density -> peak of about 1 across the tube
    particles = np.zeros(shape, np.float64)
    pz = zc + np.where(np.arange(n_particles) % 2 == 0, -1, 1) * (thickness / 2 - 1)
    pyx = rng.uniform(0.1, 0.9, (n_particles, 2)) * (ny - 1, nx - 1)
    positions = np.column_stack([pz, pyx])
    particles = ndimage.gaussian_filter(_splat(shape, positions, 1.0), particle_sigma)
    particles /= max(particles.max(), 1e-12)
    centred = positions - (np.array(shape) - 1) / 2
    return Specimen(lines.astype(np.float32), particles.astype(np.float32), thickness, centred)


def bright_field(line_projection: np.ndarray, particle_projection: np.ndarray, angle: np.ndarray | float, *,
                 thickness: float, absorption: float = 0.01, contrast: float = 0.5,
                 particle_contrast: float = 0.4) -> np.ndarray:
    """Bright-field intensity from projected densities.

    ``I = exp(-absorption * thickness / cos(theta)) * exp(-c(theta) * L - particle_contrast * P)``
    with a tilt-dependent line contrast ``c(theta) = contrast * (0.7 + 0.3 cos(2 theta))``
    (a stand-in for the changing two-beam condition).

    Parameters
    ----------
    line_projection, particle_projection : numpy.ndarray, shape (..., Y, X)
        Projected line and particle densities (pixel units).
    angle : float or numpy.ndarray broadcastable to ``(..., Y, 1)``
        Tilt angle(s) in degrees (per image, or per row).
    """
    theta = np.radians(np.asarray(angle, dtype=np.float64))
    background = np.exp(-absorption * thickness / np.cos(theta))
    c = contrast * (0.7 + 0.3 * np.cos(2 * theta))
    return (background * np.exp(-c * line_projection - particle_contrast * particle_projection)).astype(np.float32)
