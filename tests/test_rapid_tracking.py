"""Rapid STEM tomography: feature detection and linking, image-based tilt-angle tracker, its fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from tomotime.rapid.feature_tracks import blob_response, detect_blobs, extend_tracks, link_tracks
from tomotime.rapid.simulate import NoiseModel, Timing, fast_scan_noise, frame_schedule, goniometer_angle
from tomotime.errors import InputError
from tomotime.rapid.tilt_tracking import MAX_ANGLE_SD, SCALES, fit_angles, track_angles


def _blob_series(angles_deg, shape=(40, 128), n_features=24, half_thickness=14.0, seed=0, noise=None):
    """Frames ``(N, Y, X)`` of dark Gaussian blobs on both surfaces of a rigid slab turning about Y.

    Row ``y`` of frame ``i`` is seen at ``angles_deg[i, y]`` (per-row angles) or ``angles_deg[i]``.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    y = rng.uniform(5, h - 6, n_features)
    x = rng.uniform(-0.4, 0.4, n_features) * w
    z = np.where(np.arange(n_features) % 2, -half_thickness, half_thickness)
    rows = np.arange(h, dtype=float)
    cols = np.arange(w, dtype=float) - (w - 1) / 2
    a = np.asarray(angles_deg, float)
    frames = np.ones((a.shape[0], h, w))
    for i in range(a.shape[0]):
        th = np.radians(a[i] if a.ndim == 1 else a[i][np.clip(np.round(y).astype(int), 0, h - 1)])
        s = x * np.cos(th) - z * np.sin(th)
        for yj, sj in zip(y, s):
            frames[i] -= 0.5 * np.exp(-((rows[:, None] - yj) ** 2 + (cols[None, :] - sj) ** 2) / (2 * 1.3**2))
    if noise is not None:
        frames = fast_scan_noise(frames, noise, rng)
    return frames.astype(np.float32)


#: The paper's frame timing over +-40 degrees (48 frames): the same non-uniform goniometer profile.
TIMING = Timing(start=-40.0, end=40.0)


def _schedule(rows, timing=TIMING):
    starts, row_t = frame_schedule(timing, rows)
    truth = goniometer_angle(starts + timing.scan_time / 2, timing)
    nominal = np.linspace(timing.start, timing.end, truth.size)
    return timing, truth, nominal, goniometer_angle(row_t, timing)


def test_detect_and_link_follow_moving_blobs_through_gaps():
    yy, xx = np.mgrid[0:32, 0:48].astype(float)
    n = 12
    frames = []
    for i in range(n):
        im = np.ones((32, 48))
        for (y0, x0, v) in ((10, 12, 0.8), (22, 30, -0.6)):  # two blobs moving opposite ways
            im -= 0.5 * np.exp(-((yy - y0) ** 2 + (xx - x0 - v * i) ** 2) / (2 * 1.5**2))
        frames.append(im)
    frames = np.array(frames)
    detections = [detect_blobs(f) for f in frames]
    assert all(len(d) == 2 for d in detections)
    truth_x = {10: 12 + 0.8 * np.arange(n), 22: 30 - 0.6 * np.arange(n)}
    for d, i in zip(detections, range(n)):
        for yx in d:
            assert abs(yx[1] - truth_x[int(round(yx[0]))][i]) < 0.15
    detections[5] = detections[5][:0]  # a frame where nothing was found: tracks bridge it
    tracks = link_tracks(detections, n, min_length=6)
    assert tracks.shape == (2, n, 2)
    assert np.isnan(tracks[:, 5]).all() and np.isfinite(tracks[:, [4, 6]]).all()
    rows = np.round(np.nanmean(tracks[:, :, 0], axis=1)).astype(int)
    for k, r in enumerate(rows):
        ok = np.isfinite(tracks[k, :, 1])
        assert np.allclose(tracks[k, ok, 1], truth_x[r][ok], atol=0.15)
    # Re-measuring at predicted positions finds the blobs again, the missing frame included.
    predicted = np.stack([np.stack([np.full(n, 10.0), truth_x[10]], -1), np.stack([np.full(n, 22.0), truth_x[22]], -1)])
    measured = extend_tracks(np.stack([blob_response(f, 1.5) for f in frames]), predicted + 0.4)
    assert np.abs(measured - predicted).max() < 0.15


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_tracker_recovers_a_known_non_uniform_ramp(seed):
    timing, truth, nominal, row_angles = _schedule(40)
    assert np.sqrt(np.mean((nominal - truth) ** 2)) > 1.0  # the ramp is far from uniform
    frames = _blob_series(row_angles, seed=seed, noise=NoiseModel(dose=400.0, line_offset=0.005, correlated=0.01))
    fraction = timing.scan_fraction
    result = track_angles(frames, nominal, scan_fraction=fraction)
    assert not result.fallback and result.n_tracks >= 12
    assert np.sqrt(np.mean((result.angles - truth) ** 2)) < 0.2
    assert np.sqrt(np.mean(result.angle_sd**2)) < MAX_ANGLE_SD
    assert result.sigma in SCALES


def test_one_blob_scale_when_given_and_bad_scales_refused():
    timing, truth, nominal, row_angles = _schedule(40)
    frames = _blob_series(row_angles, seed=0, noise=NoiseModel(dose=400.0, line_offset=0.005, correlated=0.01))
    fraction = timing.scan_fraction
    chosen = track_angles(frames, nominal, scan_fraction=fraction)
    # The default keeps the scale whose fit has the smallest standard error, so no single scale does better.
    for s in SCALES:
        alone = track_angles(frames, nominal, scan_fraction=fraction, sigma=s)
        assert alone.sigma == s
        assert np.sqrt(np.mean(chosen.angle_sd**2)) <= np.sqrt(np.mean(alone.angle_sd**2)) + 1e-12
    for bad in (0.0, -1.0, [], float("nan")):
        with pytest.raises(InputError, match="sigma"):
            track_angles(frames, nominal, sigma=bad)


def test_fit_puts_the_axis_where_the_shifts_are_smallest_and_its_standard_errors_match_the_scatter():
    timing, truth, nominal, row_angles = _schedule(40)
    fraction = timing.scan_fraction
    rng = np.random.default_rng(4)
    n_feat, height, width = 20, 40, 128
    y = rng.uniform(5, height - 6, n_feat)
    x, z = rng.uniform(-45, 45, n_feat), rng.uniform(-14, 14, n_feat)
    theta = np.radians(row_angles[:, np.round(y).astype(int)].T)  # (F, N): each feature at its row's angle
    cols = x[:, None] * np.cos(theta) - z[:, None] * np.sin(theta) + (width - 1) / 2
    errors, sds = [], []
    for k in range(4):
        noisy = cols + rng.normal(0, 0.3, cols.shape)
        tracks = np.stack([np.broadcast_to(y[:, None], cols.shape), noisy], axis=-1)
        fit = fit_angles(tracks, nominal, width, height, scan_fraction=fraction)
        # The tilt axis is not in the data (any axis with matching per-frame shifts fits as well); the fit
        # puts it where the shifts are smallest, here the true axis with no shifts.
        assert np.abs(fit.features[:, 1:] - np.column_stack([x, z])).max() < 1.5
        assert np.sqrt(np.mean(fit.shifts**2)) < 0.3
        errors.append(np.sqrt(np.mean((fit.angles - truth) ** 2)))
        sds.append(np.sqrt(np.mean(fit.angle_sd**2)))
    assert 0.5 < np.mean(errors) / np.mean(sds) < 2.0


def test_uncertain_angles_are_kept_with_a_warning():
    timing, truth, nominal, row_angles = _schedule(40)
    frames = _blob_series(row_angles, shape=(40, 48), n_features=8, half_thickness=3.0, seed=0,
                          noise=NoiseModel(dose=100.0, line_offset=0.005, correlated=0.01))
    fraction = timing.scan_fraction
    with pytest.warns(UserWarning, match="uncertain"):
        result = track_angles(frames, nominal, scan_fraction=fraction)
    assert not result.fallback and np.sqrt(np.mean(result.angle_sd**2)) > MAX_ANGLE_SD


def test_implausible_fit_falls_back_with_a_warning():
    timing, truth, nominal, _ = _schedule(40)
    frames = _blob_series(truth[::2], seed=2, n_features=12)
    rng = np.random.default_rng(3)
    frames = frames[rng.permutation(len(frames))]  # shuffled frames: no rigid motion
    with pytest.warns(UserWarning, match="keeping the nominal angles"):
        result = track_angles(frames, nominal[::2], min_length=4)
    assert result.fallback and np.array_equal(result.angles, nominal[::2])
