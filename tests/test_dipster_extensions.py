"""DIP-STER beyond the basics: the paper's preset, learned per-view corrections, per-row angles and times
of a continuously tilted frame, and ensembles giving a band on any quantity (API and command line)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from cli_helpers import assert_input_error, invoke

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.io import write_tilt_series
from tomotime.physics import ParallelProjector2D
from tomotime.recon.dipster import (
    PAPER_PRESET,
    QUANTITIES,
    CorrectionWarning,
    DipsterConfig,
    ViewCorrections,
    band_of,
    check_identifiable,
    ensemble_band,
    ramp_filter,
    total_variation_1d,
    train_dipster,
    train_ensemble,
)
from tomotime.recon.dipster import method as method_module
from tomotime.recon.dipster.corrections import shift_rows
from tomotime.recon.dipster.problem import prepare_problem
from tomotime.sim import make_scenario, misalign_image, simulate_acquisition

TINY = dict(hidden=(32,), latent=8, base_channels=16, min_channels=8, batch_size=8, lr=2e-3, device="cpu",
            eval_every=50, checkpoint_every=0, holdout_fraction=0.0, patience=None)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def static_object(n: int = 16) -> np.ndarray:
    """An ellipsoid with a brighter inclusion off-centre, (n, n, n)."""
    z, y, x = np.meshgrid(*[np.arange(n) - (n - 1) / 2] * 3, indexing="ij")
    body = (((z / 4) ** 2 + (y / 6) ** 2 + ((x - 1) / 3.5) ** 2) < 1).astype(np.float32)
    return body + 0.5 * (((z - 1) ** 2 + (y + 2) ** 2 + (x + 3) ** 2) < 6)


# --- the paper's preset -------------------------------------------------------------------

def test_paper_preset_is_the_papers_recipe_and_options_override_it():
    cfg = DipsterConfig.paper()
    assert (cfg.manifold, cfg.loss, cfg.lr, cfg.lr_schedule, cfg.batch_size) == ("cos-sin-y-t", "gm", 1e-4, "step", 4)
    assert cfg.tv_weight == 0 and cfg.projection_tv_weight == 0 and cfg.warmup_steps == 0
    assert cfg.grad_clip is None and cfg.ema_decay is None and cfg.lr_warmup == 0
    assert DipsterConfig.paper(experimental=True).projection_tv_weight > 0
    assert DipsterConfig.paper(batch_size=8).batch_size == 8
    defaults = DipsterConfig()
    assert any(getattr(defaults, k) != v for k, v in PAPER_PRESET.items())  # the defaults differ, measured


# --- the ramp-filtered residual ----------------------------------------------------------

def test_ramp_filter_weights_frequencies_as_the_square_root_of_a_ramp():
    n = 32
    x = torch.arange(n, dtype=torch.float64)
    ramp = torch.fft.fftfreq(n, dtype=torch.float64).abs().clamp_min(1.0 / n)
    ramp = ramp / ramp.mean()
    for k in (0, 1, 5, 16):  # a pure frequency comes out scaled by sqrt(ramp(k)) and otherwise unchanged
        wave = torch.cos(2 * np.pi * k * x / n)
        torch.testing.assert_close(ramp_filter(wave[None])[0], wave * ramp[k].sqrt())
    assert float(ramp[16] / ramp[1]) == pytest.approx(16.0)  # Nyquist weighs 16x the first frequency at n = 32
    assert float(ramp[0]) == float(ramp[1])  # the row sum is kept, weighted as the first frequency
    noise = torch.randn(4000, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float((ramp_filter(noise) ** 2).mean()) == pytest.approx(1.0, rel=0.02)  # white noise keeps its power


def test_ramp_filtered_loss_has_the_ramp_filtered_residual_as_gradient():
    rows = torch.randn(3, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    (ramp_filter(rows) ** 2).sum().backward()
    ramp = torch.fft.fftfreq(20, dtype=torch.float64).abs().clamp_min(1.0 / 20)
    expected = 2 * torch.fft.ifft(torch.fft.fft(rows.detach()) * ramp / ramp.mean()).real
    torch.testing.assert_close(rows.grad, expected)


def test_ramp_residual_filter_reaches_the_training_loss_and_not_the_holdout(monkeypatch):
    truth = make_scenario("nanorod-alloying", size=16, steps=6)
    series = simulate_acquisition(truth, seed=0)
    calls = []
    real = method_module.ramp_filter
    monkeypatch.setattr(method_module, "ramp_filter", lambda rows: calls.append(rows.shape) or real(rows))
    cfg = DipsterConfig(**{**TINY, "holdout_fraction": 0.2, "eval_every": 2}, steps=2, residual_filter="ramp")
    train_dipster(series, cfg, progress=False)
    assert calls == [(cfg.batch_size, 16)] * 2  # one filtered batch per training step, none for the holdout
    assert DipsterConfig.paper().residual_filter == "none"
    with pytest.raises(Exception, match="residual_filter"):
        DipsterConfig(residual_filter="hann")


def test_projection_tv_is_the_mean_absolute_difference_along_the_detector():
    rows = torch.tensor([[0.0, 1.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0]])
    assert float(total_variation_1d(rows)) == pytest.approx((1 + 0 + 2) / 6)  # 2 rows x 3 differences
    with pytest.raises(InputError, match="rows"):
        total_variation_1d(torch.zeros(2, 3, 4))


# --- per-view corrections -----------------------------------------------------------------

def test_shift_rows_matches_scipy_for_the_image_shift_convention():
    rng = np.random.default_rng(0)
    rows = rng.random((3, 20)).astype(np.float32)
    dx = np.array([0.0, 1.5, -2.25])
    out = shift_rows(torch.from_numpy(rows), torch.from_numpy(dx)).numpy()
    for b in range(3):  # the same convention as the simulator's misalignment: out(x) = in(x - dx)
        ref = misalign_image(np.stack([rows[b]] * 3), axis_rotation=0, shift_y=0, shift_x=dx[b])[1]
        inside = (np.arange(20) - dx[b] >= 0) & (np.arange(20) - dx[b] <= 19)  # scipy zeroes partial edge samples
        np.testing.assert_allclose(out[b][inside], ref[inside], atol=1e-5)


def test_corrections_are_gauge_fixed():
    c = ViewCorrections(4, ("gain", "offset", "shift")).requires_grad_(False)
    with torch.no_grad():
        c.log_gain.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        c.offset.copy_(torch.tensor([1.0, 2.0, 3.0, 6.0]))
        c.shift.copy_(torch.tensor([[1.0, 2.0]] * 4))
    assert float(torch.log(c.gains()).mean()) == pytest.approx(0, abs=1e-6)
    assert float(c.offsets().mean()) == pytest.approx(0, abs=1e-6)
    assert torch.allclose(c.shifts(), torch.zeros(4, 2))  # a common shift moves the specimen, not the views


def test_corrections_recover_a_known_gain_and_shift():
    n = 24
    clean = simulate_acquisition(VolumeSeries(np.stack([static_object()] * n)), seed=0)
    gain = np.ones(n)
    gain[5], gain[12] = 1.3, 0.8
    shift = np.zeros((n, 2))
    shift[8, 1], shift[17, 0] = 1.5, -1.0
    images = np.stack([gain[i] * misalign_image(clean.images[i], axis_rotation=0, shift_y=shift[i, 0],
                                                shift_x=shift[i, 1]) for i in range(n)])
    series = TiltSeries(images, clean.angles, times=clean.times)
    cfg = DipsterConfig(**TINY, steps=400, corrections=("gain", "shift"), correction_window=100.0)
    learned = train_dipster(series, cfg, progress=False).model.corrections.to_dict()
    g = np.asarray(learned["gain"]) * np.exp(-np.mean(np.log(gain)))  # undo the gauge (geometric mean 1)
    np.testing.assert_allclose(g[[5, 12]], [1.3, 0.8], atol=0.03)
    assert np.abs(np.delete(g, [5, 12]) - 1).max() < 0.04
    sx = np.asarray(learned["shift_x"]) + shift[:, 1].mean()
    sy = np.asarray(learned["shift_y"]) + shift[:, 0].mean()
    assert abs(sx[8] - 1.5) < 0.35 and np.argmax(np.abs(sx)) == 8
    assert sy[17] < -0.5 and np.argmax(np.abs(sy)) == 17
    assert learned.keys() >= {"offset"} and np.allclose(learned["offset"], 0)  # not requested: identity


def test_corrections_warn_with_too_few_views_per_time_window():
    times = np.arange(16.0)
    assert check_identifiable(times, None) is not None  # a tenth of 15 s holds one view
    assert check_identifiable(times, 8.0) is None
    series = simulate_acquisition(VolumeSeries(np.stack([static_object()] * 16)), seed=0)
    with pytest.warns(CorrectionWarning, match="views per time window"):
        train_dipster(series, DipsterConfig(**TINY, steps=1, corrections="gain"), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorrectionWarning)
        train_dipster(series, DipsterConfig(**TINY, steps=1, corrections="gain", correction_window=8.0), progress=False)


def test_unknown_corrections_are_refused():
    with pytest.raises(InputError, match="unknown correction 'tilt'"):
        DipsterConfig(corrections="gain,tilt")


# --- per-row angles and times -------------------------------------------------------------

def test_per_row_angles_and_times_reach_the_forward_model(monkeypatch):
    series = simulate_acquisition(VolumeSeries(np.stack([static_object()] * 8)), seed=0)
    cfg = DipsterConfig(**TINY, steps=1, row_lag=8.0, row_time_lag=0.5)
    problem = prepare_problem(series, cfg, torch.device("cpu"))
    model = train_dipster(series, cfg, progress=False).model
    pairs = torch.tensor([[0, 0], [3, 5], [6, 15]])
    seen = {}
    real_forward = type(model).forward

    def spy(self, t, y, theta):
        seen["t"], seen["theta"] = torch.as_tensor(t).clone(), torch.as_tensor(theta).clone()
        return real_forward(self, t, y, theta)

    monkeypatch.setattr(type(model), "forward", spy)
    with torch.no_grad():
        slices, projected = method_module.predict_rows(model, problem, pairs)
    rows = pairs[:, 1].numpy()
    expected_theta = series.angles[pairs[:, 0].numpy()] + 8.0 * rows / 16
    expected_t = series.times[pairs[:, 0].numpy()] + 0.5 * rows / 16
    np.testing.assert_allclose(seen["theta"].numpy(), expected_theta)
    np.testing.assert_allclose(seen["t"].numpy(), expected_t)
    # Brute force: each generated slice projected by the 2D projector at its row's own angle.
    for b in range(3):
        ref = ParallelProjector2D([float(expected_theta[b])], tuple(slices.shape[1:])).forward(slices[b])[0]
        np.testing.assert_allclose(projected[b].numpy(), np.asarray(ref), rtol=1e-4, atol=1e-5)


# --- ensembles ----------------------------------------------------------------------------

def test_band_is_the_member_spread_and_one_member_is_refused():
    band = band_of([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]])
    np.testing.assert_allclose(band.mean, [2.0, 3.0, 2.0])
    np.testing.assert_allclose(band.lower, [1.0, 2.0, 1.0])
    np.testing.assert_allclose(band.upper, [3.0, 5.0, 3.0])
    np.testing.assert_allclose(band.width, [2.0, 3.0, 2.0])
    for bad in ([[1.0, 2.0]], []):
        with pytest.raises(InputError, match="at least 2 members"):
            band_of(bad)
    with pytest.raises(InputError, match="at least 2 members"):
        train_ensemble(None, DipsterConfig(), 1)


def test_ensemble_band_of_any_quantity():
    series = simulate_acquisition(make_scenario("nanorod-alloying", 16, steps=12, seed=0), seed=0)
    members = train_ensemble(series, DipsterConfig(**TINY, steps=40), 2, progress=False)
    assert [m.run["config"]["seed"] for m in members] == [0, 1]
    models = [m.model for m in members]
    total = ensemble_band(models, lambda vols: np.asarray([float(np.sum(v)) for v in vols]))
    assert total.members.shape == (2, 12) and (total.lower <= total.mean).all() and (total.mean <= total.upper).all()
    assert total.width.max() > 0  # different seeds, different volumes
    alloy = ensemble_band(models, "alloying")
    assert alloy.mean.shape == (12,) and alloy.mean[0] == pytest.approx(0)  # sigma_0 is the first volume's
    assert set(QUANTITIES) == {"alloying", "surface-to-volume", "redistribution"}


# --- command line -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rod(tmp_path_factory):
    series = simulate_acquisition(make_scenario("nanorod-alloying", 16, steps=24, seed=0), seed=0)
    path = tmp_path_factory.mktemp("data") / "rod.mrc"
    write_tilt_series(path, series)
    return path


CLI_TINY = ["--method", "dipster", "--hidden", 32, "--base-channels", 16, "--device", "cpu", "--no-report"]


def test_cli_paper_preset_with_an_override(rod, tmp_path):
    out = tmp_path / "P"
    result = invoke("reconstruct", rod, "--out", out, *CLI_TINY, "--steps", 4, "--preset", "paper",
                    "--batch-size", 2)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "summary.json").read_text())["config"]
    assert (config["manifold"], config["loss"], config["lr"], config["lr_schedule"]) == ("cos-sin-y-t", "gm", 1e-4,
                                                                                        "step")
    assert config["grad_clip"] is None and config["ema_decay"] is None and config["batch_size"] == 2
    assert config["hidden"] == [32]


def test_cli_ensemble_writes_members_and_band(rod, tmp_path):
    out = tmp_path / "E"
    result = invoke("reconstruct", rod, "--out", out, *CLI_TINY, "--steps", 10, "--ensemble", 2,
                    "--corrections", "gain,offset")
    assert result.exit_code == 0, result.output
    assert "warning: corrections: a median of" in result.output  # 24 views, a window of 2.3 s
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ensemble"]["members"] == 2 and len(summary["corrections"]["gain"]) == 24
    assert (out / "members" / "member_1" / "model.pt").is_file() and (out / "run" / "model.pt").is_file()
    band = json.loads((out / "ensemble.json").read_text())
    assert band["seeds"] == [0, 1]
    for name in ("alloying", "surface-to-volume", "redistribution"):
        q = band["quantities"][name]
        assert "error" in q or (len(q["lower"]) == 24 and np.all(np.asarray(q["lower"]) <= q["upper"]))


@pytest.mark.parametrize("options, message", [
    (["--ensemble", 1], "--ensemble=1: a band needs at least 2 members"),
    (["--corrections", "gain,tilt"], "unknown correction 'tilt'"),
    (["--row-time-lag", -1], "--row-time-lag=-1.0: expected a non-negative frame time"),
])
def test_cli_bad_dipster_extension_options(rod, tmp_path, options, message):
    result = invoke("reconstruct", rod, "--out", tmp_path / "X", *CLI_TINY, "--steps", 2, *options)
    assert_input_error(result, message)
    assert not (tmp_path / "X").exists()


def test_cli_unknown_preset_is_a_usage_error(rod, tmp_path):
    result = invoke("reconstruct", rod, "--out", tmp_path / "X", *CLI_TINY, "--preset", "fast")
    assert result.exit_code == 2 and "--preset" in result.output


def test_cli_inr_refuses_dipster_extension_options(rod, tmp_path):
    result = invoke("reconstruct", rod, "--out", tmp_path / "I", "--method", "inr", "--ensemble", 3)
    assert_input_error(result, "--ensemble applies to --method dipster")


def test_cli_residual_filter_choice_reaches_the_run_and_bad_ones_are_refused(rod, tmp_path):
    result = invoke("reconstruct", rod, "--out", tmp_path / "P", *CLI_TINY, "--steps", 2, "--residual-filter", "none")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "P" / "run" / "config.json").read_text())["residual_filter"] == "none"
    result = invoke("reconstruct", rod, "--out", tmp_path / "X", *CLI_TINY, "--residual-filter", "hann")
    assert result.exit_code == 2 and "--residual-filter" in result.output and not (tmp_path / "X").exists()
    result = invoke("reconstruct", rod, "--out", tmp_path / "I", "--method", "inr", "--residual-filter", "ramp")
    assert_input_error(result, "--residual-filter applies to --method dipster")
