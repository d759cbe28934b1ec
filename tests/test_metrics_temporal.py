"""Per-time metrics over volume series, their summaries and the series evaluation."""

import numpy as np
import pytest
import torch

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.metrics import (
    evaluate_series,
    otsu_mask,
    per_time,
    psnr,
    rmse_percent,
    ssim,
    summarise,
    surface_to_volume,
)


def _series(t=4, shape=(10, 10, 10), seed=0):
    rng = np.random.default_rng(seed)
    truth = np.zeros((t, *shape))
    for i in range(t):
        truth[i, 2:8, 2:8, 1 + i:5 + i] = 1.0 + 0.1 * i
    truth += 0.02 * rng.random(truth.shape)
    noise = np.linspace(0.02, 0.2, t)[:, None, None, None]
    recon = truth + noise * rng.standard_normal(truth.shape)
    return recon, truth


def test_per_time_matches_metric_at_each_time():
    recon, truth = _series()
    for name, fn in (("rmse", rmse_percent), ("ssim", ssim), ("psnr", psnr)):
        expected = [fn(r, g) for r, g in zip(recon, truth)]
        np.testing.assert_allclose(per_time(name, recon, truth), expected, rtol=1e-12)
    rmse = per_time(rmse_percent, recon, truth)
    assert rmse.shape == (4,) and (np.diff(rmse) > 0).all()  # noise grows with time
    masked = per_time("ssim", recon, truth, mask="otsu")
    np.testing.assert_allclose(masked, [ssim(r, g, mask=otsu_mask(g)) for r, g in zip(recon, truth)])
    fixed = np.zeros(truth.shape[1:], bool)
    fixed[3:6, 3:6, 3:6] = True
    np.testing.assert_allclose(per_time("rmse", recon, truth, mask=fixed),
                               [rmse_percent(r, g, mask=fixed) for r, g in zip(recon, truth)])


def test_per_time_accepts_volume_series_torch_and_single_volume_metrics():
    recon, truth = _series()
    times = [0.0, 1.5, 3.0, 4.5]
    ref = per_time("rmse", recon, truth)
    vs = per_time("rmse", VolumeSeries(recon, times), VolumeSeries(truth, np.array(times) + 1e-7))
    np.testing.assert_allclose(vs, ref, rtol=1e-6)
    tt = per_time("rmse", torch.from_numpy(recon), torch.from_numpy(truth))
    np.testing.assert_allclose(tt, ref, rtol=1e-12)
    s2v = per_time("surface_to_volume", truth)
    np.testing.assert_allclose(s2v, [surface_to_volume(g) for g in truth])
    clean = per_time("surface_to_volume", (truth > 0.5).astype(float))
    np.testing.assert_allclose(clean, 2 * (36 + 24 + 24) / 144)  # a 6x6x4 box at every time


def test_per_time_refuses_mismatched_series():
    recon, truth = _series()
    with pytest.raises(InputError, match="recon_series has 3 time points but truth_series has 4"):
        per_time("rmse", recon[:3], truth)
    with pytest.raises(InputError, match="volumes have shape"):
        per_time("rmse", recon[:, 1:], truth[:, 1:, :, 1:])
    with pytest.raises(InputError, match="times differ at index 2"):
        per_time("rmse", VolumeSeries(recon, [0, 1, 2, 3]), VolumeSeries(truth, [0, 1, 2.001, 3]))
    with pytest.raises(InputError, match="recon_series: expected a series"):
        per_time("rmse", recon[0, 0], truth[0, 0])
    with pytest.raises(InputError, match="metric='nope'"):
        per_time("nope", recon, truth)
    with pytest.raises(InputError, match="mask='otsu' needs truth_series"):
        per_time("surface_to_volume", truth, mask="otsu")
    bad = recon.copy()
    bad[2, 1, 1, 1] = np.nan
    with pytest.raises(InputError, match="time index 2: recon: holds NaN"):
        per_time("ssim", bad, truth)


def test_summarise_picks_worst_by_direction():
    curve = np.array([0.9, 0.5, 0.7])
    assert summarise(curve, higher_is_better=True) == {"mean": pytest.approx(0.7), "worst": 0.5}
    assert summarise(curve, higher_is_better=False) == {"mean": pytest.approx(0.7), "worst": 0.9}
    with pytest.raises(InputError, match="curve: is empty"):
        summarise([], higher_is_better=True)


def test_evaluate_series_matches_per_time_metrics():
    recon, truth = _series()
    res = evaluate_series(VolumeSeries(recon, [0, 2, 4, 6]), truth)
    np.testing.assert_array_equal(res["times"], [0, 2, 4, 6])
    recon = recon.astype(np.float32)  # as the VolumeSeries holds it
    np.testing.assert_allclose(res["ssim"], per_time("ssim", recon, truth, mask="otsu"), rtol=1e-12)
    np.testing.assert_allclose(res["rmse"], per_time("rmse", recon, truth, mask="otsu"), rtol=1e-12)
    np.testing.assert_allclose(res["psnr"], per_time("psnr", recon, truth, mask="otsu"), rtol=1e-12)
    np.testing.assert_allclose(res["ssim_unmasked"], per_time("ssim", recon, truth), rtol=1e-12)
    np.testing.assert_allclose(res["rmse_unmasked"], per_time("rmse", recon, truth), rtol=1e-12)
    assert res["ssim_worst"] == res["ssim"].min() and res["rmse_worst"] == res["rmse"].max()
    assert res["ssim_mean"] == pytest.approx(res["ssim"].mean())
    assert res["rmse_mean"] == pytest.approx(res["rmse"].mean())
    assert not np.allclose(res["ssim"], res["ssim_unmasked"])
    plain = evaluate_series(recon, truth, masked=False)
    np.testing.assert_array_equal(plain["ssim"], plain["ssim_unmasked"])
    np.testing.assert_array_equal(plain["rmse"], plain["rmse_unmasked"])


def test_evaluate_series_of_perfect_reconstruction():
    _, truth = _series(t=2)
    res = evaluate_series(truth, truth)
    np.testing.assert_allclose(res["ssim"], 1.0)
    np.testing.assert_array_equal(res["rmse"], 0.0)
    assert np.isinf(res["psnr"]).all()
    with pytest.raises(InputError, match="time index 1: truth: is constant"):
        evaluate_series(truth, np.stack([truth[0], np.ones_like(truth[1])]))
