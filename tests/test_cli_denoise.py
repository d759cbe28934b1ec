"""``tomotime denoise`` and ``tomotime order`` end to end on tiny movies, and their clear errors."""

from __future__ import annotations

import csv
import json

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
from cli_helpers import assert_input_error, invoke

from tomotime.denoise import load_neighbor2neighbor
from tomotime.io.movie import read_movie
from tomotime.models.plain_unet import PlainUNet
from tomotime.sim.insitu_movie import insitu_movie

TRAIN = ("--steps", 2, "--crop", 16, "--batch-size", 2, "--device", "cpu")


@pytest.fixture(scope="module")
def movie_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("movie")
    movie = insitu_movie(frames=8, size=24, dose=1.0, spacing=5.0, seed=0)
    np.save(folder / "movie.npy", movie.noisy.astype(np.uint16))
    return folder / "movie.npy"


def _no_nan(text: str) -> dict:
    def refuse(name):
        raise AssertionError(f"{name} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_denoise_udvd_writes_movie_model_run_and_summary(movie_file, tmp_path):
    out = tmp_path / "out"
    result = invoke("denoise", movie_file, "--out", out, *TRAIN)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"denoised.npy", "model.pt", "summary.json", "run", "report.html"}
    assert np.load(out / "denoised.npy").shape == (8, 24, 24)
    summary = _no_nan((out / "summary.json").read_text())
    assert summary["method"] == "udvd" and summary["training"]["steps"] == 2
    for when in ("before", "after"):
        q = summary["quality"][when]
        assert q["umse_ci"][0] <= q["umse"] <= q["umse_ci"][1] and q["level"] == 0.9
    assert set(summary["noise_correlation"]) == {"spatial_x", "spatial_y", "temporal", "temporal_lag2"}
    again = invoke("denoise", movie_file, "--out", out, *TRAIN)
    assert_input_error(again, "exists already")


@pytest.mark.parametrize("suffix", [".tif", ".mrc", ".h5"])
def test_gaussian_keeps_the_input_format(movie_file, tmp_path, suffix):
    data = np.load(movie_file).astype(np.float32)
    source = tmp_path / f"movie{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(source, data)
    elif suffix == ".h5":
        with h5py.File(source, "w") as f:
            f["images"] = data
    else:
        with mrcfile.new(source) as mrc:
            mrc.set_data(data)
    result = invoke("denoise", source, "--method", "gaussian", "--out", tmp_path / "g")
    assert result.exit_code == 0, result.output
    summary = _no_nan((tmp_path / "g" / "summary.json").read_text())
    assert summary["output"] == f"denoised{suffix}" and summary["gaussian"]["sigma_px"] > 0
    written = read_movie(tmp_path / "g" / summary["output"])[0]
    assert written.shape == data.shape


def test_denoise_writes_a_report_with_the_frames_and_the_upsnr(movie_file, tmp_path):
    result = invoke("denoise", movie_file, "--method", "gaussian", "--out", tmp_path / "g")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "g" / "report.html").read_text()
    assert 'id="frames"' in html and "noisy input" not in result.stderr
    assert html.count("data:image/png;base64,") >= 1 and "uPSNR" in html
    assert "missing" not in html.split('id="frames"')[0]  # no note about absent volumes or tilt series
    quiet = invoke("denoise", movie_file, "--method", "gaussian", "--out", tmp_path / "q", "--no-report")
    assert quiet.exit_code == 0 and not (tmp_path / "q" / "report.html").exists()


def test_single_frame_variant_and_3x3_blind_spot_run(movie_file, tmp_path):
    for method in ("single", "udvd-3x3"):
        result = invoke("denoise", movie_file, "--method", method, "--out", tmp_path / method, *TRAIN)
        assert result.exit_code == 0, result.output
        config = json.loads((tmp_path / method / "summary.json").read_text())["config"]
        assert (config["frames"], config["blind_spot"]) == ((1, "pixel") if method == "single" else (5, "3x3"))


def test_neighbor2neighbor_runs_as_a_method_and_its_model_reloads(movie_file, tmp_path):
    out = tmp_path / "n2n"
    result = invoke("denoise", movie_file, "--method", "n2n", "--out", out, *TRAIN)
    assert result.exit_code == 0, result.output
    summary = _no_nan((out / "summary.json").read_text())
    assert summary["method"] == "n2n" and summary["config"]["gamma"] == 2.0 and summary["training"]["steps"] == 2
    model, _ = load_neighbor2neighbor(out / "model.pt")
    assert isinstance(model, PlainUNet)
    assert_input_error(invoke("denoise", movie_file, "--method", "n2n", "--out", tmp_path / "p", "--preset", "paper"),
                       "--preset")
    assert_input_error(invoke("denoise", movie_file, "--method", "n2n", "--out", tmp_path / "c", "--crop", 20),
                       "multiple of 8")


def test_polyphase_upsnr_is_reported_beside_the_temporal_one(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    clean = 20.0 + np.sin(yy / 10.0) * np.cos(xx / 12.0)  # smooth on the pixel scale, as polyphase needs
    source = tmp_path / "movie.npy"
    np.save(source, (clean + rng.standard_normal((12, 32, 32))).astype(np.float32))  # noise variance 1
    result = invoke("denoise", source, "--method", "gaussian", "--out", tmp_path / "g", "--no-report")
    assert result.exit_code == 0, result.output
    assert "polyphase" in result.output
    quality = _no_nan((tmp_path / "g" / "summary.json").read_text())["quality"]
    poly = quality["polyphase"]
    assert poly["before"]["umse"] == pytest.approx(1.0, abs=0.15)  # the raw component's error: the noise variance
    assert poly["after"]["umse"] < poly["before"]["umse"]
    assert poly["after"]["umse_ci"][0] <= poly["after"]["umse"] <= poly["after"]["umse_ci"][1]
    assert "polyphase" in poly["after"]["references"] and poly["after"]["level"] == 0.9
    assert quality["before"]["umse"] == pytest.approx(1.0, abs=0.15)  # the temporal estimate agrees


def test_bad_movies_are_refused_before_training(tmp_path):
    np.save(tmp_path / "short.npy", np.ones((3, 16, 16), dtype=np.float32))
    assert_input_error(invoke("denoise", tmp_path / "short.npy", "--out", tmp_path / "o", *TRAIN),
                       "at least 5", "--method single")
    nan = np.ones((6, 16, 16), dtype=np.float32)
    nan[2, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    assert_input_error(invoke("denoise", tmp_path / "nan.npy", "--out", tmp_path / "o", *TRAIN), "frames 2")
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((16, 16, 3), dtype=np.uint8), photometric="rgb")
    assert_input_error(invoke("denoise", tmp_path / "rgb.tif", "--out", tmp_path / "o", *TRAIN), "RGB")
    assert_input_error(invoke("denoise", tmp_path / "short.npy", "--method", "gaussian", "--steps", 3,
                              "--out", tmp_path / "o"), "no training options")
    assert not (tmp_path / "o").exists()


def _polygon(path, points):
    path.write_text(json.dumps({"polygon": points}))
    return path


def test_order_writes_alps_csv_plot_and_summary(movie_file, tmp_path):
    roi = _polygon(tmp_path / "roi.json", [[6.5, 8.5], [18.5, 8.5], [18.5, 17.5], [6.5, 17.5]])
    vac = _polygon(tmp_path / "vac.json", [[0.5, 0.5], [22.5, 0.5], [22.5, 6.5], [0.5, 6.5]])
    result = invoke("order", movie_file, "--roi", roi, "--vacuum", vac, "--out", tmp_path / "o", "--n-sim", 9)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "o" / "alps.csv")))
    assert len(rows) == 8 and set(rows[0]) == {"frame", "alps", "alps_star", "p_value", "significant"}
    assert (tmp_path / "o" / "order.png").stat().st_size > 1000
    summary = _no_nan((tmp_path / "o" / "summary.json").read_text())
    assert summary["roi_pixels"] == 12 * 9 and summary["beta"]["source"].startswith("calibrated")
    paper = invoke("order", movie_file, "--roi", roi, "--vacuum", vac, "--out", tmp_path / "p", "--n-sim", 9,
                   "--beta", "paper")
    assert paper.exit_code == 0 and json.loads((tmp_path / "p" / "summary.json").read_text())["beta"]["b0"] == -5.08


@pytest.mark.parametrize("roi,vacuum,fragment", [
    ([[1, 1], [40, 1], [5, 9]], [[0.5, 0.5], [22.5, 0.5], [22.5, 4.5], [0.5, 4.5]], "outside the 24 x 24 px frame"),
    ([[1, 1], [9, 9], [9, 1], [1, 9]], [[0.5, 0.5], [22.5, 0.5], [22.5, 4.5], [0.5, 4.5]], "intersects itself"),
    ([[6.5, 8.5], [18.5, 8.5], [18.5, 17.5]], [[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]], "Poisson null"),
])
def test_order_refuses_bad_regions(movie_file, tmp_path, roi, vacuum, fragment):
    result = invoke("order", movie_file, "--roi", _polygon(tmp_path / "r.json", roi),
                    "--vacuum", _polygon(tmp_path / "v.json", vacuum), "--out", tmp_path / "o", "--n-sim", 3)
    assert_input_error(result, fragment)
    assert not (tmp_path / "o").exists()


def test_a_vendor_movie_is_denoised_into_tiff(real_data, tmp_path):
    source = real_data / "formats" / "tia_ser" / "03_Scanning_Preview.emi"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    pytest.importorskip("rsciio")
    result = invoke("denoise", source, "--method", "gaussian", "--out", tmp_path / "g")
    assert result.exit_code == 0, result.output
    assert read_movie(tmp_path / "g" / "denoised.tif")[0].shape == (5, 128, 128)


def test_a_single_frame_is_denoised_without_a_upsnr(tmp_path):
    np.save(tmp_path / "one.npy", np.random.default_rng(0).poisson(3.0, (1, 16, 16)).astype(np.float32))
    result = invoke("denoise", tmp_path / "one.npy", "--method", "single", "--holdout", 0, "--out", tmp_path / "o",
                    *TRAIN)
    assert result.exit_code == 0, result.output
    summary = _no_nan((tmp_path / "o" / "summary.json").read_text())
    assert summary["quality"]["after"]["upsnr"] is None and "too few" in summary["quality"]["after"]["note"]


def test_noise_correlated_between_frames_moves_the_temporal_references_one_frame_out(tmp_path):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:24, 0:24]
    clean = 20.0 + 3.0 * np.sin(yy / 4.0) * np.cos(xx / 5.0)
    e = rng.standard_normal((17, 24, 24))
    source = tmp_path / "lagged.npy"
    np.save(source, (clean + e[1:] + e[:-1]).astype(np.float32))  # consecutive frames share noise (0.5)
    result = invoke("denoise", source, "--method", "gaussian", "--out", tmp_path / "g", "--no-report")
    assert result.exit_code == 0, result.output
    summary = _no_nan((tmp_path / "g" / "summary.json").read_text())
    assert summary["noise_correlation"]["temporal"] > 0.3
    assert "skipping 1 more" in summary["quality"]["before"]["references"]
    assert summary["quality"]["before"]["umse"] == pytest.approx(2.0, rel=0.15)  # the noise variance, unbiased
