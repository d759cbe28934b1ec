"""The training engine on its own, with a deliberately tiny method: fit a 2D image from its projections."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tomotime.errors import FormatError, InputError, OutputExistsError
from tomotime.physics import project_slices
from tomotime.training import (
    Method,
    NoSpaceError,
    RunLockedError,
    TrainingCollapsed,
    TrainingConfig,
    TrainingInterrupted,
    fingerprint,
    read_run_file,
    remove_partials,
    resolve_config,
    run_lock,
    train,
)
from tomotime.training import checkpoint as checkpoint_module
from tomotime.training.state import lr_factor
from tomotime.training.stopping import HoldoutEstimate, StoppingRule


class FitImageConfig(TrainingConfig):
    """Options of the tiny method: the engine's plus the CNN width."""

    method = "fit-image"
    channels: int = 8


class FitImage:
    """A small CNN turns a fixed noise map into an image ``(16, 16)``; samples are projection angles."""

    name = "fit-image"

    def __init__(self, image: np.ndarray, config: FitImageConfig, n_angles: int = 24) -> None:
        self.config, self.image = config, torch.as_tensor(image, dtype=torch.float32)
        self.angles = torch.linspace(-80, 80, n_angles, dtype=torch.float64)
        self.data = project_slices(self.image.expand(n_angles, *image.shape), self.angles)
        held = int(round(config.holdout_fraction * n_angles))
        self.holdout = torch.arange(0, n_angles, max(1, n_angles // max(held, 1)))[:held]
        self.train_set = torch.tensor([i for i in range(n_angles) if i not in set(self.holdout.tolist())])
        self.n_train, self.n_holdout = len(self.train_set), len(self.holdout)

    def build_model(self) -> nn.Module:
        torch.manual_seed(self.config.seed)
        c = self.config.channels
        net = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 1, 3, padding=1), nn.Softplus())
        net.register_buffer("noise", torch.rand(1, 1, *self.image.shape))
        return net

    def _residual(self, net, views):
        image = net(net.noise if not hasattr(net, "module") else net.module.noise)[0, 0]
        return project_slices(image.expand(len(views), *image.shape), self.angles[views]) - self.data[views]

    def batch_loss(self, net, indices, step):
        return (self._residual(net, self.train_set[indices]) ** 2).mean()

    def holdout_losses(self, model, indices):
        return (self._residual(model, self.holdout[indices]) ** 2).mean(dim=-1)

    def describe(self):
        return {"config": self.config.to_dict(), "data": {"fingerprint": fingerprint(self.image.numpy())}}

    def collapsed(self, model):
        image = model(model.noise)
        return "constant output" if float(image.max() - image.min()) < 1e-8 else None

    def save(self, path, model, extra):
        torch.save({"state": model.state_dict(), **extra}, path)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    y, x = np.mgrid[:16, :16] - 7.5
    return ((x**2 + y**2) < 30).astype(np.float32) + 0.5 * ((x - 2) ** 2 + (y + 1) ** 2 < 6)


def config(**changes) -> FitImageConfig:
    base = dict(steps=30, batch_size=4, lr=1e-2, eval_every=5, holdout_fraction=0.2, patience=None,
                checkpoint_every=0, device="cpu", lr_warmup=0.1, grad_clip=1.0, ema_decay=0.9)
    return FitImageConfig(**{**base, **changes})


def params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


def same_history(a, b) -> bool:
    strip = lambda h: [{k: None if v != v else v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    return strip(a) == strip(b)


def test_the_tiny_method_fits_the_interface_and_learns(image):
    method = FitImage(image, config(lr=0.1, steps=60))
    assert isinstance(method, Method)
    result = train(method, progress=False)
    assert result.steps == 60 and result.history[0]["step"] == 0
    assert result.history[-1]["holdout_loss"] < 0.5 * result.history[0]["holdout_loss"]
    assert all(r["holdout_se"] > 0 for r in result.history)


# --- resume, signals, files --------------------------------------------------------------------------

def test_resume_is_bit_for_bit_with_schedule_clipping_and_averaging(image, tmp_path):
    cfg = config(checkpoint_every=4)
    straight = train(FitImage(image, cfg), run_dir=tmp_path / "a", progress=False)

    def stop(step, info):
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(FitImage(image, cfg), run_dir=tmp_path / "b", progress=False, callback=stop)
    resumed = train(FitImage(image, cfg), run_dir=tmp_path / "b", resume=True, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(params(straight.model), params(resumed.model), strict=True))
    assert same_history(straight.history, resumed.history)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        ["checkpoint.pt", "config.json", "metrics.csv", "model.pt", "summary.json"])  # the lock is gone
    with pytest.raises(InputError, match=r"lr: 0.01 -> 0.02"):
        train(FitImage(image, config(lr=2e-2)), run_dir=tmp_path / "b", resume=True, progress=False)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_finish_the_step_checkpoint_and_carry_the_exit_code(image, tmp_path, sig, code):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def send(step, info):
        if step == 7:
            os.kill(os.getpid(), sig)

    with pytest.raises(TrainingInterrupted) as caught:
        train(FitImage(image, config()), run_dir=tmp_path, progress=False, callback=send)
    assert caught.value.exit_code == code
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    saved = checkpoint_module.read_checkpoint(tmp_path / "checkpoint.pt", "fit-image")
    assert saved["state"]["step"] == 7


def test_checkpoints_at_least_ten_per_run_and_by_wall_time(image, tmp_path, monkeypatch):
    from tomotime.training import engine

    written = []
    real = engine.write_checkpoint
    monkeypatch.setattr(engine, "write_checkpoint", lambda *a: written.append(a[2]["state"]["step"]) or real(*a))
    train(FitImage(image, config(checkpoint_every=None)), run_dir=tmp_path / "a", progress=False)
    assert written[:10] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]  # ceil(30 / 10) steps apart, then the final one
    written.clear()
    train(FitImage(image, config(checkpoint_every=1000, checkpoint_minutes=1e-9)), run_dir=tmp_path / "b",
          progress=False)
    assert written[:30] == list(range(1, 31))  # every step: the wall-time interval has always passed


def test_a_full_disk_is_reported_and_the_last_checkpoint_kept(image, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = checkpoint_module.atomic_path

    def filling(path, overwrite=False):
        calls["n"] += Path(path).name == "checkpoint.pt"
        if Path(path).name == "checkpoint.pt" and calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, overwrite=overwrite)

    monkeypatch.setattr(checkpoint_module, "atomic_path", filling)
    with pytest.raises(NoSpaceError, match=r"no space left on the disk of .*needs about [\d.e-]+ MB .* is kept"):
        train(FitImage(image, config(checkpoint_every=5)), run_dir=tmp_path, progress=False)
    assert checkpoint_module.read_checkpoint(tmp_path / "checkpoint.pt", "fit-image")["state"]["step"] == 5


def test_a_live_lock_refuses_a_second_run_and_a_stale_one_is_taken_over(image, tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "run.lock").write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        with pytest.raises(RunLockedError, match=f"in use by another run \\(process {sleeper.pid}\\)"):
            train(FitImage(image, config()), run_dir=tmp_path, progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not (tmp_path / "model.pt").exists()
    train(FitImage(image, config(steps=5)), run_dir=tmp_path, progress=False)  # its process is gone now
    assert (tmp_path / "model.pt").is_file() and not (tmp_path / "run.lock").exists()


def test_the_lock_is_exclusive_while_held(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunLockedError):
            with run_lock(tmp_path):
                pass
    with run_lock(tmp_path):
        pass


def test_leftovers_of_killed_runs_are_removed_on_resume_or_overwrite(image, tmp_path):
    train(FitImage(image, config(steps=5)), run_dir=tmp_path, progress=False)
    (tmp_path / ".checkpoint.1a2b.partial.pt").write_bytes(b"half")
    (tmp_path / ".partial-9f8e").mkdir()
    (tmp_path / ".partial-9f8e" / "volumes.h5").write_bytes(b"half")
    with pytest.raises(OutputExistsError):
        train(FitImage(image, config(steps=5)), run_dir=tmp_path, progress=False)
    train(FitImage(image, config(steps=5)), run_dir=tmp_path, overwrite=True, progress=False)
    assert not list(tmp_path.glob(".*partial*"))
    assert remove_partials(tmp_path / "absent") == []


def test_checkpoints_of_another_method_or_damaged_ones_are_refused(image, tmp_path):
    train(FitImage(image, config(steps=5)), run_dir=tmp_path, progress=False)
    with pytest.raises(FormatError, match="checkpoint of the method 'fit-image', not 'dipster'"):
        checkpoint_module.read_checkpoint(tmp_path / "checkpoint.pt", "dipster")
    (tmp_path / "checkpoint.pt").write_bytes((tmp_path / "checkpoint.pt").read_bytes()[:100])
    with pytest.raises(FormatError, match="damaged or truncated"):
        train(FitImage(image, config(steps=5)), run_dir=tmp_path, resume=True, progress=False)


# --- stopping and collapse ---------------------------------------------------------------------------

def test_stopping_rule_ignores_spikes_and_plateaus_and_stops_on_a_clear_rise():
    rule = StoppingRule(smoothing=0.5, patience=2, min_step=60, warmup=0, min_improvement=0.0, margin=1.0)
    keep = [rule.update(step, value, se=0.5) for step, value in [(0, 8.0), (10, 4.0), (20, 40.0), (30, 4.0)]]
    assert keep == [True, True, False, False] and rule.kept_step == 10  # one spike of 10x, still decaying
    assert rule.smoothed == pytest.approx(((8 + 4) / 2 + 40) / 4 + 4 / 2) and rule.worse == 2
    assert not rule.should_stop(30) and rule.should_stop(60)  # patience is spent, but not before min_step
    for step in range(40, 120, 10):
        rule.update(step, rule.best + 0.2, se=0.5)  # back on a plateau within the noise of the best
    assert rule.worse == 0 and rule.kept_step == 110 and not rule.should_stop(110)  # the later state is kept
    raw = StoppingRule(smoothing=1.0, patience=2, min_step=0, warmup=0, min_improvement=0.0, margin=0.0)
    for step, value in [(0, 8.0), (10, 4.0), (20, 40.0), (30, 5.0)]:
        raw.update(step, value)
    assert raw.should_stop(30)  # without smoothing and margin the spike and its tail stop the run
    est = HoldoutEstimate.from_sums(total=6.0, squares=14.0, count=3)  # losses 1, 2, 3
    assert est.mean == 2.0 and est.se == pytest.approx(1 / math.sqrt(3))


def test_patience_stops_a_run_that_overfits_and_returns_the_kept_state(image):
    result = train(FitImage(image, config(steps=400, lr=0.03, lr_schedule="constant", grad_clip=None,
                                          eval_every=1, patience=2, min_fraction=0.0, holdout_smoothing=1.0,
                                          stop_margin=0.0, ema_decay=None)), progress=False)
    assert result.stopped_early and result.steps < 400
    assert result.best_step < result.steps
    kept = next(r for r in result.history if r["step"] == result.best_step)
    assert result.best_holdout_loss == kept["holdout_loss"] <= min(r["holdout_loss"] for r in result.history)


def test_a_collapsed_model_stops_with_a_clear_error(image, tmp_path):
    class Flat(FitImage):
        def collapsed(self, model):
            return "constant output"

    with pytest.raises(TrainingCollapsed, match="collapsed at step 5: constant output"):
        train(Flat(image, config()), run_dir=tmp_path, progress=False)
    assert not (tmp_path / "model.pt").exists()


# --- schedule and sampling ---------------------------------------------------------------------------

def test_learning_rate_warms_up_then_decays():
    cos = config(lr_warmup=0.1, lr_schedule="cosine", lr_final=0.1)  # 10 of 100 steps
    assert [lr_factor(s, cos, 100, 1) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(55, cos, 100, 1) == pytest.approx(0.55) and lr_factor(100, cos, 100, 1) == pytest.approx(0.1)
    step = config(lr_warmup=0, lr_schedule="step", lr_gamma=0.5)
    assert [lr_factor(s, step, 90, 30) for s in (0, 29, 30, 89)] == [1.0, 1.0, 0.5, 0.25]


def test_every_training_sample_is_used_once_per_epoch(image):
    from tomotime.training.state import TrainState

    method = FitImage(image, config(batch_size=7))  # 19 training angles: batches straddle epochs
    state = TrainState(method.build_model(), method.config, n_train=method.n_train, total_steps=10, lr_step=1)
    drawn = []
    for state.step in range(8):
        drawn.append(state.batch_indices())
    drawn = torch.cat(drawn)
    for epoch in range(2):
        assert sorted(drawn[epoch * 19:(epoch + 1) * 19].tolist()) == list(range(19))


# --- configuration and run files ---------------------------------------------------------------------

@pytest.mark.parametrize("text, suffix, fragments", [
    ("lrr: 0.1\n", ".yaml", ["lrr: unknown option", "did you mean 'lr'?"]),
    ("manifold: y-t\n", ".yaml", ["manifold: unknown option", "it is an option of dipster"]),
    ("steps = 'many'\n", ".toml", ["steps='many'", "valid integer"]),
    ('{"patience": 0}', ".json", ["patience=0", "greater than or equal to 1"]),
    ("schema_version: 1\n", ".yaml", ["schema_version=1", "reads version 2"]),
    ("", ".yaml", ["empty"]),
    ("steps: [1\n", ".yaml", ["not valid YAML"]),
])
def test_bad_run_files_name_the_file_and_the_key(tmp_path, text, suffix, fragments):
    import tomotime.recon.dipster  # noqa: F401  (registers the dipster options)

    path = tmp_path / f"run{suffix}"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        resolve_config(FitImageConfig, path)
    message = str(caught.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    if text.strip():
        assert str(path) in message


def test_the_written_configuration_is_a_valid_run_file(image, tmp_path):
    train(FitImage(image, config(steps=5)), run_dir=tmp_path, progress=False)
    again = resolve_config(FitImageConfig, tmp_path / "config.json")
    assert again.steps == 5 and again.channels == 8 and read_run_file(tmp_path / "config.json")["lr"] == 1e-2
    toml = tmp_path / "run.toml"
    toml.write_text("[fit-image]\nlr = 1e-3\nchannels = 4\n")
    assert resolve_config(FitImageConfig, toml, {"channels": None, "steps": 9}).model_dump(
        include={"lr", "channels", "steps"}) == {"lr": 1e-3, "channels": 4, "steps": 9}


def test_parameter_groups_get_their_own_learning_rate_under_one_schedule(image):
    class TwoRates(FitImage):
        def lr_scales(self, model):
            first, second = list(model.children())[0], list(model.children())[2]
            return [(list(first.parameters()), 1.0), (list(second.parameters()), 50.0)]

    result = train(TwoRates(image, config(steps=10, lr_schedule="constant", lr_warmup=0.0)), progress=False)
    assert result.steps == 10 and result.history[-1]["lr"] == pytest.approx(1e-2)
    from tomotime.training.state import TrainState

    method = TwoRates(image, config(steps=10, lr_warmup=0.0))
    model = method.build_model()
    state = TrainState(model, method.config, n_train=method.n_train, total_steps=10, lr_step=1,
                       lr_scales=method.lr_scales(model))
    assert [g["lr"] for g in state.optimizer.param_groups] == pytest.approx([1e-2, 0.5])
    state.halve_lr()
    assert [g["lr"] for g in state.optimizer.param_groups] == pytest.approx([5e-3, 0.25])


def test_a_time_limit_ends_the_run_normally_and_resume_continues(image, tmp_path, monkeypatch):
    from tomotime.training import state as state_module

    clock = {"t": 0.0}
    monkeypatch.setattr(state_module.time, "perf_counter", lambda: clock["t"])

    def tick(step, info):
        clock["t"] += 6.0  # each step "takes" six seconds

    result = train(FitImage(image, config(time_limit=1.0)), run_dir=tmp_path, progress=False, callback=tick)
    assert result.stop_reason == "time limit" and result.steps == 11  # 60 s are reached after the 10th step
    assert result.history[-1]["step"] == 11  # a last evaluation at the stop
    assert json.loads((tmp_path / "summary.json").read_text())["stop_reason"] == "time limit"
    resumed = train(FitImage(image, config(time_limit=10.0)), run_dir=tmp_path, resume=True, progress=False,
                    callback=tick)
    assert resumed.stop_reason == "completed" and resumed.steps == 30
