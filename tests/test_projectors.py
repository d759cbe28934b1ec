"""Properties of the projectors: adjointness, linearity, gradients, geometry invariants, poses.

The operator registry below is the single list every generic property runs over;
a new projector gets the whole battery by adding one factory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import tomotime.physics.parallel2d as parallel2d
from tomotime.errors import InputError
from tomotime.physics import LinearOperator, ParallelProjector2D, VolumeProjector, project_slices, project_with_poses

ANGLES = np.array([-70.0, -33.3, 0.0, 12.5, 45.0, 90.0, 117.0])


def _small_poses(n: int, dtype, seed: int = 3) -> torch.Tensor:
    """Random poses of a few degrees and about a pixel, off the integer grid."""
    rng = np.random.default_rng(seed)
    poses = rng.uniform(-1, 1, (n, 4)) * np.array([3.0, 3.0, 1.5, 1.5])
    return torch.as_tensor(poses, dtype=dtype)


OPERATORS = {
    "2d-square": lambda dtype=torch.float32, device="cpu": ParallelProjector2D(
        ANGLES, (12, 12), device=device, dtype=dtype),
    "2d-nonsquare-ndet": lambda dtype=torch.float32, device="cpu": ParallelProjector2D(
        ANGLES, (9, 14), n_det=17, device=device, dtype=dtype),
    "3d": lambda dtype=torch.float32, device="cpu": VolumeProjector(
        ANGLES[:5], (8, 5, 10), device=device, dtype=dtype),
    "3d-poses": lambda dtype=torch.float32, device="cpu": VolumeProjector(
        ANGLES[:5], (8, 5, 10), poses=_small_poses(5, dtype), n_det=11, device=device, dtype=dtype),
}
TWO_D = ["2d-square", "2d-nonsquare-ndet"]


def _random(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm())


# --- registry-driven properties -------------------------------------------------------------


@pytest.mark.parametrize("name", OPERATORS)
def test_shapes_and_dtype(name):
    op = OPERATORS[name]()
    x = _random(op.domain_shape)
    y = op.forward(x)
    assert isinstance(op, LinearOperator)
    assert tuple(y.shape) == tuple(op.range_shape) and y.dtype == torch.float32
    assert tuple(op.adjoint(y).shape) == tuple(op.domain_shape)
    assert op(x).equal(y)


@pytest.mark.parametrize("name", OPERATORS)
@pytest.mark.parametrize("seed", [0, 1])
def test_adjoint_dot_product_float32(name, seed):
    op = OPERATORS[name]()
    x, y = _random(op.domain_shape, seed=seed), _random(op.range_shape, seed=seed + 10)
    lhs = float((op.forward(x).double() * y.double()).sum())
    rhs = float((x.double() * op.adjoint(y).double()).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(abs(lhs), abs(rhs))
    assert abs(lhs) > 1e-3  # a vacuous 0 == 0 would prove nothing


@pytest.mark.parametrize("name", OPERATORS)
def test_linearity(name):
    op = OPERATORS[name]()
    x1, x2 = _random(op.domain_shape, seed=1), _random(op.domain_shape, seed=2)
    assert _rel(op.forward(2.5 * x1 - 0.7 * x2), 2.5 * op.forward(x1) - 0.7 * op.forward(x2)) < 1e-5
    y1, y2 = _random(op.range_shape, seed=3), _random(op.range_shape, seed=4)
    assert _rel(op.adjoint(-1.5 * y1 + 3 * y2), -1.5 * op.adjoint(y1) + 3 * op.adjoint(y2)) < 1e-5


@pytest.mark.parametrize("name", OPERATORS)
def test_transpose_operator(name):
    op = OPERATORS[name]()
    y = _random(op.range_shape, seed=5)
    assert op.T.domain_shape == op.range_shape and op.T.range_shape == op.domain_shape
    assert op.T(y).equal(op.adjoint(y))
    assert op.T.T is op
    x = _random(op.domain_shape, seed=6)
    assert op.T.adjoint(x).equal(op.forward(x))


@pytest.mark.parametrize("name", OPERATORS)
def test_backward_of_forward_is_adjoint(name):
    op = OPERATORS[name]()
    x = _random(op.domain_shape, seed=7).requires_grad_()
    y = _random(op.range_shape, seed=8)
    (op.forward(x) * y).sum().backward()
    assert _rel(x.grad, op.adjoint(y)) < 1e-5


@pytest.mark.parametrize("name", OPERATORS)
def test_gradcheck_float64(name):
    op = OPERATORS[name](dtype=torch.float64)
    x = _random(op.domain_shape, dtype=torch.float64, seed=9).requires_grad_()
    y = _random(op.range_shape, dtype=torch.float64, seed=10).requires_grad_()
    # fast mode compares random projections v' J u; for a linear map any wrong backward shows up there
    for fn, arg in [(op.forward, x), (op.adjoint, y)]:
        assert torch.autograd.gradcheck(fn, (arg,), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("name", TWO_D)
def test_batch_dimensions_pass_through(name):
    op = OPERATORS[name]()
    x = _random((2, 3, *op.domain_shape), seed=11)
    y = op.forward(x)
    assert tuple(y.shape) == (2, 3, *op.range_shape)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(y[i, j], op.forward(x[i, j]))
    back = op.adjoint(y)
    assert tuple(back.shape) == (2, 3, *op.domain_shape)
    torch.testing.assert_close(back[1, 2], op.adjoint(y[1, 2]))


@pytest.mark.parametrize("name", OPERATORS)
def test_wrong_shape_raises(name):
    op = OPERATORS[name]()
    bad = tuple(s + 1 for s in op.domain_shape)
    with pytest.raises(InputError, match="expected"):
        op.forward(torch.zeros(bad))
    with pytest.raises(InputError, match="expected"):
        op.adjoint(torch.zeros(tuple(s + 1 for s in op.range_shape)))


@pytest.mark.gpu
@pytest.mark.parametrize("name", OPERATORS)
def test_cuda_matches_cpu(name):
    cpu, gpu = OPERATORS[name](), OPERATORS[name](device="cuda")
    x, y = _random(cpu.domain_shape, seed=12), _random(cpu.range_shape, seed=13)
    torch.testing.assert_close(gpu.forward(x.cuda()).cpu(), cpu.forward(x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gpu.adjoint(y.cuda()).cpu(), cpu.adjoint(y), rtol=1e-4, atol=1e-4)


# --- construction and selection ------------------------------------------------------------


@pytest.mark.parametrize("angles", [[], [0.0, np.nan], [np.inf]])
def test_bad_angles_raise(angles):
    with pytest.raises(InputError, match="angles"):
        ParallelProjector2D(angles, (8, 8))
    with pytest.raises(InputError, match="angles"):
        VolumeProjector(angles, (8, 4, 8))


def test_bad_shapes_and_poses_raise():
    with pytest.raises(InputError, match="shape"):
        ParallelProjector2D([0.0], (8, 0))
    with pytest.raises(InputError, match="shape"):
        ParallelProjector2D([0.0], (8, 8, 8))
    with pytest.raises(InputError, match="vol_shape"):
        VolumeProjector([0.0], (8, 8))
    with pytest.raises(InputError, match=r"poses: expected shape \(2, 4\)"):
        VolumeProjector([0.0, 10.0], (8, 4, 8), poses=np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"poses: expected shape \(2, 4\)"):
        VolumeProjector([0.0, 10.0], (8, 4, 8), poses=torch.zeros(3, 4))


def test_select_keeps_the_chosen_angles():
    op = OPERATORS["2d-nonsquare-ndet"]()
    x = _random(op.domain_shape, seed=14)
    sub = op.select(slice(1, 4))
    np.testing.assert_array_equal(sub.angles, ANGLES[1:4])
    assert sub.n_det == op.n_det and sub.shape == op.shape
    torch.testing.assert_close(sub.forward(x), op.forward(x)[1:4])
    torch.testing.assert_close(op.select([5, 0]).forward(x), op.forward(x)[[5, 0]])
    assert "n_angles=3" in repr(sub)


def test_float64_and_float32_agree(smooth_phantom):
    f = smooth_phantom((15, 19))
    p32 = ParallelProjector2D(ANGLES, f.shape)(torch.tensor(f, dtype=torch.float32))
    p64 = ParallelProjector2D(ANGLES, f.shape, dtype=torch.float64)(torch.tensor(f))
    assert p64.dtype == torch.float64
    assert _rel(p32, p64) < 1e-5


def test_volume_rows_are_independent_slices(smooth_phantom):
    vol = torch.tensor(smooth_phantom((11, 6, 13)), dtype=torch.float32)
    proj = VolumeProjector(ANGLES, vol.shape, n_det=15)(vol)
    slices = ParallelProjector2D(ANGLES, (11, 13), n_det=15)
    for k in range(vol.shape[1]):
        torch.testing.assert_close(proj[:, k, :], slices(vol[:, k, :]))


# --- per-slice angles ----------------------------------------------------------------------


def test_project_slices_matches_shared_angle_projector(smooth_phantom):
    b, shape = 6, (9, 13)
    slices = torch.tensor(np.stack([smooth_phantom(shape, seed=s) for s in range(b)]))
    angles = torch.tensor([-65.0, -20.0, 0.0, 33.0, 90.0, 140.0], dtype=torch.float64)
    out = project_slices(slices, angles, n_det=15)
    assert out.shape == (b, 15) and out.dtype == torch.float64
    for i in range(b):
        ref = ParallelProjector2D([float(angles[i])], shape, n_det=15, dtype=torch.float64)(slices[i])[0]
        torch.testing.assert_close(out[i], ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(out[i], project_slices(slices[i:i + 1], angles[i:i + 1], n_det=15)[0])


def test_project_slices_samples_only_b_angles(monkeypatch):
    """The ray samples are built for exactly one angle per slice: B x D x P, never B x B."""
    calls = []

    def recording(theta, shape, n_det):
        index, weight = original(theta, shape, n_det)
        calls.append((theta.numel(), tuple(index.shape)))
        return index, weight

    original = parallel2d.joseph_samples
    monkeypatch.setattr(parallel2d, "joseph_samples", recording)
    for b in (1, 4, 16):
        project_slices(_random((b, 7, 10)), np.linspace(-60, 60, b))
    assert calls == [(1, (1, 10, 10, 2)), (4, (4, 10, 10, 2)), (16, (16, 10, 10, 2))]


def test_project_slices_gradient_and_errors():
    slices = _random((3, 6, 8), dtype=torch.float64).requires_grad_()
    angles = [10.0, -40.0, 75.0]
    assert torch.autograd.gradcheck(lambda s: project_slices(s, angles), (slices,), eps=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="slices"):
        project_slices(torch.zeros(6, 8), [0.0])
    with pytest.raises(InputError, match="angles: expected 3"):
        project_slices(torch.zeros(3, 6, 8), [0.0, 1.0])


# --- geometry invariants -------------------------------------------------------------------


def test_point_on_axis_gives_straight_sinogram_line():
    f = torch.zeros(21, 21, dtype=torch.float64)
    f[10, 10] = 1.0
    sino = ParallelProjector2D(np.linspace(-89, 89, 31), f.shape, dtype=torch.float64)(f)
    assert (sino.argmax(dim=1) == 10).all()
    torch.testing.assert_close(sino, sino.flip(1))  # symmetric about the centre bin


@pytest.mark.parametrize("shape", [(21, 21), (17, 25)])
def test_off_axis_blob_follows_documented_sinusoid(shape):
    """Centroid of a blob at (z0, x0) lands at s = x0 cos(theta) - z0 sin(theta)."""
    z0, x0, sigma = 3.0, -4.0, 1.5
    zz, xx = np.meshgrid(np.arange(shape[0]) - (shape[0] - 1) / 2, np.arange(shape[1]) - (shape[1] - 1) / 2,
                         indexing="ij")
    f = np.exp(-((zz - z0) ** 2 + (xx - x0) ** 2) / (2 * sigma**2))
    theta = np.linspace(-85, 175, 27)
    n_det = 29
    sino = ParallelProjector2D(theta, shape, n_det=n_det, dtype=torch.float64)(torch.tensor(f)).numpy()
    s = np.arange(n_det) - (n_det - 1) / 2
    centroid = (sino * s).sum(1) / sino.sum(1)
    rad = np.radians(theta)
    np.testing.assert_allclose(centroid, x0 * np.cos(rad) - z0 * np.sin(rad), atol=0.02)


def test_opposite_angles_mirror(smooth_phantom):
    f = torch.tensor(smooth_phantom((21, 27)))
    theta = np.array([-70.0, -31.0, 0.0, 17.0, 45.0, 88.0])
    sino = ParallelProjector2D(np.r_[theta, theta + 180], f.shape, n_det=31, dtype=torch.float64)(f)
    torch.testing.assert_close(sino[6:], sino[:6].flip(1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", [(31, 31), (25, 35)])
def test_total_mass_is_the_same_at_every_angle(smooth_phantom, shape):
    f = smooth_phantom(shape, width=(0.08, 0.12), extent=0.2)
    sino = ParallelProjector2D(np.linspace(-90, 90, 37), shape, dtype=torch.float64)(torch.tensor(f))
    mass = sino.sum(dim=1).numpy()
    assert np.ptp(mass) < 0.01 * mass.mean()
    assert abs(mass.mean() - f.sum()) < 0.01 * f.sum()


# --- poses ---------------------------------------------------------------------------------


@pytest.fixture
def blob_volume(smooth_phantom) -> torch.Tensor:
    return torch.tensor(smooth_phantom((20, 16, 20), width=(0.2, 0.3)), dtype=torch.float32)


POSE_ANGLES = np.array([-60.0, -20.0, 0.0, 35.0, 70.0])


def _with_poses(volume, **columns) -> torch.Tensor:
    poses = np.zeros((POSE_ANGLES.size, 4))
    for i, key in enumerate(["axis_rotation", "axis_tilt", "shift_y", "shift_x"]):
        poses[:, i] = columns.get(key, 0.0)
    return VolumeProjector(POSE_ANGLES, tuple(volume.shape), poses=poses)(volume)


def test_zero_poses_reproduce_pose_free_projector(blob_volume):
    plain = VolumeProjector(POSE_ANGLES, tuple(blob_volume.shape))(blob_volume)
    assert _rel(_with_poses(blob_volume), plain) < 0.01


def test_pose_shift_moves_image(blob_volume):
    base = _with_poses(blob_volume)
    moved = _with_poses(blob_volume, shift_y=2.0, shift_x=3.0)
    # positive shifts move the image towards larger row / column indices
    torch.testing.assert_close(moved[:, 2:, 3:], base[:, :-2, :-3], rtol=1e-5, atol=1e-5)
    assert _rel(moved[:, :-2, :-3], base[:, 2:, 3:]) > 0.3


@pytest.mark.parametrize("psi", [10.0, 20.0])
def test_axis_rotation_rotates_image_in_plane(blob_volume, psi):
    """Sign observed: ``axis_rotation = psi`` equals ``scipy.ndimage.rotate(image, -psi)``.

    That is, +X turns towards +Y (rows): clockwise on screen with row 0 at the top.
    """
    base = _with_poses(blob_volume).numpy()
    turned = _with_poses(blob_volume, axis_rotation=psi).numpy()
    inner = np.s_[:, 3:-3, 3:-3]
    err = {}
    for sign in (-1, 1):
        ref = np.stack([ndimage.rotate(im, sign * psi, reshape=False, order=1) for im in base])
        err[sign] = _rel(turned[inner], ref[inner])
    assert err[-1] < 0.03 and err[1] > 0.08


def _inclined_axis_projection(volume: np.ndarray, theta: float, phi: float) -> np.ndarray:
    """Independent reference: rotate by ``theta`` about the Y axis inclined by ``phi`` towards Z, sum along Z.

    Lab ``(s, y, t)`` sees the object at ``R_x(phi) R_y(theta) R_x(-phi) (s, y, t)`` in ``(x, y, z)``,
    with ``R_y``: ``x = s cos + t sin, z = -s sin + t cos`` and ``R_x``: ``(y, z) -> (y cos - z sin, y sin + z cos)``.
    """
    t, p = np.radians(theta), np.radians(phi)
    r_y = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    r_x = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    flip = np.eye(3)[::-1]  # (x, y, z) <-> array axes (z, y, x)
    matrix = flip @ r_x @ r_y @ r_x.T @ flip
    centre = (np.array(volume.shape) - 1) / 2
    lab = ndimage.affine_transform(volume, matrix, offset=centre - matrix @ centre, order=1)
    return lab.sum(axis=0)


def test_axis_tilt_inclines_the_tilt_axis_towards_the_beam(blob_volume):
    """``axis_tilt`` is the inclination of the rotation axis, not a fixed re-orientation of the object."""
    phi = 8.0
    tilted = _with_poses(blob_volume, axis_tilt=phi)
    err = {}
    for sign in (-1, 1):
        ref = np.stack([_inclined_axis_projection(blob_volume.numpy(), a, sign * phi) for a in POSE_ANGLES])
        err[sign] = _rel(tilted, ref)
    assert err[1] < 0.02 and err[-1] > 0.06
    at_zero = int(np.flatnonzero(POSE_ANGLES == 0)[0])  # an inclined axis does not matter at zero tilt
    assert _rel(tilted[at_zero], _with_poses(blob_volume)[at_zero]) < 1e-5


@pytest.mark.parametrize("theta, phi", [(0.0, 0.0), (60.0, 20.0), (-60.0, -20.0), (60.0, -20.0)])
def test_rays_span_the_volume_when_the_axis_is_inclined(theta, phi):
    """A blob near a corner of a volume long in Y keeps its mass (before: 62 % or 69 % lost)."""
    zz, yy, xx = np.mgrid[:16, :96, :16].astype(np.float64)
    blob = np.exp(-((zz - 3) ** 2 + (yy - 5) ** 2 + (xx - 3) ** 2) / (2 * 1.5**2))
    volume = torch.tensor(blob, dtype=torch.float32)
    image = project_with_poses(volume, torch.tensor([theta]), torch.tensor([[0.0, phi, 0.0, 0.0]]), det_shape=(96, 48))
    assert float(image.sum() / volume.sum()) == pytest.approx(1.0, abs=0.005)


def test_gradients_reach_poses_and_volume(blob_volume):
    target = _with_poses(blob_volume, shift_x=1.0)
    poses = torch.zeros(POSE_ANGLES.size, 4, requires_grad=True)
    volume = blob_volume.clone().requires_grad_()
    op = VolumeProjector(POSE_ANGLES, tuple(volume.shape), poses=poses)
    assert op.poses is poses
    ((op(volume) - target) ** 2).sum().backward()
    assert torch.isfinite(poses.grad).all() and (poses.grad.abs().sum(dim=0) > 0).all()
    # moving the shift towards the target's +1 px lowers the loss
    assert (poses.grad[:, 3] < 0).all()
    assert volume.grad is not None and volume.grad.abs().sum() > 0


def test_gradcheck_pose_shifts_float64(smooth_phantom):
    volume = torch.tensor(smooth_phantom((8, 6, 8), width=(0.3, 0.4)))
    angles = torch.tensor([-40.0, 10.0, 50.0], dtype=torch.float64)
    # off the integer grid, where trilinear interpolation is differentiable
    fixed = torch.tensor([[3.0, -2.0], [-4.0, 1.5], [2.5, 3.0]], dtype=torch.float64)
    shifts = torch.tensor([[0.3, -0.4], [-0.2, 0.25], [0.45, 0.1]], dtype=torch.float64, requires_grad=True)

    def project(s):
        return project_with_poses(volume, angles, torch.cat([fixed, s], dim=1))

    assert torch.autograd.gradcheck(project, (shifts,), eps=1e-6, atol=1e-5, rtol=1e-3)
