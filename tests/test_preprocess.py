"""Preprocessing steps on synthetic series with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_otsu
from skimage.transform import downscale_local_mean

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess import (bin_series, calibrate_haadf, convert_contrast, crop, fit_background, frame_dose,
                                 looks_like_bright_field, mask_background, normalise, record_dose, repair_pixels,
                                 resize, series_dose, subtract_background)
from tomotime.preprocess.background import bernstein_basis
from tomotime.preprocess.repair import find_outliers


def disc_series(n=5, size=32, seed=0, angles=None, background=0.0):
    """Bright discs (the object) on a flat background, one per view, with a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    views = [np.where(y**2 + (x - 2 * i) ** 2 < (size / 5) ** 2, 1.0, 0.0) + background
             + 0.01 * rng.standard_normal((size, size)) for i in range(n)]
    angles = np.linspace(-40, 40, n) if angles is None else angles
    return TiltSeries(np.stack(views), angles, pixel_size=0.5)


def test_steps_are_pure_and_recorded():
    s = disc_series()
    before = s.images.copy()
    out = normalise(bin_series(s, factor=2))
    np.testing.assert_array_equal(s.images, before)
    assert [r["step"] for r in out.metadata["preprocessing"]] == ["bin", "normalise"]
    assert "preprocessing" not in s.metadata


def test_bin_mean_matches_scikit_image_and_scales_pixel_and_shifts():
    s = disc_series(size=33)
    s = TiltSeries(s.images, s.angles, pixel_size=0.5, poses=np.tile([0, 0, 4.0, -2.0], (len(s), 1)))
    out = bin_series(s, factor=3)
    np.testing.assert_allclose(out.images, downscale_local_mean(s.images, (1, 3, 3)), atol=1e-6)
    assert out.pixel_size == pytest.approx(1.5)
    np.testing.assert_allclose(out.poses[:, 2:], [[4 / 3, -2 / 3]] * len(s))
    np.testing.assert_allclose(bin_series(s, 3, method="sum").images, 9 * out.images, rtol=1e-5)


def test_fourier_binning_of_a_band_limited_image_is_exact_subsampling():
    n = 64
    y, x = np.mgrid[:n, :n]
    image = 1 + np.cos(2 * np.pi * 3 * x / n) + 0.5 * np.sin(2 * np.pi * (5 * y + 2 * x) / n)
    s = TiltSeries(image[None], [0.0])
    out = bin_series(s, factor=4, method="fourier")
    np.testing.assert_allclose(out.images[0], image[::4, ::4], atol=1e-5)
    big = resize(out, (64, 64))
    np.testing.assert_allclose(big.images[0], image, atol=1e-5)
    assert big.pixel_size == pytest.approx(1.0)


def test_crop_box_and_size_and_errors():
    s = disc_series(size=20)
    assert crop(s, size=(10, 12)).shape == (5, 10, 12)
    out = crop(s, box=(2, 12, 4, 20))
    np.testing.assert_array_equal(out.images, s.images[:, 2:12, 4:20])
    with pytest.raises(InputError, match="must lie within"):
        crop(s, box=(0, 30, 0, 10))
    with pytest.raises(InputError, match="exactly one"):
        crop(s)


def test_subtract_median_and_percentile():
    s = disc_series(background=5.0)
    out = subtract_background(s)
    np.testing.assert_allclose(np.median(out.images.reshape(len(s), -1), axis=1), 0, atol=1e-5)
    low = subtract_background(s, method="percentile", percentile=1)
    assert (np.percentile(low.images.reshape(len(s), -1), 1, axis=1) == pytest.approx(0, abs=1e-5))


def test_mask_background_at_k_otsu_and_mask_that_removes_everything():
    s = disc_series(background=0.2)
    out = mask_background(s, k=0.9)
    for view, result in zip(s.images, out.images):
        level = 0.9 * threshold_otsu(view)
        np.testing.assert_array_equal(result[view < level], 0)
        np.testing.assert_array_equal(result[view >= level], view[view >= level])
    with pytest.raises(InputError, match="removes every pixel of view 0.*smaller k"):
        mask_background(s, k=10)
    flat = TiltSeries(np.ones((2, 8, 8)), [0, 10])
    with pytest.raises(InputError, match="flat"):
        mask_background(flat)


def test_bernstein_fit_removes_a_known_polynomial_background():
    n = 48
    rng = np.random.default_rng(1)
    coef = rng.uniform(0.5, 1.5, 9)  # a degree-2 Bernstein surface with known coefficients
    surface = np.tensordot(coef, bernstein_basis((n, n), 2), axes=1)
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    obj = np.where(y**2 + x**2 < 10**2, 4.0, 0.0)
    s = TiltSeries(np.stack([obj + surface, obj + 0.5 * surface]), [0.0, 30.0])
    out = fit_background(s, degree=2)
    np.testing.assert_allclose(out.images[0], obj, atol=1e-4)
    np.testing.assert_allclose(out.images[1], obj, atol=1e-4)
    np.testing.assert_allclose(out.metadata["preprocessing"][-1]["coefficients"][0], coef, atol=1e-4)
    with pytest.raises(InputError, match="too few"):
        fit_background(s, degree=2, k=-5.0)


def test_normalise_mean_std_and_total():
    s = disc_series(background=1.0)
    scaled = TiltSeries(s.images * np.arange(1, 6)[:, None, None], s.angles)
    out = normalise(scaled)
    flat = out.images.reshape(5, -1).astype(np.float64)
    np.testing.assert_allclose(flat.std(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(flat.mean(axis=1), flat.mean(), rtol=1e-5)
    total = normalise(scaled, mode="total").images.reshape(5, -1).sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(total, total.mean(), rtol=1e-5)


def shadowed_series(gain_at_75=0.7, seed=0):
    """Object + membrane a + b/cos(angle), darkened by a known detector gain above 60 deg."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(-75, 75, 31)
    size = 32
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    membrane = 0.1 + 0.3 / np.cos(np.deg2rad(angles))
    truth = np.stack([m + np.where(y**2 + x**2 < 36, 2.0, 0.0) + 0.01 * rng.standard_normal((size, size))
                      for m in membrane])
    excess = np.clip((np.abs(angles) - 60) / 15, 0, None)
    gain = 1 - (1 - gain_at_75) * excess**2
    return TiltSeries(truth * gain[:, None, None], angles), truth, membrane, gain


# mean_std scales by the ratio of standard deviations, which noise makes uncertain
# (about 2 % from ~900 membrane pixels); the gain method uses means only.
@pytest.mark.parametrize("method, total_rtol", [("mean_std", 0.03), ("gain", 0.01)])
def test_haadf_calibration_recovers_a_known_one_over_cos_gain(method, total_rtol, tmp_path):
    s, truth, membrane, gain = shadowed_series()
    out = calibrate_haadf(s, method=method)
    record = out.metadata["preprocessing"][-1]
    np.testing.assert_allclose(record["mean_fit"], [0.1, 0.3], atol=0.01)
    high = np.abs(s.angles) >= 60
    assert high.sum() == 8 and gain[high].min() < 0.75
    background = truth[0] - membrane[0] < 1.0
    corrected_mean = np.array([v[background].mean() for v in out.images])
    np.testing.assert_allclose(corrected_mean[high], membrane[high], rtol=0.01)
    totals = out.images.reshape(len(s), -1).sum(axis=1)
    np.testing.assert_allclose(totals, truth.reshape(len(s), -1).sum(axis=1), rtol=total_rtol)
    np.testing.assert_array_equal(out.images[~high], s.images[~high])
    from tomotime.preprocess import plot_haadf_calibration

    assert plot_haadf_calibration(record, tmp_path / "fit.png").stat().st_size > 1000


def test_haadf_calibration_needs_low_tilts():
    s = disc_series(angles=np.array([-70.0, -65, 0, 65, 70]))
    with pytest.raises(InputError, match="at least 3 views"):
        calibrate_haadf(s)


def test_repair_finds_exactly_the_injected_hot_cold_dead_and_saturated_pixels():
    n = 40
    y, x = np.mgrid[:n, :n]
    rng = np.random.default_rng(3)
    clean = np.stack([100 + 20 * np.sin(x / 5 + k) * np.cos(y / 7) + rng.normal(0, 1, (n, n)) for k in range(4)])
    images = clean.copy()
    hot = [(5, 7), (20, 30), (33, 3)]
    for yy, xx in hot:
        images[1, yy, xx] += 500
    images[2, 10, 10] = -300
    assert set(zip(*np.nonzero(find_outliers(images[1], 8.0)))) == set(hot)
    images[:, 25, 25] = 0.0  # dead in every view
    images[3, 15, 16] = 1000.0  # saturated
    s = TiltSeries(images, [0, 10, 20, 30])
    out = repair_pixels(s, high=1000.0)
    record = out.metadata["preprocessing"][-1]
    assert record["stuck"] == 1 and record["saturated"] == 1
    for view, yy, xx in [(1, 5, 7), (1, 20, 30), (1, 33, 3), (2, 10, 10), (0, 25, 25), (3, 15, 16)]:
        assert abs(out.images[view, yy, xx] - clean[view, yy, xx]) < 6
    untouched = np.ones_like(images, dtype=bool)
    untouched[1, 5, 7] = untouched[1, 20, 30] = untouched[1, 33, 3] = untouched[2, 10, 10] = False
    untouched[3, 15, 16] = False
    untouched[:, 25, 25] = False
    np.testing.assert_array_equal(out.images[untouched], s.images[untouched])


def test_dose_bookkeeping():
    per_frame = frame_dose(60, 1.6, 0.44)
    assert per_frame == pytest.approx(60e-12 * 1.6e-6 / 1.602176634e-19 / 4.4**2)
    assert 29 < per_frame < 32  # the "about 30 e/A^2"
    dose = series_dose(per_frame, 10, tracking_frames=5)
    assert dose["total"] == pytest.approx(15 * per_frame)
    assert dose["cumulative"][-1] == pytest.approx(dose["total"])
    s = record_dose(disc_series(), beam_current_pa=60, dwell_time_us=1.6, pixel_size_nm=0.44, tracking_frames=2)
    assert s.metadata["dose_e_per_A2"]["total"] == pytest.approx(7 * per_frame)
    with pytest.raises(InputError, match="beam_current_pa"):
        frame_dose(0, 1.6, 0.44)


def test_log_conversion_recovers_the_projection_and_bright_field_is_detected():
    s = disc_series(n=3, size=40)
    projection = np.clip(s.images, 0, None)
    i0 = np.array([1000.0, 900.0, 800.0])
    bright = TiltSeries(i0[:, None, None] * np.exp(-projection), s.angles)
    assert looks_like_bright_field(bright)[0]
    assert not looks_like_bright_field(s)[0]
    out = convert_contrast(bright, mode="log", vacuum=(0, 4, 0, 4))
    vacuum_level = np.log(np.exp(-projection[:, :4, :4]).mean(axis=(1, 2)))  # I0 measured = i0 * this
    np.testing.assert_allclose(out.images, projection + vacuum_level[:, None, None], atol=1e-4)
    assert not looks_like_bright_field(out)[0]
    inverted = convert_contrast(bright, mode="invert")
    assert not looks_like_bright_field(TiltSeries(inverted.images, s.angles))[0]
    with pytest.raises(InputError, match="positive"):
        convert_contrast(TiltSeries(bright.images - 2000, s.angles), mode="log")


def test_haadf_calibration_leaves_views_near_90_deg_and_falls_back_to_the_gain():
    angles = np.arange(-90.0, 91.0, 10.0)
    rng = np.random.default_rng(2)
    # vacuum around the object: a constant level whose variance does not follow 1/cos
    images = np.stack([5.0 + 0.1 * rng.standard_normal((16, 16)) for _ in angles])
    images[:, 6:10, 6:10] += 10
    s = TiltSeries(images, angles)
    out = calibrate_haadf(s, max_angle=60, limit=85)
    record = out.metadata["preprocessing"][-1]
    assert record["beyond_limit_views"] == [0, len(angles) - 1]
    np.testing.assert_array_equal(out.images[[0, -1]], s.images[[0, -1]])
    assert set(record["gain_fallback_views"]) <= set(record["corrected_views"])
    assert np.isfinite(out.images).all()
