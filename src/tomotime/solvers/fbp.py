"""Filtered back-projection (FBP) for parallel-beam projectors."""

from __future__ import annotations

import math

import numpy as np
import torch

from tomotime.errors import InputError
from tomotime.physics.linear_operator import LinearOperator
from tomotime.physics.parallel2d import ParallelProjector2D
from tomotime.physics.parallel3d import VolumeProjector
from tomotime.solvers.common import as_data_tensor

__all__ = ["fbp", "ramp_filter", "angular_weights", "backproject_pixels", "FILTERS"]

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


def ramp_filter(n_det: int, *, window: str = "ram-lak", dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Frequency response of the apodised ramp filter for zero-padded rows.

    The ramp is the Fourier transform of the band-limited spatial kernel of Kak &
    Slaney (``h[0] = 1/4``, ``h[n] = -1/(pi n)^2`` for odd ``n``), which has no DC
    bias; it is multiplied by the apodisation window.

    Returns
    -------
    torch.Tensor, shape (P // 2 + 1,)
        Real response for ``torch.fft.rfft`` of rows padded to ``P`` (a power of
        two ``>= 2 * n_det``).
    """
    if window not in FILTERS:
        raise InputError(f"filter={window!r}: expected one of {', '.join(FILTERS)}")
    size = max(64, 1 << math.ceil(math.log2(2 * n_det)))
    n = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
    kernel = np.zeros(size)
    kernel[0] = 0.25
    kernel[1::2] = -1.0 / (np.pi * n) ** 2
    response = np.real(np.fft.rfft(kernel))
    freq = np.fft.rfftfreq(size)  # cycles per pixel, 0 .. 0.5
    omega = np.pi * freq / 0.5  # 0 .. pi
    if window == "shepp-logan":
        response *= np.sinc(freq)
    elif window == "cosine":
        response *= np.cos(omega / 2)
    elif window == "hamming":
        response *= 0.54 + 0.46 * np.cos(omega)
    elif window == "hann":
        response *= 0.5 + 0.5 * np.cos(omega)
    return torch.as_tensor(response, dtype=dtype, device=device)


def angular_weights(angles_deg) -> np.ndarray:
    """Quadrature weights (radians) of the views for the back-projection integral.

    Each distinct angle gets half the distance to its neighbours (one-sided at
    the ends of the range); repeated angles share their weight, so the sum of the
    weights is the angular range covered plus one step.
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    unique, inverse, counts = np.unique(angles, return_inverse=True, return_counts=True)
    if unique.size == 1:
        spacing = np.array([np.pi])
    else:
        edges = np.radians(unique)
        gaps = np.diff(edges)
        spacing = np.empty_like(edges)
        spacing[1:-1] = 0.5 * (gaps[:-1] + gaps[1:])
        spacing[0], spacing[-1] = gaps[0], gaps[-1]
    return spacing[inverse] / counts[inverse]


def backproject_pixels(filtered: torch.Tensor, angles_deg, shape: tuple[int, int]) -> torch.Tensor:
    """Pixel-driven back-projection of sinograms ``(B, A, D)`` onto slices ``(B, Z, X)``.

    Each pixel takes the linearly interpolated value of every projection at its
    detector position ``s = x cos(theta) - z sin(theta)`` (the convention of
    :mod:`tomotime.physics.joseph`). Unlike the transpose of the ray-driven
    projector, this weights every pixel equally, so FBP has no spike at the
    rotation centre.
    """
    nz, nx = shape
    b, a, d = filtered.shape
    dev, dt = filtered.device, filtered.dtype
    z = (torch.arange(nz, device=dev, dtype=dt) - (nz - 1) / 2)[:, None]
    x = (torch.arange(nx, device=dev, dtype=dt) - (nx - 1) / 2)[None, :]
    theta = np.radians(np.asarray(angles_deg, dtype=np.float64))
    out = torch.zeros(b, nz * nx, device=dev, dtype=dt)
    padded = torch.nn.functional.pad(filtered, (1, 1))  # a zero bin on each side of the detector
    for i, th in enumerate(theta):
        pos = (x * math.cos(th) - z * math.sin(th)).reshape(-1) + (d - 1) / 2 + 1
        pos = pos.clamp(0, d + 1 - 1e-6)
        lower = pos.floor()
        frac = pos - lower
        lower = lower.long()
        row = padded[:, i, :]
        out += row[:, lower] * (1 - frac) + row[:, (lower + 1).clamp(max=d + 1)] * frac
    return out.reshape(b, nz, nx)


@torch.no_grad()
def fbp(op: LinearOperator, data, *, filter: str = "ram-lak") -> torch.Tensor:
    """Reconstruct with filtered back-projection.

    Each projection row is filtered along the detector with the apodised ramp,
    weighted by its angular quadrature weight and back-projected pixel by pixel
    (:func:`backproject_pixels`); with per-view poses the transpose of the
    projector is used instead.

    Parameters
    ----------
    op : LinearOperator
        A projector with an ``angles`` attribute (degrees) whose range ends in
        ``(A, D)`` (2D) or is ``(N, Y, D)`` (3D).
    data : array_like or torch.Tensor
        Projections in the operator's range shape (plus batch dimensions).
    filter : str
        One of ``"ram-lak"``, ``"shepp-logan"``, ``"cosine"``, ``"hamming"``, ``"hann"``.

    Returns
    -------
    torch.Tensor
        Reconstruction of shape ``batch + op.domain_shape``, in the data's units per pixel.
    """
    b = as_data_tensor(op, data)
    n_det = b.shape[-1]
    response = ramp_filter(n_det, window=filter, dtype=b.dtype, device=b.device)
    size = 2 * (response.numel() - 1)
    filtered = torch.fft.irfft(torch.fft.rfft(b, n=size, dim=-1) * response, n=size, dim=-1)[..., :n_det]
    weights = torch.as_tensor(angular_weights(op.angles), dtype=b.dtype, device=b.device)
    view_shape = [-1] + [1] * (len(op.range_shape) - 1)  # the views are the first range axis
    filtered = filtered * weights.reshape(view_shape)
    if isinstance(op, ParallelProjector2D):
        batch = filtered.shape[:-2]
        slices = backproject_pixels(filtered.reshape(-1, *op.range_shape), op.angles, op.domain_shape)
        return slices.reshape(*batch, *op.domain_shape)
    if isinstance(op, VolumeProjector) and op.poses is None:
        nz, ny, nx = op.domain_shape
        slices = backproject_pixels(filtered.permute(1, 0, 2), op.angles, (nz, nx))  # (Y, Z, X)
        return slices.permute(1, 0, 2)
    return op.adjoint(filtered)  # with poses: the transpose of the projector
