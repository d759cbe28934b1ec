"""``tomotime reconstruct --method dipster`` and ``tomotime query``, through the command line.

A 16^3 alloying nanorod recorded with 24 GRS projections (one per second) and
a very small network (``--hidden 32 --base-channels 16``) trained for a few
dozen steps: enough to check files, shapes, run files, resume, Ctrl-C and
queries, not quality (``tests/test_dipster.py`` and the benchmarks do that).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import signal
import threading

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import torch
from cli_helpers import assert_input_error, invoke

import tomotime.cli.dipster as cli_dipster
from tomotime.io import write_tilt_series
from tomotime.recon.dipster import load_model, train_dipster
from tomotime.sim import make_scenario, simulate_acquisition

SIZE, VIEWS = 16, 24
TINY = ["--hidden", 32, "--base-channels", 16, "--device", "cpu"]
RUN_FILES = {"config.json", "metrics.csv", "checkpoint.pt", "summary.json", "model.pt"}




def dipster(series, out, *options):
    return invoke("reconstruct", series, "--method", "dipster", "--out", out, *options)


def read_series(path):
    with h5py.File(path) as f:
        return f["volumes"][()], f["times"][()]


def metric_steps(run_dir):
    with (run_dir / "metrics.csv").open() as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def rod(tmp_path_factory):
    """The tilt series as MRC + .rawtlt + .times (times 0 .. 23 s)."""
    series = simulate_acquisition(make_scenario("nanorod-alloying", SIZE, steps=VIEWS, seed=0), seed=0)
    path = tmp_path_factory.mktemp("data") / "rod.mrc"
    write_tilt_series(path, series)
    return path


@pytest.fixture(scope="module")
def trained(rod, tmp_path_factory):
    """Output folder of a 30-step run, and the command's result."""
    out = tmp_path_factory.mktemp("dipster") / "R"
    return out, dipster(rod, out, *TINY, "--steps", 30)


def test_reconstruct_writes_series_model_run_and_summary(trained, rod):
    out, result = trained
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "report.html", "run", "summary.json", "volumes.h5"]
    assert {p.name for p in (out / "run").iterdir()} == RUN_FILES
    volumes, times = read_series(out / "volumes.h5")
    assert volumes.shape == (VIEWS, SIZE, SIZE, SIZE) and volumes.dtype == np.float32
    np.testing.assert_allclose(times, np.arange(VIEWS))
    assert np.isfinite(volumes).all() and volumes.std() > 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "dipster" and summary["device"] == "cpu"
    assert summary["command"].startswith(f"tomotime reconstruct {rod}")
    assert summary["input"]["shape"] == [VIEWS, SIZE, SIZE]
    assert summary["config"] == json.loads((out / "run" / "config.json").read_text())
    assert summary["config"]["hidden"] == [32] and summary["config"]["base_channels"] == 16
    assert summary["config"]["steps"] == 30 and summary["config"]["thickness"] == SIZE
    assert summary["training"]["steps"] == 30 and summary["training"]["seconds"] > 0
    assert summary["export_seconds"] > 0
    assert summary["output_shape"] == [VIEWS, SIZE, SIZE, SIZE]
    storage = summary["storage"]
    assert storage["model_bytes"] == (out / "model.pt").stat().st_size
    assert storage["raw_float32_bytes"] == VIEWS * SIZE**3 * 4
    assert storage["compression_ratio"] == pytest.approx(storage["raw_float32_bytes"] / storage["model_bytes"])
    assert "as float32" in result.stdout
    assert metric_steps(out / "run") == [0, 30]

    model = load_model(out / "model.pt")
    assert model.n_rows == SIZE and model.slice_shape == (SIZE, SIZE)
    assert model.extra["steps"] == 30 and model.extra["query_angle"] == 0.0


@pytest.mark.parametrize("kind", ["yaml", "toml"])
def test_run_file_sets_every_option_and_the_command_line_overrides_it(tmp_path, rod, kind):
    run_file = tmp_path / f"run.{kind}"
    if kind == "yaml":
        run_file.write_text("hidden: [24]\nbase_channels: 16\nlatent: 8\nlr: 2e-3\nsteps: 500\neval_every: 4\n"
                            "holdout_fraction: 0.1\ntv_weight: 0\ndevice: cpu\n")
    else:
        run_file.write_text("[dipster]\nhidden = [24]\nbase_channels = 16\nlatent = 8\nlr = 2e-3\nsteps = 500\n"
                            "eval_every = 4\nholdout_fraction = 0.1\ntv_weight = 0.0\ndevice = 'cpu'\n")
    out = tmp_path / "R"
    result = dipster(rod, out, "--config", run_file, "--steps", 8, "--query-angle", "own", "--times", "0,11.5,30")
    assert result.exit_code == 0, result.output
    assert "warning: --times: 30 s outside the acquisition" in result.stderr
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["hidden"] == [24] and config["latent"] == 8 and config["lr"] == pytest.approx(2e-3)
    assert config["holdout_fraction"] == 0.1 and config["tv_weight"] == 0 and config["eval_every"] == 4
    assert config["steps"] == 8  # the command line wins
    assert metric_steps(out / "run") == [0, 4, 8]
    volumes, times = read_series(out / "volumes.h5")
    assert volumes.shape == (3, SIZE, SIZE, SIZE)
    np.testing.assert_allclose(times, [0, 11.5, 30])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["run_file"] == str(run_file) and summary["options"]["query_angle"] == "own"

    # The model remembers the query angle: query regenerates the same volume by default.
    assert invoke("query", out / "model.pt", "--time", 11.5, "--out", tmp_path / "v.mrc").exit_code == 0
    np.testing.assert_allclose(mrcfile.read(tmp_path / "v.mrc"), volumes[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "text", "fragments"), [
    ("unknown.yaml", "hiden: [32]\n", ["hiden: unknown option", "did you mean 'hidden'?"]),
    ("types.toml", "lr = 'fast'\n", ["lr='fast'", "valid number"]),
    ("range.yaml", "lr: -1\n", ["lr=-1", "greater than 0"]),
    ("old.json", '{"schema_version": 1}', ["schema_version=1", "reads version 2"]),
    ("empty.yaml", "\n", ["empty"]),
    ("widths.yaml", "hidden: [32, -4]\n", ["hidden"]),
    ("broken.yaml", "hidden: [32\nsteps: 4\n", ["not valid YAML"]),
    ("broken.toml", "steps = \n", ["not valid TOML"]),
    ("list.yaml", "- 1\n- 2\n", ["expected a mapping"]),
    ("run.ini", "steps = 4\n", ["unknown run-file type"]),
])
def test_bad_run_file_is_reported_with_its_name(tmp_path, rod, name, text, fragments):
    run_file = tmp_path / name
    run_file.write_text(text)
    out = tmp_path / "R"
    assert_input_error(dipster(rod, out, "--config", run_file, "--steps", 2), str(run_file), *fragments)
    assert not out.exists()


@pytest.mark.parametrize(("options", "fragments"), [
    (["--config", "absent.yaml"], ["absent.yaml", "not found"]),
    (["--hidden", "32,x"], ["--hidden='32,x'"]),
    (["--lr", "-1"], ["--lr=-1.0"]),
    (["--holdout", 0.5], ["--holdout=0.5"]),
    (["--query-angle", 95], ["--query-angle='95'"]),
    (["--window", 4], ["--window applies to FBP"]),
    (["--format", "tiff"], ["--format applies to FBP"]),
    (["--device", "tpu"], ["device='tpu'"]),
    (["--thickness", 100_000_000], ["--thickness 100000000", "GiB"]),
    (["--times", "0:1e9:1e-9"], ["--times", "time points"]),
])
def test_bad_options_fail_before_anything_is_written(tmp_path, rod, options, fragments):
    out = tmp_path / "R"
    assert_input_error(dipster(rod, out, *TINY[:-2], "--steps", 2, *options), *fragments)
    assert not out.exists()


def test_dipster_options_need_the_dipster_method(tmp_path, rod):
    out = tmp_path / "R"
    assert_input_error(invoke("reconstruct", rod, "-m", "fbp", "--steps", 5, "-o", out), "--steps", "dipster")
    assert not out.exists()


def test_too_few_projections_for_a_holdout(tmp_path, rod):
    few = tmp_path / "few.mrc"
    write_tilt_series(few, simulate_acquisition(make_scenario("nanorod-alloying", SIZE, steps=2, seed=0)))
    out = tmp_path / "R"
    views = tmp_path / "views.yaml"
    views.write_text("holdout_unit: views\n")
    assert_input_error(dipster(few, out, *TINY, "--steps", 2, "--config", views), "few.mrc", "holdout",
                       "--holdout 0")
    assert not out.exists()


def test_resume_continues_a_finished_run(tmp_path, rod):
    out = tmp_path / "R"
    assert dipster(rod, out, *TINY, "--steps", 20).exit_code == 0
    first, _ = read_series(out / "volumes.h5")
    assert_input_error(dipster(rod, out, *TINY, "--steps", 40), str(out), "--resume", "--overwrite")
    # Without --config, --resume takes the options of the run from out/run/config.json.
    result = dipster(rod, out, "--steps", 40, "--resume", "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training"]["steps"] == 40 and summary["config"]["hidden"] == [32]
    assert json.loads((out / "run" / "summary.json").read_text())["steps"] == 40
    assert metric_steps(out / "run") == [0, 20, 40]
    assert load_model(out / "model.pt").extra["steps"] == 40
    second, _ = read_series(out / "volumes.h5")
    assert second.shape == first.shape and not np.array_equal(first, second)
    assert_input_error(dipster(rod, out, "--steps", 40, "--resume", "--lr", 0.01, "--device", "cpu"),
                       "cannot resume", "lr")
    assert dipster(rod, out, *TINY, "--steps", 10, "--overwrite").exit_code == 0
    assert metric_steps(out / "run") == [0, 10]
    assert json.loads((out / "summary.json").read_text())["training"]["steps"] == 10


def test_existing_results_are_kept_without_overwrite(tmp_path, rod):
    out = tmp_path / "R"
    out.mkdir()
    (out / "volumes.h5").write_bytes(b"earlier result")
    assert_input_error(dipster(rod, out, *TINY, "--steps", 2), str(out / "volumes.h5"), "--overwrite")
    assert [p.name for p in out.iterdir()] == ["volumes.h5"]
    assert (out / "volumes.h5").read_bytes() == b"earlier result"


def test_ctrl_c_keeps_the_checkpoint_and_resume_finishes(tmp_path, rod, monkeypatch):
    def ctrl_c(step, info):
        if step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_dipster, "train_dipster", functools.partial(train_dipster, callback=ctrl_c))
    out = tmp_path / "R"
    result = dipster(rod, out, *TINY, "--steps", 10)
    assert result.exit_code == 130, result.output
    assert f"interrupted: checkpoint saved in {out / 'run'}; rerun with --resume" in result.stderr
    assert "Traceback" not in result.output
    assert [p.name for p in out.iterdir()] == ["run"]  # no staging folder, no partial results
    assert {p.name for p in (out / "run").iterdir()} == {"checkpoint.pt", "config.json", "metrics.csv"}
    assert torch.load(out / "run" / "checkpoint.pt", weights_only=True)["state"]["step"] == 6

    monkeypatch.undo()
    result = dipster(rod, out, *TINY, "--steps", 10, "--resume")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["training"]["steps"] == 10
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "report.html", "run", "summary.json", "volumes.h5"]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_sigterm_checkpoints_exits_143_and_resume_cleans_what_a_killed_run_left(tmp_path, rod, monkeypatch):
    def sigterm(step, info):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli_dipster, "train_dipster", functools.partial(train_dipster, callback=sigterm))
    out = tmp_path / "R"
    result = dipster(rod, out, *TINY, "--steps", 10)
    assert result.exit_code == 143, result.output
    assert torch.load(out / "run" / "checkpoint.pt", weights_only=True)["state"]["step"] == 4
    (out / ".partial-0bad").mkdir()  # what a kill -9 leaves: a staging folder and a half-written file
    (out / ".partial-0bad" / "volumes.h5").write_bytes(b"half")
    (out / "run" / ".checkpoint.0bad.partial.pt").write_bytes(b"half")
    monkeypatch.undo()
    assert dipster(rod, out, *TINY, "--steps", 10, "--resume").exit_code == 0
    assert not list(out.rglob(".*partial*")) and not list(out.rglob("run.lock"))


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, rod):
    out = tmp_path / "R"
    out.mkdir()
    (out / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    assert_input_error(dipster(rod, out, *TINY, "--steps", 2), str(out), "in use by another run")
    assert sorted(p.name for p in out.iterdir()) == ["run.lock"]


def test_a_collapsed_run_fails_with_a_clear_message(tmp_path, rod):
    out = tmp_path / "R"
    assert_input_error(dipster(rod, out, *TINY, "--steps", 40, "--lr", 100), "collapsed", "smaller lr")
    assert not (out / "volumes.h5").exists() and not (out / "run" / "model.pt").exists()


# --- tomotime query -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["t5.mrc", "t5.tif"])
def test_query_one_time_equals_the_exported_volume(trained, tmp_path, name):
    out, _ = trained
    volumes, _ = read_series(out / "volumes.h5")
    result = invoke("query", out / "model.pt", "--time", 5, "--out", tmp_path / name, "--device", "cpu")
    assert result.exit_code == 0, result.output
    volume = mrcfile.read(tmp_path / name) if name.endswith(".mrc") else tifffile.imread(tmp_path / name)
    assert volume.shape == (SIZE, SIZE, SIZE)
    np.testing.assert_allclose(volume, volumes[5], rtol=1e-5, atol=1e-6)
    assert "as float32" in result.stdout and "24 acquisition times" in result.stdout
    assert result.stderr == ""


def test_query_series_and_another_angle(trained, tmp_path):
    out, _ = trained
    volumes, _ = read_series(out / "volumes.h5")
    result = invoke("query", out / "model.pt", "--times", "0:10:5", "--out", tmp_path / "s.h5")
    assert result.exit_code == 0, result.output
    queried, times = read_series(tmp_path / "s.h5")
    np.testing.assert_allclose(times, [0, 5, 10])
    np.testing.assert_allclose(queried, volumes[[0, 5, 10]], rtol=1e-5, atol=1e-6)
    result = invoke("query", out / "model.pt", "--times", "2.5,7", "--angle", 30, "--out", tmp_path / "a.h5")
    assert result.exit_code == 0, result.output
    tilted, times = read_series(tmp_path / "a.h5")
    np.testing.assert_allclose(times, [2.5, 7])
    assert tilted.shape == (2, SIZE, SIZE, SIZE) and np.isfinite(tilted).all()


def test_query_outside_the_trained_range_warns(trained, tmp_path):
    out, _ = trained
    result = invoke("query", out / "model.pt", "--time", 40, "--out", tmp_path / "late.mrc")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: ") and "outside the trained range [0, 23] s" in result.stderr
    assert mrcfile.read(tmp_path / "late.mrc").shape == (SIZE, SIZE, SIZE)


def test_query_bad_model_files(trained, tmp_path):
    out, _ = trained
    data = (out / "model.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    payload = torch.load(out / "model.pt", weights_only=True)
    torch.save({**payload, "format_version": 99, "tomotime_version": "9.0"}, tmp_path / "future.pt")
    for name, fragment in [("cut.pt", "not a readable DIP-STER model"), ("empty.pt", "empty"),
                           ("future.pt", "format version 99"), ("absent.pt", "no such model file")]:
        target = tmp_path / f"{name}.mrc"
        assert_input_error(invoke("query", tmp_path / name, "--time", 1, "--out", target), name, fragment)
        assert not target.exists()


def test_query_refuses_to_overwrite(trained, tmp_path):
    out, _ = trained
    target = tmp_path / "v.mrc"
    target.write_bytes(b"earlier result")
    assert_input_error(invoke("query", out / "model.pt", "--time", 1, "--out", target), str(target), "--overwrite")
    assert target.read_bytes() == b"earlier result"
    assert invoke("query", out / "model.pt", "--time", 1, "--out", target, "--overwrite").exit_code == 0
    assert mrcfile.read(target).shape == (SIZE, SIZE, SIZE)


@pytest.mark.parametrize(("options", "fragments"), [
    ([], ["either --time", "--times"]),
    (["--time", 1, "--times", "0,1"], ["either --time"]),
    (["--times", "0,1", "--format", "tiff"], ["--format applies to a single --time"]),
    (["--time", 1, "--angle", "sideways"], ["--angle='sideways'"]),
    (["--times", "3,1"], ["strictly increase"]),
])
def test_query_bad_options(trained, tmp_path, options, fragments):
    out, _ = trained
    target = tmp_path / "q.h5"
    assert_input_error(invoke("query", out / "model.pt", "--out", target, *options), *fragments)
    assert not target.exists()
