"""The INR tomography model: a density field, the per-view poses, and the ray forward model.

:class:`InrModel` predicts detector pixels: each pixel's ray (with its
view's pose, see :mod:`.rays`) is cut exactly at the volume box, sampled
``n`` times (stratified) and the field is integrated, ``sum(phi) * step / L``
with ``L`` half the volume's largest side in voxels. Data are normalised
(``images / scale``), so the density in the units of the project's voxel
projector is ``phi * scale / L`` (:meth:`InrModel.volume`).

Poses ``(z1, z3, dy, dx)`` per view are ``initial + delta`` (plus, with
``shared_axis``, one tilt-axis angle ``alpha``, starting at ``axis_start``,
added to ``z1`` and ``z3`` of every view); ``delta`` and ``alpha`` are
parameters in degrees and pixels that the engine trains in their own
parameter group, at ``pose_lr`` instead of ``lr`` (:meth:`InrModel.lr_scales`;
the same warm-up and decay). The view
nearest 0 degrees is the gauge: its pose is not learned.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tomotime.errors import InputError
from tomotime.models import FeatureGrid, HSiren, grid_levels
from tomotime.recon.inr.config import InrConfig
from tomotime.recon.inr.rays import pixel_rays, ray_box, sample_along

__all__ = ["InrModel", "build_field", "gauge_view", "check_region"]


def build_field(config: InrConfig, vol_shape: tuple[int, int, int]) -> nn.Module:
    """The configured field: :class:`FeatureGrid` or :class:`HSiren` (with time as input when dynamic)."""
    if config.field == "hsiren":
        return HSiren(4 if config.dynamic else 3, hidden_layers=config.hidden_layers, width=config.width,
                      omega0=config.omega0)
    finest = config.grid_resolution or max(vol_shape)
    return FeatureGrid(grid_levels(finest, config.grid_levels), features=config.grid_features,
                       width=config.grid_width, time_knots=config.time_knots if config.dynamic else 0)


def check_region(region: tuple[tuple[float, float], ...] | None, vol_shape: tuple[int, int, int]
                 ) -> tuple[tuple[float, float], ...]:
    """``((z0, z1), (y0, y1), (x0, x1))`` inside the box ``vol_shape`` (voxels from its corner); default all of it.

    Raises
    ------
    InputError
        For a region of another form, an empty one or one that leaves the box.
    """
    if region is None:
        return tuple((0.0, float(n)) for n in vol_shape)
    if len(region) != 3 or any(len(r) != 2 for r in region):
        raise InputError(f"region {region}: expected three (start, stop) pairs for Z, Y, X")
    for (lo, hi), n, axis in zip(region, vol_shape, "ZYX"):
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi <= n):
            raise InputError(f"region {axis} {lo:g}:{hi:g}: expected 0 <= start < stop <= {n} (voxels of the "
                             f"reconstructed box {tuple(vol_shape)})")
    return tuple((float(lo), float(hi)) for lo, hi in region)


def gauge_view(angles: np.ndarray) -> int:
    """Index of the view whose pose is held fixed: the one nearest 0 degrees."""
    return int(np.argmin(np.abs(np.asarray(angles))))


def _common_mode_projectors(theta: torch.Tensor, gauge: int, active: bool) -> torch.Tensor:
    """``(4, N, N)`` projectors removing, per pose column, the modes that move the whole object.

    Over the views other than the gauge: a constant for ``z1``, ``z3`` and
    ``dy`` (object turned about the beam, image turned, object moved along Y),
    ``cos(theta)`` and ``sin(theta)`` for ``dx`` (object moved along X and Z).
    Identity when not ``active``.
    """
    n = theta.numel()
    eye = torch.eye(n)
    if not active:
        return eye.expand(4, n, n).clone()
    keep = torch.ones(n)
    keep[gauge] = 0
    ones = keep[:, None]
    trig = torch.stack([torch.cos(theta.cpu()), torch.sin(theta.cpu())], 1) * keep[:, None]
    out = []
    for basis in (ones, ones, ones, trig):
        q, _ = torch.linalg.qr(basis.double())
        rank = int((basis.abs().sum(0) > 0).sum())
        q = q[:, :rank]
        out.append((eye.double() - q @ q.T).float())
    return torch.stack(out)


class InrModel(nn.Module):
    """Field + poses + geometry of one tilt series.

    Parameters
    ----------
    config : InrConfig
    angles : numpy.ndarray, shape (N,)
        Tilt angles, degrees.
    times : numpy.ndarray, shape (N,)
        Acquisition times, seconds (used when ``config.dynamic``).
    vol_shape : (int, int, int)
        ``(Z, Y, X)`` of the reconstructed box, voxels.
    initial_poses : numpy.ndarray, shape (N, 4), optional
        Starting ``(z1, z3, dy, dx)`` per view (degrees, degrees, pixels, pixels).
    scale : float
        Data normalisation (raw intensity of a normalised value of 1).
    pixel_size : float
        Detector pixel (= voxel of the training grid) size, nm.
    axis_start : float
        Starting value of the shared tilt-axis angle ``alpha``, degrees (with ``config.shared_axis``).
    """

    def __init__(self, config: InrConfig, angles: np.ndarray, times: np.ndarray, vol_shape: tuple[int, int, int],
                 *, initial_poses: np.ndarray | None = None, scale: float = 1.0, pixel_size: float = 1.0,
                 axis_start: float = 0.0) -> None:
        super().__init__()
        n = len(angles)
        self.config, self.vol_shape, self.scale = config, tuple(int(v) for v in vol_shape), float(scale)
        self.pixel_size = float(pixel_size)
        self.det_shape = (self.vol_shape[1], self.vol_shape[2])
        self.length = max(self.vol_shape) / 2
        self.field = build_field(config, self.vol_shape)
        self.register_buffer("theta", torch.deg2rad(torch.as_tensor(angles, dtype=torch.float32)))
        span = float(times[-1] - times[0]) if n > 1 else 0.0
        t = (np.asarray(times, np.float64) - times[0]) / span * 2 - 1 if span > 0 else np.zeros(n)
        self.time_range = (float(times[0]), float(times[-1]))
        self.register_buffer("time", torch.as_tensor(t, dtype=torch.float32))
        nz, ny, nx = self.vol_shape
        self.register_buffer("box_half", torch.tensor([nx / 2, ny / 2, nz / 2], dtype=torch.float32))
        init = np.zeros((n, 4), np.float32) if initial_poses is None else np.asarray(initial_poses, np.float32)
        self.register_buffer("pose_init", torch.as_tensor(init))
        mask = torch.ones(n, 4) if config.align else torch.zeros(n, 4)
        mask[gauge_view(angles)] = 0
        if not config.align_angles:
            mask[:, :2] = 0
        self.register_buffer("pose_mask", mask)
        self.register_buffer("pin", _common_mode_projectors(self.theta, gauge_view(angles),
                                                            config.align and config.pin_object))
        self.pose_delta = nn.Parameter(torch.zeros(n, 4)) if config.align else None
        shared = config.align and config.shared_axis
        self.axis_delta = nn.Parameter(torch.tensor(float(axis_start))) if shared else None

    @property
    def device(self) -> torch.device:
        return self.theta.device

    def poses(self, *, hold_axis: bool = False) -> torch.Tensor:
        """Current ``(z1, z3, dy, dx)`` of every view, shape ``(N, 4)``; ``hold_axis``: no gradient to ``alpha``."""
        if self.pose_delta is None:
            return self.pose_init
        delta = torch.einsum("kij,jk->ik", self.pin, self.pose_mask * self.pose_delta)  # no whole-object motion
        poses = self.pose_init + delta
        if self.axis_delta is not None:  # a rotation of the tilt axis: z1 = z3 = alpha
            alpha = self.axis_delta
            if hold_axis:  # a zero gradient, not none: the parameter stays in the graph (DDP)
                alpha = alpha.detach() + 0 * alpha
            poses = poses + torch.stack([alpha, alpha, alpha * 0, alpha * 0])
        return poses

    def pose_parameters(self) -> list[nn.Parameter]:
        """The learned pose parameters (degrees and pixels): per-view ``delta`` and the shared axis ``alpha``."""
        return [p for p in (self.pose_delta, self.axis_delta) if p is not None]

    def lr_scales(self) -> list[tuple[list[nn.Parameter], float]]:
        """Parameter groups for the engine: the field at ``lr``, the poses at ``pose_lr`` (as a multiple of ``lr``)."""
        groups = [(list(self.field.parameters()), 1.0)]
        if self.pose_parameters():
            groups.append((self.pose_parameters(), self.config.pose_lr / self.config.lr))
        return groups

    def field_at(self, points: torch.Tensor, time: torch.Tensor | None = None) -> torch.Tensor:
        """Field ``phi`` at ``points`` ``(P, 3)`` in voxels ``(x, y, z)``; ``time`` ``(P,)`` in [-1, 1] when dynamic."""
        u = points / self.length
        if self.config.dynamic:
            u = torch.cat([u, (time if time is not None else torch.zeros_like(u[:, 0]))[:, None]], dim=1)
        return self.field(u)

    def _tv(self, points: torch.Tensor, time: torch.Tensor | None) -> torch.Tensor:
        """``mean |grad phi|`` (gradient in the field's normalised coordinates) at ``points`` ``(P, 3)``."""
        if self.config.tv_gradient == "autograd":
            pts = points.detach().requires_grad_(True)
            phi = self.field_at(pts, time)
            (grad,) = torch.autograd.grad(phi.sum(), pts, create_graph=True)
            return (grad * self.length).norm(dim=1).mean()
        h = 1.0  # one voxel
        shifted = points[:, None, :] + h * torch.eye(3, device=points.device, dtype=points.dtype)[None]
        both = torch.cat([points[:, None, :], shifted], dim=1).reshape(-1, 3)
        t_all = None if time is None else time[:, None].expand(-1, 4).reshape(-1)
        phi = self.field_at(both, t_all).reshape(-1, 4)
        grad = (phi[:, 1:] - phi[:, :1]) * (self.length / h)
        return grad.norm(dim=1).mean()

    def _time_tv(self, points: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """``mean |phi(t + dt) - phi(t)| / dt`` at ``points`` ``(P, 3)``, ``dt`` a 32nd of the time span (2)."""
        dt = 2.0 / 32
        later = (time + dt).clamp(max=1.0)
        earlier = later - dt
        phi = self.field_at(torch.cat([points, points]), torch.cat([earlier, later])).reshape(2, -1)
        return (phi[1] - phi[0]).abs().mean() / dt

    def forward(self, views: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, *, n_samples: int,
                jitter: bool = False, tv_fraction: float = 0.0, hold_axis: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted normalised pixels ``(B,)`` and the regularisers ``(2,)``: TV over space and (dynamic
        field with ``config.time_tv_weight``) over time; zeros when ``tv_fraction`` is 0.

        Parameters
        ----------
        views, rows, cols : torch.Tensor, shape (B,)
            View index, detector row and column of each pixel (on the model's device).
        n_samples : int
            Samples per ray.
        jitter : bool
            Stratified random sample positions (training) instead of segment midpoints.
        tv_fraction : float
            Fraction of the sample points at which the TV term is evaluated.
        hold_axis : bool
            Pass no gradient to the shared tilt-axis angle (it stays where it is).
        """
        origin, direction = pixel_rays(rows, cols, self.theta[views], self.poses(hold_axis=hold_axis)[views],
                                       self.det_shape)
        t_near, t_far = ray_box(origin, direction, self.box_half)
        points, step = sample_along(origin, direction, t_near, t_far, n_samples, jitter=jitter, generator=generator)
        flat = points.reshape(-1, 3)
        time = self.time[views][:, None].expand(-1, n_samples).reshape(-1) if self.config.dynamic else None
        phi = self.field_at(flat, time).reshape(-1, n_samples)
        pred = phi.sum(dim=1) * step / self.length
        tv = pred.new_zeros(2)
        if tv_fraction > 0:
            k = max(1, int(round(tv_fraction * flat.shape[0])))
            pick = torch.randint(0, flat.shape[0], (k,), device=flat.device, generator=generator)
            t_pick = None if time is None else time[pick]
            space = self._tv(flat[pick].detach(), t_pick) if self.config.tv_weight > 0 else tv[0]
            over_time = self._time_tv(flat[pick].detach(), t_pick) \
                if time is not None and self.config.time_tv_weight > 0 else tv[1]
            tv = torch.stack([space, over_time])
        return pred, tv

    @torch.no_grad()
    def volume(self, shape: tuple[int, int, int] | None = None, *, time: float | None = None,
               region: tuple[tuple[float, float], ...] | None = None, chunk: int = 262_144) -> np.ndarray:
        """The density sampled on a grid of ``shape`` ``(Z, Y, X)`` spanning the box (or a ``region`` of it).

        Values are in the units of the project's voxel projector at the
        training grid (a voxel of the training grid integrates to its value);
        another ``shape`` samples the same box more finely or coarsely. Each
        output voxel is the field at its centre.

        Parameters
        ----------
        shape : (int, int, int), optional
            Output grid (default: the training grid over ``region``'s extent, rounded).
        time : float, optional
            Seconds, for a dynamic model (default: the start of the acquisition).
        region : ((z0, z1), (y0, y1), (x0, x1)), optional
            Part of the box to sample, in voxels of the training grid from its
            corner (``0 <= lo < hi <= size``; default: the whole box).

        Returns
        -------
        numpy.ndarray, shape (Z, Y, X), float32
        """
        region = check_region(region, self.vol_shape)
        shape = tuple(int(v) for v in (shape or [max(1, round(hi - lo)) for lo, hi in region]))
        axes = [((torch.arange(m, device=self.device, dtype=torch.float64) + 0.5) / m * (hi - lo) + lo - n / 2
                 ).float() for m, (lo, hi), n in zip(shape, region, self.vol_shape)]
        t = None
        if self.config.dynamic:
            first, last = self.time_range
            value = 0.0 if last == first else (float(first if time is None else time) - first) / (last - first) * 2 - 1
            t = torch.full((chunk,), value, device=self.device)
        total = int(np.prod(shape))
        out = np.empty(total, np.float32)
        for start in range(0, total, chunk):  # points made per chunk: memory of the output only
            flat = torch.arange(start, min(start + chunk, total), device=self.device)
            iz, iy, ix = flat // (shape[1] * shape[2]), (flat // shape[2]) % shape[1], flat % shape[2]
            part = torch.stack([axes[2][ix], axes[1][iy], axes[0][iz]], dim=-1)
            value = self.field_at(part, None if t is None else t[:part.shape[0]]) * (self.scale / self.length)
            out[start:start + part.shape[0]] = value.cpu().numpy()
        return out.reshape(shape)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.field.parameters())
