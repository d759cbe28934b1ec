"""The command line on inputs a new user or a hostile tester gives it: no silent wrong results,
no tracebacks, errors that name the user's file or option (exit 2), and ``info`` on every file
the project reads or writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from cli_helpers import assert_input_error, invoke

import tomotime.cli.reconstruct as cli_reconstruct
from tomotime.data import TiltSeries
from tomotime.geometry import grs_angles
from tomotime.io import write_angles, write_tilt_series
from tomotime.physics import VolumeProjector

SIZE, VIEWS = 16, 12


@pytest.fixture(scope="module")
def projections() -> np.ndarray:
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE] - (SIZE - 1) / 2
    ball = ((z**2 + y**2 + x**2) <= 20).astype(np.float32)
    return VolumeProjector(grs_angles(VIEWS), ball.shape).forward(torch.from_numpy(ball)).numpy()


def _npy(folder, images, angles=None, *, name="s"):
    path = folder / f"{name}.npy"
    np.save(path, images)
    write_angles(path.with_suffix(".rawtlt"), grs_angles(len(images)) if angles is None else angles)
    return path


@pytest.fixture
def series(tmp_path, projections):
    return _npy(tmp_path, projections)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A noise-free simulation and a sliding-window reconstruction of it (16^3, 8 steps)."""
    root = tmp_path_factory.mktemp("sim")
    assert invoke("simulate", "nanorod-alloying", "--out", root / "D", "--size", SIZE, "--steps", 8).exit_code == 0
    result = invoke("reconstruct", root / "D" / "series.mrc", "--out", root / "R", "-m", "fbp", "-w", 4,
                    "--per-time-mrc")
    assert result.exit_code == 0, result.output
    return root


# ---------------------------------------------------------------- info


def test_info_warns_about_radians_and_notes_header_lines_and_both_ends(tmp_path, projections):
    path = _npy(tmp_path, projections)
    path.with_suffix(".rawtlt").write_text("".join(f"{a:.5f}\n" for a in np.radians(grs_angles(VIEWS))))
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stdout and "look like radians" in result.stdout
    path.with_suffix(".rawtlt").write_text("exported 2026-05-04\n" + "".join(
        f"{a}\n" for a in np.linspace(-90, 90, VIEWS)))
    out = invoke("info", path).stdout
    assert "note:" in out and "line 1 ('exported 2026-05-04')" in out and "skipped" in out
    assert "same projection, mirrored" in out


def test_info_does_not_call_a_noise_free_simulation_saturated(simulated):
    result = invoke("info", simulated / "D" / "series.mrc", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == []


def test_info_json_reports_errors_as_json(tmp_path):
    result = invoke("info", tmp_path / "missing.mrc", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert "no such file" in error["error"] and error["file"] == str(tmp_path / "missing.mrc")


def test_info_describes_volumes_volume_series_and_their_origin(simulated):
    for path, kind, fragment in [
        (simulated / "R" / "volumes.h5", "volume series", "8 from 0 to 7 s"),
        (simulated / "D" / "truth.h5", "volume series", "tomotime simulate nanorod-alloying"),
        (simulated / "R" / "mrc" / "t0000.mrc", "volume", "tomotime reconstruct"),  # its record is one folder up
    ]:
        result = invoke("info", path)
        assert result.exit_code == 0, result.output
        assert f"({kind})" in result.stdout and fragment in result.stdout
        report = json.loads(invoke("info", path, "--json").stdout)
        assert report["kind"] == kind and report["made_by"] is not None
    volume = json.loads(invoke("info", simulated / "R" / "volumes.h5", "--json").stdout)
    assert volume["shape"] == [8, SIZE, SIZE, SIZE] and volume["times"]["count"] == 8


def test_info_describes_a_model(tmp_path):
    from tomotime.recon.dipster.store import MODEL_FORMAT

    payload = {"format": MODEL_FORMAT, "format_version": 1, "tomotime_version": "0.1.0",
               "model": {"slice_shape": [16, 16], "n_rows": 16, "time_range": [0.0, 23.0], "angle_range": [-70, 70],
                         "pixel_size": 0.5, "acquisition": {"times": list(range(24))}, "config": {"manifold": "yt"}},
               "extra": {}, "state_dict": {"w": torch.zeros(3, 4)}}
    torch.save(payload, tmp_path / "model.pt")
    result = invoke("info", tmp_path / "model.pt")
    assert result.exit_code == 0, result.output
    assert "(model)" in result.stdout and "24 acquisitions" in result.stdout and "12 parameters" in result.stdout


def test_info_on_a_tiff_of_mixed_page_sizes_says_what_it_found(tmp_path):
    with tifffile.TiffWriter(tmp_path / "m.tif") as tif:
        for size in (32, 16):
            tif.write(np.zeros((size, size), np.uint16))
    assert_input_error(invoke("info", tmp_path / "m.tif", "--angles", _npy(tmp_path, np.zeros((2, 4, 4)),
                                                                            [0, 1]).with_suffix(".rawtlt")),
                       "m.tif", "2 pages", "1 x 32x32", "1 x 16x16")


# ---------------------------------------------------------------- reconstruct: results that cannot mean anything


@pytest.mark.parametrize("case, options, fragments", [
    ("negative", ["--min", 0], ["every projection value is <=", "--min 0"]),
    ("one view", [], ["one direction", "two or more tilt angles"]),
    ("zeros", [], ["every pixel is 0"]),
    ("one column", [], ["at least 2 x 2"]),
])
def test_reconstruct_refuses_data_that_cannot_give_a_volume(tmp_path, projections, case, options, fragments):
    images, angles = projections, grs_angles(VIEWS)
    if case == "negative":
        images = -projections - 0.1
    elif case == "one view":
        images, angles = projections[:1], angles[:1]
    elif case == "zeros":
        images = np.zeros_like(projections)
    elif case == "one column":
        images = projections[:, :, :1]
    path = _npy(tmp_path, images, angles)
    out = tmp_path / "out"
    assert_input_error(invoke("reconstruct", path, "--out", out, *options), str(path), *fragments)
    assert not out.exists()


@pytest.mark.parametrize("options, fragments", [
    (["--min", "nan"], ["--min=nan", "finite"]),
    (["--thickness", 100_000_000], ["--thickness 100000000", "GiB"]),
    (["-w", 4, "--times", "0:1e9:1e-9"], ["--times", "1e+18 time points"]),
    (["-w", 1], ["--window=1"]),
])
def test_reconstruct_checks_options_before_any_work(tmp_path, series, monkeypatch, options, fragments):
    def no_work(*args, **kwargs):
        raise AssertionError("the reconstruction started")

    monkeypatch.setattr(cli_reconstruct, "reconstruct_volume", no_work)
    monkeypatch.setattr(cli_reconstruct, "sliding_window", no_work)
    assert_input_error(invoke("reconstruct", series, "--out", tmp_path / "out", *options), *fragments)


def test_an_output_folder_that_cannot_be_written_is_named(tmp_path, series):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "results"
    result = invoke("reconstruct", series, "--out", out, "-m", "fbp")
    assert_input_error(result, str(out), "cannot be written")
    assert ".partial" not in result.stderr
    from tomotime.errors import OutputError
    from tomotime.io import write_volume_mrc

    from tomotime.io import VolumeSeriesWriter

    with pytest.raises(OutputError, match="cannot be written") as info:  # single files too
        write_volume_mrc(out / "v.mrc", np.zeros((2, 2, 2), np.float32))
    assert str(out / "v.mrc") in str(info.value) and ".partial" not in str(info.value)
    with pytest.raises(OutputError, match="cannot be written") as info, \
            VolumeSeriesWriter(out / "v.h5", shape=(1, 2, 2, 2)):
        pass
    assert str(out / "v.h5") in str(info.value) and ".partial" not in str(info.value)


def test_the_longest_legal_output_name_works(tmp_path, series):
    out = tmp_path / ("r" * 251)
    result = invoke("reconstruct", series, "--out", out, "-m", "fbp")
    assert result.exit_code == 0, result.output
    assert (out / "volume.mrc").is_file()
    name = tmp_path / ("v" * 251 + ".mrc")
    from tomotime.io import write_volume_mrc

    write_volume_mrc(name, np.zeros((2, 2, 2), np.float32))
    assert name.is_file()


# ---------------------------------------------------------------- simulate


@pytest.mark.parametrize("options, fragments", [
    (["--seed", -1], ["--seed -1", "non-negative"]),
    (["--shift-std", 1e6], ["--shift-std", "out of the 16-pixel field of view"]),
    (["--tilt-blur", "nan"], ["--tilt-blur=nan"]),
    (["--size", 100_000], ["--size 100000", "GiB"]),
])
def test_simulate_checks_options_before_any_work(tmp_path, options, fragments):
    out = tmp_path / "D"
    size = [] if "--size" in options else ["--size", SIZE]
    assert_input_error(invoke("simulate", "nanorod-alloying", "--out", out, "--steps", 4, *size, *options),
                       *fragments)
    assert not out.exists()


# ---------------------------------------------------------------- query


@pytest.mark.parametrize("name", ["x.xyz", "x"])
def test_query_refuses_an_unknown_output_suffix(tmp_path, name):
    result = invoke("query", tmp_path / "model.pt", "--time", 1, "--out", tmp_path / name)
    assert_input_error(result, "--out", name, "unknown suffix", ".h5")
    assert not (tmp_path / name).exists()


def test_query_a_single_time_to_hdf5_writes_a_series(tmp_path, monkeypatch):
    import tomotime.cli.query as cli_query
    from tomotime.io import read_volume_series

    class Net:
        pixel_size = 0.5
        extra: dict = {}
        acquisition = {"times": np.arange(4.0)}

        class config:
            query_angle = 0.0

    def fake_series(net, times, *, angle=None, out=None, overwrite=False):
        from tomotime.data import VolumeSeries
        from tomotime.io import write_volume_series

        write_volume_series(out, VolumeSeries(np.ones((len(times), 4, 4, 4), np.float32), times=times))
        return read_volume_series(out)

    (tmp_path / "model.pt").write_bytes(b"model")
    monkeypatch.setattr(cli_query, "load_model", lambda path, device: Net())
    monkeypatch.setattr(cli_query, "volume_series", fake_series)
    result = invoke("query", tmp_path / "model.pt", "--time", 2, "--out", tmp_path / "v.h5")
    assert result.exit_code == 0, result.output
    written = read_volume_series(tmp_path / "v.h5")
    assert written.shape == (1, 4, 4, 4) and list(written.times) == [2.0]
