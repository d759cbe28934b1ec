"""What the alignment methods share: the result convention, failure handling, filters and the gauge.

Every ``align_*`` function takes a :class:`~tomotime.data.TiltSeries` and
returns a new one whose ``poses`` hold the estimate (the images are left
as measured; :func:`resampled` applies the poses to them). The estimate is
relative to the poses the series already carries, so methods chain:
``align_projection(align_axis(align_xcorr(s)))``. When a method cannot work
(a single view, flat images) it says so with an :class:`AlignmentWarning` and
returns the series unchanged.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess.poses import apply_poses

__all__ = ["AlignmentWarning", "alignment_failed", "current_poses", "with_poses", "resampled", "band_pass",
           "reference_view", "gauge_free_shift_error", "view_order_from", "add_image_shifts", "flat_views",
           "why_not_reconstructable", "check_rounds"]

log = logging.getLogger(__name__)


class AlignmentWarning(UserWarning):
    """An alignment method could not work on this series; the series was returned unchanged."""


def alignment_failed(series: TiltSeries, method: str, reason: str) -> TiltSeries:
    """Warn that ``method`` failed because of ``reason`` and return ``series`` unchanged."""
    message = f"{method} alignment failed: {reason}; the series is left unchanged"
    log.warning(message)
    warnings.warn(message, AlignmentWarning, stacklevel=3)
    return series


def current_poses(series: TiltSeries) -> np.ndarray:
    """The series' poses ``(N, 4)`` float64 (zeros when it has none)."""
    return np.zeros((len(series), 4)) if series.poses is None else np.array(series.poses, np.float64)


def with_poses(series: TiltSeries, poses: np.ndarray, method: str, **details) -> TiltSeries:
    """A copy of ``series`` carrying ``poses`` and a record of the step in ``metadata["alignment"]``."""
    history = list(series.metadata.get("alignment", []))
    history.append({"method": method, **details})
    return replace(series, poses=np.asarray(poses, np.float32), metadata={**series.metadata, "alignment": history})


def add_image_shifts(poses: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Poses after a further shift ``(dy, dx)`` per view measured on the resampled (ideal-frame) images.

    A resampled image that still sits ``d`` away from its ideal place means the
    measured image sits ``R(axis_rotation) d`` further away (see :func:`apply_poses`).
    """
    out = np.array(poses, np.float64)
    psi = np.deg2rad(out[:, 0])
    c, s = np.cos(psi), np.sin(psi)
    dy, dx = np.asarray(shifts, np.float64).T
    out[:, 3] += c * dx - s * dy
    out[:, 2] += s * dx + c * dy
    return out


def flat_views(images: np.ndarray) -> np.ndarray:
    """Indices of views without contrast (constant within float precision)."""
    flat = images.reshape(len(images), -1)
    spread = flat.max(axis=1) - flat.min(axis=1)
    return np.flatnonzero(spread <= 1e-6 * np.maximum(np.abs(flat).max(axis=1), 1e-30))


def why_not_reconstructable(series: TiltSeries) -> str | None:
    """Why ``series`` cannot be reconstructed for a reconstruct-and-register method, or ``None``."""
    if len(series) < 3:
        return f"{len(series)} view(s) are too few to reconstruct from; expected at least 3"
    flat = flat_views(series.images)
    if flat.size:
        return f"view {flat[0]} is flat (no contrast)"
    return None


def check_rounds(rounds: int, iterations: int) -> None:
    """Refuse round and iteration counts that are not positive integers."""
    if int(rounds) != rounds or rounds < 1 or int(iterations) != iterations or iterations < 1:
        raise InputError(f"rounds={rounds}, iterations={iterations}: expected positive integers")


def resampled(series: TiltSeries) -> TiltSeries:
    """The images resampled onto the ideal geometry with the series' poses; poses cleared."""
    if series.poses is None:
        return series
    return replace(series, images=apply_poses(series.images, series.poses), poses=None)


def band_pass(image: np.ndarray, *, low: float = 0.01, high: float = 0.25, taper: float = 0.1) -> np.ndarray:
    """Gaussian band-pass of one image, after removing its mean and tapering its border.

    Parameters
    ----------
    image : numpy.ndarray, shape (Y, X)
    low, high : float
        Gaussian high-pass and low-pass cut-offs in cycles per pixel (0.5 is
        Nyquist); ``low=0`` keeps the lowest frequencies, ``high=None`` all high ones.
    taper : float
        Fraction of each side rolled off with a cosine, so the image border does not correlate.
    """
    img = np.asarray(image, np.float64)
    img = img - img.mean()
    if taper > 0:
        window = np.ones(img.shape)
        for axis, n in enumerate(img.shape):
            k = max(1, int(round(taper * n)))
            ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
            w = np.ones(n)
            w[:k], w[n - k:] = ramp, ramp[::-1]
            window *= w.reshape([-1 if a == axis else 1 for a in range(img.ndim)])
        img = img * window
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    f2 = fy ** 2 + fx ** 2
    gain = np.ones_like(f2)
    if low:
        gain *= 1 - np.exp(-f2 / (2 * low ** 2))
    if high:
        gain *= np.exp(-f2 / (2 * high ** 2))
    return np.fft.ifft2(np.fft.fft2(img) * gain).real


def reference_view(angles: np.ndarray, reference: int | None) -> int:
    """Index of the reference view: ``reference``, or the view nearest to 0 degrees."""
    if reference is None:
        return int(np.argmin(np.abs(angles)))
    return int(reference)


def view_order_from(angles: np.ndarray, ref: int) -> list[tuple[int, int]]:
    """Pairs ``(view, neighbour)`` walking outward in angle from view ``ref``; the neighbour is done first."""
    order = np.argsort(angles, kind="stable")
    pos = int(np.flatnonzero(order == ref)[0])
    pairs = [(int(order[k]), int(order[k + 1])) for k in range(pos - 1, -1, -1)]
    pairs += [(int(order[k]), int(order[k - 1])) for k in range(pos + 1, len(order))]
    return pairs


def gauge_free_shift_error(estimate: np.ndarray, truth: np.ndarray, angles: np.ndarray) -> dict[str, float]:
    """RMS shift error (px) after removing what the data cannot tell: an object translation.

    Translating the object by ``(x, y, z)`` shifts view ``theta`` by
    ``x cos(theta) - z sin(theta)`` across the axis and ``y`` along it; the best
    such shift (least squares) is removed from the difference first.

    Parameters
    ----------
    estimate, truth : numpy.ndarray, shape (N, 4)
        Poses ``[axis_rotation, axis_tilt, shift_y, shift_x]``.
    angles : numpy.ndarray, shape (N,)
        Tilt angles, degrees.

    Returns
    -------
    dict
        ``rms_px`` (both directions together), ``rms_x_px``, ``rms_y_px``.
    """
    diff = np.asarray(estimate, np.float64) - np.asarray(truth, np.float64)
    theta = np.deg2rad(np.asarray(angles, np.float64))
    basis = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    dx = diff[:, 3] - basis @ np.linalg.lstsq(basis, diff[:, 3], rcond=None)[0]
    dy = diff[:, 2] - diff[:, 2].mean()
    return {"rms_px": float(np.sqrt(np.mean(dx ** 2 + dy ** 2))), "rms_x_px": float(np.sqrt(np.mean(dx ** 2))),
            "rms_y_px": float(np.sqrt(np.mean(dy ** 2)))}
