"""Alignment methods on simulated series with known shifts, axis rotations and affine maps."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.physics import VolumeProjector
from tomotime.preprocess.align import align_chain, alignment_xf, AlignmentFailed
from tomotime.preprocess.align_affine import align_affine
from tomotime.preprocess.align_axis import align_axis
from tomotime.preprocess.align_com import align_com
from tomotime.preprocess.align_projection import align_projection
from tomotime.preprocess.align_xcorr import align_xcorr
from tomotime.preprocess.alignment import AlignmentWarning, gauge_free_shift_error
from tomotime.preprocess.register import map_matrix, register_image, warp_image
from tomotime.sim.phantoms import make_phantom


def misalign(image, rotation, shift_y, shift_x):
    """The pose model with cubic interpolation: ideal rotated by ``rotation`` (deg), then shifted (px)."""
    psi = np.deg2rad(rotation)
    m = np.array([[np.cos(psi), -np.sin(psi)], [np.sin(psi), np.cos(psi)]])
    centre = (np.array(image.shape) - 1) / 2
    return ndimage.affine_transform(image, m, offset=centre - m @ (centre + [shift_y, shift_x]), order=3)


def simulate(*, n=25, size=40, rotation=0.0, max_shift=4.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    inner = make_phantom("shepp-logan", 18)
    volume = np.zeros((size,) * 3, np.float32)
    o = (size - 18) // 2
    volume[o:o + 18, o:o + 18, o:o + 18] = inner
    angles = np.linspace(-60, 60, n)
    with torch.no_grad():
        ideal = VolumeProjector(angles, volume.shape).forward(torch.from_numpy(volume)).numpy()
    poses = np.zeros((n, 4))
    poses[:, 0] = rotation
    poses[:, 2:] = rng.uniform(-max_shift, max_shift, (n, 2))
    measured = np.stack([misalign(im, rotation, p[2], p[3]) for im, p in zip(ideal, poses)])
    measured += noise * ideal.max() * rng.standard_normal(measured.shape)
    return TiltSeries(measured.astype(np.float32), angles), poses


@pytest.fixture(scope="module")
def shifted():
    return simulate()


@pytest.mark.parametrize("mode", ["sequential", "cumulative"])
def test_xcorr_recovers_known_shifts(shifted, mode):
    series, truth = shifted
    aligned = align_xcorr(series, mode=mode)
    assert gauge_free_shift_error(aligned.poses, truth, series.angles)["rms_y_px"] < 0.2
    assert gauge_free_shift_error(aligned.poses, truth, series.angles)["rms_px"] < 1.0
    assert aligned.metadata["alignment"][-1]["method"] == "xcorr"
    assert series.poses is None  # pure: the input is untouched


def test_xcorr_pure_translation_of_one_image_is_exact():
    rng = np.random.default_rng(3)
    image = ndimage.gaussian_filter(rng.random((48, 48)), 2)
    moved = ndimage.shift(image, (2.25, -3.5), order=3)
    series = TiltSeries(np.stack([image, moved]), [0.0, 0.0])
    poses = align_xcorr(series, stretch=False, reference=0).poses
    np.testing.assert_allclose(poses[1, 2:], [2.25, -3.5], atol=0.1)
    np.testing.assert_allclose(poses[0, 2:], 0, atol=1e-9)


def test_centre_of_mass_is_exact_up_to_an_object_translation(shifted):
    series, truth = shifted
    error = gauge_free_shift_error(align_com(series).poses, truth, series.angles)
    assert error["rms_px"] < 0.1


def test_projection_matching_refines_xcorr(shifted):
    series, truth = shifted
    coarse = align_xcorr(series)
    fine = align_projection(coarse, rounds=4, iterations=20)
    before = gauge_free_shift_error(coarse.poses, truth, series.angles)["rms_px"]
    after = gauge_free_shift_error(fine.poses, truth, series.angles)["rms_px"]
    assert after < 0.3 and after < before


def test_axis_rotation_known_angle_with_known_shifts():
    series, truth = simulate(rotation=3.0, max_shift=2.0, seed=1)
    start = truth.copy()
    start[:, 0] = 0.0  # right shifts, axis not yet turned
    found = align_axis(replace(series, poses=start)).poses[0, 0]
    assert found == pytest.approx(3.0, abs=0.5)


def test_axis_rotation_of_scattered_particles_after_shift_alignment():
    size, n, rotation = 48, 31, -3.0
    rng = np.random.default_rng(4)
    z, y, x = np.mgrid[:size, :size, :size] - (size - 1) / 2
    volume = np.zeros((size,) * 3, np.float32)
    for cz, cy, cx in rng.uniform(-10, 10, (6, 3)):
        volume[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 < 6.25] = 1.0
    angles = np.linspace(-60, 60, n)
    with torch.no_grad():
        ideal = VolumeProjector(angles, volume.shape).forward(torch.from_numpy(volume)).numpy()
    shifts = rng.uniform(-4, 4, (n, 2))
    measured = np.stack([misalign(im, rotation, *d) for im, d in zip(ideal, shifts)])
    measured += 0.01 * ideal.max() * rng.standard_normal(measured.shape)
    series = align_projection(align_xcorr(TiltSeries(measured, angles)), rounds=2, iterations=20)
    assert align_axis(series).poses[0, 0] == pytest.approx(rotation, abs=0.5)


def test_register_known_affine_map():
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((48, 48)), 2.5)
    image[:6], image[-6:], image[:, :6], image[:, -6:] = 0, 0, 0, 0
    m, t = map_matrix("affine", [1.5, -2.0, 0.04, -0.03, 0.05])
    inverse = np.linalg.inv(m)
    moved = warp_image(image, inverse, -inverse @ t, order=3)  # image(q) = moved(m q + t)
    found_m, found_t, residual = register_image(moved, image, model="affine", smooth=0)
    np.testing.assert_allclose(found_m, m, atol=0.01)
    np.testing.assert_allclose(found_t, t, atol=0.1)
    assert residual < 0.15  # linear interpolation of the warp


def test_affine_self_consistency_lowers_the_residual(shifted):
    series, _ = shifted
    result = align_affine(align_xcorr(series), rounds=2, iterations=10)
    step = result.metadata["alignment"][-1]
    assert step["method"] == "affine" and result.poses is None
    assert step["residual_per_round"][-1] <= step["residual_per_round"][0]
    assert alignment_xf(result).shape == (len(series), 6)


@pytest.mark.parametrize("method", [align_xcorr, align_com, align_axis, align_projection, align_affine])
def test_flat_images_warn_and_leave_the_series_unchanged(method):
    series = TiltSeries(np.ones((5, 16, 16), np.float32), np.linspace(-40, 40, 5))
    with pytest.warns(AlignmentWarning, match="flat"):
        assert method(series) is series


@pytest.mark.parametrize("method", [align_xcorr, align_axis, align_projection, align_affine])
def test_a_single_view_warns_and_leaves_the_series_unchanged(method):
    series = TiltSeries(np.random.default_rng(0).random((1, 16, 16)), [0.0])
    with pytest.warns(AlignmentWarning):
        assert method(series) is series


def test_chain_raises_on_failure_and_rejects_unknown_steps(shifted):
    flat = TiltSeries(np.zeros((4, 16, 16), np.float32), np.linspace(-30, 30, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AlignmentFailed, match="flat"):
            align_chain(flat, ["xcorr"])
    with pytest.raises(InputError, match="expected one or more of"):
        align_chain(shifted[0], ["sharpen"])
    with pytest.raises(InputError, match="last"):
        align_chain(shifted[0], ["affine", "xcorr"])
    with pytest.raises(InputError, match="mode"):
        align_xcorr(shifted[0], mode="sideways")


def test_alignment_steps_run_in_a_recipe_and_the_command_writes_resampled_images(shifted, tmp_path):
    from cli_helpers import invoke

    from tomotime.io import read_tilt_series, write_tilt_series
    from tomotime.preprocess import apply_recipe, parse_recipe
    from tomotime.preprocess.alignment import resampled

    series, _ = shifted
    recipe = parse_recipe({"steps": [{"align_xcorr": {"mode": "cumulative"}}, "align_com"]})
    by_recipe = apply_recipe(series, recipe)
    direct = align_com(align_xcorr(series, mode="cumulative"))
    np.testing.assert_allclose(by_recipe.poses, direct.poses)
    src = write_tilt_series(tmp_path / "in.mrc", series)
    result = invoke("preprocess", src, "--out", tmp_path / "out", "--step", "align_xcorr:mode=cumulative",
                    "--step", "align_com")
    assert result.exit_code == 0, result.output
    written = read_tilt_series(tmp_path / "out" / "series.mrc").images
    np.testing.assert_allclose(written, resampled(direct).images, atol=1e-4)
    assert not np.allclose(written, series.images, atol=1e-2)
