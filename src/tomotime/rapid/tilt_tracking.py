"""Tilt-angle correction of a continuous-tilt series from tracked feature points.

The goniometer does not turn at a constant speed, so the nominal (uniform)
angles of a rapid series are wrong by up to a few degrees. Feature points
(dark blobs: marker particles, precipitates, line ends) are detected in every
frame and linked into tracks (:mod:`tomotime.rapid.feature_tracks`). Their
columns follow the projection of a rigid object,

    s_ij = x_j cos(theta_i + d_ij) - z_j sin(theta_i + d_ij) + c_i,

(``s`` centred column, ``c_i`` a per-frame shift, ``d_ij`` the optional scan
time lag of the feature's row), which is fitted for every frame angle
``theta_i``, every feature's ``(x_j, z_j)`` and every shift ``c_i`` by robust
non-linear least squares (:func:`fit_angles`), with the first and last angles
held at the known start and end of the goniometer's motion (the rotation
gauge) and a penalty on the second difference of the angles (the stage moves
smoothly), weighted by the fit's own noise level over a prior spread of
``ACCEL_SD`` degrees per frame squared. Where the tilt axis lies is not in
the data; it is put where the shifts are smallest (:func:`_gauge`). The fit
reports each angle's standard error.

:func:`track_angles` alternates the fit with the tracks: tracks that do not
move rigidly (a blob jumping to a neighbour, a line crossing) and single
outlying positions are rejected by their misfit; then every remaining
feature is looked for again in every frame at the position the fit predicts
(:func:`tomotime.rapid.feature_tracks.extend_tracks`), which joins the
pieces of a track, lengthens tracks into frames where linking lost them, and
replaces positions that linking took from a neighbour. All of this runs at
several blob scales, and the fit with the smallest angle standard error is kept.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from tomotime.errors import InputError
from tomotime.rapid.feature_tracks import blob_response, detect_blobs, extend_tracks, link_tracks

__all__ = ["TrackResult", "check_continuous_angles", "fit_angles", "track_angles", "predict_positions",
           "MIN_TRACKS", "ACCEL_SD", "MAX_ANGLE_SD", "SCALES"]

#: Fewer tracked features than this and the nominal angles are kept.
MIN_TRACKS = 4
#: Prior spread of the angle's second difference (degrees per frame squared) that weights the smoothness penalty.
ACCEL_SD = 0.15
#: Above this RMS standard error (degrees) of the fitted angles, :func:`track_angles` warns that they are uncertain.
MAX_ANGLE_SD = 0.25
#: Blob scales (LoG sigma, pixels) that :func:`track_angles` tries by default.
SCALES = (0.8, 1.0, 1.5, 2.0)


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
    features : numpy.ndarray, shape (F, 3), optional
        Fitted ``(y, x, z)`` of every feature (pixels; ``y`` the row, ``x`` and ``z`` from the frame centre).
    smooth : float
        Weight of the smoothness penalty used (pixels per degree).
    angle_sd : numpy.ndarray, shape (N,), optional
        Standard error of each angle (degrees) from the fit's noise level.
        It covers random position errors only; errors that all features
        share (e.g. residual scan distortion) come on top.
    sigma : float
        Blob scale (pixels) of the tracking that gave this result.
    """

    angles: np.ndarray
    n_tracks: int
    residual_px: float
    shifts: np.ndarray
    fallback: bool = False
    misfit: np.ndarray | None = None
    features: np.ndarray | None = None
    smooth: float = float("nan")
    angle_sd: np.ndarray | None = None
    sigma: float = float("nan")


def fit_angles(tracks: np.ndarray, nominal: np.ndarray, width: int, height: int, *, smooth: float | None = None,
               scan_fraction: float = 0.0, anchors: tuple[float, float] | None = None,
               initial: np.ndarray | None = None) -> TrackResult:
    """Fit frame angles to tracked columns (see the module description).

    Parameters
    ----------
    tracks : numpy.ndarray, shape (F, N, 2)
        Tracked ``(y, x)`` positions, ``nan`` where missing.
    nominal : numpy.ndarray, shape (N,)
        Starting angles (degrees).
    width, height : int
        Frame size (pixels).
    smooth : float, optional
        Weight (pixels per degree) of the second-difference penalty on the
        angles. Default: the fit's robust column noise (pixels) over
        :data:`ACCEL_SD`, from a first fit with a weight of 1.
    scan_fraction : float
        Scan time over frame period: row ``y`` is recorded at
        ``theta_i + (dtheta/di) * scan_fraction * ((y + 0.5) / height - 0.5)``.
    anchors : (float, float), optional
        Angles of the first and last frames (default: the first and last nominal angles).
    initial : numpy.ndarray, shape (N,), optional
        Starting angles (degrees; default ``nominal``).
    """
    f, n, _ = tracks.shape
    first, last = (nominal[0], nominal[-1]) if anchors is None else anchors
    obs = np.isfinite(tracks[:, :, 1])
    jj, ii = np.nonzero(obs)
    s = tracks[jj, ii, 1] - (width - 1) / 2
    rowpos = (tracks[jj, ii, 0] + 0.5) / height - 0.5
    theta0 = np.radians(nominal if initial is None else initial)
    # Start: (x_j, z_j) by linear least squares at the starting angles, shifts zero.
    xz = np.zeros((f, 2))
    for j in range(f):
        m = obs[j]
        a = np.column_stack([np.cos(theta0[m]), -np.sin(theta0[m])])
        xz[j] = np.linalg.lstsq(a, tracks[j, m, 1] - (width - 1) / 2, rcond=None)[0]
    p = np.concatenate([theta0, np.zeros(n), xz.ravel()])
    anchor_weight, gauge_weight = 1e3, 10.0

    def residuals(p, weight):
        th, c, xzp = p[:n], p[n:2 * n], p[2 * n:].reshape(f, 2)
        rate = np.gradient(th) if scan_fraction else 0.0
        t = th[ii] + (rate[ii] * scan_fraction * rowpos if scan_fraction else 0.0)
        model = xzp[jj, 0] * np.cos(t) - xzp[jj, 1] * np.sin(t) + c[ii]
        return np.concatenate([model - s, anchor_weight * (th[[0, -1]] - np.radians([first, last])),
                               weight * np.diff(th, 2), gauge_weight * _gauge(c, th)])

    m_data = s.size
    lag = scan_fraction * rowpos
    rows = np.arange(m_data)
    # d(gradient(theta)_i)/d(theta_k): central differences inside, one-sided at the ends.
    grad = np.zeros((n, n))
    grad[np.arange(1, n - 1), np.arange(2, n)], grad[np.arange(1, n - 1), np.arange(0, n - 2)] = 0.5, -0.5
    grad[0, [0, 1]], grad[-1, [-2, -1]] = (-1.0, 1.0), (-1.0, 1.0)
    second = np.zeros((max(n - 2, 0), n))
    for k in range(n - 2):
        second[k, k:k + 3] = (1.0, -2.0, 1.0)

    def jacobian(p, weight):
        th, xzp = p[:n], p[2 * n:].reshape(f, 2)
        rate = np.gradient(th) if scan_fraction else 0.0
        t = th[ii] + (rate[ii] * lag if scan_fraction else 0.0)
        d_t = -xzp[jj, 0] * np.sin(t) - xzp[jj, 1] * np.cos(t)
        jac = np.zeros((m_data + 2 + max(n - 2, 0) + 2, p.size))
        jac[rows, ii] = d_t
        if scan_fraction:
            jac[:m_data, :n] += (d_t * lag)[:, None] * grad[ii]
        jac[rows, n + ii] = 1.0
        jac[rows, 2 * n + 2 * jj] = np.cos(t)
        jac[rows, 2 * n + 2 * jj + 1] = -np.sin(t)
        jac[m_data, 0] = jac[m_data + 1, n - 1] = anchor_weight
        jac[m_data + 2:m_data + n, :n] = weight * second
        c = p[n:2 * n]
        jac[-2, :n], jac[-1, :n] = -gauge_weight * c * np.sin(th) / n, gauge_weight * c * np.cos(th) / n
        jac[-2, n:2 * n], jac[-1, n:2 * n] = gauge_weight * np.cos(th) / n, gauge_weight * np.sin(th) / n
        return jac

    weights = [1.0, None] if smooth is None else [float(smooth)]
    for w in weights:
        if w is None:  # the noise level of the first fit sets the weight of the second
            res = residuals(p, 0.0)[:m_data]
            w = 1.4826 * float(np.median(np.abs(res - np.median(res)))) / ACCEL_SD
        solution = optimize.least_squares(residuals, p, jac=jacobian, x_scale="jac", loss="soft_l1", f_scale=1.0,
                                          tr_solver="exact", max_nfev=100, args=(w * 180 / np.pi,))
        p = solution.x
    res = residuals(p, 0.0)[:m_data]
    result = TrackResult(np.degrees(p[:n]), f, float(np.sqrt(np.mean(res**2))), p[n:2 * n], smooth=w,
                         angle_sd=_angle_sd(solution.jac, res, n))
    result.misfit = np.full(obs.shape, np.nan)
    result.misfit[jj, ii] = res
    result.features = np.column_stack([np.nanmedian(tracks[:, :, 0], axis=1), p[2 * n:].reshape(f, 2)])
    return result


def _angle_sd(jac: np.ndarray, residuals: np.ndarray, n: int) -> np.ndarray:
    """Standard errors (degrees) of the ``n`` angles: Gauss-Newton covariance at the fit's robust noise level."""
    noise = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals))))
    cov = np.linalg.pinv(jac.T @ jac)[:n, :n] * noise**2
    return np.degrees(np.sqrt(np.clip(np.diag(cov), 0.0, None)))


def _gauge(shifts: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Components of the shifts along ``cos theta`` and ``sin theta`` (pixels).

    Moving every feature by ``(X0, Z0)`` and every shift by ``-X0 cos theta +
    Z0 sin theta`` leaves a rigid rotation's columns unchanged: where the tilt
    axis lies is not in the data. It is fixed where the shifts have no such
    component (the smallest shifts), so that the scan-lag term, which turns
    each row about the axis, cannot use a far-off axis as a lever arm to fit noise.
    """
    return np.array([np.mean(shifts * np.cos(theta)), np.mean(shifts * np.sin(theta))])


def predict_positions(result: TrackResult, width: int, height: int, *, scan_fraction: float = 0.0) -> np.ndarray:
    """Positions ``(F, N, 2)`` ``(y, x)`` of every fitted feature in every frame, from a :class:`TrackResult`."""
    y, x, z = result.features.T
    th = np.radians(result.angles)
    t = th[None, :] + (np.gradient(th)[None, :] * scan_fraction * ((y[:, None] + 0.5) / height - 0.5))
    cols = x[:, None] * np.cos(t) - z[:, None] * np.sin(t) + result.shifts[None, :] + (width - 1) / 2
    return np.stack([np.broadcast_to(y[:, None], cols.shape), cols], axis=-1)


def _robust_fit(tracks: np.ndarray, nominal, width: int, height: int, min_tracks: int,
                **fit) -> tuple[TrackResult, np.ndarray]:
    """Fit, dropping tracks that do not move rigidly (jumps, line crossings), then single outlying positions."""
    initial = None
    for _ in range(8):
        result = fit_angles(tracks, nominal, width, height, initial=initial, **fit)
        initial, fit["smooth"] = result.angles, result.smooth  # warm start; the noise level is set once
        per_track = np.sqrt(np.nanmean(result.misfit**2, axis=1))
        bad = per_track > max(2 * np.median(per_track), 0.5)
        if bad.any() and (~bad).sum() >= min_tracks:
            tracks = tracks[~bad]
            continue
        misfit = np.abs(result.misfit)
        limit = max(4 * 1.4826 * np.nanmedian(misfit), 0.75)
        cleaned = tracks.copy()
        cleaned[misfit > limit] = np.nan
        keep = np.isfinite(cleaned[:, :, 1]).sum(axis=1) >= 3
        if not (misfit > limit).any() or keep.sum() < min_tracks:
            return result, tracks
        tracks = cleaned[keep]
    return fit_angles(tracks, nominal, width, height, initial=initial, **fit), tracks


def _distinct(tracks: np.ndarray, result: TrackResult, tolerance: float = 1.0) -> np.ndarray:
    """Indices of the tracks that are not a shorter copy of another feature (same ``y, x, z`` within ``tolerance``)."""
    count = np.isfinite(tracks[:, :, 1]).sum(axis=1)
    keep: list[int] = []
    for j in np.argsort(-count):
        if all(np.abs(result.features[j] - result.features[k]).max() > tolerance for k in keep):
            keep.append(int(j))
    return np.sort(np.array(keep, int))


def track_angles(images: np.ndarray, nominal, *, min_tracks: int = MIN_TRACKS, scan_fraction: float = 0.0,
                 anchors: tuple[float, float] | None = None, smooth: float | None = None,
                 sigma: float | Sequence[float] | None = None, threshold: float = 3.0, roundness: float = 0.3,
                 min_length: int = 6, rounds: int = 2, max_change: float = 10.0) -> TrackResult:
    """Estimate every frame's angle of a continuous-tilt series ``(N, Y, X)`` from tracked features.

    ``nominal`` are the recorded (uniform) angles: they must be monotonic.
    Blobs of radius about ``sigma`` px with a response of at least
    ``threshold`` times the noise are linked into tracks of at least
    ``min_length`` frames; after the first fit, ``rounds`` times, every
    feature is measured again at its predicted position in every frame and
    the fit repeated. Given several scales (default :data:`SCALES`), the
    whole tracking runs at each and the fit with the smallest RMS angle
    standard error is kept (``TrackResult.sigma`` says which): the data, not
    a guess of the feature size, choose the scale. With fewer than
    ``min_tracks`` tracks that move as a rigid object the nominal angles are
    returned with a warning that says how many were found; so they are when
    the fitted angles are not monotonic or differ from the nominal ones by
    more than ``max_change`` degrees. When the angles' standard error
    (``TrackResult.angle_sd``) exceeds :data:`MAX_ANGLE_SD` degrees RMS the
    fit is kept with a warning.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise InputError(f"series: expected frames (N, Y, X), got shape {images.shape}")
    nominal = check_continuous_angles(nominal, images.shape[0], name="nominal angles")
    scales = SCALES if sigma is None else tuple(np.atleast_1d(np.asarray(sigma, np.float64)).tolist())
    if not scales or not all(np.isfinite(scales)) or min(scales) <= 0:
        raise InputError(f"sigma={sigma!r}: expected positive blob scales (pixels)")
    options = {"min_tracks": min_tracks, "scan_fraction": scan_fraction, "threshold": threshold,
               "roundness": roundness, "min_length": min_length, "rounds": rounds, "max_change": max_change,
               "fit": {"scan_fraction": scan_fraction, "anchors": anchors, "smooth": smooth}}
    runs = [_track_at_scale(images, nominal, s, **options) for s in scales]
    fitted = [r for r in runs if r[1] is None]
    if fitted:
        result = min(fitted, key=lambda r: float(np.sqrt(np.mean(r[0].angle_sd**2))))[0]
    else:
        result, message = max(runs, key=lambda r: r[0].n_tracks)
        warnings.warn(message, stacklevel=2)
        return result
    sd = float(np.sqrt(np.mean(result.angle_sd**2)))
    if sd > MAX_ANGLE_SD:
        warnings.warn(f"tilt-angle tracking: the fitted angles are uncertain (standard error {sd:.2f} deg RMS from "
                      f"{result.n_tracks} feature track(s), more than {MAX_ANGLE_SD} deg); a wider field or more "
                      "features would help", stacklevel=2)
    return result


def _track_at_scale(images: np.ndarray, nominal: np.ndarray, sigma: float, *, min_tracks: int,
                    scan_fraction: float, threshold: float, roundness: float,
                    min_length: int, rounds: int, max_change: float, fit: dict) -> tuple[TrackResult, str | None]:
    """Tracking at one blob scale: the fit and None, or the nominal angles and why they were kept."""
    n, height, width = images.shape
    responses = np.stack([blob_response(im, sigma) for im in images])
    detections = [detect_blobs(im, sigma=sigma, threshold=threshold, roundness=roundness, response=r)
                  for im, r in zip(images, responses)]
    step = np.radians(np.abs(np.diff(nominal)).max())
    first_gate = 1.0 + 1.2 * (width / 2) * step  # the largest column step of a feature at the frame's edge
    tracks = link_tracks(detections, n, gate_x=first_gate, max_gap=2, min_length=min_length)
    result = None
    if len(tracks) >= min_tracks:
        result, tracks = _robust_fit(tracks, nominal, width, height, min_tracks, **fit)
        for _ in range(rounds):
            keep = _distinct(tracks, result)
            result.features = result.features[keep]
            measured = extend_tracks(responses, predict_positions(result, width, height, scan_fraction=scan_fraction),
                                     threshold=threshold - 1)
            measured = measured[np.isfinite(measured[:, :, 1]).sum(axis=1) >= min_length]
            if len(measured) < min_tracks:
                break
            result, tracks = _robust_fit(measured, nominal, width, height, min_tracks, **fit)
    if result is None or len(tracks) < min_tracks:
        return (TrackResult(nominal.copy(), len(tracks), float("nan"), np.zeros(n), fallback=True, sigma=sigma),
                f"tilt-angle tracking: {len(tracks)} feature(s) tracked through the series, fewer than "
                f"{min_tracks}; keeping the nominal angles")
    result.n_tracks, result.sigma = len(tracks), sigma
    step = np.diff(result.angles) * np.sign(nominal[-1] - nominal[0])
    change = float(np.abs(result.angles - nominal).max())
    if (step <= 0).any() or change > max_change:
        return (TrackResult(nominal.copy(), len(tracks), result.residual_px, np.zeros(n), fallback=True, sigma=sigma),
                f"tilt-angle tracking: the fit to {len(tracks)} feature track(s) is implausible ("
                + ("not monotonic" if (step <= 0).any() else f"{change:.1f} deg from the nominal angles")
                + "); keeping the nominal angles")
    return result, None
