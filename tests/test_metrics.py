"""Image, resolution, shape and alloying metrics against hand counts and scikit-image."""

from dataclasses import asdict

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tomotime.errors import InputError
from tomotime.metrics import (
    alloying_curve,
    alloying_percentage,
    fourier_shell_correlation,
    fsc_resolution,
    otsu_mask,
    otsu_threshold,
    particle_std,
    psnr,
    rmse_percent,
    ssim,
    surface_to_volume,
    volume_redistribution,
)


def _pair(shape, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    truth = rng.random(shape)
    return truth + noise * rng.standard_normal(shape), truth


def _cube(n, lo, hi, shift=(0, 0, 0)):
    v = np.zeros((n, n, n))
    sl = tuple(slice(lo + s, hi + s) for s in shift)
    v[sl] = 1.0
    return v


# --- RMSE / SSIM / PSNR ------------------------------------------------------------

def test_rmse_percent_hand_computed():
    truth = np.array([[0.0, 1.0], [2.0, 4.0]])
    recon = truth + np.array([[1.0, 0.0], [0.0, -1.0]])
    assert rmse_percent(recon, truth) == pytest.approx(100 * np.sqrt(0.5) / 4)
    mask = np.array([[True, False], [False, False]])
    assert rmse_percent(recon, truth, mask=mask) == pytest.approx(25.0)
    assert rmse_percent(truth, truth) == 0.0


def test_rmse_scales_with_truth_range_not_recon():
    recon, truth = _pair((8, 8, 8))
    assert rmse_percent(3 * recon, 3 * truth) == pytest.approx(rmse_percent(recon, truth))
    assert rmse_percent(recon + 5, truth + 5) == pytest.approx(rmse_percent(recon, truth))


@pytest.mark.parametrize("shape", [(12, 14, 16), (32, 24)])
def test_ssim_equals_skimage_unmasked(shape):
    recon, truth = _pair(shape, seed=1)
    rng = truth.max() - truth.min()
    expected = structural_similarity(recon, truth, data_range=rng)
    assert ssim(recon, truth) == pytest.approx(expected, rel=1e-12)
    assert ssim(recon, truth, data_range=2.0) == pytest.approx(
        structural_similarity(recon, truth, data_range=2.0), rel=1e-12)
    assert ssim(truth, truth) == pytest.approx(1.0)


def test_ssim_masked_is_mean_of_full_map_inside_mask():
    recon, truth = _pair((12, 12, 12), seed=2, noise=0.3)
    _, smap = structural_similarity(recon, truth, data_range=truth.max() - truth.min(), full=True)
    mask = np.zeros(truth.shape, bool)
    mask[2:6, 3:9, 4:10] = True
    assert ssim(recon, truth, mask=mask) == pytest.approx(smap[mask].mean(), rel=1e-12)
    assert ssim(recon, truth, mask=np.ones_like(mask)) == pytest.approx(smap.mean(), rel=1e-12)


def test_psnr_equals_skimage_and_matches_rmse():
    recon, truth = _pair((10, 12, 14), seed=3)
    rng = truth.max() - truth.min()
    assert psnr(recon, truth) == pytest.approx(peak_signal_noise_ratio(truth, recon, data_range=rng), rel=1e-12)
    assert psnr(recon, truth, data_range=1.7) == pytest.approx(
        peak_signal_noise_ratio(truth, recon, data_range=1.7), rel=1e-12)
    mask = truth > 0.5
    assert psnr(recon, truth, mask=mask) == pytest.approx(20 * np.log10(100 / rmse_percent(recon, truth, mask=mask)))
    assert psnr(truth, truth) == float("inf")


def test_metrics_accept_torch_tensors():
    recon, truth = _pair((9, 9, 9), seed=4)
    mask = truth > 0.3
    rt, tt, mt = torch.from_numpy(recon).float(), torch.from_numpy(truth).float(), torch.from_numpy(mask)
    r32, t32 = recon.astype(np.float32), truth.astype(np.float32)
    assert rmse_percent(rt, tt, mask=mt) == pytest.approx(rmse_percent(r32, t32, mask=mask), rel=1e-12)
    assert ssim(rt, tt) == pytest.approx(ssim(r32, t32), rel=1e-12)


@pytest.mark.parametrize("metric", [rmse_percent, ssim, psnr])
def test_bad_input_raises_naming_argument(metric):
    recon, truth = _pair((8, 8, 8))
    with pytest.raises(InputError, match="shape"):
        metric(recon[:-1], truth)
    bad = recon.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(InputError, match=r"recon: holds NaN or Inf .*\(1, 2, 3\)"):
        metric(bad, truth)
    bad = truth.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="truth: holds NaN or Inf"):
        metric(recon, bad)
    with pytest.raises(InputError, match="mask: has shape"):
        metric(recon, truth, mask=np.ones((8, 8, 7), bool))
    with pytest.raises(InputError, match="mask: selects no voxels"):
        metric(recon, truth, mask=np.zeros((8, 8, 8), bool))
    with pytest.raises(InputError, match="mask: expected a boolean"):
        metric(recon, truth, mask=np.ones((8, 8, 8)))
    with pytest.raises(InputError, match="truth: is constant"):
        metric(recon, np.ones((8, 8, 8)))
    with pytest.raises(InputError, match="recon: expected a 2-D or 3-D"):
        metric(recon[None], truth[None])


def test_ssim_refuses_volumes_smaller_than_window():
    recon, truth = _pair((6, 16, 16))
    with pytest.raises(InputError, match="SSIM needs every side >= 7"):
        ssim(recon, truth)


def test_otsu_mask_finds_object_and_margin_grows_it():
    rng = np.random.default_rng(5)
    cube = _cube(16, 4, 10)
    np.testing.assert_array_equal(otsu_mask(3 * cube + 1), cube > 0)
    noisy = cube + 0.05 * rng.standard_normal(cube.shape)
    assert otsu_threshold(noisy) == threshold_otsu(noisy)
    assert (otsu_mask(noisy) != (cube > 0)).mean() < 1e-3  # at most a stray voxel of the noisy background
    core_shell = 0.3 * _cube(16, 2, 14) + 0.7 * cube  # a multi-level particle is segmented as a whole
    np.testing.assert_array_equal(otsu_mask(core_shell), core_shell > 0)
    point = np.zeros((9, 9, 9))
    point[4, 4, 4] = 1.0
    assert otsu_mask(point).sum() == 1
    assert otsu_mask(point, margin=1).sum() == 7  # the voxel and its 6 face neighbours
    assert otsu_mask(point, margin=2).sum() == 33  # Euclidean ball of radius 2
    with pytest.raises(InputError, match="margin"):
        otsu_mask(point, margin=-1)


# --- Fourier shell correlation ---------------------------------------------------------

def test_fsc_of_volume_with_itself_is_one():
    a, _ = _pair((16, 16, 16), seed=6)
    freq, fsc = fourier_shell_correlation(a, a, voxel_size=0.5)
    assert freq.shape == fsc.shape == (8,)
    assert freq[-1] == pytest.approx(1.0)  # Nyquist = 1 / (2 * 0.5 nm)
    np.testing.assert_allclose(fsc, 1.0, atol=1e-12)
    _, fsc_scaled = fourier_shell_correlation(a, -3 * a)
    np.testing.assert_allclose(fsc_scaled, -1.0, atol=1e-12)


def test_fsc_of_independent_noise_is_near_zero():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 32, 32, 32))
    _, fsc = fourier_shell_correlation(a, b)
    assert np.abs(fsc[3:]).max() < 0.35
    assert np.abs(fsc).mean() < 0.08


@pytest.mark.parametrize("shape", [(10, 16), (10, 15), (8, 9, 11)])
def test_fsc_half_spectrum_matches_full_spectrum(shape):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((2, *shape))
    b = 0.5 * a + b
    freq, fsc = fourier_shell_correlation(a, b, voxel_size=2.0, n_bins=4)
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    r = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.fft.fftfreq(n, d=2.0) for n in shape], indexing="ij")))
    shell = np.rint(r / (0.25 / 4)).astype(int)
    expected = []
    for k in range(1, 5):
        s = shell == k
        num = np.sum(fa[s] * fb[s].conj()).real
        expected.append(num / np.sqrt(np.sum(np.abs(fa[s]) ** 2) * np.sum(np.abs(fb[s]) ** 2)))
    np.testing.assert_allclose(freq, 0.0625 * np.arange(1, 5))
    np.testing.assert_allclose(fsc, expected, rtol=1e-10)


def test_fsc_resolution_finds_known_cutoff():
    n, vs = 32, 2.0
    rng = np.random.default_rng(9)
    step = 0.5 / vs / (n // 2)
    f_cut = 8.5 * step  # between shells 8 and 9
    r = np.sqrt(sum(g**2 for g in np.meshgrid(*[np.fft.fftfreq(n, d=vs)] * 3, indexing="ij")))
    low = r < f_cut

    def filtered(keep):
        return np.fft.ifftn(np.fft.fftn(rng.standard_normal((n, n, n))) * keep).real

    signal = filtered(low)
    a, b = signal + filtered(~low), signal + filtered(~low)
    freq, fsc = fourier_shell_correlation(a, b, voxel_size=vs)
    assert fsc[:8].min() > 0.99 and np.abs(fsc[8:]).max() < 0.2
    res = fsc_resolution(freq, fsc)
    assert abs(1 / res - f_cut) < step
    assert 1 / res > 8 * step


def test_fsc_resolution_interpolates_and_flags_no_crossing():
    freq = np.array([0.1, 0.2, 0.3, 0.4])
    f_cross = 0.2 + (0.5 - 0.143) / (0.5 - 0.1) * 0.1
    assert fsc_resolution(freq, [1.0, 0.5, 0.1, 0.0]) == pytest.approx(1 / f_cross)
    assert fsc_resolution(freq, [1.0, 0.9, np.nan, 0.0], threshold=0.5) == pytest.approx(1 / (0.2 + 0.4 / 0.9 * 0.2))
    assert np.isnan(fsc_resolution(freq, [1.0, 0.9, 0.8, 0.7]))
    assert fsc_resolution(freq, [0.1, 0.9, 0.8, 0.0]) == float("inf")
    with pytest.raises(InputError, match="freq has 4 values but fsc has 3"):
        fsc_resolution(freq, [1.0, 0.5, 0.1])
    with pytest.raises(InputError, match="threshold"):
        fsc_resolution(freq, [1.0, 0.5, 0.1, 0.0], threshold=1.5)


def test_fsc_refuses_bad_input():
    a, b = _pair((8, 8, 8))
    with pytest.raises(InputError, match="shape"):
        fourier_shell_correlation(a, b[1:])
    b[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="b: holds NaN"):
        fourier_shell_correlation(a, b)
    with pytest.raises(InputError, match="voxel_size"):
        fourier_shell_correlation(a, a, voxel_size=0)


# --- Morphology ----------------------------------------------------------------------

@pytest.mark.parametrize("side", [3, 4, 6])
def test_surface_to_volume_of_cube(side):
    vol = _cube(12, 3, 3 + side)
    assert surface_to_volume(vol) == pytest.approx(6 / side)
    assert surface_to_volume(_cube(12, 0, side)) == pytest.approx(6 / side)  # touching the border
    assert surface_to_volume(vol * 5 + 1, threshold=3.0) == pytest.approx(6 / side)


def test_surface_to_volume_of_square_and_errors():
    img = np.zeros((10, 10))
    img[2:7, 3:8] = 1.0
    assert surface_to_volume(img) == pytest.approx(4 / 5)
    with pytest.raises(InputError, match="no voxel lies above"):
        surface_to_volume(img, threshold=2.0)
    with pytest.raises(InputError, match="volume: is constant"):
        surface_to_volume(np.ones((6, 6, 6)))


def test_volume_redistribution_of_shifted_cubes():
    a = _cube(16, 5, 11)
    b = _cube(16, 5, 11, shift=(0, 0, 2))
    red = volume_redistribution(a, b, voxel_size=0.5)
    assert (red.gained_voxels, red.lost_voxels) == (72, 72)  # two 6x6 slabs each way
    assert red.total_nm3 == pytest.approx(144 * 0.125)
    assert red.gained_nm3 == pytest.approx(72 * 0.125)
    assert 0 < red.threshold < 1
    grown = volume_redistribution(a, _cube(16, 4, 12), voxel_size=2.0)
    assert asdict(grown)["gained_voxels"] == 8**3 - 6**3 and grown.lost_voxels == 0
    assert grown.total_nm3 == pytest.approx((8**3 - 6**3) * 8.0)
    with pytest.raises(InputError, match="vol_a has shape"):
        volume_redistribution(a, b[1:])


# --- Alloying --------------------------------------------------------------------------

def _core_shell(n=16):
    c = np.mgrid[:n, :n, :n] - (n - 1) / 2
    r = np.sqrt((c**2).sum(0))
    particle = r < 6
    segregated = np.where(r < 3, 2.0, 0.0) + np.where(particle & (r >= 3), 1.0, 0.0)
    mixed = np.where(particle, segregated[particle].mean(), 0.0)
    return segregated, mixed, particle


def test_alloying_percentage_zero_initially_and_hundred_when_uniform():
    seg, mixed, particle = _core_shell()
    s0 = particle_std(seg, mask=particle)
    assert s0 > 0
    assert alloying_percentage(seg, mask=particle, sigma_initial=s0, sigma_mixed=0.0) == 0.0
    assert alloying_percentage(mixed, mask=particle, sigma_initial=s0, sigma_mixed=0.0) == pytest.approx(100.0)
    with pytest.raises(InputError, match="same spread"):
        alloying_percentage(seg, mask=particle, sigma_initial=s0, sigma_mixed=s0)


def test_alloying_curve_is_linear_in_blend():
    seg, mixed, particle = _core_shell()
    s = np.array([0.0, 0.25, 0.5, 1.0])
    series = np.stack([(1 - w) * seg + w * mixed for w in s])
    s_inf = particle_std(mixed, mask=particle)
    np.testing.assert_allclose(alloying_curve(series, sigma_mixed=s_inf), 100 * s, atol=1e-9)
    np.testing.assert_allclose(alloying_curve(iter(series), mask=particle, sigma_mixed=s_inf), 100 * s, atol=1e-9)
    with pytest.raises(InputError, match="sigma_mixed: must be given"):
        alloying_curve(series)
    with pytest.raises(InputError, match=r"volumes\[1\]: has shape"):
        alloying_curve([seg, seg[1:]], sigma_mixed=0.0)
