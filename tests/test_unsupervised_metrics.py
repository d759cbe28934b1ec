"""uMSE/uPSNR, bootstrap intervals, vacuum SNR and noise correlation on cases with known noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tomotime.errors import InputError
from tomotime.metrics.unsupervised import (
    bootstrap_upsnr,
    noise_correlation,
    polyphase_umse,
    polyphase_umse_frames,
    temporal_references,
    temporal_umse,
    umse,
    upsnr,
    vacuum_snr,
)
from tomotime.sim.insitu_movie import insitu_movie


def test_umse_is_the_papers_formula_with_n_in_the_denominator():
    f, a, b, c = np.array([1.0, 2.0]), np.array([0.0, 4.0]), np.array([1.0, 1.0]), np.array([0.0, 3.0])
    assert umse(f, a, b, c) == pytest.approx((1 + 4) / 2 - ((1 + 4) / 2) / 2)


def test_umse_recovers_the_true_error_under_known_noise():
    rng = np.random.default_rng(0)
    clean = gaussian_filter(rng.standard_normal((256, 256)), 3)
    error = 0.05 * np.sin(np.arange(256) / 7.0)[None, :]  # the denoiser's (known) error
    sigma = 0.1
    a, b, c = (clean + sigma * rng.standard_normal(clean.shape) for _ in range(3))
    assert umse(clean + error, a, b, c) == pytest.approx(np.mean(error ** 2), abs=3e-4)
    # the naive MSE against a noisy reference is off by the noise variance
    assert np.mean((clean + error - a) ** 2) == pytest.approx(np.mean(error ** 2) + sigma ** 2, rel=0.02)


def test_temporal_references_lie_outside_the_denoisers_window():
    assert temporal_references(5, 20, 2) == (2, 8, 1)
    assert temporal_references(0, 20, 2) == (3, 4, 5)
    assert temporal_references(1, 5, 2) is None
    assert temporal_references(5, 20, 2, gap=2) == (1, 9, 0)
    assert temporal_references(0, 20, 0, gap=2) == (2, 3, 5)  # b and c a gap apart too


def test_temporal_umse_of_raw_poisson_frames_is_their_variance():
    rng = np.random.default_rng(1)
    rate = np.full((40, 32, 32), 3.0)
    noisy = rng.poisson(rate).astype(np.float64)
    values, frames = temporal_umse(noisy, noisy, reach=0)
    assert frames.tolist() == list(range(40))
    assert values.mean() == pytest.approx(3.0, rel=0.05)  # Poisson: MSE of the raw frame = its mean


def test_polyphase_umse_of_the_identity_is_the_noise_variance():
    rng = np.random.default_rng(2)
    frame = 5.0 + 0.5 * rng.standard_normal((256, 254))
    assert polyphase_umse(lambda y: y, frame) == pytest.approx(0.25, rel=0.05)
    assert polyphase_umse(lambda y: np.full_like(y, 5.0), frame) == pytest.approx(0.0, abs=0.01)


def test_upsnr_refuses_non_positive_umse_with_a_clear_message():
    assert upsnr(0.01, 1.0) == pytest.approx(20.0)
    with pytest.raises(InputError, match="uPSNR is undefined"):
        upsnr(-0.001, 1.0)


def test_bootstrap_interval_covers_the_mean_and_never_writes_nan():
    rng = np.random.default_rng(3)
    est = bootstrap_upsnr(0.01 + 0.001 * rng.standard_normal(50), peak=1.0)
    assert est.umse_ci[0] < est.umse < est.umse_ci[1]
    assert est.upsnr_ci[0] < est.upsnr < est.upsnr_ci[1] and est.note is None
    wider = bootstrap_upsnr(0.01 + 0.001 * rng.standard_normal(50), peak=1.0, level=0.99)
    assert wider.umse_ci[1] - wider.umse_ci[0] > est.umse_ci[1] - est.umse_ci[0]
    bad = bootstrap_upsnr(np.array([-0.02, 0.01, -0.01]), peak=1.0)
    assert bad.upsnr is None and "undefined" in bad.note
    assert "NaN" not in json.dumps(bad.to_dict())


def test_vacuum_snr_of_poisson_counts_is_the_square_root_of_the_rate():
    movie = np.random.default_rng(4).poisson(16.0, (5, 64, 64)).astype(float)
    assert vacuum_snr(movie).mean() == pytest.approx(4.0, rel=0.03)
    with pytest.raises(InputError, match="constant"):
        vacuum_snr(np.ones((2, 4, 4)))


def test_correlated_detector_noise_is_correlated_in_space_not_in_time():
    movie = insitu_movie(frames=24, size=48, dose=2.0, correlation=0.8, seed=5)
    vac = movie.vacuum
    rows, cols = np.nonzero(vac)
    region = (slice(rows.min(), rows.min() + 8), slice(cols.min(), cols.max()))
    corr = noise_correlation(movie.noisy, region)
    assert corr["spatial_x"] > 0.3 and corr["spatial_y"] > 0.3
    assert abs(corr["temporal"]) < 0.1
    flat = noise_correlation(insitu_movie(frames=24, size=48, dose=2.0, seed=5).noisy, region)
    assert abs(flat["spatial_x"]) < 0.1


def test_simulated_movie_has_the_requested_dose_and_changing_surface():
    movie = insitu_movie(frames=12, size=48, dose=0.3, seed=6)
    assert movie.noisy.shape == movie.clean.shape == (12, 48, 48)
    assert movie.clean[:, movie.vacuum].mean() == pytest.approx(0.3)
    assert movie.noisy[:, movie.vacuum].mean() == pytest.approx(0.3, rel=0.1)
    assert np.all(movie.noisy == np.round(movie.noisy))
    changes = (movie.occupancy[1:] != movie.occupancy[:-1]).any(axis=0)
    assert 0 < changes.sum() < movie.occupancy.shape[1]  # only some columns (the surface) come and go
    assert movie.clean.min() < 0.3 * 0.7  # columns darken the particle


def test_polyphase_umse_of_a_movie_is_the_true_error_of_known_denoisers():
    rng = np.random.default_rng(3)
    t, size, sigma = 40, 48, 0.5
    yy, xx = np.mgrid[0:size, 0:size]
    clean = np.broadcast_to(2.0 + 0.002 * yy + 0.001 * xx, (t, size, size))  # smooth on the pixel scale
    movie = clean + sigma * rng.standard_normal((t, size, size))
    truth = clean[:, 0::2, 0::2]
    identity = polyphase_umse_frames(lambda y: y, movie)
    assert identity.shape == (t,) and identity.mean() == pytest.approx(sigma ** 2, rel=0.05)
    assert polyphase_umse_frames(lambda y: truth, movie).mean() == pytest.approx(0.0, abs=0.01)
    assert polyphase_umse_frames(lambda y: truth + 0.3, movie).mean() == pytest.approx(0.09, abs=0.01)
    # a video denoiser: the temporal mean of the components has the error sigma**2 / T
    mean = polyphase_umse_frames(lambda y: np.broadcast_to(y.mean(axis=0), y.shape), movie)
    assert mean.mean() == pytest.approx(sigma ** 2 / t, abs=0.01)
    assert identity[0] == pytest.approx(polyphase_umse(lambda y: y, movie[0]))
    with pytest.raises(InputError, match="returned"):
        polyphase_umse_frames(lambda y: y[:, :-1], movie)
