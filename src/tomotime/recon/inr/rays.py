"""Rays of a tilt series through the volume box: geometry with poses, exact ray–box intersection, sampling.

Coordinates are voxel units centred on the volume ``(Z, Y, X)``; the box is
``|x| <= X/2, |y| <= Y/2, |z| <= Z/2``. Detector pixel ``(row, col)`` of view
``i`` sits at ``(row - (Y-1)/2, col - (X-1)/2)``. With the pose
``(z1, z3, dy, dx)`` of the view (degrees, degrees, pixels, pixels) the
pixel's ray is found by undoing the shift and the in-plane rotation ``z3``
(the convention of :mod:`tomotime.physics.parallel3d`, where ``z3`` is its
``axis_rotation``), tilting by the view's angle about Y (the projector's
``s = x cos(theta) - z sin(theta)``), and rotating by ``z1`` about the beam
axis Z: the rotation ``R(z3) R(theta) R(z1)`` of the INR paper. A zero pose
gives exactly the rays of the project's voxel projector. At 0 deg only
``z1 - z3`` matters; ``z1 = z3 = alpha`` turns the tilt axis by ``alpha`` in
the image (a tilt axis at ``alpha`` from image Y, the object unrotated).
"""

from __future__ import annotations

import torch

__all__ = ["pixel_rays", "ray_box", "sample_along", "sample_count"]


def pixel_rays(rows: torch.Tensor, cols: torch.Tensor, theta: torch.Tensor, pose: torch.Tensor,
               det_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Origin and unit direction ``(B, 3)`` as ``(x, y, z)`` of each pixel's ray.

    Parameters
    ----------
    rows, cols : torch.Tensor, shape (B,)
        Detector row and column of each ray.
    theta : torch.Tensor, shape (B,)
        Tilt angle of its view, radians.
    pose : torch.Tensor, shape (B, 4)
        ``(z1_deg, z3_deg, dy_px, dx_px)`` of its view.
    det_shape : (int, int)
        Detector ``(Y, X)``.
    """
    ny, nx = det_shape
    z1, z3 = torch.deg2rad(pose[:, 0]), torch.deg2rad(pose[:, 1])
    y1 = rows.to(pose.dtype) - (ny - 1) / 2 - pose[:, 2]
    s1 = cols.to(pose.dtype) - (nx - 1) / 2 - pose[:, 3]
    s2 = torch.cos(z3) * s1 + torch.sin(z3) * y1
    y2 = -torch.sin(z3) * s1 + torch.cos(z3) * y1
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(s2)
    origin = torch.stack([s2 * cos, y2, -s2 * sin], dim=-1)
    direction = torch.stack([sin + zero, zero, cos + zero], dim=-1)
    c1, s1_ = torch.cos(z1)[:, None], torch.sin(z1)[:, None]

    def about_z(v: torch.Tensor) -> torch.Tensor:
        return torch.stack([c1[:, 0] * v[:, 0] - s1_[:, 0] * v[:, 1], s1_[:, 0] * v[:, 0] + c1[:, 0] * v[:, 1],
                            v[:, 2]], dim=-1)

    return about_z(origin), about_z(direction)


def ray_box(origin: torch.Tensor, direction: torch.Tensor, half: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit parameters ``t`` of rays ``origin + t * direction`` through the box ``|p| <= half``.

    Exact slab intersection. Rays that miss the box get ``t_near == t_far``
    (zero length). Components of ``direction`` equal to zero are handled: such a
    ray is inside that slab everywhere or nowhere.

    Parameters
    ----------
    origin, direction : torch.Tensor, shape (B, 3)
    half : torch.Tensor, shape (3,)
        Half extents of the box (voxels).

    Returns
    -------
    t_near, t_far : torch.Tensor, shape (B,)
    """
    big = torch.finfo(origin.dtype).max / 4
    safe = torch.where(direction.abs() < 1e-12, torch.full_like(direction, 1e-12), direction)
    t1, t2 = (-half - origin) / safe, (half - origin) / safe
    lo, hi = torch.minimum(t1, t2), torch.maximum(t1, t2)
    parallel = direction.abs() < 1e-12
    inside = origin.abs() <= half
    lo = torch.where(parallel, torch.where(inside, -big, big), lo)
    hi = torch.where(parallel, torch.where(inside, big, -big), hi)
    t_near, t_far = lo.max(dim=-1).values, hi.min(dim=-1).values
    t_far = torch.maximum(t_far, t_near)
    return t_near, t_far


def sample_along(origin: torch.Tensor, direction: torch.Tensor, t_near: torch.Tensor, t_far: torch.Tensor,
                 n: int, *, jitter: bool, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` stratified samples per ray between entry and exit: points ``(B, n, 3)`` and step ``(B,)``.

    Sample ``k`` lies in the ``k``-th of ``n`` equal segments: at a uniform
    random place with ``jitter`` (training), at its midpoint otherwise.
    ``sum(f(points), 1) * step`` estimates the line integral of ``f``.
    """
    step = (t_far - t_near) / n
    offset = (torch.rand(origin.shape[0], n, device=origin.device, dtype=origin.dtype, generator=generator)
              if jitter else torch.full((1, n), 0.5, device=origin.device, dtype=origin.dtype))
    k = torch.arange(n, device=origin.device, dtype=origin.dtype)
    t = t_near[:, None] + (k[None] + offset) * step[:, None]
    return origin[:, None, :] + t[..., None] * direction[:, None, :], step


def sample_count(step: int, *, start: int, end: int, ramp_steps: int) -> int:
    """Samples per ray at ``step``: linear ramp from ``start`` to ``end`` over ``ramp_steps`` steps."""
    if ramp_steps <= 0 or step >= ramp_steps:
        return int(end)
    return int(round(start + (end - start) * step / ramp_steps))
