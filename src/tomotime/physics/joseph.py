"""Joseph's ray-driven weights for 2D parallel-beam projection.

Geometry (pinned by tests against scikit-image ``radon`` and astra-toolbox):
a slice ``f[i, j]`` of shape ``(Z, X)`` has pixel centres at
``z = i - (Z - 1) / 2`` and ``x = j - (X - 1) / 2`` (unit pixels). The detector
bin ``d`` of ``D`` sits at ``s = d - (D - 1) / 2`` and, at tilt angle ``theta``,
measures the line integral of ``f`` over all points with

    s = x cos(theta) - z sin(theta).

At 0 degrees this is the sum over Z (the beam direction). This is
``skimage.transform.radon(f, theta)`` for odd sizes (rows = Z; to interpolation
accuracy), and astra-toolbox's 2D ``parallel`` geometry at the same angle
``theta`` (in radians; ``astra.create_vol_geom(Z, X)``, detector spacing 1),
whose ``linear`` projector it reproduces to float precision.

Each ray is walked one pixel at a time along the axis it is most parallel to,
and the image is linearly interpolated along the other axis (weight = step
length ``1 / max(|cos|, |sin|)``); pixels outside the slice count as zero.
"""

from __future__ import annotations

import torch

__all__ = ["joseph_samples"]


def joseph_samples(theta: torch.Tensor, shape: tuple[int, int], n_det: int):
    """Sample positions and weights of every ray of every angle.

    Parameters
    ----------
    theta : torch.Tensor, shape (A,)
        Angles in radians (any float dtype; the samples use that dtype).
    shape : (int, int)
        Slice shape ``(Z, X)``.
    n_det : int
        Number of detector bins ``D``.

    Returns
    -------
    index : torch.LongTensor, shape (A, D, P, 2)
        Flat pixel index ``i * X + j`` of the two interpolation neighbours of
        each of the ``P = max(Z, X)`` steps of each ray (clamped into range).
    weight : torch.Tensor, shape (A, D, P, 2)
        Interpolation weight times step length; zero for neighbours outside
        the slice and for steps beyond the ray's axis length.
    """
    nz, nx = shape
    steps = max(nz, nx)
    dev, dt = theta.device, theta.dtype
    cos, sin = torch.cos(theta), torch.sin(theta)
    z_major = cos.abs() >= sin.abs()
    s = torch.arange(n_det, device=dev, dtype=dt) - (n_det - 1) / 2
    k = torch.arange(steps, device=dev, dtype=dt)

    # Primary (walked) axis: Z for z-major rays, X otherwise; secondary coordinate by the formulas above.
    n_primary = torch.where(z_major, torch.tensor(nz, device=dev), torch.tensor(nx, device=dev))
    n_second = torch.where(z_major, torch.tensor(nx, device=dev), torch.tensor(nz, device=dev))
    primary = k[None, :] - (n_primary[:, None].to(dt) - 1) / 2  # (A, P)
    safe_cos = torch.where(z_major, cos, torch.ones_like(cos))
    safe_sin = torch.where(z_major, torch.ones_like(sin), sin)
    slope = torch.where(z_major, sin / safe_cos, cos / safe_sin)  # tan or cot
    offset = torch.where(z_major, 1 / safe_cos, -1 / safe_sin)
    second = s[None, :, None] * offset[:, None, None] + primary[:, None, :] * slope[:, None, None]
    second_idx = second + (n_second[:, None, None].to(dt) - 1) / 2  # (A, D, P), fractional index

    lower = torch.floor(second_idx)
    frac = second_idx - lower
    lower = lower.long()
    step_len = 1 / torch.maximum(cos.abs(), sin.abs())
    valid_step = (k[None, :] < n_primary[:, None]).to(dt)[:, None, :]  # (A, 1, P)

    neighbours = torch.stack([lower, lower + 1], dim=-1)  # (A, D, P, 2)
    interp = torch.stack([1 - frac, frac], dim=-1)
    inside = (neighbours >= 0) & (neighbours < n_second[:, None, None, None])
    weight = interp * inside.to(dt) * (valid_step * step_len[:, None, None])[..., None]

    second_clamped = neighbours.clamp(min=0)
    second_clamped = torch.minimum(second_clamped, (n_second - 1)[:, None, None, None])
    prim_idx = k.long().clamp(max=steps - 1)[None, None, :, None].expand_as(second_clamped)
    prim_idx = torch.minimum(prim_idx, (n_primary - 1)[:, None, None, None])
    zi = torch.where(z_major[:, None, None, None], prim_idx, second_clamped)
    xi = torch.where(z_major[:, None, None, None], second_clamped, prim_idx)
    return zi * nx + xi, weight
