"""Register one image to another with a translation, a rigid map or an affine map (least squares).

The map takes a pixel ``q`` of the fixed image (``(x, y)`` = column, row about
the image centre) to the point ``M q + t`` of the moving image, so that
``moving(M q + t) ~ fixed(q)``: the moving image resampled with the map lies on
the fixed one. Parameters are found by :func:`scipy.optimize.least_squares`
on the pixel differences, starting from the cross-correlation shift.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import least_squares
from skimage.registration import phase_cross_correlation

from tomotime.errors import InputError

__all__ = ["MODELS", "register_image", "warp_image", "map_matrix"]

#: Parameters of each model: shifts ``tx, ty`` (px), ``rotation`` (rad), ``scale_x, scale_y`` (relative), ``skew``.
MODELS = {"translation": ("tx", "ty"), "rigid": ("tx", "ty", "rotation"),
          "affine": ("tx", "ty", "scale_x", "scale_y", "skew")}


def map_matrix(model: str, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M, t)`` of ``params`` of ``model``: ``M`` ``(2, 2)`` acting on ``(x, y)``, ``t`` ``(2,)``."""
    p = dict(zip(MODELS[model], params))
    t = np.array([p["tx"], p["ty"]])
    if model == "rigid":
        c, s = np.cos(p["rotation"]), np.sin(p["rotation"])
        return np.array([[c, -s], [s, c]]), t
    if model == "affine":  # the DIP-STER paper's map: translation, skew and scale (no rotation)
        return np.array([[1 + p["scale_x"], p["skew"]], [0.0, 1 + p["scale_y"]]]), t
    return np.eye(2), t


def warp_image(image: np.ndarray, matrix: np.ndarray, offset: np.ndarray, *, order: int = 1,
               mode: str = "constant") -> np.ndarray:
    """``image`` resampled at ``M q + t`` for every pixel ``q`` (``(x, y)`` about the centre)."""
    ny, nx = image.shape
    centre = np.array([(nx - 1) / 2, (ny - 1) / 2])
    # ndimage works in (row, column) = (y, x): swap the axes of the map.
    m_rc = np.asarray(matrix, np.float64)[::-1, ::-1]
    t_rc = (np.asarray(offset, np.float64) + centre - np.asarray(matrix) @ centre)[::-1]
    return ndimage.affine_transform(np.asarray(image, np.float64), m_rc, offset=t_rc, order=order, mode=mode)


def register_image(moving: np.ndarray, fixed: np.ndarray, *, model: str = "translation",
                   margin: float = 0.1, smooth: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """The map ``(M, t)`` with ``moving(M q + t) ~ fixed(q)``, and the relative residual after it.

    Parameters
    ----------
    moving, fixed : numpy.ndarray, shape (Y, X)
    model : {"translation", "rigid", "affine"}
    margin : float
        Fraction of each side left out of the comparison (it may leave the field of view).
    smooth : float
        Gaussian sigma (px) applied to both images first (0: none).
    """
    if model not in MODELS:
        raise InputError(f"model={model!r}: expected one of {', '.join(MODELS)}")
    a = ndimage.gaussian_filter(np.asarray(moving, np.float64), smooth) if smooth else np.asarray(moving, float)
    b = ndimage.gaussian_filter(np.asarray(fixed, np.float64), smooth) if smooth else np.asarray(fixed, float)
    ny, nx = b.shape
    my, mx = int(margin * ny), int(margin * nx)
    inner = (slice(my, ny - my), slice(mx, nx - mx))
    shift, _, _ = phase_cross_correlation(b, a, upsample_factor=10, normalization=None)
    start = np.zeros(len(MODELS[model]))
    start[:2] = -shift[1], -shift[0]
    scale = max(float(np.abs(b[inner]).max()), 1e-30)

    def residual(params):
        m, t = map_matrix(model, params)
        return ((warp_image(a, m, t)[inner] - b[inner]) / scale).ravel()

    steps = np.array([0.05 if name in ("tx", "ty") else 1e-3 for name in MODELS[model]])
    fit = least_squares(residual, start, diff_step=steps / np.maximum(np.abs(start), 1.0), x_scale=steps * 20,
                        max_nfev=60)
    m, t = map_matrix(model, fit.x)
    rel = float(np.linalg.norm(fit.fun) / max(np.linalg.norm(b[inner] / scale), 1e-30))
    return m, t, rel
