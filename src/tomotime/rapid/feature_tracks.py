"""Feature points of a continuous-tilt series: detection in every frame and linking into tracks.

The tilt axis is the image Y axis, so a rigid feature keeps its row and its
column moves smoothly (at most a few pixels per frame). Dark blobs (marker
particles, precipitates, line ends and corners) are detected in every frame
by a scale-normalised Laplacian-of-Gaussian peak above a robust noise level
(:func:`detect_blobs`) and linked frame to frame by an optimal assignment
around each track's predicted position (:func:`link_tracks`); tracks start
and end anywhere and may skip a frame. Which tracks move rigidly is decided
later, by the angle fit (:mod:`tomotime.rapid.tilt_tracking`), which also
predicts every feature's position in every frame for :func:`extend_tracks`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from skimage.feature import hessian_matrix, hessian_matrix_eigvals, peak_local_max

__all__ = ["blob_response", "detect_blobs", "link_tracks", "extend_tracks", "subpixel_peak"]


def blob_response(image: np.ndarray, sigma: float) -> np.ndarray:
    """Scale-normalised LoG response ``(Y, X)`` of dark blobs, in units of its robust noise level."""
    r = sigma**2 * ndimage.gaussian_laplace(np.asarray(image, np.float64), sigma)
    noise = 1.4826 * np.median(np.abs(r - np.median(r)))
    return (r - np.median(r)) / max(noise, 1e-12)


def subpixel_peak(response: np.ndarray, guess, radius: int) -> tuple[np.ndarray, float] | None:
    """Sub-pixel maximum ``((y, x), value)`` of ``response`` within ``radius`` px of ``guess``; None at the border."""
    h, w = response.shape
    y0, x0 = int(round(guess[0])), int(round(guess[1]))
    if not (radius + 1 <= y0 < h - radius - 1 and radius + 1 <= x0 < w - radius - 1):
        return None
    patch = response[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
    py, px = np.unravel_index(np.argmax(patch), patch.shape)
    y, x = y0 - radius + py, x0 - radius + px
    offset = []
    for a, b, c in ((response[y - 1, x], response[y, x], response[y + 1, x]),
                    (response[y, x - 1], response[y, x], response[y, x + 1])):
        den = a - 2 * b + c
        offset.append(0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)))
    return np.array([y + offset[0], x + offset[1]]), float(response[y, x])


def detect_blobs(image: np.ndarray, *, sigma: float = 1.5, threshold: float = 3.0, min_distance: int = 2,
                 roundness: float = 0.3, border: int = 4, response: np.ndarray | None = None) -> np.ndarray:
    """Dark round blobs of ``image`` ``(Y, X)``: ``(F, 3)`` sub-pixel ``(y, x, strength)``, strongest first.

    ``strength`` is the LoG peak over its robust noise level (at least
    ``threshold``). Line-like peaks (smaller Hessian eigenvalue below
    ``roundness`` times the larger one) are dropped.
    """
    response = blob_response(image, sigma) if response is None else response
    peaks = peak_local_max(response, min_distance=min_distance, threshold_abs=threshold, exclude_border=border)
    if peaks.size == 0:
        return np.zeros((0, 3))
    h = hessian_matrix(np.asarray(image, np.float64), sigma=sigma, order="rc", use_gaussian_derivatives=True)
    big, small = hessian_matrix_eigvals(h)
    ratio = small[peaks[:, 0], peaks[:, 1]] / np.maximum(big[peaks[:, 0], peaks[:, 1]], 1e-12)
    peaks = peaks[ratio >= roundness]
    out = [np.append(*subpixel_peak(response, p, 0)) for p in peaks]
    out = np.array(out, np.float64).reshape(-1, 3)
    return out[np.argsort(-out[:, 2])]


def link_tracks(detections: list[np.ndarray], n_frames: int, *, gate_y: float = 1.0, gate_x: float = 2.0,
                max_gap: int = 1, min_length: int = 6) -> np.ndarray:
    """Link per-frame detections into tracks ``(T, N, 2)`` of ``(y, x)`` (``nan`` where missing).

    Each active track predicts its next position from its last step
    (constant velocity along x, constant row); detections are assigned to
    predictions by the Hungarian method within ``gate_y`` and ``gate_x`` px;
    unassigned detections start tracks; a track unseen for more than
    ``max_gap`` frames ends. Tracks shorter than ``min_length`` frames are dropped.
    """
    done: list[dict] = []
    active: list[dict] = []
    for i in range(n_frames):
        det = detections[i][:, :2] if len(detections[i]) else np.zeros((0, 2))
        if active and len(det):
            pred = np.array([[t["y"], t["pos"][-1][1] + t["vx"] * (i - t["last"])] for t in active])
            dy = np.abs(pred[:, None, 0] - det[None, :, 0])
            dx = np.abs(pred[:, None, 1] - det[None, :, 1])
            cost = np.where((dy <= gate_y) & (dx <= gate_x), np.hypot(dy, dx), 1e6)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < 1e6
            rows, cols = rows[ok], cols[ok]
        else:
            rows = cols = np.zeros(0, int)
        for r, c in zip(rows, cols):
            t = active[r]
            step = (det[c, 1] - t["pos"][-1][1]) / (i - t["last"])
            t["vx"] = step if len(t["pos"]) == 1 else 0.5 * t["vx"] + 0.5 * step
            t["frames"].append(i)
            t["pos"].append(det[c])
            t["last"] = i
            t["y"] = float(np.mean([p[0] for p in t["pos"]]))
        taken = set(cols.tolist())
        for c in range(len(det)):
            if c not in taken:
                active.append({"frames": [i], "pos": [det[c]], "last": i, "vx": 0.0, "y": float(det[c, 0])})
        still = []
        for t in active:
            (still if i - t["last"] <= max_gap else done).append(t)
        active = still
    done += active
    kept = [t for t in done if len(t["frames"]) >= min_length]
    tracks = np.full((len(kept), n_frames, 2), np.nan)
    for k, t in enumerate(kept):
        tracks[k, t["frames"]] = np.array(t["pos"])
    return tracks


def extend_tracks(responses: np.ndarray, predicted: np.ndarray, *, radius: float = 1.0,
                  threshold: float = 2.0) -> np.ndarray:
    """Re-measure every feature in every frame at its predicted position.

    Parameters
    ----------
    responses : numpy.ndarray, shape (N, Y, X)
        Blob responses of the frames (:func:`blob_response`).
    predicted : numpy.ndarray, shape (T, N, 2)
        Predicted ``(y, x)`` of each feature in each frame (``nan``: not predicted).
    radius : float
        Largest accepted distance (px) of the measured peak from the prediction.
    threshold : float
        Smallest accepted response (noise units).

    Returns
    -------
    numpy.ndarray, shape (T, N, 2)
        Measured positions, ``nan`` where the peak is weak, far, or at the border,
        or where two features claim the same peak.
    """
    out = np.full(predicted.shape, np.nan)
    search = int(np.ceil(radius))
    for i in range(responses.shape[0]):
        claimed: dict[tuple[int, int], int] = {}
        for f in range(predicted.shape[0]):
            guess = predicted[f, i]
            if not np.isfinite(guess).all():
                continue
            found = subpixel_peak(responses[i], guess, search)
            if found is None or found[1] < threshold or np.hypot(*(found[0] - guess)) > radius:
                continue
            key = tuple(np.round(found[0]).astype(int))
            if key in claimed:  # two features on one peak: neither is trusted here
                out[claimed[key], i] = np.nan
                continue
            claimed[key] = f
            out[f, i] = found[0]
    return out
