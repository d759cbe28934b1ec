"""ALPS: how ordered a frame is, from the persistent homology of its sub-level sets.

Definition (Thomas et al., Technometrics 2023, as used by Crozier, Leibovich
et al.): smooth the frame with a Gaussian (sigma = 2 px), compute the
0-dimensional persistence of its sub-level-set cubical filtration (gudhi),
keep the features born inside a polygonal region of interest, and with their
lifetimes ``l`` (the essential feature dies at the frame's maximum)

    ALPS = integral_0^inf log #{l_k >= eta} d eta
         = sum_k (l_(k) - l_(k-1)) log(n - k + 1)   (sorted, l_(0) = 0).

Ties count every tied feature: ``alps([1, 2, 2]) = log 3 + log 2``.
Standardised by vacuum regions of ``n`` pixels, ``ALPS = b0 + b1 ln n``:
ALPS* = (ALPS - b0) / (b1 ln n), about 1 for noise (paper: b0 = -5.08,
b1 = 0.705; ALPS* >= 1.3 ordered, <= 1.1 disordered). Significance: a
Monte-Carlo Poisson null fitted on vacuum, Benjamini-Hochberg over frames.

Polygons are lists of ``(x, y)`` vertices in pixel coordinates: ``x`` the
column, ``y`` the row of the frame (``(T, H, W)`` movies, ``(H, W)`` frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath
from skimage.filters import gaussian

from tomotime.errors import InputError
from tomotime.metrics._validate import as_real_array

__all__ = [
    "PAPER_BETA", "ORDERED", "DISORDERED", "alps", "lifetimes", "polygon_mask", "frame_alps", "alps_series",
    "alps_star", "check_vacuum", "calibrate_vacuum", "poisson_null_test", "benjamini_hochberg", "NullTest",
    "MIN_VACUUM_PIXELS",
]

#: ``(b0, b1)`` of the paper's standardisation.
PAPER_BETA = (-5.08, 0.705)
ORDERED, DISORDERED = 1.3, 1.1
#: Fewest vacuum pixels (over all frames) from which a Poisson null is fitted.
MIN_VACUUM_PIXELS = 400


def alps(values: np.ndarray) -> float:
    """ALPS of lifetimes ``values`` (>= 0): ``integral_0^inf log #{values >= eta} d eta``; 0 for none."""
    v = np.sort(as_real_array(values, name="lifetimes", ndims=(1,)) if np.size(values) else np.zeros(0))
    if v.size and v[0] < 0:
        raise InputError(f"lifetimes: expected values >= 0, got {v[0]}")
    if v.size == 0:
        return 0.0
    steps = np.diff(np.concatenate([[0.0], v]))
    return float(np.sum(steps * np.log(np.arange(v.size, 0, -1))))


def _segments_cross(p: np.ndarray, q: np.ndarray, r: np.ndarray, s: np.ndarray) -> bool:
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return orient(p, q, r) * orient(p, q, s) < 0 and orient(r, s, p) * orient(r, s, q) < 0


def polygon_mask(polygon: np.ndarray | list, shape: tuple[int, int], *, name: str = "roi") -> np.ndarray:
    """Pixels ``(H, W)`` whose centre ``(x=column, y=row)`` lies inside ``polygon`` (bool).

    Raises
    ------
    InputError
        Fewer than 3 vertices, non-finite values, a vertex outside the frame,
        a self-intersecting outline, or no pixel inside.
    """
    try:
        poly = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        poly = np.zeros((0, 0))
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3 or not np.isfinite(poly).all():
        raise InputError(f"{name}: expected a polygon of at least 3 finite (x, y) vertices, got {polygon!r:.80}")
    h, w = shape
    outside = (poly[:, 0] < -0.5) | (poly[:, 0] > w - 0.5) | (poly[:, 1] < -0.5) | (poly[:, 1] > h - 0.5)
    if outside.any():
        x, y = poly[np.argmax(outside)]
        raise InputError(f"{name}: vertex ({x:g}, {y:g}) lies outside the {w} x {h} px frame "
                         f"(x in [0, {w - 1}], y in [0, {h - 1}])")
    n = len(poly)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            if _segments_cross(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n]):
                raise InputError(f"{name}: the polygon intersects itself (edges {i} and {j}); "
                                 "list the vertices in order around the region")
    yy, xx = np.mgrid[0:h, 0:w]
    mask = PolygonPath(poly).contains_points(np.c_[xx.ravel(), yy.ravel()]).reshape(h, w)
    if not mask.any():
        raise InputError(f"{name}: the polygon contains no pixel centre")
    return mask


def _features(frame: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Birth pixels (row-major flat indices) and lifetimes of the 0-dimensional features."""
    import gudhi

    img = as_real_array(frame, name="frame", ndims=(2,))
    if sigma > 0:
        img = gaussian(img, sigma=sigma, preserve_range=True)
    complex_ = gudhi.CubicalComplex(top_dimensional_cells=img)
    complex_.compute_persistence(homology_coeff_field=2)
    regular, essential = complex_.cofaces_of_persistence_pairs()
    flat = img.ravel(order="F")  # gudhi numbers the cells in column-major order
    pairs = np.asarray(regular[0], dtype=int).reshape(-1, 2) if regular else np.zeros((0, 2), dtype=int)
    born = np.concatenate([pairs[:, 0], np.asarray(essential[0], dtype=int)])
    deaths = np.concatenate([flat[pairs[:, 1]], np.full(born.size - pairs.shape[0], img.max())])
    rows, cols = born % img.shape[0], born // img.shape[0]
    return rows * img.shape[1] + cols, deaths - flat[born]


def lifetimes(frame: np.ndarray, *, sigma: float = 2.0, mask: np.ndarray | None = None) -> np.ndarray:
    """Lifetimes of the 0-dimensional sub-level-set features of a frame born inside ``mask``.

    Parameters
    ----------
    frame : numpy.ndarray, shape (H, W)
    sigma : float
        Gaussian smoothing before the persistence (px; 0: none); scikit-image's
        ``gaussian`` with ``preserve_range``, as the reference implementation.
    mask : numpy.ndarray of bool, shape (H, W), optional
        Where a feature must be born (its minimum) to count (default: everywhere).

    Returns
    -------
    numpy.ndarray, shape (K,)
        Death minus birth; the essential feature dies at the frame's maximum.
    """
    born, life = _features(frame, sigma)
    return life if mask is None else life[np.asarray(mask, dtype=bool).ravel()[born]]


def frame_alps(frame: np.ndarray, *, sigma: float = 2.0, mask: np.ndarray | None = None) -> float:
    """ALPS of one frame ``(H, W)`` (see the module description)."""
    return alps(lifetimes(frame, sigma=sigma, mask=mask))


def alps_series(movie: np.ndarray, *, sigma: float = 2.0, mask: np.ndarray | None = None,
                gain: float = 1.0) -> np.ndarray:
    """ALPS of every frame of ``movie`` (T, H, W) divided by ``gain`` (data units per count), shape (T,)."""
    y = as_real_array(movie, name="movie", ndims=(3,))
    return np.array([frame_alps(f / gain, sigma=sigma, mask=mask) for f in y])


def alps_star(values: np.ndarray | float, n_pixels: int, beta: tuple[float, float] = PAPER_BETA) -> np.ndarray:
    """Standardised ALPS* ``(ALPS - b0) / (b1 ln n)`` for a region of ``n_pixels``."""
    b0, b1 = beta
    if n_pixels < 2 or b1 == 0:
        raise InputError(f"alps_star: expected a region of at least 2 pixels and b1 != 0 (got {n_pixels}, {b1})")
    return (np.asarray(values, dtype=np.float64) - b0) / (b1 * math.log(n_pixels))


def check_vacuum(vacuum: np.ndarray, n_frames: int, *, calibrate: bool = True) -> None:
    """Raise :class:`InputError` unless the vacuum can fit the Poisson null (and calibrate ALPS*)."""
    n = int(np.asarray(vacuum, dtype=bool).sum())
    if n * n_frames < MIN_VACUUM_PIXELS:
        raise InputError(f"vacuum: {n * n_frames} pixels over all frames; expected at least {MIN_VACUUM_PIXELS} to "
                         "fit the Poisson null (draw a larger vacuum region)")
    if calibrate and n < MIN_VACUUM_PIXELS // 4:
        raise InputError(f"vacuum: {n} pixels; expected at least {MIN_VACUUM_PIXELS // 4} to calibrate ALPS* "
                         "(draw a larger vacuum region, or give --beta)")


def calibrate_vacuum(movie: np.ndarray, vacuum: np.ndarray, *, sigma: float = 2.0, gain: float = 1.0,
                     fractions: tuple[float, ...] = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)) -> tuple[float, float]:
    """Fit ``ALPS = b0 + b1 ln n`` on vacuum regions of several sizes.

    The regions are the vacuum pixels within growing squares centred on the
    vacuum's centroid (side ``fraction`` of the vacuum's extent); every frame
    and region gives one point.

    Returns
    -------
    (b0, b1) : tuple of float
    """
    y = as_real_array(movie, name="movie", ndims=(3,))
    vac = np.asarray(vacuum, dtype=bool)
    check_vacuum(vac, y.shape[0])
    rows, cols = np.nonzero(vac)
    cy, cx = rows.mean(), cols.mean()
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    yy, xx = np.mgrid[0:vac.shape[0], 0:vac.shape[1]]
    regions = []
    for f in fractions:
        half = f * extent / 2
        region = vac & (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
        if region.sum() >= 16:
            regions.append(region)
    if len({int(r.sum()) for r in regions}) < 2:
        raise InputError("vacuum: too small to form regions of different sizes for the ALPS* calibration")
    logs, values = [], []
    for frame in y:
        born, life = _features(frame / gain, sigma)
        for region in regions:
            values.append(alps(life[region.ravel()[born]]))
            logs.append(math.log(region.sum()))
    b1, b0 = np.polyfit(np.asarray(logs), np.asarray(values), 1)
    return float(b0), float(b1)


def benjamini_hochberg(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Which hypotheses the Benjamini-Hochberg step-up procedure rejects at level ``alpha`` (bool array)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    below = p[order] <= alpha * np.arange(1, p.size + 1) / p.size
    reject = np.zeros(p.size, dtype=bool)
    if below.any():
        reject[order[: np.nonzero(below)[0].max() + 1]] = True
    return reject


@dataclass(frozen=True)
class NullTest:
    """Monte-Carlo test of each frame's ALPS against a Poisson null fitted on vacuum."""

    rate: float
    null_values: np.ndarray
    p_values: np.ndarray
    significant: np.ndarray
    alpha: float


def poisson_null_test(movie: np.ndarray, mask: np.ndarray, vacuum: np.ndarray, *, sigma: float = 2.0,
                      gain: float = 1.0, n_sim: int = 99, alpha: float = 0.05, seed: int = 0,
                      observed: np.ndarray | None = None) -> NullTest:
    """Test each frame's ALPS in ``mask`` against frames of pure Poisson noise.

    The rate is the mean count (``value / gain``) over the vacuum pixels of
    all frames; ``n_sim`` frames of that noise give the null distribution of
    ALPS in the same region; a frame is more ordered than noise when its
    ALPS is larger: ``p = (1 + #{null >= observed}) / (n_sim + 1)``, then
    Benjamini-Hochberg at ``alpha`` over frames.

    Raises
    ------
    InputError
        If the vacuum has fewer than ``MIN_VACUUM_PIXELS`` pixels over all
        frames, or a non-positive mean count.
    """
    y = as_real_array(movie, name="movie", ndims=(3,))
    vac = np.asarray(vacuum, dtype=bool)
    check_vacuum(vac, y.shape[0], calibrate=False)
    rate = float(np.mean(y[:, vac])) / gain
    if not rate > 0:
        raise InputError(f"vacuum: mean count {rate:.3g}; expected a positive count rate (check --gain)")
    obs = alps_series(y, sigma=sigma, mask=mask, gain=gain) if observed is None else np.asarray(observed)
    rng = np.random.default_rng(seed)
    null = np.array([frame_alps(rng.poisson(rate, size=y.shape[1:]).astype(np.float64), sigma=sigma, mask=mask)
                     for _ in range(n_sim)])
    p = (1 + (null[None, :] >= obs[:, None]).sum(axis=1)) / (n_sim + 1)
    return NullTest(rate, null, p, benjamini_hochberg(p, alpha), alpha)
