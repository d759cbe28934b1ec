"""INR tomography: ray geometry, forward model against the voxel projector, poses, holdout, resume, outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.physics import VolumeProjector, project_with_poses
from tomotime.recon.inr import (
    InrConfig,
    InrModel,
    PoseDriftWarning,
    check_pose_drift,
    gauge_view,
    learned_poses,
    load_model,
    match_gauge,
    ray_box,
    sample_along,
    sample_count,
    save_model,
    train_inr,
)
from tomotime.recon.inr.method import InrMethod
from tomotime.recon.inr.outputs import imod_transforms
from tomotime.recon.inr.problem import stratified_holdout
from tomotime.sim import simulate_acquisition
from tomotime.sim.acquisition import misalign_image


class Blobs(nn.Module):
    """A fixed smooth field: a sum of Gaussians given in voxel units, evaluated at normalised coordinates."""

    def __init__(self, centres, sigmas, weights, length):
        super().__init__()
        self.centres, self.sigmas, self.weights, self.length = (torch.tensor(centres, dtype=torch.float32),
                                                                sigmas, weights, length)

    def forward(self, u):
        p = u[:, :3] * self.length
        out = torch.zeros(u.shape[0])
        for c, s, w in zip(self.centres, self.sigmas, self.weights):
            out += w * torch.exp(-((p - c) ** 2).sum(1) / (2 * s * s))
        return out

    def voxels(self, shape):
        nz, ny, nx = shape
        z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) - (n - 1) / 2 for n in shape], indexing="ij")
        return self(torch.stack([x, y, z], -1).reshape(-1, 3) / self.length).reshape(shape)


def blob_model(angles, shape, *, align=False, **options):
    cfg = InrConfig(device="cpu", align=align, **options)
    model = InrModel(cfg, np.asarray(angles, float), np.arange(len(angles), dtype=float), shape)
    model.field = Blobs([(2.0, -1.5, 1.0), (-3.0, 2.0, -2.0)], (3.0, 2.5), (1.0, 0.7), model.length)
    return model


def all_pixels(model, n_samples, poses=None):
    n = model.theta.numel()
    ny, nx = model.det_shape
    f = torch.arange(n * ny * nx)
    with torch.no_grad():
        pred, _ = model(f // (ny * nx), (f // nx) % ny, f % nx, n_samples=n_samples)
    return pred.reshape(n, ny, nx) * model.length  # voxel units: sum of density x step


# --- rays -------------------------------------------------------------------------------------------

def test_ray_through_cube_corners_has_the_analytic_chord():
    d = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0]]) / math.sqrt(3)
    origin = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 1.0, -1.0]])
    t0, t1 = ray_box(origin, d, torch.tensor([1.0, 1.0, 1.0]))
    # through the centre, corner to corner: the full diagonal 2 sqrt(3); from one corner it enters at t = 0
    assert torch.allclose(t0, torch.tensor([-math.sqrt(3), 0.0]), atol=1e-6)
    assert torch.allclose(t1, torch.tensor([math.sqrt(3), 2 * math.sqrt(3)]), atol=1e-6)


def test_rays_parallel_to_faces_and_missing_rays():
    half = torch.tensor([2.0, 1.0, 3.0])
    origin = torch.tensor([[0.5, 0.5, 0.0], [0.5, 1.5, 0.0], [5.0, 5.0, 5.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    t0, t1 = ray_box(origin, d, half)
    assert (t1 - t0).tolist() == pytest.approx([6.0, 0.0, 0.0])


def test_stratified_samples_integrate_a_constant_exactly():
    origin, d = torch.zeros(3, 3), torch.eye(3)
    t0, t1 = torch.tensor([-1.0, -2.0, 0.0]), torch.tensor([1.0, 3.0, 0.0])
    points, step = sample_along(origin, d, t0, t1, 7, jitter=True)
    assert points.shape == (3, 7, 3) and (step * 7).tolist() == pytest.approx([2.0, 5.0, 0.0])
    along = (points * d[:, None, :]).sum(-1)
    assert bool(((along >= t0[:, None] - 1e-6) & (along <= t1[:, None] + 1e-6)).all())
    assert [sample_count(s, start=8, end=32, ramp_steps=10) for s in (0, 5, 10, 99)] == [8, 20, 32, 32]


# --- forward model against the project's voxel projector ---------------------------------------------

@pytest.mark.parametrize("shape", [(20, 18, 22), (17, 16, 17)])
def test_forward_model_matches_the_voxel_projector_on_a_smooth_field(shape):
    angles = np.array([-60.0, -25.0, 0.0, 35.0, 70.0])
    model = blob_model(angles, shape)
    ours = all_pixels(model, 64)
    theirs = VolumeProjector(angles, shape).forward(model.field.voxels(shape))
    err = (ours - theirs).abs().max() / theirs.abs().max()
    assert err < 0.02, float(err)  # stated tolerance: 2 % of the peak (sampling vs trilinear voxels)


def test_forward_model_with_poses_matches_the_posed_voxel_projector():
    angles = np.array([-50.0, 0.0, 40.0])
    shape = (20, 20, 20)
    model = blob_model(angles, shape)
    poses = torch.tensor([[3.0, 0.0, 1.5, -2.0], [0.0, 0.0, 0.0, 0.0], [-5.0, 0.0, -1.0, 2.5]])
    model.pose_init.copy_(torch.stack([torch.zeros(3), poses[:, 0], poses[:, 2], poses[:, 3]], 1))
    ours = all_pixels(model, 64)
    theirs = project_with_poses(model.field.voxels(shape), torch.tensor(angles), poses)
    assert (ours - theirs).abs().max() / theirs.abs().max() < 0.02


def test_gauge_is_the_view_nearest_zero_and_stays_fixed():
    assert gauge_view(np.array([-40.0, -3.0, 2.0, 50.0])) == 2
    model = blob_model([-40.0, -3.0, 2.0, 50.0], (8, 8, 8), align=True, pin_object=False)
    with torch.no_grad():
        model.pose_delta.fill_(1.0)
    poses = learned_poses(model)
    assert (poses[2] == 0).all() and (poses[[0, 1, 3]] != 0).all()
    assert poses[0] == pytest.approx(np.ones(4))  # the parameters are degrees and pixels


# --- training ----------------------------------------------------------------------------------------

def ball_series(shift=None, n_views=15, size=16, **kw):
    z, y, x = np.meshgrid(*[np.arange(size) - (size - 1) / 2] * 3, indexing="ij")
    vol = (np.exp(-((z - 1) ** 2 + (y + 2) ** 2 + (x - 2) ** 2) / 8) + 0.6 * np.exp(
        -((z + 2) ** 2 + (y - 3) ** 2 + (x + 3) ** 2) / 5)).astype(np.float32)
    angles = np.linspace(-60, 60, n_views)
    series = simulate_acquisition(VolumeSeries(np.repeat(vol[None], n_views, 0)), angles=angles)
    images = series.images.copy()
    if shift is not None:
        view, dy, dx = shift
        images[view] = misalign_image(images[view], axis_rotation=0.0, shift_y=dy, shift_x=dx)
    return TiltSeries(images, angles, **kw), vol


TINY = dict(device="cpu", batch_size=256, lr=2e-2, grid_levels=2, grid_width=16, samples=24, samples_start=8,
            holdout_fraction=0.05, eval_every=10, patience=None, tv_weight=0.0)


def test_a_known_shift_is_recovered():
    series, _ = ball_series(shift=(3, 0.5, 2.0))
    cfg = InrConfig(**{**TINY, "batch_size": 128, "samples": 16, "steps": 150, "align": True, "align_angles": False,
                       "shared_axis": False})
    truth = np.zeros((15, 4))
    truth[3, 2:] = (0.5, 2.0)
    poses = match_gauge(learned_poses(train_inr(series, cfg, progress=False).model), truth, series.angles)
    assert np.abs(poses - truth).max() < 0.3, np.round(poses, 2)
    unaligned = match_gauge(np.zeros((15, 4)), truth, series.angles)
    assert np.abs(unaligned - truth).max() > 1.5  # the check can fail


def test_holdout_stopping_fires_and_keeps_the_best_state():
    series, _ = ball_series()
    cfg = InrConfig(**{**TINY, "patience": 2, "min_fraction": 0.0, "eval_every": 5, "holdout_smoothing": 1.0,
                       "stop_margin": 0.0, "steps": 400, "lr": 0.1})
    result = train_inr(series, cfg, progress=False)
    assert result.stopped_early and result.steps < 400 and result.stop_reason == "holdout"
    best = min(r["holdout_loss"] for r in result.history)
    kept = next(r for r in result.history if r["step"] == result.best_step)  # the latest state at the best
    assert kept["holdout_loss"] == best == result.best_holdout_loss


def test_resume_gives_the_same_model(tmp_path):
    series, _ = ball_series()
    cfg = InrConfig(**{**TINY, "steps": 30, "checkpoint_every": 5, "align": True})
    straight = train_inr(series, cfg, run_dir=tmp_path / "a", progress=False)

    def stop(step, info):
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_inr(series, cfg, run_dir=tmp_path / "b", progress=False, callback=stop)
    resumed = train_inr(series, cfg, run_dir=tmp_path / "b", resume=True, progress=False)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_poses_train_in_their_own_parameter_group_at_pose_lr():
    series, _ = ball_series()
    cfg = InrConfig(**{**TINY, "steps": 1, "align": True, "pin_object": False, "holdout_fraction": 0.0,
                       "lr_schedule": "constant", "lr": 1e-3, "pose_lr": 0.05, "axis_start": "zero"})
    model = train_inr(series, cfg, progress=False).model
    moved = model.pose_delta.detach().abs()
    gauge = gauge_view(series.angles)
    # Adam's first step is lr * sign(gradient): every learned pose value moved by pose_lr, the gauge not at all
    assert moved[gauge].max() == 0
    assert torch.allclose(moved[np.arange(15) != gauge], torch.full_like(moved[1:], 0.05), rtol=0.01)
    assert float(model.axis_delta.detach().abs()) == pytest.approx(0.05, rel=0.01)
    fresh = InrMethod(series, cfg, torch.device("cpu")).build_model()
    field_step = max(float((a - b).detach().abs().max()) for a, b in zip(model.field.parameters(), fresh.field.parameters()))
    assert 0.5e-3 < field_step <= 1.001e-3  # the field at lr


def test_a_version_1_model_file_is_read_with_its_poses_converted(tmp_path):
    from tomotime.io.tagged import save_tagged
    from tomotime.recon.inr.store import MODEL_FORMAT

    cfg = InrConfig(device="cpu", align=True, grid_levels=1, grid_width=4)
    model = InrModel(cfg, np.array([-40.0, 0.0, 50.0]), np.arange(3.0), (8, 8, 8))
    with torch.no_grad():
        model.pose_delta.copy_(torch.tensor([[1.0, -2.0, 0.5, 1.5], [0, 0, 0, 0], [0.3, 0.2, -1.0, 2.0]]))
        model.axis_delta.fill_(4.0)
    save_model(tmp_path / "v2.pt", model)
    payload = {k: v for k, v in torch.load(tmp_path / "v2.pt", weights_only=True).items()
               if k not in ("format", "format_version", "tomotime_version")}
    scale = model.config.pose_lr / model.config.lr
    old = {{"pose_delta": "pose_raw", "axis_delta": "axis_raw"}.get(k, k): (v / scale if "delta" in k else v)
           for k, v in payload["state"].items()}
    save_tagged(tmp_path / "v1.pt", MODEL_FORMAT, 1, {**payload, "state": old})
    assert learned_poses(load_model(tmp_path / "v1.pt")) == pytest.approx(learned_poses(model), abs=1e-5)
    assert learned_poses(load_model(tmp_path / "v2.pt")) == pytest.approx(learned_poses(model), abs=1e-6)


def test_a_checkpoint_with_other_parameters_is_refused_on_resume(tmp_path):
    from tomotime.training.checkpoint import read_checkpoint, write_checkpoint

    series, _ = ball_series()
    cfg = InrConfig(**{**TINY, "steps": 4, "checkpoint_every": 2, "align": True})
    train_inr(series, cfg, run_dir=tmp_path, progress=False)
    saved = read_checkpoint(tmp_path / "checkpoint.pt", "inr")
    state = saved.pop("state")
    state["model"]["pose_raw"] = state["model"].pop("pose_delta")  # as the pose parameters were once named
    write_checkpoint(tmp_path / "checkpoint.pt", "inr", {**saved, "state": state})
    with pytest.raises(InputError, match="cannot resume: its model's parameters differ.*pose_delta"):
        train_inr(series, cfg.replace(steps=8), run_dir=tmp_path, resume=True, progress=False)


def test_dynamic_field_follows_a_change_over_time():
    n = 24
    z, y, x = np.meshgrid(*[np.arange(16) - 7.5] * 3, indexing="ij")
    vols = np.stack([np.exp(-((z) ** 2 + y ** 2 + (x - 4 + 8 * t / (n - 1)) ** 2) / 6) for t in range(n)])
    series = simulate_acquisition(VolumeSeries(vols.astype(np.float32)), angles=np.linspace(-70, 70, n)[
        np.argsort(np.random.default_rng(0).random(n))])
    result = train_inr(series, InrConfig(**{**TINY, "dynamic": True, "time_knots": 3, "steps": 300}),
                       progress=False)
    first, last = result.model.volume(time=0.0), result.model.volume(time=float(n - 1))
    centre = lambda v: float((v.sum((0, 1)) * np.arange(16)).sum() / v.sum())  # noqa: E731
    # truth: the blob's centre moves from x index 11.5 to 3.5
    assert centre(first) == pytest.approx(11.5, abs=1.0) and centre(last) == pytest.approx(3.5, abs=1.0)


def test_a_known_shift_is_recovered_on_a_dynamic_object():
    n = 24
    z, y, x = np.meshgrid(*[np.arange(16) - 7.5] * 3, indexing="ij")
    fading = np.exp(-(z ** 2 + (y - 2) ** 2 + (x - 3) ** 2) / 6)  # falls to 30 % over the acquisition
    vols = np.stack([(1 - 0.7 * t / (n - 1)) * fading + 0.6 * np.exp(-((z + 2) ** 2 + (y + 3) ** 2 + (x + 3) ** 2) / 4)
                     for t in range(n)])
    angles = np.linspace(-70, 70, n)[np.argsort(np.random.default_rng(0).random(n))]  # GRS-like order
    series = simulate_acquisition(VolumeSeries(vols.astype(np.float32)), angles=angles)
    images, view = series.images.copy(), int(np.argmax(np.abs(angles) > 30))
    images[view] = misalign_image(images[view], axis_rotation=0.0, shift_y=1.0, shift_x=-2.0)
    series = TiltSeries(images, angles, series.times)
    cfg = InrConfig(**{**TINY, "dynamic": True, "time_knots": 3, "steps": 300, "align": True,
                       "align_angles": False, "shared_axis": False, "time_tv_weight": 0.1})
    model = train_inr(series, cfg, progress=False).model
    truth = np.zeros((n, 4))
    truth[view, 2:] = (1.0, -2.0)
    poses = match_gauge(learned_poses(model), truth, angles)
    assert np.abs(poses[:, 2:] - truth[:, 2:]).max() < 0.25, np.round(poses[view], 2)  # 0.14 px measured
    blob = (slice(7, 9), slice(9, 11), slice(10, 12))
    ratio = model.volume(time=float(series.times[-1]))[blob].mean() / model.volume(time=0.0)[blob].mean()
    assert ratio == pytest.approx(0.3, abs=0.1)  # the change over time is kept (0.34 measured)


# --- data checks -------------------------------------------------------------------------------------

def test_bad_input_is_refused_before_training():
    series, _ = ball_series()
    with pytest.raises(InputError, match="at least 3"):
        train_inr(series.select([0, 1]), InrConfig(**TINY, steps=1))
    same = TiltSeries(series.images, np.full(15, 10.0))
    with pytest.raises(InputError, match="all 15 views are at 10"):
        train_inr(same, InrConfig(**TINY, steps=1))
    with pytest.raises(InputError, match=r"needs about .* GB"):
        train_inr(series, InrConfig(**TINY, steps=1, memory_limit_gb=1e-4))
    with pytest.raises(InputError, match="samples_start=30 exceeds samples=24"):
        InrConfig(**{**TINY, "samples_start": 30})


def test_odd_non_square_stacks_train():
    series, _ = ball_series()
    odd = TiltSeries(series.images[:, :13, :15], series.angles)
    result = train_inr(odd, InrConfig(**TINY, steps=3, thickness=11), progress=False)
    assert result.model.volume().shape == (11, 13, 15)
    assert result.model.volume((5, 7, 9)).shape == (5, 7, 9)


def test_shifts_out_of_the_field_of_view_warn():
    poses = np.zeros((4, 4))
    poses[2, 3] = 9.0
    with pytest.warns(PoseDriftWarning, match="view 2"):
        assert check_pose_drift(poses, (16, 32)) == [2]


def test_holdout_is_stratified_by_intensity():
    images = np.zeros((4, 10, 10), np.float32)
    images[:, :2] = 1.0  # 20 % foreground
    held = stratified_holdout(images, 0.25, seed=0)
    fg = images.reshape(-1)[held] > 0.5
    assert held.size == 100 and fg.sum() == 20


def test_imod_transform_undoes_the_simulated_misalignment():
    ideal = np.zeros((31, 41))
    ideal[10, 25] = 1.0
    psi, dy, dx = 7.0, 2.0, -3.0
    measured = misalign_image(ideal, axis_rotation=psi, shift_y=dy, shift_x=dx)
    ys, xs = np.indices(measured.shape)
    p = np.array([(measured * xs).sum(), (measured * ys).sum()]) / measured.sum() - (np.array([41, 31]) - 1) / 2
    a11, a12, a21, a22, tx, ty = imod_transforms(np.array([[0.0, psi, dy, dx]]))[0]
    aligned = np.array([a11 * p[0] + a12 * p[1] + tx, a21 * p[0] + a22 * p[1] + ty])
    assert aligned == pytest.approx([25 - 20, 10 - 15], abs=0.05)


@pytest.mark.gpu
def test_trains_on_the_gpu():
    series, _ = ball_series()
    result = train_inr(series, InrConfig(**{**TINY, "device": "cuda", "steps": 20, "align": True}), progress=False)
    assert result.model.device.type == "cuda" and np.isfinite(result.model.volume()).all()


def test_a_shared_tilt_axis_turn_leaves_the_zero_degree_view_alone():
    model = blob_model([0.0, 45.0], (16, 16, 16), align=True)
    before = all_pixels(model, 32)
    with torch.no_grad():
        model.axis_delta.fill_(6.0)  # alpha = 6 deg
    after = all_pixels(model, 32)
    assert learned_poses(model)[:, :2] == pytest.approx(np.full((2, 2), 6.0))
    assert torch.allclose(after[0], before[0], atol=1e-4 * float(before.max()))
    assert (after[1] - before[1]).abs().max() > 0.02 * before.max()  # 4 % measured


def test_shifts_and_one_shared_axis_without_per_view_angles():
    model = blob_model([-30.0, 0.0, 45.0], (8, 8, 8), align=True, align_angles=False, pin_object=False)
    with torch.no_grad():
        model.pose_delta.fill_(1.0)
        model.axis_delta.fill_(3.0)
    poses = learned_poses(model)
    assert poses[:, :2] == pytest.approx(np.full((3, 2), 3.0))  # every view turned by the one axis angle
    assert poses[[0, 2], 2:] == pytest.approx(np.ones((2, 2))) and (poses[1, 2:] == 0).all()
    assert blob_model([0.0, 40.0, 50.0], (8, 8, 8), align=True, align_angles=False, shared_axis=False).axis_delta is None


def test_learned_poses_hold_no_whole_object_motion():
    angles = np.array([-50.0, -20.0, 0.0, 30.0, 60.0, 75.0])
    model = blob_model(angles, (8, 8, 8), align=True)
    with torch.no_grad():
        model.pose_delta.copy_(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)))
    p = learned_poses(model)
    t = np.deg2rad(angles)
    assert (p[2] == 0).all()  # the gauge view
    assert np.abs(p[:, :3].sum(0)).max() < 1e-3  # no mean turn or shift along Y
    assert max(abs(float(np.cos(t) @ p[:, 3])), abs(float(np.sin(t) @ p[:, 3]))) < 1e-3  # no X or Z translation
    assert np.abs(p[:, 3]).max() > 0.1


def test_output_grid_from_a_size_a_voxel_size_or_a_region():
    from tomotime.recon.inr.export import output_grid

    box = (20, 30, 40)
    assert output_grid(box, 2.0)[:2] == ((20, 30, 40), (2.0, 2.0, 2.0))  # the training grid
    assert output_grid(box, 2.0, shape=80)[0] == (40, 60, 80)  # longest side, cubic voxels
    assert output_grid(box, 2.0, voxel_size=4.0)[:2] == ((10, 15, 20), (4.0, 4.0, 4.0))
    grid, voxel, region = output_grid(box, 2.0, shape=(5, 6, 7), region=((0, 10), (5, 25), (0, 40)))
    assert grid == (5, 6, 7) and voxel == pytest.approx((4.0, 20 / 3, 80 / 7)) and region[1] == (5.0, 25.0)
    for bad in [dict(shape=8, voxel_size=1.0), dict(voxel_size=-1.0), dict(shape=(2, 3)),
                dict(region=((0, 10), (0, 31), (0, 40))), dict(region=((5, 5), (0, 30), (0, 40)))]:
        with pytest.raises(InputError):
            output_grid(box, 2.0, **bad)


def test_a_region_samples_the_same_field_points_as_the_whole_box():
    model = blob_model([-40.0, 0.0, 50.0], (12, 10, 14))
    whole = model.volume()
    assert np.allclose(model.volume(region=((2, 10), (0, 10), (3, 14))), whole[2:10, :, 3:], atol=1e-7)
    fine = model.volume((24, 20, 28))  # twice as fine: the centres of the half voxels
    assert fine.shape == (24, 20, 28) and abs(float(fine.mean()) - float(whole.mean())) < 0.01 * whole.max()
