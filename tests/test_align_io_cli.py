"""IMOD .xf/.tlt and TomViz alignment files; the align and check commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import assert_input_error, invoke
from scipy import ndimage

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import FormatError, InputError
from tomotime.io import write_tilt_series
from tomotime.io.imod import (poses_to_xf, read_tlt, read_tomviz_alignment, read_xf, tomviz_poses, write_tlt,
                              write_xf, xf_to_poses)
from tomotime.metrics.consistency import fake_dynamics, view_consistency
from tomotime.preprocess.align_xcorr import align_xcorr
from tomotime.preprocess.poses import apply_poses
from test_align import simulate


def test_xf_round_trip_and_meaning(tmp_path):
    poses = np.array([[2.0, 0.0, 1.5, -3.0], [-4.0, 0.0, 0.0, 7.25], [0.0, 0.0, -2.0, 0.5]])
    path = write_xf(tmp_path / "a.xf", poses_to_xf(poses))
    np.testing.assert_allclose(xf_to_poses(read_xf(path, n_views=3)), poses, atol=1e-3)
    # The .xf maps a measured pixel (x, y) about the centre to its aligned place.
    image = np.zeros((41, 41), np.float32)
    image[24, 14] = 1.0  # ideal point at (x, y) = (-6, 4)
    measured = ndimage.shift(ndimage.rotate(image, -poses[0, 0], reshape=False, order=1), poses[0, 2:], order=1)
    assert np.allclose(apply_poses(measured[None], poses[:1])[0].argmax(), image.argmax())
    y, x = np.unravel_index(measured.argmax(), measured.shape)
    a11, a12, a21, a22, dx, dy = poses_to_xf(poses[:1])[0]
    px, py = x - 20, y - 20
    assert a11 * px + a12 * py + dx == pytest.approx(-6, abs=1.0)
    assert a21 * px + a22 * py + dy == pytest.approx(4, abs=1.0)


def test_xf_with_the_wrong_number_of_lines_or_bad_lines(tmp_path):
    path = write_xf(tmp_path / "a.xf", poses_to_xf(np.zeros((4, 4))))
    with pytest.raises(FormatError, match="4 transforms for a series of 5 views"):
        read_xf(path, n_views=5)
    bad = tmp_path / "bad.xf"
    bad.write_text("1 0 0 1 0\n")
    with pytest.raises(FormatError, match="line 1: expected six numbers"):
        read_xf(bad)
    with pytest.raises(InputError, match="not a rotation"):
        xf_to_poses([[1.1, 0, 0, 1, 0, 0]])
    tlt = write_tlt(tmp_path / "a.tlt", [-10, 0, 10])
    with pytest.raises(FormatError, match="3 angles for a series of 4"):
        read_tlt(tlt, n_views=4)


def test_tomviz_json_reader_rejects_other_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"offsets": [[1, 2], [3, 4]]}))
    np.testing.assert_array_equal(read_tomviz_alignment(path), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(tomviz_poses([[1, 2]])[0], [0, 0, 2, -1])
    path.write_text(json.dumps({"name": "x"}))
    with pytest.raises(FormatError, match="list of \\[x, y\\] offsets"):
        read_tomviz_alignment(path)


def test_tomviz_alignment_of_the_real_series_matches_cross_correlation(real_data):
    folder = real_data / "ncem_idp_fib_haadf"
    angles = np.loadtxt(folder / "haadf_tiltseries.rawtlt")
    offsets = read_tomviz_alignment(folder / "TomVizAlignments_21tilts.json")
    assert offsets.shape == (21, 2)
    reference = tomviz_poses(offsets[[int(round((a + 50) / 5)) for a in angles]])
    series = TiltSeries(np.load(folder / "haadf_tiltseries.npy")[:, ::2, ::2], angles)  # binned to 128 px
    ours = align_xcorr(series).poses.astype(np.float64) * [1, 1, 2, 2]
    diff = ours[:, 2:] - reference[:, 2:]
    diff -= diff.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(diff ** 2, axis=1))) < 1.5


@pytest.fixture(scope="module")
def misaligned_file(tmp_path_factory):
    series, _ = simulate(n=15, size=32, max_shift=3.0)
    path = tmp_path_factory.mktemp("align") / "series.mrc"
    write_tilt_series(path, series)
    return path


def test_align_command_writes_series_and_imod_files(tmp_path, misaligned_file):
    out = tmp_path / "al"
    result = invoke("align", misaligned_file, "-m", "xcorr,projection", "--rounds", 2, "--iterations", 10, "--out", out)
    assert result.exit_code == 0, result.output
    assert {"aligned.mrc", "alignment.xf", "alignment.tlt", "alignment.json"} <= {p.name for p in out.iterdir()}
    assert read_xf(out / "alignment.xf", n_views=15).shape == (15, 6)
    assert len(read_tlt(out / "alignment.tlt")) == 15
    again = invoke("align", misaligned_file, "-m", "xcorr", "--out", out)
    assert_input_error(again, "exists already")
    start = invoke("align", misaligned_file, "-m", "com", "--xf", out / "alignment.xf", "--out", tmp_path / "b")
    assert start.exit_code == 0, start.output


def test_align_command_bad_input(tmp_path, misaligned_file):
    assert_input_error(invoke("align", misaligned_file, "-m", "sharpen", "--out", tmp_path / "x"), "sharpen")
    short = write_xf(tmp_path / "short.xf", poses_to_xf(np.zeros((3, 4))))
    assert_input_error(invoke("align", misaligned_file, "--xf", short, "--out", tmp_path / "x"),
                       "3 transforms for a series of 15 views")
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((6, 16, 16), np.float32))
    (tmp_path / "flat.rawtlt").write_text("\n".join(str(a) for a in range(-30, 31, 12)))
    assert_input_error(invoke("align", flat, "-m", "xcorr", "--out", tmp_path / "y"), "flat", "unchanged")
    assert not (tmp_path / "y").exists()


def test_consistency_measures():
    rng = np.random.default_rng(0)
    volume = np.zeros((16, 16, 16), np.float32)
    volume[5:11, 4:12, 6:10] = 1.0
    angles = np.linspace(-60, 60, 9)
    from tomotime.metrics.reprojection import reproject

    static = VolumeSeries(volume[None])
    series = TiltSeries(np.zeros((9, 16, 16)) + 1e-3, angles)
    images = reproject(static, series)
    good = view_consistency(static, TiltSeries(images, angles))
    assert good["rmse_percent_mean"] < 1e-3 and good["ssim_mean"] > 0.999
    bad_images = images.copy()
    bad_images[4] = np.roll(bad_images[4], 3, axis=1)
    bad = view_consistency(static, TiltSeries(bad_images, angles))
    assert bad["worst_views"][0] == 4 and bad["rmse_percent"][4] > 5
    assert fake_dynamics(static) is None
    same = fake_dynamics(VolumeSeries(np.stack([volume] * 3)))
    assert same["change_percent_max"] == pytest.approx(0, abs=1e-9)
    changing = np.stack([volume * (1 + 0.1 * t) + 0.01 * rng.random(volume.shape) for t in range(3)])
    assert fake_dynamics(VolumeSeries(changing))["change_percent_max"] > 5


def test_check_command_on_a_tiny_run(tmp_path, misaligned_file):
    run = tmp_path / "run"
    made = invoke("reconstruct", misaligned_file, "-m", "sirt", "--iterations", 5, "--window", 8,
                  "--times", "3,10", "--out", run, "--device", "cpu", "--no-report")
    assert made.exit_code == 0, made.output
    result = invoke("check", run)
    assert result.exit_code == 0, result.output
    assert "worst views" in result.stdout and "change over time" in result.stdout
    report = json.loads((run / "check.json").read_text())
    method = next(iter(report["methods"].values()))
    assert len(method["views"]["rmse_percent"]) == 15 and method["dynamics"]["change_percent_max"] > 0
    assert (run / "check.png").stat().st_size > 1000
    assert_input_error(invoke("check", run), "exists already")
    assert_input_error(invoke("check", tmp_path / "nothing"), "not a folder")
