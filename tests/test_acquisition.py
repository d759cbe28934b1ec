"""Simulated tilt-time acquisition: projections, noise, misalignment, blur, scan lag, and the science it feeds.

The acquisition is checked against the 3D projector (one projection per time
step, with and without poses), the noise models by their first two moments,
and the whole simulated experiment by the alloying percentage of the rod and by
a sliding-window reconstruction that must show change only when the specimen
changes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.geometry import grs_angles
from tomotime.metrics import alloying_curve
from tomotime.physics import VolumeProjector
from tomotime.sim import make_scenario, misalign_image, mixed_intensity_spread, simulate_acquisition
from tomotime.solvers import sliding_window

SIZE = 16


def project(volume: np.ndarray, angles, poses=None) -> np.ndarray:
    """Reference projections ``(N, Y, X)`` of ``volume`` by the 3D projector."""
    op = VolumeProjector(np.atleast_1d(angles), volume.shape, poses=poses)
    with torch.no_grad():
        return op.forward(torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))).numpy()


def static_series(volume: np.ndarray, steps: int) -> VolumeSeries:
    return VolumeSeries(np.repeat(volume[None].astype(np.float32), steps, axis=0))


FAST_MIXING = {"sigma": 0.3, "exponent": 1.0}
"""Ordinary diffusion, three times the default first-step length: a rod mostly mixed in a short series."""


def alloying_kwargs(truth: VolumeSeries) -> dict:
    """Particle mask, sigma_0 and sigma_inf measured on the truth, as the papers do."""
    first = truth[0]
    mask = first > 0
    return dict(mask=mask, sigma_initial=float(first[mask].std()), sigma_mixed=mixed_intensity_spread(first))


def relative_norms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-view ``||a_i - b_i|| / ||b_i||``."""
    n = len(b)
    return np.linalg.norm((a - b).reshape(n, -1), axis=1) / np.linalg.norm(b.reshape(n, -1), axis=1)


@pytest.fixture(scope="module")
def rod() -> VolumeSeries:
    """The alloying nanorod, 16^3 voxels, 8 steps, at times 2, 2.5, ... 5.5 s and 0.4 nm voxels."""
    truth = make_scenario("nanorod-alloying", SIZE, steps=8, seed=0, **FAST_MIXING)
    return VolumeSeries(truth.to_numpy(), times=2.0 + 0.5 * np.arange(8), voxel_size=0.4)


@pytest.fixture(scope="module")
def bars() -> VolumeSeries:
    """Two off-axis bars along Y, brighter towards the last row: every row's projection depends on the angle.

    (The rod's projections hardly do: it is a cylinder around the tilt axis.)
    """
    vol = np.zeros((SIZE, SIZE, SIZE), np.float32)
    vol[3:6, :, 10:13] = 1.0
    vol[10:12, :, 3:5] = 0.5
    vol *= np.linspace(0.5, 1.0, SIZE, dtype=np.float32)[None, :, None]
    return static_series(vol, 6)


@pytest.fixture
def blob(smooth_phantom) -> np.ndarray:
    """A smooth 24^3 object, so that interpolation errors stay small."""
    return smooth_phantom((24, 24, 24), seed=1).astype(np.float32)


# ---------------------------------------------------------------- noise-free geometry


def test_noise_free_series_is_one_projection_per_step_at_grs_angles(rod):
    series = simulate_acquisition(rod)
    assert isinstance(series, TiltSeries)
    assert series.shape == (8, SIZE, SIZE) and series.images.dtype == np.float32
    np.testing.assert_array_equal(series.angles, grs_angles(8))
    np.testing.assert_array_equal(series.times, rod.times)
    assert series.pixel_size == pytest.approx(0.4)
    for i, angle in enumerate(series.angles):
        expected = project(rod[i], angle)[0]
        np.testing.assert_allclose(series.images[i], expected, rtol=0, atol=1e-5 * expected.max())
        # the specimen changes, so the projection of the neighbouring step would not match
        other = project(rod[i - 1], angle)[0]
        assert np.abs(series.images[i] - other).max() > 1e-2 * expected.max()
    assert series.metadata["true_poses"] == [[0.0] * 4] * 8


def test_given_angles_times_and_pixel_size_are_used(rod):
    angles = np.linspace(-60, 60, 8)
    times = 10.0 + np.arange(8.0) ** 2
    series = simulate_acquisition(rod.to_numpy(), angles=angles, times=times, pixel_size=0.25)
    np.testing.assert_array_equal(series.angles, angles)
    np.testing.assert_array_equal(series.times, times)
    assert series.pixel_size == 0.25
    np.testing.assert_allclose(series.images[-1], project(rod[7], 60.0)[0], atol=1e-5)


# ---------------------------------------------------------------- noise


def test_poisson_dose_keeps_the_mean_and_gives_variance_image_over_dose(rod):
    dose, steps = 50.0, 60
    truth = static_series(rod[0], steps)
    clean = simulate_acquisition(truth).images.astype(np.float64)
    noisy = simulate_acquisition(truth, dose=dose, seed=3).images.astype(np.float64)
    counts = noisy * dose
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # whole electron counts
    # the total has relative std 1 / sqrt(dose * total) ~ 0.2 % here
    assert noisy.sum() / clean.sum() == pytest.approx(1.0, abs=0.01)
    inside = clean > 0.1 * clean.max()
    z = (noisy - clean)[inside] / np.sqrt(clean[inside] / dose)
    assert z.size > 2500
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert z.var() == pytest.approx(1.0, abs=0.1)  # standard error ~ sqrt(2 / z.size) < 0.03
    assert np.all(noisy[clean == 0] == 0)


def test_read_noise_has_the_requested_std(rod):
    steps = 40
    truth = static_series(rod[0], steps)
    clean = simulate_acquisition(truth).images
    residual = (simulate_acquisition(truth, read_noise=0.05, seed=1).images - clean).astype(np.float64)
    assert residual.std() == pytest.approx(0.05, rel=0.05)
    assert abs(residual.mean()) < 4 * 0.05 / np.sqrt(residual.size)


def test_the_seed_makes_random_effects_reproducible(rod):
    options = dict(dose=20.0, read_noise=0.02, shift_std=1.0)
    first = simulate_acquisition(rod, seed=7, **options)
    again = simulate_acquisition(rod, seed=7, **options)
    other = simulate_acquisition(rod, seed=8, **options)
    np.testing.assert_array_equal(first.images, again.images)
    assert first.metadata["true_poses"] == again.metadata["true_poses"]
    assert not np.array_equal(first.images, other.images)
    assert first.metadata["true_poses"] != other.metadata["true_poses"]
    # without random effects the seed changes nothing
    np.testing.assert_array_equal(simulate_acquisition(rod, seed=1).images, simulate_acquisition(rod, seed=2).images)


# ---------------------------------------------------------------- misalignment, tilt blur, scan lag


def test_misaligned_images_match_the_projector_with_the_true_poses(blob):
    steps = 6
    series = simulate_acquisition(static_series(blob, steps), shift_std=2.0, axis_rotation=5.0, seed=3)
    poses = np.asarray(series.metadata["true_poses"], dtype=np.float32)
    assert poses.shape == (steps, 4)
    np.testing.assert_array_equal(poses[:, 0], 5.0)
    np.testing.assert_array_equal(poses[:, 1], 0.0)
    shifts = poses[:, 2:]
    assert np.all(np.abs(shifts) > 0) and 0.5 < shifts.std() < 4.0
    error = relative_norms(series.images, project(blob, series.angles, poses=poses))
    assert error.max() < 0.025  # interpolation only: measured 1.2 %
    aligned = relative_norms(series.images, project(blob, series.angles))
    flipped = poses.copy()
    flipped[:, [0, 2, 3]] *= -1
    opposite = relative_norms(series.images, project(blob, series.angles, poses=flipped))
    assert error.max() < 0.35 * aligned.min()  # measured 4 % without poses ...
    assert error.max() < 0.2 * opposite.min()  # ... and 7 % with the opposite sign convention


def test_misalign_image_shifts_by_whole_pixels_with_zero_fill(rng):
    image = rng.random((10, 12))
    out = misalign_image(image, axis_rotation=0.0, shift_y=2.0, shift_x=-3.0)
    # output pixel (y, x) shows input pixel (y - 2, x + 3)
    np.testing.assert_allclose(out[2:, :-3], image[:-2, 3:], atol=1e-12)
    assert np.all(out[:2] == 0) and np.all(out[:, -3:] == 0)


def test_tilt_blur_is_the_mean_of_projections_at_the_midpoints_of_the_sweep(bars):
    series = simulate_acquisition(bars, tilt_blur=6.0, blur_samples=3)
    sharp = simulate_acquisition(bars)
    for i, angle in enumerate(series.angles):
        by_hand = project(bars[i], [angle - 2.0, angle, angle + 2.0]).mean(axis=0)
        np.testing.assert_allclose(series.images[i], by_hand, atol=1e-5)
    assert relative_norms(series.images, sharp.images).max() > 0.02  # the blur is not a no-op
    np.testing.assert_array_equal(simulate_acquisition(bars, tilt_blur=0.0, blur_samples=3).images, sharp.images)


def test_tilt_blur_matches_a_fine_continuous_sweep(bars):
    """Five samples blur as much as the sweep itself (end points widened the spread by sqrt(6/4))."""
    blur = 20.0
    coarse = simulate_acquisition(bars, tilt_blur=blur, blur_samples=5).images
    fine = simulate_acquisition(bars, tilt_blur=blur, blur_samples=200).images
    sharp = simulate_acquisition(bars).images
    blurring = relative_norms(fine, sharp)
    assert blurring.mean() > 0.05  # the sweep blurs the views
    assert (relative_norms(coarse, fine) < 0.2 * blurring).all()  # measured <= 0.08; end points: 0.5


def test_a_single_blur_sample_is_taken_at_the_tilt_angle(bars):
    one = simulate_acquisition(bars, tilt_blur=6.0, blur_samples=1)
    np.testing.assert_allclose(one.images, simulate_acquisition(bars).images, atol=1e-6)


def test_row_lag_tilts_each_scan_line_a_little_further(bars):
    lag = 20.0
    lagged = simulate_acquisition(bars, row_lag=lag)
    plain = simulate_acquisition(bars)
    np.testing.assert_array_equal(lagged.images[:, 0], plain.images[:, 0])
    for i, angle in enumerate(lagged.angles):
        for row in (SIZE // 2, SIZE - 1):
            expected = project(bars[i], angle + lag * row / SIZE)[0, row]
            np.testing.assert_allclose(lagged.images[i, row], expected, atol=1e-5)
    assert relative_norms(lagged.images[:, -1], plain.images[:, -1]).min() > 0.1


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("options, match", [
    (dict(dose=-1.0), "dose"),
    (dict(dose=0.0), "dose"),
    (dict(dose=float("nan")), "dose"),
    (dict(read_noise=-0.1), "read_noise"),
    (dict(shift_std=-1.0), "shift_std"),
    (dict(tilt_blur=-2.0), "tilt_blur"),
    (dict(blur_samples=0), "blur_samples"),
    (dict(blur_samples=2.5), "blur_samples"),
    (dict(angles=np.zeros(7)), "angles"),
])
def test_bad_options_are_refused(rod, options, match):
    with pytest.raises(InputError, match=match):
        simulate_acquisition(rod, **options)


def test_a_single_time_step_is_refused(rod):
    with pytest.raises(InputError, match="at least 2"):
        simulate_acquisition(VolumeSeries(rod.to_numpy()[:1]))


# ---------------------------------------------------------------- the science of the simulated experiment


def test_alloying_percentage_of_the_simulated_rod_rises_monotonically():
    truth = make_scenario("nanorod-alloying", 24, steps=12, seed=0, **FAST_MIXING)
    kw = alloying_kwargs(truth)
    assert kw["sigma_mixed"] == pytest.approx(0.0, abs=1e-6)
    curve = alloying_curve(truth, **kw)
    assert curve[0] == pytest.approx(0.0, abs=1e-4)  # float32 vs float64 spread
    assert np.all(np.diff(curve) > 0), curve
    assert curve[-1] <= 100.0 and curve[-1] > 50.0


def test_sliding_window_shows_change_only_when_the_specimen_changes():
    """A static rod gives a flat alloying curve and no drift; the alloying rod a clear rise.

    The frame-to-frame change of a sliding-window SIRT volume is dominated by
    which projections the window holds (about 12 % of the volume's norm here,
    for the static and for the alloying rod alike), so the check compares
    trends: the alloying percentage, and the mean of the first against the
    last quarter of the volumes. (``tests/test_solvers.py`` checks a static
    ball in detail.)
    """
    steps, window = 32, 16
    dynamic = make_scenario("nanorod-alloying", SIZE, steps=steps, seed=0, **FAST_MIXING)
    static = static_series(dynamic[0], steps)
    kw = alloying_kwargs(dynamic)

    def reconstruct(truth):
        return sliding_window(simulate_acquisition(truth), window=window, method="sirt", iterations=20,
                              min_value=0.0, device="cpu", progress=False).to_numpy()

    def drift(volumes):
        q = len(volumes) // 4
        return np.linalg.norm(volumes[-q:].mean(0) - volumes[:q].mean(0)) / np.linalg.norm(volumes.mean(0))

    still, moving = reconstruct(static), reconstruct(dynamic)
    still_alloying, moving_alloying = alloying_curve(still, **kw), alloying_curve(moving, **kw)
    q = steps // 4
    rise = moving_alloying[-q:].mean() - moving_alloying[:q].mean()
    assert np.ptp(still_alloying) < 8.0, still_alloying  # measured 3.3 percentage points
    assert rise > 15.0, moving_alloying  # measured 22 points (the truth rises from 0 to 87 %)
    assert rise > 3 * np.ptp(still_alloying)
    assert drift(still) < 0.15  # measured 0.09, from the shorter windows at both ends
    assert drift(moving) > 1.8 * drift(still)  # measured 0.22
