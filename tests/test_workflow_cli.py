"""The simulated-experiment workflow: ``simulate`` -> ``reconstruct`` -> ``evaluate``, and the demo.

Each step is run through the ``tomotime`` command (``typer.testing.CliRunner``)
on a 16^3 rod over 8 time steps; the demo runs on 16^3 voxels and 12 steps.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_input_error, invoke

from tomotime.data import VolumeSeries
from tomotime.demo import run_demo
from tomotime.errors import InputError, OutputExistsError
from tomotime.geometry import grs_angles
from tomotime.io import read_tilt_series, read_volume_series, write_volume_series
from tomotime.sim import SCENARIOS, make_scenario, simulate_acquisition

SIZE, STEPS = 16, 8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"




def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000, path


def simulate(out: Path, *options):
    return invoke("simulate", "nanorod-alloying", "--size", SIZE, "--steps", STEPS, "--out", out, *options)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> dict[str, Path]:
    """Folders of a noise-free simulation ``D``, its reconstruction ``R`` and evaluation ``E``."""
    root = tmp_path_factory.mktemp("workflow")
    folders = {name: root / name for name in "DRE"}
    outputs = {}
    outputs["simulate"] = simulate(folders["D"])
    outputs["reconstruct"] = invoke("reconstruct", folders["D"] / "series.mrc", "--method", "sirt", "--window", 4,
                                    "--iterations", 5, "--out", folders["R"])
    outputs["evaluate"] = invoke("evaluate", folders["R"] / "volumes.h5", "--truth", folders["D"] / "truth.h5",
                                 "--out", folders["E"])
    for name, result in outputs.items():
        assert result.exit_code == 0, f"{name}: {result.output}"
    return {**folders, **outputs}


# ---------------------------------------------------------------- simulate


def test_simulate_writes_truth_series_and_scenario(workflow):
    folder = workflow["D"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["truth.h5", "series.mrc", "series.rawtlt", "series.times", "scenario.json"])
    truth = read_volume_series(folder / "truth.h5")
    assert truth.shape == (STEPS, SIZE, SIZE, SIZE)
    np.testing.assert_array_equal(truth.times, np.arange(STEPS))
    np.testing.assert_array_equal(truth.to_numpy(), make_scenario("nanorod-alloying", SIZE, steps=STEPS).to_numpy())

    series = read_tilt_series(folder / "series.mrc")
    assert series.shape == (STEPS, SIZE, SIZE)
    np.testing.assert_allclose(series.angles, grs_angles(STEPS), atol=1e-3)
    np.testing.assert_allclose(series.times, np.arange(STEPS), atol=1e-6)
    np.testing.assert_allclose(series.images, simulate_acquisition(truth).images, atol=1e-5)

    scenario = json.loads((folder / "scenario.json").read_text())
    assert scenario["scenario"] == "nanorod-alloying"
    assert scenario["truth_shape"] == [STEPS, SIZE, SIZE, SIZE]
    assert (scenario["size"], scenario["steps"], scenario["seed"], scenario["dose"]) == (SIZE, STEPS, 0, None)
    assert scenario["command"].startswith("tomotime simulate nanorod-alloying")
    assert "truth.h5" in workflow["simulate"].stdout


def test_simulate_with_a_dose_adds_noise_to_the_same_truth(tmp_path, workflow):
    result = simulate(tmp_path / "noisy", "--dose", 100)
    assert result.exit_code == 0, result.output
    clean = read_tilt_series(workflow["D"] / "series.mrc").images.astype(np.float64)
    noisy = read_tilt_series(tmp_path / "noisy" / "series.mrc").images.astype(np.float64)
    assert noisy.shape == clean.shape
    assert np.abs(noisy - clean).max() > 0.05
    assert noisy.sum() == pytest.approx(clean.sum(), rel=0.02)
    np.testing.assert_array_equal(read_volume_series(tmp_path / "noisy" / "truth.h5").to_numpy(),
                                  read_volume_series(workflow["D"] / "truth.h5").to_numpy())
    assert json.loads((tmp_path / "noisy" / "scenario.json").read_text())["dose"] == 100


@pytest.mark.parametrize("options, fragments", [
    (("nanorod-melting",), ("nanorod-melting", *SCENARIOS)),
    (("nanorod-alloying", "--size", 4), ("size", "16")),
    (("nanorod-alloying", "--size", SIZE, "--dose", -1), ("--dose", "positive")),
    (("nanorod-alloying", "--size", SIZE, "--steps", 1), ("steps", ">= 2")),
    (("nanorod-alloying", "--size", SIZE, "--steps", 4, "--scheme", "spiral"), ("scheme", "grs")),
])
def test_simulate_refuses_bad_input_and_leaves_no_folder(tmp_path, options, fragments):
    out = tmp_path / "sim"
    assert_input_error(invoke("simulate", *options, "--out", out), *fragments)
    assert not out.exists()


def test_simulate_does_not_overwrite(workflow):
    before = (workflow["D"] / "series.mrc").read_bytes()
    assert_input_error(simulate(workflow["D"], "--dose", 10), "exists", "--overwrite")
    assert (workflow["D"] / "series.mrc").read_bytes() == before
    assert not [p for p in workflow["D"].iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- reconstruct and evaluate


def test_reconstruct_gives_one_volume_per_time_step(workflow):
    volumes = read_volume_series(workflow["R"] / "volumes.h5")
    assert volumes.shape == (STEPS, SIZE, SIZE, SIZE)
    np.testing.assert_allclose(volumes.times, np.arange(STEPS))
    assert np.isfinite(volumes.to_numpy()).all()


def test_evaluate_prints_a_table_and_writes_metrics(workflow):
    folder, out = workflow["E"], workflow["evaluate"].stdout
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.csv", "metrics.json", "metrics.png"]
    metrics = json.loads((folder / "metrics.json").read_text())["result"]
    assert len(metrics["ssim"]) == STEPS
    assert 0.0 < metrics["ssim_mean"] < 1.0 and metrics["rmse_mean"] > 0.0
    with (folder / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["time_s"]) for r in rows] == list(range(STEPS))
    np.testing.assert_allclose([float(r["ssim"]) for r in rows], metrics["ssim"], rtol=1e-5)
    assert_png(folder / "metrics.png")
    assert "SSIM" in out and "RMSE" in out
    for t in range(STEPS):  # the per-time table
        assert f"{metrics['ssim'][t]:.3f}" in out and f"{metrics['rmse'][t]:.2f}" in out
    assert f"{metrics['ssim_mean']:.3f}" in out and f"{metrics['rmse_worst']:.2f}" in out  # the summary
    assert "metrics.csv" in out


@pytest.fixture
def other_truth(tmp_path, workflow):
    """Factory writing a truth that differs from the real one in shape, length or times."""
    truth = read_volume_series(workflow["D"] / "truth.h5")

    def make(kind: str) -> Path:
        data, times = truth.to_numpy(), truth.times
        if kind == "shape":
            data = np.pad(data, ((0, 0), (0, 2), (0, 2), (0, 2)))
        elif kind == "steps":
            data, times = data[:-2], times[:-2]
        else:
            times = times * 2.0
        path = tmp_path / f"truth_{kind}.h5"
        write_volume_series(path, VolumeSeries(data, times))
        return path

    return make


@pytest.mark.parametrize("kind, fragments", [
    ("shape", ("shape", "(16, 16, 16)", "(18, 18, 18)")),
    ("steps", ("8 time points", "6")),
    ("times", ("times differ", "7.0 vs 14.0 s")),
])
def test_evaluate_refuses_a_mismatched_truth_and_leaves_no_folder(tmp_path, workflow, other_truth, kind, fragments):
    out = tmp_path / "eval"
    truth = other_truth(kind)
    result = invoke("evaluate", workflow["R"] / "volumes.h5", "--truth", truth, "--out", out)
    assert_input_error(result, *fragments, str(workflow["R"] / "volumes.h5"), f"--truth {truth}")
    assert "_series" not in result.stderr  # the user's files and options, not internal names
    assert not out.exists()


def test_evaluate_refuses_a_missing_truth_and_an_existing_result(tmp_path, workflow):
    result = invoke("evaluate", workflow["R"] / "volumes.h5", "--truth", tmp_path / "none.h5", "--out", tmp_path / "e")
    assert result.exit_code == 2 and "none.h5" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "e").exists()
    before = (workflow["E"] / "metrics.json").read_text()
    again = invoke("evaluate", workflow["R"] / "volumes.h5", "--truth", workflow["D"] / "truth.h5",
                   "--out", workflow["E"])
    assert_input_error(again, "exists")
    assert (workflow["E"] / "metrics.json").read_text() == before


# ---------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, list[str]]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    lines: list[str] = []
    summary = run_demo(out, size=16, steps=12, window=6, iterations=3, dipster_steps=40, ensemble=3,
                       progress=False, echo=lines.append)
    return out, summary, lines


def test_demo_writes_summary_metrics_and_figures(demo):
    out, summary, lines = demo
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["summary.json", "metrics.csv", "metrics.json", "orthoslices.png", "metrics.png", "dipster_model.pt",
         "series.mrc", "series.rawtlt", "series.times", "truth.h5", "volumes_sirt.h5", "volumes_dipster.h5", "run",
         "report.html"])
    assert set(summary["methods"]) == {"SIRT (sliding window)", "DIP-STER"}
    assert summary["dipster_model"]["model_bytes"] == (out / "dipster_model.pt").stat().st_size
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert (on_disk["size"], on_disk["steps"], on_disk["window"], on_disk["iterations"]) == (16, 12, 6, 3)
    assert on_disk["methods"]
    for values in on_disk["methods"].values():
        for key in ("ssim_mean", "ssim_worst", "rmse_mean", "rmse_worst", "seconds"):
            assert np.isfinite(values[key]), key
        assert 0.0 < values["ssim_worst"] <= values["ssim_mean"] < 1.0
        assert 0.0 < values["rmse_mean"] <= values["rmse_worst"]
        assert values["seconds"] >= 0.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == set(on_disk["methods"])
    for name, result in metrics.items():
        assert len(result["ssim"]) == 12 and len(result["alloying_truth"]) == 12
        assert result["ssim_mean"] == pytest.approx(on_disk["methods"][name]["ssim_mean"])
        assert np.all(np.diff(result["alloying_truth"]) > 0)
    for figure in ("orthoslices.png", "metrics.png"):
        assert_png(out / figure)
    band = on_disk["dipster_alloying_band"]
    assert band["members"] == 3
    assert 0.0 <= band["width_mean"] <= band["width_max"] and 0.0 <= band["truth_inside_fraction"] <= 1.0
    text = "\n".join(lines)
    assert "SSIM mean" in text and str(out.resolve()) in text
    assert "alloying band over 3 seeds" in text
    for name, values in on_disk["methods"].items():
        assert name in text and f"{values['ssim_mean']:.3f}" in text


def test_demo_refuses_to_overwrite_its_results(demo):
    out, _, _ = demo
    before = (out / "summary.json").read_text()
    with pytest.raises(OutputExistsError, match="overwrite"):
        run_demo(out, size=16, steps=12, window=6, iterations=3, dipster_steps=40, progress=False,
                 echo=lambda line: None)
    assert (out / "summary.json").read_text() == before


@pytest.mark.parametrize("options, match", [
    (dict(window=13), "window"),
    (dict(window=0), "window"),
    (dict(size=8), "size"),
    (dict(steps=1), "steps"),
    (dict(ensemble=0), "ensemble"),
])
def test_demo_refuses_bad_options_before_creating_its_folder(tmp_path, options, match):
    kwargs = dict(size=16, steps=12, window=6, iterations=3, progress=False, echo=lambda line: None) | options
    with pytest.raises(InputError, match=match):
        run_demo(tmp_path / "demo", **kwargs)
    assert not (tmp_path / "demo").exists()


def test_demo_command_runs_with_fewer_steps_than_the_default_window(tmp_path):
    out = tmp_path / "demo"
    result = invoke("demo", "--size", 16, "--steps", 12, "--dipster-steps", 30, "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["size"], summary["steps"], summary["window"]) == (16, 12, 12)
    assert summary["dipster_alloying_band"] is None  # one network by default: no band
    assert "SSIM mean" in result.stdout
    assert_input_error(invoke("demo", "--size", 16, "--steps", 12, "--dipster-steps", 30, "--out", out),
                       "exists", "--overwrite")


def test_interrupted_first_demo_run_leaves_no_folder(tmp_path, monkeypatch):
    import tomotime.demo as demo_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_module, "simulate_acquisition", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "demo", size=16, steps=12, progress=False, echo=lambda line: None)
    assert not (tmp_path / "demo").exists()
