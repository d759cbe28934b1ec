"""Losses of DIP-STER: robust data terms, total variation, and the noise-scale estimate.

All data losses see residuals in units of an explicit scale ``c`` (the
``gm_scale``), ``u = (prediction - data) / c``, so one ``tv_weight`` means the
same for every loss:

* ``"gm"``, Geman-McClure: ``rho(u) = u**2 / (u**2 + 1) = d**2 / (d**2 + c**2)``.
  For ``|d| << c`` it behaves like ``d**2 / c**2`` (the ``"l2"`` loss); it is
  bounded by 1, so outliers (hot pixels, unmodelled contrast) stop pulling.
* ``"l2"``: ``u**2``;  ``"l1"``: ``|u|``;
* ``"smooth-l1"``: ``0.5 u**2 / beta`` for ``|u| < beta``, else ``|u| - 0.5 beta``.

``residual_filter="ramp"`` (beyond the paper) weights the residual's
frequencies along the detector before the loss, as filtered backprojection
weights them: fine detail that plain least squares learns last (sharp edges)
gets its share of the gradient early, see :func:`ramp_filter`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tomotime.errors import InputError

__all__ = ["geman_mcclure", "data_loss", "ramp_filter", "total_variation", "total_variation_1d", "estimate_noise_scale"]


def geman_mcclure(residual: torch.Tensor, scale: float) -> torch.Tensor:
    """Element-wise ``d**2 / (d**2 + c**2)`` of residuals ``d`` with scale ``c > 0`` (values in [0, 1))."""
    u = residual / scale
    return (u / torch.hypot(u, torch.ones_like(u))) ** 2  # = u^2 / (u^2 + 1) without overflow of u^2


def ramp_filter(rows: torch.Tensor) -> torch.Tensor:
    """Rows ``(..., X)`` filtered along X by the square root of a ramp, normalised to unit mean power.

    Frequency ``f`` (cycles per pixel, ``|f| <= 1/2``) is scaled by
    ``w(f) = sqrt(max(|f|, 1/X) / m)``, with ``m`` the mean of
    ``max(|f|, 1/X)`` over the ``X`` frequencies, so that
    ``sum(filtered**2) = sum_f w(f)**2 |R(f)|**2`` (Parseval, orthonormal FFT):
    white noise keeps its mean power, the detector's highest frequencies weigh
    about ``X / 2`` times the lowest, and the row sum (``f = 0``) weighs as much
    as the first frequency, so the mass of each row stays constrained. The
    gradient of ``sum(filtered**2)`` is the residual filtered by the ramp
    ``w**2``, the filter of filtered backprojection.
    """
    n = rows.shape[-1]
    ramp = torch.fft.fftfreq(n, device=rows.device, dtype=torch.float64).abs().clamp_min(1.0 / n)
    weight = (ramp / ramp.mean()).sqrt().to(rows.dtype)
    return torch.fft.ifft(torch.fft.fft(rows, dim=-1) * weight, dim=-1).real


def data_loss(residual: torch.Tensor, *, kind: str = "gm", scale: float = 1.0, beta: float = 1.0,
              dim: int | None = None) -> torch.Tensor:
    """Mean data loss of ``residual`` (any shape) in units of ``scale``, see the module description.

    Parameters
    ----------
    residual : torch.Tensor
        ``prediction - data``, normalised intensity units.
    kind : {"gm", "l2", "l1", "smooth-l1"}
        Loss function.
    scale : float
        Residual scale ``c`` (> 0).
    beta : float
        Smooth-L1 transition, in units of ``scale``.
    dim : int, optional
        Average over this axis only (e.g. ``-1``: one loss per detector row).

    Returns
    -------
    torch.Tensor
        A scalar, or the losses along the remaining axes with ``dim``.
    """
    u = residual / scale
    if kind == "gm":
        elementwise = geman_mcclure(residual, scale)
    elif kind == "l2":
        elementwise = u**2
    elif kind == "l1":
        elementwise = u.abs()
    elif kind == "smooth-l1":
        elementwise = F.smooth_l1_loss(u, torch.zeros_like(u), beta=beta, reduction="none")
    else:
        raise InputError(f"loss={kind!r}: expected one of gm, l2, l1, smooth-l1")
    return elementwise.mean() if dim is None else elementwise.mean(dim=dim)


def total_variation(slices: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation of slices ``(B, Z, X)``: mean ``|dz|`` plus mean ``|dx|`` (a scalar)."""
    if slices.ndim != 3:
        raise InputError(f"slices: expected (B, Z, X), got shape {tuple(slices.shape)}")
    tv = slices.new_zeros(())
    if slices.shape[1] > 1:
        tv = tv + (slices[:, 1:] - slices[:, :-1]).abs().mean()
    if slices.shape[2] > 1:
        tv = tv + (slices[:, :, 1:] - slices[:, :, :-1]).abs().mean()
    return tv


def total_variation_1d(rows: torch.Tensor) -> torch.Tensor:
    """Mean ``|dx|`` of detector rows ``(B, X)`` (a scalar): the paper's TV on the reprojection."""
    if rows.ndim != 2:
        raise InputError(f"rows: expected (B, X), got shape {tuple(rows.shape)}")
    if rows.shape[1] < 2:
        return rows.new_zeros(())
    return (rows[:, 1:] - rows[:, :-1]).abs().mean()


def estimate_noise_scale(images: np.ndarray) -> float:
    """Robust standard deviation of white noise in ``images`` ``(..., X)``.

    ``1.4826 * MAD(d) / sqrt(2)`` of the differences ``d`` between neighbouring
    detector pixels along X: for independent noise of deviation ``sigma`` these
    differences have deviation ``sigma * sqrt(2)``, and the median absolute
    deviation ignores the (sparse) edges of the object. Zero for noise-free
    data with flat regions; callers floor it.
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] < 2:
        raise InputError(f"images: expected at least 2 detector pixels along X, got shape {arr.shape}")
    d = np.diff(arr, axis=-1).ravel()
    mad = np.median(np.abs(d - np.median(d)))
    return float(1.4826 * mad / np.sqrt(2.0))
