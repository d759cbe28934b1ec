"""Commands of rapid STEM tomography: train-filter, denoise --method unet, calibrate-distortion, correct."""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import assert_input_error, invoke
from tomotime.io.angles import write_angles
from tomotime.rapid.distortion import save_calibration
from tomotime.rapid.simulate import calibration_pair


def _pairs(path, n=4, size=32, swap=False):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    clean = np.stack([1 - 0.5 * np.exp(-((xx - 8 - 4 * k) ** 2) / 3.0) for k in range(n)]).astype(np.float32)
    noisy = clean + 0.1 * rng.normal(size=clean.shape).astype(np.float32)
    a, b = (clean, noisy) if swap else (noisy, clean)
    np.savez(path, noisy=a, reference=b)
    return path


def test_train_filter_then_denoise_with_unet(tmp_path):
    pairs = _pairs(tmp_path / "pairs.npz")
    model = tmp_path / "model.pt"
    result = invoke("train-filter", pairs, "--out", model, "--steps", 4, "--width", 4, "--depth", 2, "--patch", 16,
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert model.exists()
    series = tmp_path / "series.npy"
    np.save(series, np.load(pairs)["noisy"])
    result = invoke("denoise", series, "--method", "unet", "--model", model, "--out", tmp_path / "out",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["method"] == "unet"
    assert np.load(tmp_path / "out" / "denoised.npy").shape == (4, 32, 32)


def test_train_filter_bad_pairs(tmp_path):
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.npz"
    np.savez(bad, noisy=rng.random((3, 16, 16)), reference=rng.random((2, 16, 16)))
    assert_input_error(invoke("train-filter", bad, "--out", tmp_path / "m.pt"), "3 noisy images but 2 references")
    np.savez(bad, noisy=rng.random((3, 16, 16)))
    assert_input_error(invoke("train-filter", bad, "--out", tmp_path / "m.pt"), "no array(s) reference")
    swapped = _pairs(tmp_path / "swapped.npz", swap=True)
    result = invoke("train-filter", swapped, "--out", tmp_path / "m.pt", "--steps", 2, "--width", 4, "--depth", 2,
                    "--patch", 16, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "not cleaner" in result.stderr


def test_denoise_unet_needs_a_model(tmp_path):
    series = tmp_path / "s.npy"
    np.save(series, np.ones((3, 16, 16), np.float32))
    assert_input_error(invoke("denoise", series, "--method", "unet", "--out", tmp_path / "o"), "needs --model")


def test_calibrate_and_correct(tmp_path):
    fast, slow = calibration_pair((64, 64), noise=None)
    np.save(tmp_path / "fast.npy", fast)
    np.save(tmp_path / "slow.npy", slow)
    calib = tmp_path / "calib.npz"
    result = invoke("calibrate-distortion", tmp_path / "fast.npy", tmp_path / "slow.npy", "--out", calib)
    assert result.exit_code == 0, result.output
    rng = np.random.default_rng(0)
    series = tmp_path / "series.npy"
    np.save(series, (1 + 0.01 * rng.normal(size=(6, 64, 64))).astype(np.float32))
    write_angles(tmp_path / "series.tlt", np.linspace(-50, 50, 6))
    result = invoke("correct", series, "--distortion", calib, "--track-angles", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "0 feature(s) tracked" in result.stderr and "keeping the nominal angles" in result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["tracking"]["fallback_to_nominal"] is True
    assert np.allclose(np.loadtxt(tmp_path / "out" / "angles.tlt"), np.linspace(-50, 50, 6))


def test_correct_bad_input(tmp_path):
    series = tmp_path / "series.npy"
    np.save(series, np.ones((5, 32, 48), np.float32))
    write_angles(tmp_path / "series.tlt", [-20, -10, 0, -5, 20])
    assert_input_error(invoke("correct", series, "--track-angles", "--out", tmp_path / "o"),
                       "not monotonic at frame 3")
    calib = save_calibration(tmp_path / "calib.npz", np.zeros((64, 64), np.float32))
    assert_input_error(invoke("correct", series, "--distortion", calib, "--out", tmp_path / "o"),
                       "calibration for 64 x 64 px frames, but the series has 32 x 48 px frames")
    assert_input_error(invoke("correct", series, "--out", tmp_path / "o"), "nothing to do")
