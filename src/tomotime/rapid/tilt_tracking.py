"""Tilt-angle correction of a continuous-tilt series from tracked feature points.

The goniometer does not turn at a constant speed, so the nominal (uniform)
angles of a rapid series are wrong by up to a few degrees. Feature points
(dark blobs: marker particles, precipitates) are detected in the frame nearest
0 degrees and tracked frame by frame in both directions (peak of the
Laplacian-of-Gaussian response near the predicted position, sub-pixel by a
parabola fit). Their columns follow the projection of a rigid object,

    s_ij = x_j cos(theta_i + d_ij) - z_j sin(theta_i + d_ij) + c_i,

(``s`` centred column, ``c_i`` a per-frame shift, ``d_ij`` the optional scan
time lag of the feature's row), which is fitted for every frame angle
``theta_i``, every feature's ``(x_j, z_j)`` and every shift ``c_i`` by
non-linear least squares, with the first and last angles held at the known
start and end of the goniometer's motion (the rotation gauge) and a weak
penalty on the second difference of the angles (the stage moves smoothly).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize, sparse
from skimage.feature import hessian_matrix, hessian_matrix_eigvals, peak_local_max

from tomotime.errors import InputError

__all__ = ["TrackResult", "check_continuous_angles", "detect_features", "track_features", "fit_angles",
           "track_angles", "MIN_TRACKS"]

#: Fewer tracked features than this and the nominal angles are kept.
MIN_TRACKS = 4


def check_continuous_angles(angles, n_frames: int | None = None, *, name: str = "angles") -> np.ndarray:
    """Angles of a continuous-tilt series as float64 ``(N,)``: finite, in (-90, 90), strictly monotonic."""
    a = np.asarray(angles, np.float64).reshape(-1)
    if n_frames is not None and a.size != n_frames:
        raise InputError(f"{name}: {a.size} angles for {n_frames} frames; expected one per frame")
    if a.size < 3 or not np.isfinite(a).all() or (np.abs(a) >= 90).any():
        raise InputError(f"{name}: expected at least 3 finite angles inside (-90, 90) degrees")
    d = np.diff(a)
    if not ((d > 0).all() or (d < 0).all()):
        bad = int(np.flatnonzero(np.sign(d) != np.sign(d[0]) if d[0] != 0 else d == 0)[0]) + 1
        raise InputError(f"{name}: not monotonic at frame {bad} ({a[bad - 1]:.2f} -> {a[bad]:.2f} deg); a "
                         "continuous tilt series turns one way")
    return a


def _blob_response(image: np.ndarray, sigma: float) -> np.ndarray:
    """Scale-normalised LoG response of dark blobs (positive at a dark blob's centre)."""
    return sigma**2 * ndimage.gaussian_laplace(np.asarray(image, np.float64), sigma)


def detect_features(image: np.ndarray, *, sigma: float = 1.5, max_features: int = 60, min_distance: int = 5,
                    roundness: float = 0.4, border: int = 6) -> np.ndarray:
    """Dark round blobs of ``image`` ``(Y, X)``: ``(F, 2)`` positions ``(y, x)``, strongest first.

    Line-like responses (smaller Hessian eigenvalue below ``roundness`` times
    the larger one) are dropped, so dislocation lines are not taken for features.
    """
    response = _blob_response(image, sigma)
    noise = 1.4826 * np.median(np.abs(response - np.median(response)))
    peaks = peak_local_max(response, min_distance=min_distance, threshold_abs=4 * noise, exclude_border=border)
    if peaks.size == 0:
        return np.zeros((0, 2))
    h = hessian_matrix(np.asarray(image, np.float64), sigma=sigma, order="rc", use_gaussian_derivatives=True)
    big, small = hessian_matrix_eigvals(h)
    ratio = small[peaks[:, 0], peaks[:, 1]] / np.maximum(big[peaks[:, 0], peaks[:, 1]], 1e-12)
    peaks = peaks[ratio >= roundness]
    order = np.argsort(-response[peaks[:, 0], peaks[:, 1]])
    return peaks[order][:max_features].astype(np.float64)


def _refine(response: np.ndarray, guess: np.ndarray, radius: int) -> tuple[np.ndarray, float] | None:
    """Sub-pixel peak of ``response`` within ``radius`` of ``guess``; None at the border."""
    h, w = response.shape
    y0, x0 = int(round(guess[0])), int(round(guess[1]))
    if not (radius + 1 <= y0 < h - radius - 1 and radius + 1 <= x0 < w - radius - 1):
        return None
    patch = response[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
    py, px = np.unravel_index(np.argmax(patch), patch.shape)
    y, x = y0 - radius + py, x0 - radius + px
    if not (1 <= y < h - 1 and 1 <= x < w - 1):
        return None
    offset = []
    for a, b, c in ((response[y - 1, x], response[y, x], response[y + 1, x]),
                    (response[y, x - 1], response[y, x], response[y, x + 1])):
        den = a - 2 * b + c
        offset.append(0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)))
    return np.array([y + offset[0], x + offset[1]]), float(response[y, x])


def track_features(images: np.ndarray, start: int, *, sigma: float = 1.5, radius: int = 2,
                   max_jump: float | None = None, min_fraction: float = 0.6, **detect) -> np.ndarray:
    """Track features through ``images`` ``(N, Y, X)`` from frame ``start`` both ways.

    A track ends where its response falls below a third of its start value,
    where its step changes by more than ``max_jump`` pixels from the last
    (if given: it jumped to another feature) or where it leaves the frame.
    Returns positions ``(F, N, 2)`` (``nan`` where untracked) of the features
    tracked in at least ``min_fraction`` of the frames.
    """
    images = np.asarray(images, np.float64)
    n = images.shape[0]
    responses = [_blob_response(im, sigma) for im in images]
    seeds = detect_features(images[start], sigma=sigma, **detect)
    tracks = np.full((len(seeds), n, 2), np.nan)
    for f, seed in enumerate(seeds):
        tracks[f, start] = seed
        strength = responses[start][int(seed[0]), int(seed[1])]
        for direction in (1, -1):
            prev, velocity = seed, np.zeros(2)
            for i in range(start + direction, n if direction > 0 else -1, direction):
                found = _refine(responses[i], prev + velocity, radius)
                if found is None or found[1] < strength / 3:
                    break
                step = found[0] - prev
                if max_jump is not None and abs(i - start) > 2 and np.abs(step - velocity).max() > max_jump:
                    break  # a jump onto a neighbouring feature, not smooth motion
                velocity = step if abs(i - start) == 1 else 0.5 * velocity + 0.5 * step
                prev = tracks[f, i] = found[0]
    keep = np.isfinite(tracks[:, :, 0]).mean(axis=1) >= min_fraction
    return tracks[keep]


@dataclass
class TrackResult:
    """Angles from tracked features.

    Attributes
    ----------
    angles : numpy.ndarray, shape (N,)
        Estimated angle of each frame at the middle of its scan (degrees);
        the nominal angles when ``fallback`` is True.
    n_tracks : int
        Features tracked through enough frames.
    residual_px : float
        RMS misfit of the tracked columns (pixels).
    shifts : numpy.ndarray, shape (N,)
        Per-frame x shift (pixels).
    fallback : bool
        True when too few features were tracked.
    misfit : numpy.ndarray, shape (F, N), optional
        Column misfit of every observation (pixels; ``nan`` where untracked).
    """

    angles: np.ndarray
    n_tracks: int
    residual_px: float
    shifts: np.ndarray
    fallback: bool = False
    misfit: np.ndarray | None = None


def fit_angles(tracks: np.ndarray, nominal: np.ndarray, width: int, height: int, *, smooth: float = 0.3,
               scan_fraction: float = 0.0, anchors: tuple[float, float] | None = None) -> TrackResult:
    """Fit frame angles to tracked columns (see the module description).

    Parameters
    ----------
    tracks : numpy.ndarray, shape (F, N, 2)
        Tracked ``(y, x)`` positions, ``nan`` where missing.
    nominal : numpy.ndarray, shape (N,)
        Starting angles (degrees).
    width, height : int
        Frame size (pixels).
    smooth : float
        Weight (pixels per degree) of the second-difference penalty on the angles.
    scan_fraction : float
        Scan time over frame period: row ``y`` is recorded at
        ``theta_i + (dtheta/di) * scan_fraction * ((y + 0.5) / height - 0.5)``.
    anchors : (float, float), optional
        Angles of the first and last frames (default: the first and last nominal angles).
    """
    f, n, _ = tracks.shape
    first, last = (nominal[0], nominal[-1]) if anchors is None else anchors
    obs = np.isfinite(tracks[:, :, 1])
    jj, ii = np.nonzero(obs)
    s = tracks[jj, ii, 1] - (width - 1) / 2
    rowpos = (tracks[jj, ii, 0] + 0.5) / height - 0.5
    theta0 = np.radians(nominal)
    # Start: (x_j, z_j) by linear least squares at the nominal angles, shifts zero.
    xz = np.zeros((f, 2))
    for j in range(f):
        m = obs[j]
        a = np.column_stack([np.cos(theta0[m]), -np.sin(theta0[m])])
        xz[j] = np.linalg.lstsq(a, tracks[j, m, 1] - (width - 1) / 2, rcond=None)[0]
    p0 = np.concatenate([theta0, np.zeros(n), xz.ravel()])
    anchor_weight = 1e3
    weight = smooth * 180 / np.pi

    def residuals(p):
        th, c, xzp = p[:n], p[n:2 * n], p[2 * n:].reshape(f, 2)
        rate = np.gradient(th) if scan_fraction else 0.0
        t = th[ii] + (rate[ii] * scan_fraction * rowpos if scan_fraction else 0.0)
        model = xzp[jj, 0] * np.cos(t) - xzp[jj, 1] * np.sin(t) + c[ii]
        return np.concatenate([model - s, anchor_weight * (th[[0, -1]] - np.radians([first, last])),
                               weight * np.diff(th, 2)])

    m_data = s.size
    pattern = sparse.lil_matrix((m_data + 2 + max(n - 2, 0), p0.size), dtype=np.int8)
    rows = np.arange(m_data)
    for off in (-1, 0, 1):
        ok = (ii + off >= 0) & (ii + off < n)
        pattern[rows[ok], ii[ok] + off] = 1
    pattern[rows, n + ii] = 1
    pattern[rows, 2 * n + 2 * jj] = 1
    pattern[rows, 2 * n + 2 * jj + 1] = 1
    pattern[m_data, 0] = pattern[m_data + 1, n - 1] = 1
    for k in range(n - 2):
        pattern[m_data + 2 + k, k:k + 3] = 1
    sol = optimize.least_squares(residuals, p0, jac_sparsity=pattern.tocsr(), x_scale="jac", loss="soft_l1",
                                 f_scale=1.0, max_nfev=200)
    res = residuals(sol.x)[:m_data]
    result = TrackResult(np.degrees(sol.x[:n]), f, float(np.sqrt(np.mean(res**2))), sol.x[n:2 * n])
    result.misfit = np.full(obs.shape, np.nan)
    result.misfit[jj, ii] = res
    return result


def track_angles(images: np.ndarray, nominal, *, min_tracks: int = MIN_TRACKS, scan_fraction: float = 0.0,
                 anchors: tuple[float, float] | None = None, smooth: float = 0.3, **track) -> TrackResult:
    """Estimate every frame's angle of a continuous-tilt series ``(N, Y, X)`` from tracked features.

    ``nominal`` are the recorded (uniform) angles: they must be monotonic.
    With fewer than ``min_tracks`` tracked features the nominal angles are
    returned with a warning that says how many were found.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise InputError(f"series: expected frames (N, Y, X), got shape {images.shape}")
    nominal = check_continuous_angles(nominal, images.shape[0], name="nominal angles")
    start = int(np.argmin(np.abs(nominal)))
    tracks = track_features(images, start, **track)
    if len(tracks) < min_tracks:
        warnings.warn(f"tilt-angle tracking: {len(tracks)} feature(s) tracked through the series, fewer than "
                      f"{min_tracks}; keeping the nominal angles", stacklevel=2)
        return TrackResult(nominal.copy(), len(tracks), float("nan"), np.zeros(images.shape[0]), fallback=True)
    result = None
    for _ in range(6):  # drop tracks that do not move rigidly (jumps, line crossings), then single outliers
        result = fit_angles(tracks, nominal, images.shape[2], images.shape[1], smooth=smooth,
                            scan_fraction=scan_fraction, anchors=anchors)
        per_track = np.sqrt(np.nanmean(result.misfit**2, axis=1))
        bad = per_track > max(2 * np.median(per_track), 0.5)
        if bad.any() and (~bad).sum() >= min_tracks:
            tracks = tracks[~bad]
            continue
        misfit = np.abs(result.misfit)
        limit = max(4 * 1.4826 * np.nanmedian(misfit), 0.75)
        if not (misfit > limit).any():
            break
        tracks = tracks.copy()
        tracks[misfit > limit] = np.nan
        tracks = tracks[np.isfinite(tracks[:, :, 1]).sum(axis=1) >= 3]
    result.n_tracks = len(tracks)
    return result
