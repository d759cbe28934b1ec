"""Filtered back-projection (FBP) for parallel-beam projectors."""

from __future__ import annotations

import math

import numpy as np
import torch

from tomotime.errors import InputError
from tomotime.physics.linear_operator import LinearOperator
from tomotime.physics.parallel2d import ParallelProjector2D
from tomotime.physics.parallel3d import VolumeProjector, backproject_with_poses
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


WEDGE_GAP_RATIO = 3.0
"""A gap between sorted views (modulo 180 degrees) wider than this many median gaps is a missing wedge."""


def angular_weights(angles_deg) -> np.ndarray:
    """Quadrature weights (radians) of the views for the back-projection integral.

    Views at ``theta`` and ``theta + 180`` degrees hold the same line integrals
    (mirrored), so the angles are taken modulo 180 degrees and placed on a
    circle. Each distinct direction gets half the gap to each of its
    neighbours; repeated directions share their weight. When the views cover
    the half circle (no gap wider than ``WEDGE_GAP_RATIO`` median gaps), the
    weights sum to pi whatever the range spanned (180, 360 degrees, or
    overlapping ends such as [-100, 100)). Otherwise the widest gap is a missing
    wedge: it adds nothing, each end of the covered range gets its full
    one-sided gap, and the weights sum to the covered range plus one step.
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    directions = np.round(np.mod(angles, 180.0), 9) % 180.0
    unique, inverse, counts = np.unique(directions, return_inverse=True, return_counts=True)
    if unique.size == 1:
        return np.full(angles.shape, np.pi) / counts[inverse]
    edges = np.radians(unique)
    gaps = np.diff(np.append(edges, edges[0] + np.pi))  # gaps[i]: from direction i to the next one, circularly
    widest = int(np.argmax(gaps))
    spacing = 0.5 * (gaps + np.roll(gaps, 1))
    if unique.size > 2 and gaps[widest] > WEDGE_GAP_RATIO * np.median(gaps):
        first, last = (widest + 1) % unique.size, widest  # the views on each side of the missing wedge
        spacing[first], spacing[last] = gaps[first], gaps[last - 1]
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
    (:func:`backproject_pixels`; with per-view poses,
    :func:`~tomotime.physics.parallel3d.backproject_with_poses`).

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
    if isinstance(op, VolumeProjector):
        return backproject_with_poses(filtered, op.angles, op.poses, op.domain_shape)
    return op.adjoint(filtered)
