"""The run report, movies, the napari viewer and the EMD export, on tiny simulated runs."""

from __future__ import annotations

import json
import sys
import types

import h5py
import numpy as np
import pytest

from cli_helpers import assert_input_error, invoke
from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.io import read_tilt_series, read_volume_series, write_volume_series
from tomotime.metrics.reprojection import reprojection_error
from tomotime.viz.annotate import nice_length
from tomotime.viz.isosurface import surface_mesh
from tomotime.viz.movie import write_movie
from tomotime.viz.report import write_report
from tomotime.viz.rundata import load_run

SIZE, STEPS = 16, 8


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim") / "sim"
    # ordinary diffusion, three times the default first step: the rod changes visibly within 8 steps
    result = invoke("simulate", "nanorod-alloying", "--size", SIZE, "--steps", STEPS, "--out", folder,
                    "--param", "sigma=0.3", "--param", "exponent=1")
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def dyn(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("dyn") / "dyn"
    result = invoke("reconstruct", sim / "series.mrc", "-m", "sirt", "-k", 5, "-w", 4, "--min", 0, "--device", "cpu",
                    "-o", out)
    assert result.exit_code == 0, result.output
    assert "report: " in result.output
    return out


def _html(path):
    return path.read_text(encoding="utf-8")


# --- the report ------------------------------------------------------------------------------------

def test_reconstruct_writes_a_self_contained_report(dyn):
    html = _html(dyn / "report.html")
    for anchor in ("input", "result", "quality", "provenance"):
        assert f'<section id="{anchor}"' in html
    assert 'id="training"' not in html  # SIRT has no training curves
    assert "Against the ground truth" in html  # truth.h5 lies beside the input, as simulate writes it
    assert 'id="time-slider"' in html and html.count('class="slider-frame"') == 2  # truth and SIRT
    assert "data:video/mp4;base64," in html
    # self-contained: no external resource of any kind
    for pattern in ('src="http', "src='http", 'href="http', "<link", "@import", "url("):
        assert pattern not in html
    assert json.loads((dyn / "summary.json").read_text())["command"] in html.replace("&#x27;", "'")


def test_report_command_rewrites_and_refuses_to_overwrite(dyn, tmp_path):
    out = tmp_path / "again.html"
    result = invoke("report", dyn, "--out", out, "--times", "0,7", "--no-movie")
    assert result.exit_code == 0, result.output
    assert "sections: input, result, quality, provenance" in result.output
    assert "data:video/mp4" not in _html(out)
    assert_input_error(invoke("report", dyn, "--out", out), str(out), "--overwrite")
    assert_input_error(invoke("report", dyn, "--out", tmp_path / "x.html", "--times", "50"), "--times", "50")


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    assert_input_error(invoke("report", tmp_path), "not a tomotime run folder", "summary.json", "volumes.h5")
    assert not (tmp_path / "report.html").exists()
    assert_input_error(invoke("report", tmp_path / "missing"), "not a folder")


def test_report_of_a_run_whose_volumes_were_deleted(dyn, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(dyn, run)
    (run / "volumes.h5").unlink()
    result = invoke("report", run, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "volumes.h5: missing" in result.stderr
    html = _html(run / "report.html")
    assert '<section id="notes"' in html and "volumes.h5: missing" in html
    assert '<section id="input"' in html and '<section id="provenance"' in html
    assert '<section id="result"' not in html


def test_report_reads_training_curves_tolerantly(dyn, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(dyn, run)
    (run / "run").mkdir()
    # a future metrics.csv: an extra column, no lr column, an empty holdout cell
    (run / "run" / "metrics.csv").write_text("step,train_loss,holdout_loss,seconds,grad_norm\n"
                                             "10,0.5,,1.0,3\n20,0.25,0.3,2.0,2\n30,0.2,0.28,3.0,1\n")
    summary = json.loads((run / "summary.json").read_text())
    summary["training"] = {"best_step": 30, "steps": 30, "new_key": [1, 2]}
    (run / "summary.json").write_text(json.dumps(summary))
    result = write_report(run, overwrite=True, movie=False)
    assert result.sections == ["input", "training", "result", "quality", "provenance"]
    assert result.notes == []


def test_report_notes_a_missing_input_and_keeps_the_rest(dyn, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(dyn, run)
    summary = json.loads((run / "summary.json").read_text())
    summary["input"]["file"] = str(tmp_path / "gone.mrc")
    (run / "summary.json").write_text(json.dumps(summary))
    result = write_report(run, overwrite=True, movie=False)
    assert "input" not in result.sections and "result" in result.sections
    assert any("gone.mrc is missing" in note for note in result.notes)


def test_load_run_labels_and_closes(dyn):
    with load_run(dyn) as run:
        assert list(run.volumes) == ["SIRT (sliding window)"]
        assert run.truth is not None and run.series is not None
        handle = run.volumes["SIRT (sliding window)"].data.file
    assert not handle  # closed


# --- metrics and figures ---------------------------------------------------------------------------

def test_reprojection_error_is_zero_for_the_truth_and_grows_with_a_wrong_volume(sim):
    truth = read_volume_series(sim / "truth.h5")
    series = read_tilt_series(sim / "series.mrc")
    exact = reprojection_error(truth, series)
    assert exact.shape == (STEPS,) and np.nanmax(exact) < 1e-5
    frozen = VolumeSeries(truth.to_numpy()[:1], times=[0.0])  # the first volume stands for every time
    drift = reprojection_error(frozen, series)
    assert drift[0] < 1e-5 and drift[-1] > 0.05 and drift[-1] > drift[1]
    truth.data.file.close()
    with pytest.raises(InputError, match="do not match"):
        reprojection_error(VolumeSeries(np.zeros((1, SIZE, SIZE + 2, SIZE), np.float32)), series)


def test_surface_mesh_and_scale_bar_lengths():
    grid = np.indices((16, 16, 16)).astype(np.float32) - 7.5
    ball = (np.sqrt((grid ** 2).sum(axis=0)) < 5).astype(np.float32)
    verts, faces = surface_mesh(ball, 0.5)
    assert len(faces) > 100
    radius = np.linalg.norm(verts - 7.5, axis=1)
    assert 4 < radius.mean() < 6
    assert surface_mesh(np.zeros((8, 8, 8)), 0.5)[1].shape == (0, 3)
    assert [nice_length(w) for w in (64.0, 100.0, 3.0, 2500.0)] == [10.0, 20.0, 0.5, 500.0]


# --- movies ----------------------------------------------------------------------------------------

def test_movie_formats_have_one_frame_per_time_point(dyn, tmp_path):
    import imageio.v3 as iio

    for suffix in ("gif", "webp"):
        result = invoke("movie", dyn / "volumes.h5", "--slice", "yz", "--index", 3, "--out", tmp_path / f"m.{suffix}")
        assert result.exit_code == 0, result.output
        assert len(list(iio.imiter(tmp_path / f"m.{suffix}"))) == STEPS
    # the band under the image holds the time stamp and the scale bar: white pixels there
    frames = np.stack([np.asarray(f)[..., :3] for f in iio.imiter(tmp_path / "m.gif")])
    band = frames[:, -10:, :, 0]
    assert (band > 200).any(axis=(1, 2)).all()
    assert not np.array_equal(frames[0], frames[-1])  # the time stamp (at least) changes


def test_movie_bad_requests(dyn, tmp_path):
    out = tmp_path / "m.mp4"
    assert_input_error(invoke("movie", dyn / "volumes.h5", "--slice", "xy", "--index", SIZE, "--out", out),
                       f"--index {SIZE}", f"0..{SIZE - 1}")
    assert_input_error(invoke("movie", dyn / "volumes.h5", "--slice", "ab", "--out", out), "--slice", "xy, xz, yz")
    assert_input_error(invoke("movie", dyn / "volumes.h5", "--out", tmp_path / "m.avi"), "m.avi", ".mp4")
    assert_input_error(invoke("movie", tmp_path / "none.h5", "--out", out), "none.h5")
    assert not out.exists()
    series = VolumeSeries(np.zeros((2, 4, 5, 6), np.float32))
    with pytest.raises(InputError, match="out of range for the yz plane"):
        write_movie(series, tmp_path / "m.gif", plane="yz", index=-1)


# --- viewers ---------------------------------------------------------------------------------------

def test_view_without_napari_names_the_extra(dyn, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "napari" else real(name, *a))
    result = invoke("view", dyn)
    assert_input_error(result, "napari is not installed", "pip install 'tomotime[napari]'")
    assert result.stderr.count("\n") == 1


def test_view_opens_the_series_with_time_as_a_slider(dyn, monkeypatch):
    calls = {}

    class Viewer:
        def __init__(self, title):
            calls["title"] = title
            self.dims = types.SimpleNamespace(axis_labels=None)
            self.scale_bar = types.SimpleNamespace(visible=False, unit=None)

        def add_image(self, data, **kwargs):
            calls["shape"], calls["kwargs"] = data.shape, kwargs

    fake = types.ModuleType("napari")
    fake.Viewer, fake.run = Viewer, lambda: calls.setdefault("ran", True)
    fake.__spec__ = types.SimpleNamespace(name="napari")
    monkeypatch.setitem(sys.modules, "napari", fake)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake.__spec__ if name == "napari"
                        else real(name, *a))
    result = invoke("view", dyn)
    assert result.exit_code == 0, result.output
    assert calls["shape"] == (STEPS, SIZE, SIZE, SIZE) and calls["ran"]
    assert calls["kwargs"]["scale"] == (1.0, 1.0, 1.0, 1.0)
    assert calls["kwargs"]["metadata"]["times_s"] == list(map(float, range(STEPS)))
    assert_input_error(invoke("view", dyn.parent), "no volumes.h5")


def test_emd_export_keeps_the_time_axis(tmp_path):
    data = np.random.default_rng(0).random((3, 4, 5, 6)).astype(np.float32)
    write_volume_series(tmp_path / "v.h5", VolumeSeries(data, times=[0.0, 2.5, 5.0], voxel_size=0.8))
    result = invoke("export", tmp_path / "v.h5", "--format", "emd", "--out", tmp_path / "v.emd")
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "v.emd", "r") as f:
        assert (f.attrs["version_major"], f.attrs["version_minor"]) == (0, 2)
        group = f["data/tomography"]
        assert group.attrs["emd_group_type"] == 1
        np.testing.assert_array_equal(group["data"][()], data)
        np.testing.assert_array_equal(group["dim1"][()], [0.0, 2.5, 5.0])
        assert group["dim1"].attrs["units"] == b"[s]" and group["dim4"].attrs["name"] == b"x"
        np.testing.assert_allclose(group["dim4"][()], np.arange(6) * 0.8)
    assert_input_error(invoke("export", tmp_path / "v.h5", "--out", tmp_path / "v.emd"), "--overwrite")
    result = invoke("export", tmp_path / "v.h5", "--format", "mrc", "--out", tmp_path / "mrcs")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "mrcs").iterdir()) == ["t0000.mrc", "t0001.mrc", "t0002.mrc",
                                                                      "times.txt"]


def test_report_reads_the_input_with_the_runs_angle_file(sim, tmp_path):
    import shutil

    shutil.copy(sim / "series.mrc", tmp_path / "stack.mrc")  # no sidecars: the angles come from --angles
    shutil.copy(sim / "series.rawtlt", tmp_path / "angles.rawtlt")
    out = tmp_path / "rec"
    result = invoke("reconstruct", tmp_path / "stack.mrc", "--angles", tmp_path / "angles.rawtlt", "-m", "fbp",
                    "--no-report", "-o", out)
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()
    report = write_report(out, movie=False)
    assert report.notes == [] and report.sections == ["input", "result", "quality", "provenance"]
    (tmp_path / "angles.rawtlt").unlink()
    report = write_report(out, overwrite=True, movie=False)
    assert "input" not in report.sections and any("angles.rawtlt" in n and "missing" in n for n in report.notes)


def test_tomviz_export_writes_one_3d_emd_per_time_point(tmp_path):
    data = np.random.default_rng(1).random((2, 4, 5, 6)).astype(np.float32)
    write_volume_series(tmp_path / "v.h5", VolumeSeries(data, times=[1.0, 3.0], voxel_size=0.5))
    result = invoke("export", tmp_path / "v.h5", "--format", "tomviz", "--out", tmp_path / "tv")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "tv").iterdir()) == ["t0000.emd", "t0001.emd", "times.txt"]
    with h5py.File(tmp_path / "tv" / "t0001.emd", "r") as f:
        group = f["data/tomography"]
        assert group["data"].shape == (6, 5, 4)  # (x, y, z), as Tomviz writes its volumes
        np.testing.assert_array_equal(group["data"][()], data[1].transpose(2, 1, 0))
        assert group.attrs["time_s"] == 3.0
        assert [group[f"dim{k}"].attrs["name"] for k in (1, 2, 3)] == [b"x", b"y", b"z"]
        np.testing.assert_allclose(group["dim3"][()], np.arange(4) * 0.5)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "tv" / "times.txt"), [1.0, 3.0])
