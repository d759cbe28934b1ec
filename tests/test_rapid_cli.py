"""Commands of rapid STEM tomography: train-filter, denoise --method unet, calibrate-distortion, correct,
reconstruct --row-angles, dislocations."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import torch

from cli_helpers import assert_input_error, invoke
from tomotime.io.angles import write_angles
from tomotime.physics import VolumeProjector
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


def test_sirt_with_row_angles_and_dislocations(tmp_path):
    rng = np.random.default_rng(1)
    volume = np.zeros((8, 6, 16), np.float32)
    volume[3:5, :, 4:12] = rng.random((2, 6, 8))
    angles = np.linspace(-60, 60, 9)
    series = tmp_path / "series.npy"
    np.save(series, VolumeProjector(angles, volume.shape).forward(torch.from_numpy(volume)).numpy())
    write_angles(tmp_path / "series.tlt", angles)
    same = tmp_path / "same_rows.npy"
    np.save(same, np.repeat(angles[:, None], 6, axis=1))
    common = ["-m", "sirt", "--thickness", "8", "--min", "0", "--iterations", "5", "--no-report", "--device", "cpu"]
    assert invoke("reconstruct", series, *common, "--out", tmp_path / "plain").exit_code == 0
    result = invoke("reconstruct", series, *common, "--row-angles", same, "--out", tmp_path / "rows")
    assert result.exit_code == 0, result.output
    with mrcfile.open(tmp_path / "plain" / "volume.mrc") as a, mrcfile.open(tmp_path / "rows" / "volume.mrc") as b:
        assert a.data.shape == (8, 6, 16) and a.data.max() > 0.1
        assert np.allclose(a.data, b.data, atol=1e-4)  # every row at its view's angle: the usual SIRT
    summary = json.loads((tmp_path / "rows" / "summary.json").read_text())
    assert summary["options"]["row_angles"] == str(same)
    np.save(tmp_path / "bad.npy", np.zeros((9, 5)))
    assert_input_error(invoke("reconstruct", series, *common, "--row-angles", tmp_path / "bad.npy",
                              "--out", tmp_path / "x"), "expected shape (9, 6)")
    assert_input_error(invoke("reconstruct", series, "-m", "fbp", "--row-angles", same, "--out", tmp_path / "x"),
                       "--row-angles applies to a single SIRT volume")

    lines = np.zeros((12, 10, 20), np.float32)
    lines[5, :, 4:16] = 1.0
    lines[7, 2:8, 14] = 1.0
    np.save(tmp_path / "ref.npy", lines)
    np.save(tmp_path / "moved.npy", np.roll(lines, 1, axis=0))
    result = invoke("dislocations", tmp_path / "moved.npy", "--reference", tmp_path / "ref.npy",
                    "--out", tmp_path / "dg.json")
    assert result.exit_code == 0, result.output
    assert "dGz: 1.000 px" in result.output and "twist about the tilt axis" in result.output
    dg = json.loads((tmp_path / "dg.json").read_text())
    assert dg["dGz"] == 1.0 and abs(dg["twist_deg"]) < 1e-6


def test_correct_writes_binarised_line_maps(tmp_path):
    series = tmp_path / "series.npy"
    frames = np.ones((4, 32, 32), np.float32)
    frames[:, :, 15:17] = 0.5  # a dark line
    np.save(series, frames)
    write_angles(tmp_path / "series.tlt", np.linspace(-30, 30, 4))
    calib = save_calibration(tmp_path / "calib.npz", np.zeros((32, 32), np.float32))
    result = invoke("correct", series, "--distortion", calib, "--binarise", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    binary = np.load(tmp_path / "out" / "binarised.npy")
    assert set(np.unique(binary)) == {0.0, 1.0} and binary[:, :, 15:17].all() and not binary[:, :, :10].any()
