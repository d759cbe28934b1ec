"""Rapid STEM tomography: line measures, distortion, tilt tracking, row-angle projector, U-Net filter, analysis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomotime.errors import InputError
from tomotime.physics import ParallelProjector2D, VolumeProjector
from tomotime.rapid.dislocations import centre_differences, fit_twist, line_centres
from tomotime.rapid.distortion import correct_distortion, estimate_distortion, load_calibration, save_calibration
from tomotime.rapid.lines import line_measures, place_profiles, profile_fwhm
from tomotime.physics.row_angles import RowAngleProjector, row_angles_from_frames
from tomotime.rapid.simulate import (ScanDistortion, Timing, calibration_pair, frame_schedule, goniometer_angle)
from tomotime.rapid.tilt_tracking import check_continuous_angles, fit_angles, track_angles
from tomotime.rapid.unet_filter import UnetFilterConfig, apply_filter, check_pairs, load_filter, train_filter


def _gaussian_line(shape, sigma, angle_deg, depth=0.5):
    """A dark straight line of Gaussian cross-section ``sigma`` through the centre, at ``angle_deg`` from x."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    yy -= (shape[0] - 1) / 2
    xx -= (shape[1] - 1) / 2
    a = np.radians(angle_deg)
    dist = -np.sin(a) * xx + np.cos(a) * yy
    return 1.0 - depth * np.exp(-dist**2 / (2 * sigma**2))


def test_profile_fwhm_of_an_analytic_gaussian():
    t = np.arange(-12, 12.001, 0.25)  # half length >= 4.8 sigma: the ends are baseline
    for sigma in (1.0, 1.7, 2.5):
        width, depth = profile_fwhm(1 - 0.4 * np.exp(-t**2 / (2 * sigma**2)), spacing=0.25)
        assert width == pytest.approx(2 * np.sqrt(2 * np.log(2)) * sigma, rel=0.02)
        assert depth == pytest.approx(0.4, rel=0.02)
    assert np.isnan(profile_fwhm(np.ones(20))[0])


@pytest.mark.parametrize("angle", [20.0, 75.0])
def test_relative_width_and_intensity_of_gaussian_lines(angle):
    ref = _gaussian_line((64, 64), 1.5, angle, depth=0.5)
    wide = _gaussian_line((64, 64), 2.1, angle, depth=0.3)
    profiles = place_profiles(ref)
    assert len(profiles) >= 5
    normal = np.array([np.cos(np.radians(angle)), -np.sin(np.radians(angle))])  # (y, x) across the line
    assert np.abs(profiles.normals @ normal).min() > 0.95
    m = line_measures(wide, ref, profiles)
    assert m["relative_width"] == pytest.approx(2.1 / 1.5, rel=0.05)
    assert m["relative_intensity"] == pytest.approx(0.6, rel=0.05)
    assert m["reference_fwhm_px"] == pytest.approx(2.3548 * 1.5, rel=0.05)


def test_distortion_estimate_recovers_a_known_warp(tmp_path):
    warp = ScanDistortion(a=2.0, tau=0.15, b=1.5)
    fast, slow = calibration_pair((96, 96), distortion=warp, noise=None, seed=3)
    field = estimate_distortion(fast, slow)
    true = warp.correction_field(fast.shape)
    ok = np.isfinite(true)
    assert np.sqrt(np.mean((field - true)[ok] ** 2)) < 0.5
    assert abs(true[ok]).max() > 2  # the warp is worth correcting
    corrected = correct_distortion(fast, field)
    inner = (slice(None), slice(8, 80))
    assert np.abs(corrected - slow)[inner].mean() < 0.5 * np.abs(fast - slow)[inner].mean()
    path = save_calibration(tmp_path / "calib.npz", field)
    assert np.array_equal(load_calibration(path, frame_shape=(96, 96)), field)
    with pytest.raises(InputError, match="96 x 96 px frames, but the series has 64 x 96"):
        load_calibration(path, frame_shape=(64, 96))
    with pytest.raises(InputError, match="calibration is for 96 x 96"):
        correct_distortion(np.zeros((2, 64, 96)), field)


def test_angle_fit_on_a_known_non_uniform_ramp():
    timing = Timing()
    starts, _ = frame_schedule(timing, 48)
    truth = goniometer_angle(starts + timing.scan_time / 2, timing)
    nominal = np.linspace(timing.start, timing.end, truth.size)
    assert np.sqrt(np.mean((nominal - truth) ** 2)) > 1.0  # the ramp is far from uniform
    rng = np.random.default_rng(0)
    n_feat = 10
    z = np.where(np.arange(n_feat) % 2, -8.0, 8.0)
    x = rng.uniform(-40, 40, n_feat)
    y = rng.uniform(5, 40, n_feat)
    th = np.radians(truth)
    cols = x[:, None] * np.cos(th) - z[:, None] * np.sin(th) + 47.5 + rng.normal(0, 0.1, (n_feat, truth.size))
    cols += rng.normal(0, 2, truth.size)  # per-frame drift, absorbed by the shifts
    tracks = np.stack([np.broadcast_to(y[:, None], cols.shape), cols], axis=-1).copy()
    tracks[0, :20] = np.nan  # partial tracks are fine
    result = fit_angles(tracks, nominal, 96, 48)
    assert np.sqrt(np.mean((result.angles - truth) ** 2)) < 0.2


def test_tracking_falls_back_to_nominal_angles_with_a_count():
    rng = np.random.default_rng(0)
    frames = 1 + 0.01 * rng.normal(size=(7, 32, 32))
    nominal = np.linspace(-60, 60, 7)
    with pytest.warns(UserWarning, match=r"0 feature\(s\) tracked .* keeping the nominal angles"):
        result = track_angles(frames, nominal)
    assert result.fallback and np.array_equal(result.angles, nominal)
    with pytest.raises(InputError, match="not monotonic at frame 3"):
        check_continuous_angles([-10, -5, 0, -2, 5])


def test_goniometer_profile_and_row_lag():
    timing = Timing()
    t = np.linspace(0, timing.duration, 200)
    a = goniometer_angle(t, timing)
    assert a[0] == pytest.approx(-70) and a[-1] == pytest.approx(70)
    assert (np.diff(a) > 0).all()
    starts, rows = frame_schedule(timing, 16)
    lag = np.diff(goniometer_angle(rows[[len(starts) // 2]], timing)[0][[0, -1]])[0]
    assert lag == pytest.approx(timing.lag_per_frame * 15 / 16, rel=0.15)
    period = np.diff(starts).mean()  # the schedule stretches the nominal 70 ms period slightly
    assert timing.scan_fraction == pytest.approx(timing.scan_time / period, rel=0.05)


def test_row_angle_projector_matches_brute_force_and_is_its_own_transpose():
    rng = np.random.default_rng(1)
    vol_shape, n = (6, 5, 8), 3
    angles = rng.uniform(-70, 70, (n, vol_shape[1]))
    vol = torch.from_numpy(rng.random(vol_shape).astype(np.float32))
    op = RowAngleProjector(angles, vol_shape)
    out = op.forward(vol)
    brute = torch.stack([torch.stack([ParallelProjector2D([angles[i, k]], (6, 8)).forward(vol[:, k, :])[0]
                                      for k in range(vol_shape[1])]) for i in range(n)])
    assert torch.allclose(out, brute, atol=1e-5)
    y = torch.from_numpy(rng.random(op.range_shape).astype(np.float32))
    assert float((out * y).sum()) == pytest.approx(float((vol * op.adjoint(y)).sum()), rel=1e-5)
    uncached = RowAngleProjector(angles, vol_shape, cache_bytes=0)  # ray weights recomputed on every pass
    assert torch.equal(uncached.forward(vol), out) and torch.equal(uncached.adjoint(y), op.adjoint(y))
    uniform = RowAngleProjector(np.repeat(angles[:, :1], vol_shape[1], axis=1), vol_shape)
    assert torch.allclose(uniform.forward(vol), VolumeProjector(angles[:, 0], vol_shape).forward(vol), atol=1e-5)
    rows = row_angles_from_frames([0.0, 2.0, 4.0], 4, 0.5)
    assert np.allclose(rows[1], 2.0 + 2.0 * 0.5 * np.array([-0.375, -0.125, 0.125, 0.375]))
    with pytest.raises(InputError, match="one angle per view and row"):
        RowAngleProjector(angles[:, :2], vol_shape)


def test_centre_differences_measure_a_known_shift():
    vol = np.zeros((12, 10, 20), np.float32)
    vol[5, :, 4:16] = 1.0  # a line along x
    vol[4:8, :, 10] = 0.0
    vol[7, 2:8, 14] = 1.0
    shifted = np.roll(vol, 1, axis=0)
    assert line_centres(vol, 1).shape[1] == 3
    d = centre_differences(shifted, vol)
    assert d["dGz"] == pytest.approx(1.0, abs=1e-6)
    assert d["dGx"] == pytest.approx(0.0, abs=1e-6) and d["dGy"] == pytest.approx(0.0, abs=1e-6)
    assert d["twist_deg"] == pytest.approx(0.0, abs=1e-6)  # a shift is no curl
    assert d["dGz_untwisted"] == pytest.approx(1.0, abs=1e-6)


def _blobs(points, shape, sigma=1.0):
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return sum(np.exp(-((z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2) / (2 * sigma ** 2)) for p in points)


def test_fit_twist_recovers_a_known_curl_about_the_tilt_axis():
    shape, twist = (16, 24, 48), 6.0  # degrees between the first and the last row
    rng = np.random.default_rng(3)
    zc, yc, xc = ((n - 1) / 2 for n in shape)
    grid = np.stack(np.meshgrid(np.arange(3, 13, 5), np.arange(3, 22, 6), np.arange(4, 45, 6), indexing="ij"), -1)
    points = grid.reshape(-1, 3) + rng.uniform(-0.5, 0.5, (grid.size // 3, 3))
    phi = np.radians(twist / (shape[1] - 1)) * (points[:, 1] - yc)
    turned = points.copy()
    turned[:, 0] = zc + (points[:, 0] - zc) * np.cos(phi) + (points[:, 2] - xc) * np.sin(phi)
    turned[:, 2] = xc - (points[:, 0] - zc) * np.sin(phi) + (points[:, 2] - xc) * np.cos(phi)
    exact = fit_twist(turned, points, shape)
    assert exact["twist_deg"] == pytest.approx(twist, rel=0.02) and exact["dGz_untwisted"] < 0.02
    d = centre_differences(_blobs(turned, shape), _blobs(points, shape))  # through the reconstructions' centres
    assert d["twist_deg"] == pytest.approx(twist, rel=0.05)
    assert d["dGz_untwisted"] < 0.25 * d["dGz"]


def test_pairs_are_checked():
    a = np.ones((3, 16, 16))
    with pytest.raises(InputError, match="3 noisy images but 2 references"):
        check_pairs(a, a[:2])
    with pytest.raises(InputError, match="16 x 16 px but references of 16 x 12"):
        check_pairs(a, a[:, :, :12])
    rng = np.random.default_rng(0)
    clean = np.ones((2, 16, 16))
    with pytest.warns(UserWarning, match="not cleaner"):
        check_pairs(clean + 0.01 * rng.normal(size=clean.shape), clean + 0.1 * rng.normal(size=clean.shape))


def test_unet_filter_trains_on_the_engine(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    clean = np.stack([_gaussian_line((32, 32), 1.5, a) for a in (10, 40, 80, 120)]).astype(np.float32)
    noisy = clean + 0.1 * rng.normal(size=clean.shape).astype(np.float32)
    config = UnetFilterConfig(width=4, depth=2, patch=16, steps=6, eval_every=3, batch_size=2, holdout_fraction=0.25)
    result = train_filter(noisy, clean, config, run_dir=tmp_path / "run", progress=False)
    assert result.steps == 6 and (tmp_path / "run" / "model.pt").exists()
    model = load_filter(tmp_path / "run" / "model.pt")
    out = apply_filter(model, noisy[:, :30, :27])  # not a multiple of the pooling grid
    assert out.shape == (4, 30, 27) and np.isfinite(out).all()
    tiled = apply_filter(model, noisy[0], tile=16, overlap=4)
    whole = apply_filter(model, noisy[0])
    assert tiled.shape == whole.shape == (32, 32)
