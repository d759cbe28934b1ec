"""``tomotime reconstruct --method inr|inr4d`` through the command line: files, options, bad input, resume."""

from __future__ import annotations

import csv
import json

import h5py
import mrcfile
import numpy as np
import pytest
from cli_helpers import assert_input_error, invoke

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.io import write_tilt_series
from tomotime.recon.inr import load_model
from tomotime.sim import simulate_acquisition

FAST = ["--steps", 12, "--batch-size", 128, "--device", "cpu"]


def inr(series, out, *options):
    return invoke("reconstruct", series, "--method", "inr", "--out", out, *options)


@pytest.fixture(scope="module")
def blob(tmp_path_factory):
    """A 12 x 14 x 16 blob recorded at 9 angles, written as MRC + .rawtlt + .times."""
    z, y, x = np.meshgrid(np.arange(16) - 7.5, np.arange(14) - 6.5, np.arange(16) - 7.5, indexing="ij")
    vol = np.exp(-((z - 1) ** 2 + y ** 2 + (x + 2) ** 2) / 10).astype(np.float32)
    series = simulate_acquisition(VolumeSeries(np.repeat(vol[None], 9, 0)), angles=np.linspace(-60, 60, 9),
                                  shift_std=0.5, seed=1)
    folder = tmp_path_factory.mktemp("data")
    write_tilt_series(folder / "blob.mrc", series)
    write_tilt_series(folder / "two.mrc", series.select([0, 1]))
    write_tilt_series(folder / "flat.mrc", TiltSeries(series.images, np.full(9, 5.0)))
    return folder


@pytest.mark.filterwarnings("ignore:no common-line start for the tilt axis")  # a tiny blob cannot tell the axis
def test_inr_with_alignment_writes_every_result(blob, tmp_path):
    out = tmp_path / "out"
    result = inr(blob / "blob.mrc", out, "--align", *FAST)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"volume.mrc", "model.pt", "poses.csv", "poses.png", "alignment.xf", "alignment.tlt", "aligned.mrc",
            "reprojection.csv", "reprojection.png", "summary.json", "run"} <= names
    with mrcfile.open(out / "volume.mrc") as m:
        assert m.data.shape == (16, 14, 16)
    rows = list(csv.DictReader((out / "poses.csv").open()))
    assert len(rows) == 9 and set(rows[0]) == {"view", "angle_deg", "z1_deg", "z3_deg", "dy_px", "dx_px"}
    assert len((out / "alignment.xf").read_text().splitlines()) == 9
    assert [float(v) for v in (out / "alignment.tlt").read_text().split()] == pytest.approx(np.linspace(-60, 60, 9))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "inr" and summary["config"]["align"] and summary["training"]["steps"] == 12
    assert load_model(out / "model.pt").vol_shape == (16, 14, 16)
    # an existing result is kept unless --overwrite; --resume continues the run
    assert_input_error(inr(blob / "blob.mrc", out, *FAST), "exists already")
    again = inr(blob / "blob.mrc", out, "--align", *FAST[:1], 16, *FAST[2:], "--resume")
    assert again.exit_code == 0, again.output
    assert json.loads((out / "summary.json").read_text())["training"]["steps"] == 16


def test_inr4d_writes_a_volume_series(blob, tmp_path):
    out = tmp_path / "out"
    result = invoke("reconstruct", blob / "blob.mrc", "--method", "inr4d", "--out", out, "--times", "0,4,8",
                    "--field", "hsiren", "--align", *FAST)
    assert result.exit_code == 0, result.output
    with h5py.File(out / "volumes.h5") as f:
        assert f["volumes"].shape == (3, 16, 14, 16) and list(f["times"][()]) == [0, 4, 8]
        at_4 = f["volumes"][1]
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["dynamic"] and config["align"]  # the 4D field with learned poses
    # tomotime query samples the 4D field at any time and grid
    result = invoke("query", out / "model.pt", "--times", "0,4", "--grid", 8, "--out", tmp_path / "s.h5",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["volumes"].shape == (2, 8, 7, 8) and list(f["times"][()]) == [0, 4]
    result = invoke("query", out / "model.pt", "--time", 4, "--out", tmp_path / "t4.mrc", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert np.allclose(read_mrc(tmp_path / "t4.mrc")[0], at_4, atol=1e-6)
    assert_input_error(invoke("query", out / "model.pt", "--out", tmp_path / "x.mrc"), "give either --time")


@pytest.mark.parametrize("case, options, fragments", [
    ("two.mrc", [], ["has 2 view(s)", "at least 3"]),
    ("flat.mrc", [], ["all 9 views are at 5"]),
    ("blob.mrc", ["--window", 3], ["--window applies to FBP, SIRT and EM"]),
    ("blob.mrc", ["--manifold", "y-t"], ["--manifold applies to --method dipster"]),
    ("blob.mrc", ["--times", "1"], ["--times applies to a dynamic reconstruction"]),
])
def test_bad_input_is_a_one_line_error(blob, tmp_path, case, options, fragments):
    assert_input_error(inr(blob / case, tmp_path / "out", *FAST, *options), *fragments)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_align_is_refused_for_classical_methods(blob, tmp_path):
    result = invoke("reconstruct", blob / "blob.mrc", "--method", "sirt", "--align", "--out", tmp_path / "o")
    assert_input_error(result, "--align applies to --method inr")


# --- output grid, voxel size and region; tomotime query of INR models ----------------------------------

@pytest.fixture(scope="module")
def trained(blob, tmp_path_factory):
    """A static INR run on the blob at its training grid (16 x 14 x 16, 1 nm pixels) and on --grid 8."""
    root = tmp_path_factory.mktemp("inr")
    assert inr(blob / "blob.mrc", root / "full", *FAST, "--no-report").exit_code == 0
    result = inr(blob / "blob.mrc", root / "half", *FAST, "--grid", 8, "--no-report")
    assert result.exit_code == 0, result.output
    return root


def read_mrc(path):
    with mrcfile.open(path) as m:
        return m.data.copy(), float(m.voxel_size.x) / 10  # Angstrom -> nm


def test_reconstruct_samples_the_field_on_the_asked_grid(trained):
    volume, voxel = read_mrc(trained / "half" / "volume.mrc")
    assert volume.shape == (8, 7, 8) and voxel == pytest.approx(2.0)  # longest side 16 -> 8: 2 nm voxels
    summary = json.loads((trained / "half" / "summary.json").read_text())
    assert summary["output_shape"] == [8, 7, 8] and summary["voxel_size_nm"] == pytest.approx(2.0)
    full, _ = read_mrc(trained / "full" / "volume.mrc")
    assert full.shape == (16, 14, 16)
    # a 2x coarser grid samples the field between training voxels: close to their 2 x 2 x 2 means
    pooled = full.reshape(8, 2, 7, 2, 8, 2).mean((1, 3, 5))
    assert np.abs(volume - pooled).max() < 0.35 * np.abs(full).max()


def test_query_reads_an_inr_model_at_any_grid_voxel_size_and_region(trained, tmp_path):
    model = trained / "full" / "model.pt"
    full, _ = read_mrc(trained / "full" / "volume.mrc")
    assert invoke("query", model, "--out", tmp_path / "same.mrc", "--device", "cpu").exit_code == 0
    assert np.array_equal(read_mrc(tmp_path / "same.mrc")[0], full)  # the training grid by default
    result = invoke("query", model, "--out", tmp_path / "fine.tif", "--voxel-size", 0.5, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "voxel 0.5 nm" in result.output
    result = invoke("query", model, "--out", tmp_path / "crop.mrc", "--region", ":,2:12,4:", "--device", "cpu")
    assert result.exit_code == 0, result.output
    crop, voxel = read_mrc(tmp_path / "crop.mrc")
    assert crop.shape == (16, 10, 12) and voxel == pytest.approx(1.0)
    assert np.allclose(crop, full[:, 2:12, 4:], atol=1e-6 * np.abs(full).max())  # the same voxel centres
    result = invoke("query", model, "--out", tmp_path / "grid.h5", "--grid", "4,5,6", "--device", "cpu")
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "grid.h5") as f:
        assert f["volumes"].shape == (1, 4, 5, 6)


@pytest.mark.parametrize("options, fragments", [
    (["--grid", 8, "--voxel-size", 1], ["--grid or --voxel-size, not both"]),
    (["--grid", "8,8"], ["--grid='8,8'", "three sizes Z,Y,X"]),
    (["--voxel-size", 0], ["voxel size 0", "positive"]),
    (["--region", "0:8,0:20,:"], ["region Y 0:20", "<= 14"]),
    (["--region", "0:8"], ["z0:z1,y0:y1,x0:x1"]),
    (["--time", 3], ["--time applies to a dynamic model", "static INR model"]),
    (["--angle", 0], ["--angle applies to a DIP-STER model"]),
])
def test_bad_query_of_an_inr_model_is_a_one_line_error(trained, tmp_path, options, fragments):
    result = invoke("query", trained / "full" / "model.pt", "--out", tmp_path / "v.mrc", "--device", "cpu", *options)
    assert_input_error(result, *fragments)
    assert not (tmp_path / "v.mrc").exists()


def test_grid_options_are_refused_for_other_methods_and_models(blob, tmp_path):
    result = invoke("reconstruct", blob / "blob.mrc", "--method", "sirt", "--grid", 32, "--out", tmp_path / "o")
    assert_input_error(result, "--grid applies to --method inr/inr4d")
    (tmp_path / "other.pt").write_bytes(b"not an INR model")
    result = invoke("query", tmp_path / "other.pt", "--time", 1, "--out", tmp_path / "v.mrc", "--voxel-size", 2)
    assert_input_error(result, "--voxel-size applies to an INR model")
    assert_input_error(inr(blob / "blob.mrc", tmp_path / "out", *FAST, "--region", "0:4,0:4,0:40"),
                       "region X 0:40")
    assert not (tmp_path / "out" / "run").exists()  # refused before training
