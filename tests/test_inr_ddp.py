"""INR training under ``torchrun``: two CPU processes on gloo share each step's rays.

The module is also the worker script: the test launches
``python -m torch.distributed.run --standalone --nproc_per_node 2 <this file> <folder>``;
each rank saves its trained weights and history, rank 0 writes the run folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tomotime.data import VolumeSeries
from tomotime.recon.inr import InrConfig, learned_poses, train_inr
from tomotime.sim import simulate_acquisition

pytestmark = pytest.mark.slow

CONFIG = dict(device="cpu", batch_size=96, lr=2e-2, grid_levels=2, grid_width=16, samples=12, samples_start=6,
              holdout_fraction=0.05, eval_every=10, patience=None, steps=30, align=True, checkpoint_every=10)


def tiny_series():
    z, y, x = np.meshgrid(*[np.arange(12) - 5.5] * 3, indexing="ij")
    vol = np.exp(-((z - 1) ** 2 + y ** 2 + (x + 2) ** 2) / 6).astype(np.float32)
    return simulate_acquisition(VolumeSeries(np.repeat(vol[None], 8, 0)), angles=np.linspace(-60, 60, 8),
                                shift_std=0.5, seed=0)


def _worker(folder: Path) -> None:
    torch.set_num_threads(1)
    result = train_inr(tiny_series(), InrConfig(**CONFIG), run_dir=folder / "run", progress=False)
    rank = int(os.environ["RANK"])
    torch.save({"state": result.model.state_dict(), "history": result.history,
                "poses": learned_poses(result.model)}, folder / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("inr_ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).resolve()), str(folder)]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return {"folder": folder, "ranks": [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]}


def test_two_processes_train_one_model(ddp):
    r0, r1 = ddp["ranks"]
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    assert np.array_equal(r0["poses"], r1["poses"])
    losses = [row["holdout_loss"] for row in r0["history"]]
    assert losses[-1] < 0.5 * losses[0]  # it learned, with rays split over the ranks
    assert {p.name for p in (ddp["folder"] / "run").iterdir()} >= {"config.json", "checkpoint.pt", "model.pt"}


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
