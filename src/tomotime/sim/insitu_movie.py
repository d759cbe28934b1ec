"""A simulated atomic-resolution in situ TEM movie with its clean frames.

A crystalline particle -- a disc of atomic columns on a square lattice, each
column a Gaussian dip in the transmitted intensity -- sits on an amorphous
support (a static band of smooth random texture) below vacuum. Columns near
the particle surface appear and vanish from frame to frame (a two-state
Markov chain per column); the whole scene may drift. Each frame receives
Poisson counts at ``dose`` electrons per pixel in vacuum; optionally the
detector spreads each count over neighbouring pixels (Gaussian point-spread
of ``correlation`` px), which makes the noise spatially correlated but keeps
it independent between frames. The clean frames are the expected counts
(after the same point spread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from tomotime.errors import InputError

__all__ = ["InsituMovie", "insitu_movie"]


@dataclass(frozen=True)
class InsituMovie:
    """Frames ``(T, H, W)`` float32: ``clean`` (expected counts) and ``noisy`` (counts).

    ``vacuum`` is a ``(H, W)`` bool mask of pixels that show vacuum in every frame;
    ``occupancy`` ``(T, n_columns)`` which columns are present in each frame.
    """

    clean: np.ndarray
    noisy: np.ndarray
    vacuum: np.ndarray
    occupancy: np.ndarray
    dose: float


def _columns(size: int, spacing: float, radius: float, centre: tuple[float, float]) -> np.ndarray:
    n = int(np.ceil(radius / spacing)) + 1
    grid = np.arange(-n, n + 1) * spacing
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    keep = yy ** 2 + xx ** 2 <= (radius + spacing) ** 2
    return np.stack([yy[keep] + centre[0], xx[keep] + centre[1]], axis=1)


def insitu_movie(*, frames: int = 32, size: int = 64, dose: float = 0.3, spacing: float = 4.0,
                 radius: float | None = None, contrast: float = 0.5, surface_flip: float = 0.1,
                 drift: tuple[float, float] = (0.0, 0.0), correlation: float = 0.0, seed: int = 0) -> InsituMovie:
    """Simulate an in situ movie of a nanoparticle whose surface columns come and go.

    Parameters
    ----------
    frames, size : int
        Movie length and square frame side (px).
    dose : float
        Mean electrons per pixel per frame in vacuum (the paper: about 0.2).
    spacing : float
        Column spacing (px); columns are Gaussians of standard deviation ``spacing / 5``.
    radius : float, optional
        Particle radius (px; default ``size / 4``).
    contrast : float
        Fractional intensity dip at a column centre, in (0, 1).
    surface_flip : float
        Per-frame probability that a surface column changes state.
    drift : (float, float)
        Scene drift (px per frame) along (y, x).
    correlation : float
        Detector point-spread (px, Gaussian sigma); 0 for independent pixels.
    seed : int

    Returns
    -------
    InsituMovie
    """
    if frames < 1 or size < 8 or not dose > 0 or not 0 < contrast < 1 or not 0 <= surface_flip <= 1:
        raise InputError(f"insitu_movie: expected frames >= 1, size >= 8, dose > 0, contrast in (0, 1), "
                         f"surface_flip in [0, 1]; got {frames}, {size}, {dose}, {contrast}, {surface_flip}")
    rng = np.random.default_rng(seed)
    radius = size / 4 if radius is None else radius
    support_top = int(round(size * 0.7))
    centre = (support_top - 0.6 * radius, size / 2)
    cols = _columns(size, spacing, radius, centre)
    dist = np.hypot(cols[:, 0] - centre[0], cols[:, 1] - centre[1])
    surface = dist > radius - spacing
    occupancy = np.ones((frames, len(cols)), dtype=bool)
    state = dist <= radius
    for t in range(frames):
        flips = surface & (rng.random(len(cols)) < surface_flip)
        state = np.where(flips, ~state, state)
        occupancy[t] = state
    texture = gaussian_filter(rng.standard_normal((size + 16, size + 16)), 1.5)
    texture = 0.8 + 0.08 * texture / texture.std()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    sigma = spacing / 5
    clean = np.empty((frames, size, size), dtype=np.float64)
    vacuum = np.ones((size, size), dtype=bool)
    for t in range(frames):
        dy, dx = drift[0] * t, drift[1] * t
        sy, sx = int(np.floor(dy)) % 16, int(np.floor(dx)) % 16
        base = np.ones((size, size))
        below = yy >= support_top + dy
        base[below] = texture[sy:sy + size, sx:sx + size][below]
        dip = np.zeros((size, size))
        for (cy, cx) in cols[occupancy[t]]:
            cy, cx = cy + dy, cx + dx
            y0, y1 = int(max(cy - 4 * sigma, 0)), int(min(cy + 4 * sigma + 2, size))
            x0, x1 = int(max(cx - 4 * sigma, 0)), int(min(cx + 4 * sigma + 2, size))
            if y0 >= y1 or x0 >= x1:
                continue
            dip[y0:y1, x0:x1] += np.exp(-((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2)
                                        / (2 * sigma ** 2))
        frame = base * (1 - contrast * np.minimum(dip, 1.0))
        clean[t] = dose * frame
        vacuum &= ~below & (np.hypot(yy - centre[0] - dy, xx - centre[1] - dx) > radius + 2 * spacing)
    noisy = rng.poisson(clean).astype(np.float64)
    if correlation > 0:
        noisy = gaussian_filter(noisy, (0, correlation, correlation), mode="reflect")
        clean = gaussian_filter(clean, (0, correlation, correlation), mode="reflect")
    return InsituMovie(clean.astype(np.float32), noisy.astype(np.float32), vacuum, occupancy, float(dose))
