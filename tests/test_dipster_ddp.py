"""DIP-STER data-parallel training and inference under ``torchrun``: two CPU processes on gloo.

The module is also the worker script: the fixture launches
``python -m torch.distributed.run --standalone --nproc_per_node 2 <this file> <folder>``
once, every rank saves what it saw into the folder, and the tests compare
that with single-process runs of the same configuration.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tomotime.data import VolumeSeries
from tomotime.recon.dipster import (
    DipsterConfig,
    load_model,
    train_dipster,
    volume_at,
    volume_series,
)
from tomotime.recon.dipster.method import DipsterMethod
from tomotime.training.checkpoint import read_checkpoint
from tomotime.training.distributed import (
    LOCAL,
    DistributedContext,
    init_distributed,
)
from tomotime.training.state import TrainState
from tomotime.sim import simulate_acquisition
from tomotime.training import TrainingCollapsed

pytestmark = pytest.mark.slow

WORLD = 2
# batch_size 5 over two ranks gives shares of 3 and 2 rows: the weighting of unequal shares is exercised.
TINY = dict(hidden=(32,), latent=8, base_channels=16, min_channels=8, batch_size=5, lr=1e-3, device="cpu",
            eval_every=5, checkpoint_every=4, holdout_fraction=0.1, patience=None, steps=20, lr_step=6)
EARLY = dict(TINY, lr=3e-3, steps=200, eval_every=1, patience=1, min_fraction=0.0, holdout_smoothing=1.0, stop_margin=0.0,
             checkpoint_every=0)
STUCK = dict(TINY, lr=1e-9, steps=200, eval_every=2, patience=3, min_fraction=0.0, warmup_steps=0, checkpoint_every=0)
NAN = dict(TINY, steps=12, holdout_fraction=0.0, lr_schedule="step", lr_step=100, checkpoint_every=0)
TIMES = [0.0, 2.5, 7.0, 11.0, 15.0]  # five time points over two ranks: the last round is short
RUN_FILES = ("config.json", "metrics.csv", "model.pt", "summary.json", "checkpoint.pt")


def tiny_series():
    """A ball of growing radius moving along X in a 16^3 box, one GRS projection per time (16 times)."""
    z, y, x = np.meshgrid(*[np.arange(16) - 7.5] * 3, indexing="ij")
    vols = [((z**2 + y**2 + (x - 3 + 0.4 * t) ** 2) < (3 + 0.1 * t) ** 2).astype(np.float32) for t in range(16)]
    return simulate_acquisition(VolumeSeries(np.stack(vols)), seed=0)


def one_step_gradients(series, cfg: DipsterConfig, dist: DistributedContext) -> tuple[float, list[torch.Tensor]]:
    """Loss and parameter gradients of the first training step (after DDP's averaging)."""
    method = DipsterMethod(series, cfg, torch.device("cpu"))
    state = TrainState(method.build_model(), cfg, n_train=method.n_train, total_steps=1, lr_step=1, dist=dist)
    loss = state.train_step(lambda net, indices: method.batch_loss(net, indices, 0))
    return loss, [p.grad.detach().clone() for p in state.model.parameters()]


def params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def strip(history: list[dict]) -> list[dict]:
    """Metrics rows without the wall time, NaN (no training loss at step 0) as None."""
    return [{k: None if v != v else v for k, v in row.items() if k != "seconds"} for row in history]


# --- the worker ------------------------------------------------------------------------------------

def _record_writes() -> list[str]:
    """Log every file the run-folder and volume writers are asked to write on this rank."""
    import tomotime.io
    from tomotime.recon.dipster import method as method_module
    from tomotime.training import engine as engine_module

    written: list[str] = []
    for module, name in ((engine_module, "write_json"), (engine_module, "write_checkpoint"),
                         (engine_module, "write_metrics_csv"), (method_module, "save_model")):
        real = getattr(module, name)

        def recording(path, *args, _real=real, **kwargs):
            written.append(Path(path).name)
            return _real(path, *args, **kwargs)

        setattr(module, name, recording)

    class RecordingWriter(tomotime.io.VolumeSeriesWriter):
        def __init__(self, path, **kwargs):
            written.append(Path(path).name)
            super().__init__(path, **kwargs)

    tomotime.io.VolumeSeriesWriter = RecordingWriter
    return written


def _nan_on_this_rank_at_call(n_bad: int) -> None:
    from tomotime.recon.dipster import method as method_module

    real, count = method_module.data_loss, {"n": 0}

    def flaky(residual, **kw):
        count["n"] += 1
        out = real(residual, **kw)
        return out * math.nan if count["n"] == n_bad else out

    method_module.data_loss = flaky


def _worker(folder: Path) -> None:
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    assert ctx.world_size == WORLD and ctx.active
    series, out = tiny_series(), {}
    written = _record_writes()

    main = train_dipster(series, DipsterConfig(**TINY), run_dir=folder / "run", progress=False)
    out["main"] = {"params": params(main.model), "history": main.history, "steps": main.steps,
                   "best_step": main.best_step}
    volume_series(main.model, TIMES, out=folder / "volumes.h5", progress=False)
    out["grad"] = one_step_gradients(series, DipsterConfig(**TINY), ctx)
    try:
        train_dipster(series, DipsterConfig(**TINY), run_dir=folder / "run", progress=False)
    except Exception as exc:  # rank 0 finds the finished run, rank 1 must not wait for it forever
        out["refused"] = type(exc).__name__

    def ctrl_c_on_rank_1(step, info):
        if step == 10 and ctx.rank == 1:
            os.kill(os.getpid(), signal.SIGINT)

    try:
        train_dipster(series, DipsterConfig(**TINY), run_dir=folder / "resumed", progress=False,
                      callback=ctrl_c_on_rank_1)
    except KeyboardInterrupt:
        out["interrupted"] = True
        if ctx.is_main:  # elsewhere the listing could see rank 0's checkpoint being written
            out["interrupted_files"] = sorted(p.name for p in (folder / "resumed").iterdir())
            out["checkpoint_step"] = read_checkpoint(folder / "resumed" / "checkpoint.pt", "dipster")["state"]["step"]
    resumed = train_dipster(series, DipsterConfig(**TINY), run_dir=folder / "resumed", resume=True, progress=False)
    out["resumed"] = {"params": params(resumed.model), "history": resumed.history}

    early = train_dipster(series, DipsterConfig(**EARLY), progress=False)
    out["early"] = {"steps": early.steps, "best_step": early.best_step, "stopped_early": early.stopped_early}
    try:
        train_dipster(series, DipsterConfig(**STUCK), progress=False)
    except TrainingCollapsed as exc:
        out["stuck"] = str(exc)

    if ctx.rank == 1:
        _nan_on_this_rank_at_call(7)
    nan = train_dipster(series, DipsterConfig(**NAN), progress=False)
    out["nan"] = {"params": params(nan.model), "nan_events": nan.nan_events, "steps": nan.steps,
                  "last_lr": nan.history[-1]["lr"]}
    out["written"] = list(written)
    torch.save(out, folder / f"rank{ctx.rank}.pt")


# --- the tests ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           str(Path(__file__).resolve()), str(folder)]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    ranks = [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return {"folder": folder, "ranks": ranks}


@pytest.fixture(scope="module")
def single() -> dict:
    series = tiny_series()
    return {"series": series, "main": train_dipster(series, DipsterConfig(**TINY), progress=False)}


def test_ranks_agree_on_everything(ddp):
    r0, r1 = ddp["ranks"]
    for key in ("main", "resumed", "nan"):
        assert all(torch.equal(a, b) for a, b in zip(r0[key]["params"], r1[key]["params"], strict=True)), key
    assert strip(r0["main"]["history"]) == strip(r1["main"]["history"])  # the same losses, holdout values, lr
    assert r0["early"] == r1["early"] and r0["early"]["stopped_early"] and r0["early"]["steps"] < 200
    assert "never improved" in r0["stuck"] and r0["stuck"] == r1["stuck"]


def test_nan_on_one_rank_rolls_back_all_ranks(ddp):
    for rank in ddp["ranks"]:
        assert rank["nan"]["nan_events"] == [7] and rank["nan"]["steps"] == 12
        assert rank["nan"]["last_lr"] == pytest.approx(TINY["lr"] / 2)
        assert all(torch.isfinite(p).all() for p in rank["nan"]["params"])


def test_only_rank_0_writes_a_complete_run_folder(ddp):
    r0, r1 = ddp["ranks"]
    assert r1["written"] == []
    assert set(RUN_FILES) | {"volumes.h5"} <= set(r0["written"])
    run = ddp["folder"] / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(RUN_FILES)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["processes"] == WORLD
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,train_loss,holdout_loss,holdout_se,holdout_smoothed,lr,seconds"
    assert len(rows) == 2 + 20 // TINY["eval_every"]  # the header, step 0, every eval_every steps
    saved = load_model(run / "model.pt")  # the unwrapped state: no "module." prefixes
    assert all(torch.equal(a, b) for a, b in zip(params(saved), r0["main"]["params"], strict=True))
    assert r0["interrupted_files"] == ["checkpoint.pt", "config.json", "metrics.csv"]


def test_errors_and_ctrl_c_on_one_rank_reach_every_rank(ddp):
    r0, r1 = ddp["ranks"]
    assert r0["refused"] == "OutputExistsError" and r1["refused"] == "TomotimeError"
    assert r0["interrupted"] and r1["interrupted"]  # Ctrl-C reached rank 1 only
    assert r0["checkpoint_step"] == 10


def test_resume_under_ddp_is_bit_for_bit(ddp):
    r0 = ddp["ranks"][0]
    assert all(torch.equal(a, b) for a, b in zip(r0["main"]["params"], r0["resumed"]["params"], strict=True))
    assert strip(r0["resumed"]["history"]) == strip(r0["main"]["history"])


def test_ddp_gradient_is_the_single_process_gradient_of_the_global_batch(ddp, single):
    """Shares of 3 and 2 rows, averaged by DDP, give the gradient of all 5 rows (to float32 rounding).

    Without the weighting of unequal shares the average would be off by several per cent.
    """
    loss, grads = one_step_gradients(single["series"], DipsterConfig(**TINY), LOCAL)
    flat = torch.cat([g.flatten() for g in grads])
    for rank in ddp["ranks"]:
        ddp_loss, ddp_grads = rank["grad"]
        assert ddp_loss == pytest.approx(loss, rel=1e-6)
        ddp_flat = torch.cat([g.flatten() for g in ddp_grads])
        assert float((ddp_flat - flat).norm() / flat.norm()) < 1e-5
        torch.testing.assert_close(ddp_flat, flat, rtol=1e-5, atol=2e-6 * float(flat.abs().max()))


def test_ddp_training_follows_the_single_process_path(ddp, single):
    """Same configuration, same global batch: the same model up to float summation order.

    Compared by what the network computes, not weight by weight: the biases of
    the convolutions before a GroupNorm have a zero gradient in exact
    arithmetic, so Adam moves them by +-lr on rounding noise; GroupNorm cancels them.
    """
    ddp_main, ref = ddp["ranks"][0]["main"], single["main"]
    assert ddp_main["steps"] == ref.steps and ddp_main["best_step"] == ref.best_step
    for row, ref_row in zip(ddp_main["history"], ref.history, strict=True):
        assert row["train_loss"] == pytest.approx(ref_row["train_loss"], rel=1e-5, nan_ok=True)
        assert row["holdout_loss"] == pytest.approx(ref_row["holdout_loss"], rel=1e-5)
    ddp_model = load_model(ddp["folder"] / "run" / "model.pt")
    for t in TIMES:
        expected = volume_at(ref.model, t)
        np.testing.assert_allclose(volume_at(ddp_model, t), expected, rtol=0, atol=1e-5 * float(expected.max()))


def test_distributed_volume_series_equals_single_process(ddp, tmp_path):
    model = load_model(ddp["folder"] / "run" / "model.pt")
    reference = volume_series(model, TIMES, out=tmp_path / "single.h5", progress=False)
    import h5py

    with h5py.File(ddp["folder"] / "volumes.h5") as a, h5py.File(tmp_path / "single.h5") as b:
        assert sorted(a) == sorted(b) and dict(a.attrs) == dict(b.attrs)
        np.testing.assert_array_equal(a["times"][:], b["times"][:])
        np.testing.assert_array_equal(a["volumes"][:], b["volumes"][:])
    assert reference.shape == (len(TIMES), 16, 16, 16)


def test_more_processes_than_rows_is_refused(monkeypatch):
    from tomotime.errors import InputError

    ctx = DistributedContext(rank=0, world_size=8)
    with pytest.raises(InputError, match="batch_size=5"):
        ctx.check_batch(5)
    ctx.check_batch(8)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed("cpu") is LOCAL


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
