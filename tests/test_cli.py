"""The ``tomotime`` command line: info, plan, reconstruct, and how it treats bad input."""

from __future__ import annotations

import csv
import json

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import torch
from cli_helpers import assert_input_error, invoke

import tomotime
from tomotime.cli.common import parse_times
from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.geometry import acquisition_plan, grs_angles
from tomotime.io import write_angles, write_tilt_series
from tomotime.physics import VolumeProjector

N_VIEWS = 16
SIZE = 16
PIXEL_NM = 0.3


@pytest.fixture(scope="module")
def ball() -> np.ndarray:
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE] - (SIZE - 1) / 2
    return ((z**2 + y**2 + x**2) <= 16).astype(np.float32)


@pytest.fixture(scope="module")
def projections(ball) -> np.ndarray:
    op = VolumeProjector(grs_angles(N_VIEWS), ball.shape)
    return op.forward(torch.from_numpy(ball)).numpy()


@pytest.fixture
def stack(tmp_path, projections):
    """A GRS tilt series of the ball as MRC + .rawtlt + .times (times 0, 0.5, ... 7.5 s)."""
    path = tmp_path / "ball.mrc"
    series = TiltSeries(projections, grs_angles(N_VIEWS), times=0.5 * np.arange(N_VIEWS), pixel_size=PIXEL_NM)
    write_tilt_series(path, series)
    return path


def _npy_stack(tmp_path, images, angles=None, *, name="stack"):
    path = tmp_path / f"{name}.npy"
    np.save(path, images)
    write_angles(path.with_suffix(".rawtlt"), grs_angles(len(images)) if angles is None else angles)
    return path




def relative_error(volume, reference):
    return float(np.linalg.norm(volume - reference) / np.linalg.norm(reference))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tomotime {tomotime.__version__}"


def test_info_text(stack):
    result = invoke("info", stack, "--views")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "16 views x 16 rows x 16 columns" in out
    assert "on disk float32" in out
    assert "0.3 nm" in out
    assert f"{grs_angles(N_VIEWS).min():.2f} .. {grs_angles(N_VIEWS).max():.2f} deg" in out
    assert "0 .. 7.5 s" in out
    assert "note: angles are unordered" in out
    assert "warning" not in out
    assert len(out.splitlines()) > N_VIEWS  # the per-view table


def test_info_json(stack, projections):
    result = invoke("info", stack, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["shape"] == [N_VIEWS, SIZE, SIZE]
    assert report["n_views"] == N_VIEWS
    assert report["dtype_on_disk"] == "float32"
    assert report["pixel_size_nm"] == pytest.approx(PIXEL_NM)
    np.testing.assert_allclose(report["angles"]["values"], grs_angles(N_VIEWS), atol=1e-5)
    assert report["angles"]["order"] == "unordered"
    assert report["angles"]["repeated_views"] == 0
    assert report["times"]["first"] == 0 and report["times"]["last"] == pytest.approx(7.5)
    np.testing.assert_allclose(report["intensity"]["per_view"]["total"], projections.sum(axis=(1, 2)), rtol=1e-4)
    assert report["intensity"]["max"] == pytest.approx(projections.max())
    assert report["warnings"] == []


def test_info_flags_saturation_varying_intensity_and_repeats(tmp_path, projections):
    images = np.minimum(projections, 0.6 * projections.max())
    images[3] *= 2.0
    angles = grs_angles(N_VIEWS)
    angles[5] = angles[2]
    report = json.loads(invoke("info", _npy_stack(tmp_path, images, angles), "--json").stdout)
    warnings = " ".join(report["warnings"])
    assert "saturated" in warnings
    assert "total intensity varies" in warnings and "view 3" in warnings
    assert report["intensity"]["saturated_views"] == [3]
    assert report["angles"]["repeated_views"] == 1
    assert report["dtype_on_disk"] == "float32"


def _table_rows(text):
    return [line.split() for line in text.splitlines()[1:]]


def test_plan_matches_grs_and_writes_csv(tmp_path):
    out = tmp_path / "plan.csv"
    result = invoke("plan", "--scheme", "grs", "-n", 12, "--start", -60, "--stop", 60,
                    "--backlash", 2, "--approach", "+", "--out", out)
    assert result.exit_code == 0, result.output
    expected = grs_angles(12, -60, 60)
    rows = _table_rows(result.stdout)
    np.testing.assert_allclose([float(r[1]) for r in rows], expected, atol=1e-3)
    for row, step in zip(rows, acquisition_plan(expected, backlash=2.0, approach="+")):
        moving_back = step["index"] == 0 or step["move_deg"] < 0
        assert (row[3] != "-") == moving_back
        if moving_back:
            assert float(row[3]) == pytest.approx(step["angle_deg"] - 2.0, abs=1e-3)
    with out.open() as handle:
        table = list(csv.DictReader(handle))
    np.testing.assert_allclose([float(r["angle_deg"]) for r in table], expected, rtol=1e-12)
    assert table[1]["pre_angle_deg"] == ""  # the second GRS angle is reached moving up


def test_plan_refuses_to_overwrite(tmp_path):
    out = tmp_path / "plan.csv"
    out.write_text("keep me\n")
    result = invoke("plan", "-n", 5, "--out", out)
    assert_input_error(result, str(out), "--overwrite")
    assert out.read_text() == "keep me\n"
    result = invoke("plan", "--scheme", "incremental", "-n", 5, "--out", out, "--overwrite")
    assert result.exit_code == 0
    angles = [float(r["angle_deg"]) for r in csv.DictReader(out.open())]
    np.testing.assert_allclose(angles, np.linspace(-70, 70, 5))


@pytest.mark.parametrize(("method", "options", "max_error"), [
    ("fbp", ["--format", "tiff"], 0.5),
    ("sirt", ["-k", 30, "--min", 0], 0.35),
    ("em", ["-k", 20], 0.2),
])
def test_reconstruct_each_method(tmp_path, stack, ball, method, options, max_error):
    out = tmp_path / "rec"
    result = invoke("reconstruct", stack, "--method", method, *options, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    name = "volume.tiff" if method == "fbp" else "volume.mrc"
    assert sorted(p.name for p in out.iterdir()) == sorted([name, "summary.json", "report.html"])
    if method == "fbp":
        volume = tifffile.imread(out / name)
    else:
        with mrcfile.open(out / name) as mrc:
            volume = mrc.data.copy()
            assert float(mrc.voxel_size.x) == pytest.approx(10 * PIXEL_NM)
    assert volume.shape == ball.shape
    assert relative_error(volume, ball) < max_error
    assert np.corrcoef(volume.ravel(), ball.ravel())[0, 1] > 0.85
    summary = json.loads((out / "summary.json").read_text())
    assert {"command", "input", "method", "options", "output_shape", "device", "tomotime_version", "started",
            "wall_seconds", "outputs"} <= summary.keys()
    assert summary["method"] == method
    assert summary["input"]["file"] == str(stack.resolve())
    assert summary["output_shape"] == list(ball.shape)
    assert summary["device"] == "cpu"
    assert summary["options"]["iterations"] == (None if method == "fbp" else int(options[1]))
    assert summary["options"]["thickness"] == SIZE
    assert summary["outputs"] == [name, "summary.json"]
    assert summary["command"].startswith(f"tomotime reconstruct {stack}")


def test_reconstruct_sliding_window(tmp_path, stack, ball):
    out = tmp_path / "dyn"
    result = invoke("reconstruct", stack, "-m", "fbp", "--window", 8, "--times", "0:7.5:2.5", "--thickness", 12,
                    "--per-time-mrc", "--out", out)
    assert result.exit_code == 0, result.output
    with h5py.File(out / "volumes.h5") as f:
        volumes = f["volumes"][()]
        np.testing.assert_allclose(f["times"][()], [0.0, 2.5, 5.0, 7.5])
    assert volumes.shape == (4, 12, SIZE, SIZE)
    core = ball[2:-2]
    for volume in volumes:
        assert np.corrcoef(volume.ravel(), core.ravel())[0, 1] > 0.8
    assert sorted(p.name for p in (out / "mrc").iterdir()) == [f"t{t:04d}.mrc" for t in range(4)] + ["times.txt"]
    np.testing.assert_allclose(mrcfile.read(out / "mrc" / "t0002.mrc"), volumes[2])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["times"] == [0.0, 2.5, 5.0, 7.5]
    assert summary["options"]["window"] == 8
    assert summary["output_shape"] == [4, 12, SIZE, SIZE]
    assert "volumes.h5" in summary["outputs"] and "mrc/t0003.mrc" in summary["outputs"]


def test_reconstruct_window_defaults_to_every_acquisition(tmp_path, stack):
    out = tmp_path / "dyn"
    assert invoke("reconstruct", stack, "-m", "fbp", "-w", 4, "-o", out).exit_code == 0
    with h5py.File(out / "volumes.h5") as f:
        assert f["volumes"].shape == (N_VIEWS, SIZE, SIZE, SIZE)
        np.testing.assert_allclose(f["times"][()], 0.5 * np.arange(N_VIEWS))


def test_reconstruct_missing_and_unknown_files(tmp_path):
    out = tmp_path / "rec"
    assert_input_error(invoke("reconstruct", tmp_path / "absent.mrc", "-o", out), "absent.mrc", "no such file")
    odd = tmp_path / "data.xyz"
    odd.write_bytes(b"\0" * 64)
    assert_input_error(invoke("reconstruct", odd, "-o", out), "data.xyz", "unknown format")
    assert_input_error(invoke("info", odd), "data.xyz")
    assert not out.exists()


def test_reconstruct_bad_data(tmp_path, projections):
    out = tmp_path / "rec"
    angles = tmp_path / "few.rawtlt"
    write_angles(angles, grs_angles(N_VIEWS - 1))
    good = _npy_stack(tmp_path, projections)
    assert_input_error(invoke("reconstruct", good, "--angles", angles, "-o", out), "15 angles", "16 images")
    bad = projections.copy()
    bad[4, 2, 3] = np.nan
    nan_file = _npy_stack(tmp_path, bad, name="nan")
    assert_input_error(invoke("reconstruct", nan_file, "-o", out), "nan.npy", "NaN")
    assert_input_error(invoke("info", nan_file), "NaN")
    negative = _npy_stack(tmp_path, projections - 1.0, name="negative")
    assert_input_error(invoke("reconstruct", negative, "-m", "em", "-o", out), "EM needs non-negative")
    assert not out.exists()


@pytest.mark.parametrize(("options", "fragments"), [
    (["-w", 20], ["--window=20", "(16)"]),
    (["-w", 4, "--times", "0,100"], ["--times", "100 s lies outside", "0 .. 7.5 s"]),
    (["-w", 4, "--times", "a:b"], ["--times", "expected numbers"]),
    (["-w", 4, "--times", "3,1"], ["strictly increase"]),
    (["--per-time-mrc"], ["need --window"]),
    (["-m", "fbp", "--min", 0], ["--min applies to SIRT"]),
    (["--device", "tpu"], ["device='tpu'"]),
])
def test_reconstruct_bad_options(tmp_path, stack, options, fragments):
    out = tmp_path / "rec"
    assert_input_error(invoke("reconstruct", stack, *options, "-o", out), *fragments)
    assert not out.exists()


def test_reconstruct_unknown_method(tmp_path, stack):
    result = invoke("reconstruct", stack, "--method", "art", "-o", tmp_path / "rec")
    assert result.exit_code == 2
    assert "--method" in result.output and "art" in result.output
    assert not (tmp_path / "rec").exists()


def test_reconstruct_refuses_to_overwrite(tmp_path, stack):
    out = tmp_path / "rec"
    out.mkdir()
    (out / "volume.mrc").write_bytes(b"earlier result")
    assert_input_error(invoke("reconstruct", stack, "-m", "fbp", "-o", out), str(out / "volume.mrc"), "--overwrite")
    assert (out / "volume.mrc").read_bytes() == b"earlier result"
    assert sorted(p.name for p in out.iterdir()) == ["volume.mrc"]
    assert invoke("reconstruct", stack, "-m", "fbp", "-o", out, "--overwrite").exit_code == 0
    assert mrcfile.read(out / "volume.mrc").shape == (SIZE, SIZE, SIZE)
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
@pytest.mark.parametrize("existing", [False, True])
def test_failed_run_leaves_no_partial_output(tmp_path, stack, monkeypatch, failure, existing):
    import tomotime.solvers.static as static

    real_sirt, calls = static.sirt, []

    def failing_sirt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise failure("stopped during the second window")
        return real_sirt(*args, **kwargs)

    monkeypatch.setattr(static, "sirt", failing_sirt)
    out = tmp_path / "dyn"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    result = invoke("reconstruct", stack, "-m", "sirt", "-k", 2, "-w", 8, "--times", "0,5", "--per-time-mrc",
                    "-o", out)
    assert result.exit_code != 0
    assert len(calls) == 2
    if existing:
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ball.mrc", "ball.rawtlt", "ball.times"]
                                                                + (["dyn"] if existing else []))


def test_parse_times():
    np.testing.assert_allclose(parse_times("0:10:5"), [0, 5, 10])
    np.testing.assert_allclose(parse_times("0:9:5"), [0, 5])
    np.testing.assert_allclose(parse_times("0, 2.5,7"), [0, 2.5, 7])
    for bad in ("5:0:1", "0:5:0", "1,1", "", "x"):
        with pytest.raises(InputError, match="--times"):
            parse_times(bad)
