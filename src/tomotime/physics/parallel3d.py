"""3D parallel-beam projector in volume mode, with optional per-view poses.

A volume ``(Z, Y, X)`` is projected at ``N`` tilt angles about the Y axis to a
tilt series ``(N, Y, D)``. Without poses every detector row is an independent
2D problem, handled by the sparse :class:`~tomotime.physics.parallel2d.ParallelProjector2D`
(exact transpose). With poses, each view is sampled by trilinear interpolation
along rays (``torch.nn.functional.grid_sample``) so that gradients reach the
pose parameters as well as the volume; its adjoint is the exact transpose of
that discretisation, obtained by automatic differentiation.

Pose model, per view ``[axis_rotation, axis_tilt, shift_y, shift_x]`` (degrees,
degrees, pixels, pixels): the object is rotated by the tilt angle about a tilt
axis that is inclined by ``axis_tilt`` from Y towards Z (the rotation
``R_x(axis_tilt) R_y(theta) R_x(-axis_tilt)``, with ``R_y`` the convention of
:mod:`tomotime.physics.joseph`), projected along Z, and the image is then
rotated in-plane by ``axis_rotation`` and shifted by ``(shift_y, shift_x)``. At
zero tilt angle ``axis_tilt`` changes nothing; a zero pose reproduces the
pose-free projector to within interpolation error.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.physics.linear_operator import LinearOperator
from tomotime.physics.parallel2d import ParallelProjector2D, _check_angles

__all__ = ["VolumeProjector", "project_with_poses", "backproject_with_poses", "samples_per_ray"]

_SAMPLES_PER_CHUNK = 4_000_000


def _rotations(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``(c, 3, 3)`` matrices ``R_x(phi) R_y(theta) R_x(-phi)`` taking lab ``(s, y, t)`` to object ``(x, y, z)``.

    ``R_y(theta)`` maps ``(s, t)`` to ``x = s cos + t sin``, ``z = -s sin + t cos``
    (the convention of :mod:`tomotime.physics.joseph`); ``R_x(phi)`` maps
    ``(y, z)`` to ``(y cos - z sin, y sin + z cos)``. Together: a rotation by
    ``theta`` about the tilt axis inclined by ``phi`` from Y towards Z.
    """
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)

    def matrix(rows):
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    ct, st, cp, sp = torch.cos(theta), torch.sin(theta), torch.cos(phi), torch.sin(phi)
    r_y = matrix([[ct, zero, st], [zero, one, zero], [-st, zero, ct]])
    r_x = matrix([[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    return r_x @ r_y @ r_x.transpose(-1, -2)


def _half(n: int) -> float:
    return max((n - 1) / 2, 0.5)


def _ray_grid(theta, pose, vol_shape, det_shape, n_t):
    """Normalised sampling grid ``(c, n_t, Yd, D, 3)`` for ``c`` views (float tensors)."""
    nz, ny, nx = vol_shape
    yd, nd = det_shape
    dev, dt = pose.device, pose.dtype
    psi = torch.deg2rad(pose[:, 0])
    rot = _rotations(theta, torch.deg2rad(pose[:, 1]))
    row = torch.arange(yd, device=dev, dtype=dt) - (yd - 1) / 2
    col = torch.arange(nd, device=dev, dtype=dt) - (nd - 1) / 2
    t = torch.arange(n_t, device=dev, dtype=dt) - (n_t - 1) / 2
    v = lambda a: a[:, None, None, None]  # noqa: E731  (broadcast per view)
    y1 = row[None, None, :, None] - v(pose[:, 2])
    s1 = col[None, None, None, :] - v(pose[:, 3])
    lab = (torch.cos(v(psi)) * s1 + torch.sin(v(psi)) * y1,  # s
           -torch.sin(v(psi)) * s1 + torch.cos(v(psi)) * y1,  # y
           t[None, :, None, None])  # along the beam
    x, y, z = (sum(v(rot[:, i, j]) * lab[j] for j in range(3)) for i in range(3))
    x, y, z = torch.broadcast_tensors(x, y, z)
    return torch.stack([x / _half(nx), y / _half(ny), z / _half(nz)], dim=-1)


def samples_per_ray(vol_shape: tuple[int, int, int], poses: torch.Tensor | None) -> int:
    """Samples along each ray (one per voxel step) that span the volume in every direction the poses allow."""
    nz, ny, nx = vol_shape
    inclined = poses is not None and bool((poses.detach()[:, 1] != 0).any())
    return int(math.ceil(math.hypot(nz, ny, nx) if inclined else math.hypot(nz, nx))) + 2


def backproject_with_poses(images: torch.Tensor, angles: torch.Tensor, poses: torch.Tensor,
                           vol_shape: tuple[int, int, int]) -> torch.Tensor:
    """Pixel-driven back-projection of ``(N, Yd, D)`` images onto a volume ``(Z, Y, X)``.

    Every voxel takes the bilinearly interpolated value of each image at the
    detector point its ray hits (the inverse of the pose model), so all voxels
    are weighted alike; unlike the transpose of the ray sampler, this leaves no
    spike at the rotation centre. Used by FBP.
    """
    nz, ny, nx = vol_shape
    n, yd, nd = images.shape
    dev, dt = images.device, images.dtype
    poses = poses.detach().to(dev, dt)
    theta = torch.deg2rad(torch.as_tensor(angles, dtype=dt, device=dev))
    rot = _rotations(theta, torch.deg2rad(poses[:, 1]))
    grids = torch.meshgrid(*(torch.arange(k, device=dev, dtype=dt) - (k - 1) / 2 for k in (nz, ny, nx)),
                           indexing="ij")
    obj = torch.stack([grids[2].reshape(-1), grids[1].reshape(-1), grids[0].reshape(-1)])  # (3, Z*Y*X) as x, y, z
    psi = torch.deg2rad(poses[:, 0])[:, None]
    out = torch.zeros(nz * ny * nx, device=dev, dtype=dt)
    per_chunk = max(1, _SAMPLES_PER_CHUNK // obj.shape[1])
    for start in range(0, n, per_chunk):
        part = slice(start, start + per_chunk)
        lab = rot[part].transpose(-1, -2) @ obj  # (c, 3, Z*Y*X): s, y, t
        s2, y2 = lab[:, 0], lab[:, 1]
        col = torch.cos(psi[part]) * s2 - torch.sin(psi[part]) * y2 + poses[part, 3:4]
        row = torch.sin(psi[part]) * s2 + torch.cos(psi[part]) * y2 + poses[part, 2:3]
        grid = torch.stack([col / _half(nd), row / _half(yd)], dim=-1)[:, None]  # (c, 1, Z*Y*X, 2)
        values = F.grid_sample(images[part, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        out += values.sum(dim=0).reshape(-1)
    return out.reshape(nz, ny, nx)


def _project_chunk(volume, theta, pose, det_shape, n_t):
    grid = _ray_grid(theta, pose, tuple(volume.shape[-3:]), det_shape, n_t)
    c = grid.shape[0]
    grid = grid.reshape(1, c * n_t, *grid.shape[2:])
    samples = F.grid_sample(volume[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return samples.reshape(c, n_t, *det_shape).sum(dim=1)


def project_with_poses(volume: torch.Tensor, angles: torch.Tensor, poses: torch.Tensor, *,
                       det_shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Project a volume at ``N`` views with per-view poses (differentiable in all inputs).

    Parameters
    ----------
    volume : torch.Tensor, shape (Z, Y, X)
    angles : torch.Tensor, shape (N,)
        Tilt angles in degrees.
    poses : torch.Tensor, shape (N, 4)
        ``[axis_rotation_deg, axis_tilt_deg, shift_y_px, shift_x_px]`` per view.
    det_shape : (int, int), optional
        Detector ``(Yd, D)``; default ``(Y, X)``.

    Returns
    -------
    torch.Tensor, shape (N, Yd, D)
    """
    nz, ny, nx = volume.shape
    det_shape = tuple(det_shape or (ny, nx))
    theta = torch.deg2rad(torch.as_tensor(angles, dtype=volume.dtype, device=volume.device))
    poses = poses.to(volume.device, volume.dtype)
    n_t = samples_per_ray((nz, ny, nx), poses)
    per_chunk = max(1, _SAMPLES_PER_CHUNK // (n_t * det_shape[0] * det_shape[1]))
    grad = torch.is_grad_enabled() and (volume.requires_grad or poses.requires_grad)
    views = []
    for start in range(0, theta.numel(), per_chunk):
        args = (volume, theta[start:start + per_chunk], poses[start:start + per_chunk], det_shape, n_t)
        views.append(checkpoint(_project_chunk, *args, use_reentrant=False) if grad else _project_chunk(*args))
    return torch.cat(views)


class VolumeProjector(LinearOperator):
    """Parallel-beam projector of a volume ``(Z, Y, X)`` to a tilt series ``(N, Y, D)``.

    Parameters
    ----------
    angles : array_like, shape (N,)
        Tilt angles in degrees (about the Y axis).
    vol_shape : (int, int, int)
        ``(Z, Y, X)``.
    poses : torch.Tensor or array_like, shape (N, 4), optional
        Per-view ``[axis_rotation_deg, axis_tilt_deg, shift_y_px, shift_x_px]``. A
        tensor with ``requires_grad=True`` is used as is, so it can be learned.
    n_det : int, optional
        Detector columns ``D`` (default ``X``).
    device, dtype
        As for :class:`ParallelProjector2D`.
    """

    def __init__(self, angles, vol_shape: tuple[int, int, int], *, poses=None, n_det: int | None = None,
                 device="cpu", dtype=torch.float32) -> None:
        self.angles = _check_angles(angles)
        if len(vol_shape) != 3 or min(vol_shape) < 2:
            raise InputError(f"vol_shape={vol_shape}: expected (Z, Y, X) with every size >= 2")
        self.vol_shape = tuple(int(s) for s in vol_shape)
        self.n_det = int(n_det or self.vol_shape[2])
        self.device = resolve_device(device)
        self.dtype = dtype
        self.domain_shape = self.vol_shape
        self.range_shape = (self.angles.size, self.vol_shape[1], self.n_det)
        self.poses = None
        if poses is not None:
            poses = poses if isinstance(poses, torch.Tensor) else torch.as_tensor(np.asarray(poses, np.float32))
            if tuple(poses.shape) != (self.angles.size, 4):
                raise InputError(f"poses: expected shape ({self.angles.size}, 4), got {tuple(poses.shape)}")
            self.poses = poses
            self._theta = torch.as_tensor(self.angles, dtype=dtype, device=self.device)
        else:
            self._slices = ParallelProjector2D(self.angles, (self.vol_shape[0], self.vol_shape[2]),
                                               n_det=self.n_det, device=self.device, dtype=dtype)

    def __repr__(self) -> str:
        return (f"VolumeProjector(n_angles={self.angles.size}, vol_shape={self.vol_shape}, n_det={self.n_det}, "
                f"poses={'yes' if self.poses is not None else 'no'}, device={self.device})")

    def _check(self, x: torch.Tensor, shape, name: str) -> torch.Tensor:
        if tuple(x.shape) != tuple(shape):
            raise InputError(f"{name}: expected shape {tuple(shape)}, got {tuple(x.shape)}")
        return x.to(self.device, self.dtype)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Project ``(Z, Y, X)`` to ``(N, Y, D)``."""
        volume = self._check(volume, self.domain_shape, "volume")
        if self.poses is None:
            sino = self._slices.forward(volume.permute(1, 0, 2))  # (Y, N, D)
            return sino.permute(1, 0, 2)
        return project_with_poses(volume, self._theta, self.poses, det_shape=self.range_shape[1:])

    def adjoint(self, projections: torch.Tensor) -> torch.Tensor:
        """Back-project ``(N, Y, D)`` to ``(Z, Y, X)`` (exact transpose of :meth:`forward`)."""
        projections = self._check(projections, self.range_shape, "projections")
        if self.poses is None:
            return self._slices.adjoint(projections.permute(1, 0, 2)).permute(1, 0, 2)
        with torch.enable_grad():
            probe = torch.zeros(self.domain_shape, device=self.device, dtype=self.dtype, requires_grad=True)
            image = project_with_poses(probe, self._theta, self.poses.detach(), det_shape=self.range_shape[1:])
            (grad,) = torch.autograd.grad(image, probe, grad_outputs=projections,
                                          create_graph=projections.requires_grad)
        return grad
