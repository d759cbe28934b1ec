"""The paper's metric definitions against hand-computed cases and scikit-image, and the new shape/time metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.metrics import structural_similarity

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.metrics import (intensity_histograms, otsu_masked, paper_alloying_curve, paper_mask, paper_rmse,
                              paper_ssim, redistribution_curve, redistribution_map, ssim)


def _cube(n: int = 16, lo: int = 4, hi: int = 12, value: float = 1.0) -> np.ndarray:
    v = np.zeros((n, n, n), dtype=np.float32)
    v[lo:hi, lo:hi, lo:hi] = value
    return v


def test_otsu_masking_zeroes_the_background_noise():
    rng = np.random.default_rng(0)
    v = _cube() + rng.uniform(0, 0.05, (16, 16, 16)).astype(np.float32)
    masked = otsu_masked(v)
    assert (masked[v <= threshold_otsu(v, nbins=256)] == 0).all()
    assert np.array_equal(masked > 0, v > threshold_otsu(v, nbins=256))
    assert np.count_nonzero(masked) == 8**3


def test_paper_rmse_hand_computed():
    truth = _cube()
    recon = truth.copy()
    recon[4:12, 4:12, 4:8] = 0.5  # half the cube at 0.5, above Otsu's threshold of the recon
    # Otsu-masked volumes are the volumes themselves (background already 0): 256 voxels off by 0.5
    expected = 100 * np.sqrt(256 * 0.25 / 16**3) / 1.0
    assert paper_rmse(recon, truth) == pytest.approx(expected, rel=1e-6)


def test_paper_rmse_ignores_background_below_each_volumes_otsu_threshold():
    truth = _cube()
    noise = np.random.default_rng(2).uniform(0, 0.1, truth.shape).astype(np.float32)
    recon = truth + noise  # Otsu's threshold of recon lies between 0.1 and 1: the background is zeroed
    inside = truth > 0
    expected = 100 * np.sqrt((noise[inside] ** 2).sum(dtype=np.float64) / truth.size)
    assert paper_rmse(recon, truth) == pytest.approx(expected, rel=1e-5)
    assert paper_rmse(recon, truth) < 100 * np.sqrt(np.mean((recon - truth) ** 2))


def test_paper_ssim_is_scikit_image_over_the_whole_masked_volume():
    rng = np.random.default_rng(1)
    truth = ndi.gaussian_filter(_cube(20, 5, 15), 1.0)
    recon = truth + rng.normal(0, 0.05, truth.shape).astype(np.float32)
    mt = np.where(truth > threshold_otsu(truth, nbins=256), truth, 0)
    mr = np.where(recon > threshold_otsu(recon, nbins=256), recon, 0)
    reference = structural_similarity(mr, mt, data_range=float(truth.max() - truth.min()), win_size=7)
    assert paper_ssim(recon, truth) == pytest.approx(reference, rel=1e-6)  # float32 vs float64
    # the empty background dilutes it: looser than the strict SSIM inside the particle
    assert paper_ssim(recon, truth) > ssim(recon, truth, mask=truth > threshold_otsu(truth, nbins=256))
    assert paper_ssim(truth, truth) == pytest.approx(1.0)


def test_paper_mask_is_otsu_plus_one_cross_dilation():
    v = _cube()
    mask = paper_mask(v)
    assert mask.sum() == 8**3 + 6 * 8**2  # the cube and one face layer on each side, no edges or corners


def test_paper_alloying_hand_computed():
    # a two-level particle whose spread halves, then vanishes
    first = _cube(value=0.3)
    first[6:10, 6:10, 6:10] = 1.0
    mixed_value = float(first[first > 0].mean())
    last = _cube(value=mixed_value)
    mask = paper_mask(first)
    s0, s_inf = first[mask].std(), last[mask].std()
    half = first.copy()
    half[first > 0] = mixed_value + 0.5 * (first[first > 0] - mixed_value)
    curve = paper_alloying_curve([first, half, last], truth=[first, first, first])
    s_half = half[mask].std()
    assert curve[0] == pytest.approx(0.0, abs=1e-9)
    assert curve[1] == pytest.approx(100 * (s0 - s_half) / (s0 - s_inf), rel=1e-6)
    assert curve[2] == pytest.approx(100.0, abs=1e-4)
    # truth-free: sigma_inf = 0, so the fully mixed particle scores below 100 (the paper's underestimate)
    free = paper_alloying_curve([first, half, last])
    assert free[0] == pytest.approx(0.0) and 0 < free[2] < 100


def test_paper_alloying_refuses_mismatched_inputs():
    core_shell = _cube(value=0.3)
    core_shell[6:10, 6:10, 6:10] = 1.0
    with pytest.raises(InputError, match="fewer time points"):
        paper_alloying_curve([core_shell, core_shell], truth=[core_shell])
    with pytest.raises(InputError, match="undefined"):  # a uniform particle is already fully mixed
        paper_alloying_curve([_cube()], truth=[_cube()])
    with pytest.raises(InputError, match="empty"):
        paper_alloying_curve([])


def test_redistribution_curve_accumulates_gained_and_lost_volume():
    a = _cube()
    b = np.roll(a, 1, axis=2)  # one slab of 64 voxels gained, one lost
    c = b.copy()
    series = VolumeSeries(np.stack([a, b, c]), voxel_size=0.5)
    curve = redistribution_curve(series, voxel_size=0.5)
    assert np.allclose(curve["gained_nm3"], [0, 64 * 0.125, 64 * 0.125])
    assert np.allclose(curve["lost_nm3"], [0, 64 * 0.125, 64 * 0.125])
    assert np.allclose(curve["total_nm3"], [0, 16.0, 16.0])
    signed = redistribution_map(a, b)
    assert (signed == 1).sum() == 64 and (signed == -1).sum() == 64
    with pytest.raises(InputError, match="at least 2"):
        redistribution_curve(a[None])


def test_intensity_histograms_per_volume():
    a, b = _cube(value=0.5), _cube(value=1.0)
    h = intensity_histograms(np.stack([a, b]), bins=4, value_range=(0, 1), density=False)
    assert h["counts"].shape == (2, 4)
    assert h["counts"][0].tolist() == [16**3 - 512, 0, 512, 0]
    assert h["counts"][1].tolist() == [16**3 - 512, 0, 0, 512]
    assert h["mean"][1] == pytest.approx(512 / 16**3)
    with pytest.raises(InputError, match="bins"):
        intensity_histograms(np.stack([a]), bins=1)


def test_evaluate_adds_the_scenarios_quantities_and_truth_free_ones(tmp_path):
    import json

    from cli_helpers import invoke

    sim = tmp_path / "sim"
    assert invoke("simulate", "nanorod-alloying", "--out", sim, "--size", 16, "--steps", 7).exit_code == 0
    result = invoke("evaluate", sim / "truth.h5", "--truth", sim / "truth.h5", "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())["result"]
    assert metrics["paper_ssim_worst"] == pytest.approx(1.0)
    assert metrics["paper_rmse_worst"] == 0.0
    np.testing.assert_allclose(metrics["paper_alloying"], metrics["paper_alloying_truth"])
    assert metrics["paper_alloying_error_worst"] == 0.0
    free = invoke("evaluate", sim / "truth.h5", "--out", tmp_path / "f")
    assert free.exit_code == 0, free.output
    assert "truth-free" in free.stdout
    values = json.loads((tmp_path / "f" / "metrics.json").read_text())["result"]
    assert values["paper_alloying"][0] == pytest.approx(0.0) and values["paper_alloying"][-1] > 0
    assert values["redistribution_nm3"][0] == 0.0
    assert np.shape(values["histograms"]) == (7, 64) and len(values["histogram_edges"]) == 65
    assert "paper_ssim" not in values


def test_evaluate_refuses_a_scenario_without_truth(tmp_path):
    from cli_helpers import assert_input_error, invoke

    sim = tmp_path / "sim"
    assert invoke("simulate", "nanoshell-damage", "--out", sim, "--size", 16, "--steps", 3).exit_code == 0
    assert_input_error(invoke("evaluate", sim / "truth.h5", "--scenario", "nanoshell-damage", "--out", tmp_path / "e"),
                       "--scenario", "--truth")
    assert_input_error(invoke("evaluate", sim / "truth.h5", "--truth", sim / "truth.h5", "--scenario", "melting",
                              "--out", tmp_path / "e"), "--scenario 'melting'")


def test_redistribution_figure_is_written(tmp_path):
    from tomotime.sim import make_scenario
    from tomotime.viz.redistribution import plot_redistribution

    series = make_scenario("nanostar-retraction", 20, steps=6, seed=0)
    path = plot_redistribution(series, tmp_path / "redistribution.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
