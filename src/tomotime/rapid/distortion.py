"""Fast-scan x-distortion: calibration from a fast/slow scan pair, calibration files, correction.

The fast scan places specimen position ``x`` of row ``y`` at column
``x + v(y, x)`` of the fast frame; ``v`` is the *correction field* (pixels).
As in Zhao et al., it is calibrated by local cross-correlation of a fast and a
slow scan of the same area (a cross-grating): the x shift of every window
(scikit-image's ``phase_cross_correlation``, sub-pixel), then a smooth
polynomial surface (degree ``degree_x`` in x, ``degree_y`` in y) fitted with
outlier rejection, evaluated on every pixel. Correction resamples each frame
row at ``x + v`` (cubic).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from tomotime.errors import FormatError, InputError
from tomotime.io.atomic import atomic_path

__all__ = ["estimate_distortion", "local_shifts", "correct_distortion", "save_calibration", "load_calibration",
           "CALIBRATION_FORMAT"]

CALIBRATION_FORMAT = "tomotime-scan-distortion"
_VERSION = 1


def _check_pair(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fast, slow = np.asarray(fast, np.float64), np.asarray(slow, np.float64)
    if fast.ndim != 2 or fast.shape != slow.shape:
        raise InputError(f"fast and slow scans: expected two images of the same shape, got {fast.shape} "
                         f"and {slow.shape}")
    if not (np.isfinite(fast).all() and np.isfinite(slow).all()):
        raise InputError("fast and slow scans: expected finite values (found NaN or Inf)")
    return fast, slow


def local_shifts(fast: np.ndarray, slow: np.ndarray, *, window: int = 24, step: int = 6,
                 upsample: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local x shift ``v`` at window centres: ``fast(y, x + v) ~ slow(y, x)``.

    Returns
    -------
    yc, xc, v : numpy.ndarray, shape (n,)
        Window centres (pixels) and x shifts (pixels).
    """
    fast, slow = _check_pair(fast, slow)
    h, w = fast.shape
    if min(h, w) < window:
        raise InputError(f"scans of {h} x {w} px are smaller than the correlation window ({window} px)")
    taper = np.outer(np.hanning(window + 2)[1:-1], np.hanning(window + 2)[1:-1])
    ys, xs, vs = [], [], []
    for y0 in range(0, h - window + 1, step):
        for x0 in range(0, w - window + 1, step):
            a = slow[y0:y0 + window, x0:x0 + window]
            b = fast[y0:y0 + window, x0:x0 + window]
            if a.std() < 1e-9 or b.std() < 1e-9:
                continue
            shift, _, _ = phase_cross_correlation((b - b.mean()) * taper, (a - a.mean()) * taper,
                                                  upsample_factor=upsample, normalization=None)
            ys.append(y0 + (window - 1) / 2)
            xs.append(x0 + (window - 1) / 2)
            vs.append(shift[1])
    return np.array(ys), np.array(xs), np.array(vs)


def _design(y: np.ndarray, x: np.ndarray, shape: tuple[int, int], dx: int, dy: int) -> np.ndarray:
    u = 2 * x / max(shape[1] - 1, 1) - 1
    t = 2 * y / max(shape[0] - 1, 1) - 1
    cols = [np.polynomial.legendre.legval(u, np.eye(dx + 1)[i]) * np.polynomial.legendre.legval(t, np.eye(dy + 1)[j])
            for i in range(dx + 1) for j in range(dy + 1)]
    return np.stack(cols, axis=-1)


def estimate_distortion(fast: np.ndarray, slow: np.ndarray, *, window: int = 24, step: int = 6,
                        degree_x: int | None = None, degree_y: int = 1, upsample: int = 20) -> np.ndarray:
    """The correction field ``v`` ``(Y, X)`` (pixels) from a fast and a slow scan of the same area.

    Parameters
    ----------
    fast, slow : numpy.ndarray, shape (Y, X)
        The two scans; the slow one is taken as undistorted.
    window, step : int
        Side and spacing of the correlation windows (pixels).
    degree_x, degree_y : int
        Degrees of the fitted surface along x and y (default ``degree_x``: a
        third of the number of window columns, between 2 and 6, so that narrow
        frames are not over-fitted at their edges).
    """
    fast, slow = _check_pair(fast, slow)
    yc, xc, v = local_shifts(fast, slow, window=window, step=step, upsample=upsample)
    if degree_x is None:
        degree_x = int(np.clip(np.unique(xc).size // 3, 2, 6))
    n_terms = (degree_x + 1) * (degree_y + 1)
    if v.size < 2 * n_terms:
        raise InputError(f"only {v.size} correlation windows for a surface of {n_terms} terms: use larger scans "
                         "or a smaller window/step")
    a = _design(yc, xc, fast.shape, degree_x, degree_y)
    keep = np.ones(v.size, bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(a[keep], v[keep], rcond=None)
        res = v - a @ coef
        mad = 1.4826 * np.median(np.abs(res[keep] - np.median(res[keep])))
        keep = np.abs(res) <= max(4 * mad, 0.05)
    if keep.mean() < 0.5:
        warnings.warn(f"distortion calibration: {np.sum(~keep)} of {v.size} windows disagree with the smooth "
                      "field; is the slow scan of the same area?", stacklevel=2)
    yy, xx = np.mgrid[0:fast.shape[0], 0:fast.shape[1]].astype(np.float64)
    return (_design(yy, xx, fast.shape, degree_x, degree_y) @ coef).astype(np.float32)


def correct_distortion(images: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Undistort frames ``(..., Y, X)``: ``out(y, x) = image(y, x + v(y, x))`` (cubic interpolation)."""
    images = np.asarray(images, np.float32)
    field = np.asarray(field, np.float64)
    if images.shape[-2:] != field.shape:
        raise InputError(f"the distortion calibration is for {field.shape[0]} x {field.shape[1]} px frames; "
                         f"the series has {images.shape[-2]} x {images.shape[-1]} px frames")
    yy, xx = np.mgrid[0:field.shape[0], 0:field.shape[1]].astype(np.float64)
    coords = np.stack([yy, xx + field])
    flat = images.reshape(-1, *field.shape)
    out = np.stack([ndimage.map_coordinates(f, coords, order=3, mode="nearest") for f in flat])
    return out.reshape(images.shape).astype(np.float32)


def save_calibration(path: str | Path, field: np.ndarray, *, overwrite: bool = False, **metadata: float) -> Path:
    """Write a correction field ``(Y, X)`` and its frame size to an ``.npz`` file (atomically)."""
    field = np.asarray(field, np.float32)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, format=CALIBRATION_FORMAT, version=_VERSION, field=field,
                     frame_shape=np.array(field.shape), **{k: np.float64(v) for k, v in metadata.items()})
    return Path(path)


def load_calibration(path: str | Path, frame_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a correction field written by :func:`save_calibration`.

    Raises
    ------
    FormatError
        Not a distortion calibration of this format version.
    InputError
        ``frame_shape`` given and different from the calibration's frame size.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            fmt, version = str(data["format"]), int(data["version"])
            field, shape = data["field"], tuple(int(s) for s in data["frame_shape"])
    except (OSError, KeyError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable scan-distortion calibration ({exc})") from None
    if fmt != CALIBRATION_FORMAT or version != _VERSION:
        raise FormatError(f"{path}: format {fmt!r} version {version}; expected {CALIBRATION_FORMAT!r} "
                          f"version {_VERSION}")
    if frame_shape is not None and tuple(frame_shape) != shape:
        raise InputError(f"{path}: calibration for {shape[0]} x {shape[1]} px frames, but the series has "
                         f"{frame_shape[0]} x {frame_shape[1]} px frames; calibrate at this frame size")
    return field
