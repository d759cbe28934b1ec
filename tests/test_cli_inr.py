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
                    "--field", "hsiren", *FAST)
    assert result.exit_code == 0, result.output
    with h5py.File(out / "volumes.h5") as f:
        assert f["volumes"].shape == (3, 16, 14, 16) and list(f["times"][()]) == [0, 4, 8]


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
