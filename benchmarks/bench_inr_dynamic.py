"""Dynamic INR (time as a fourth input) against DIP-STER and sliding-window SIRT on the dynamic scenarios.

Run from the repository root::

    python benchmarks/bench_inr_dynamic.py --size 32 --steps 40 --train-steps 500 --dipster-steps 4000   # -> results/inr_dynamic_cpu.json

Protocol of ``bench_dipster.py``: each scenario's truth at ``size^3`` for
``steps`` time steps, one GRS projection per step over +-70 deg, noise-free.
Methods: sliding-window SIRT (window 30 or the number of steps, 30
iterations, ``min_value=0``); DIP-STER (the CPU network, ``--train-steps``
``--dipster-steps`` steps of 8 rows); INR4D (feature-grid field with 8 time
knots, ``--train-steps`` steps of 1,024 rays); the defaults give both about
the same training time on one CPU thread. Quality: SSIM / RMSE % in the Otsu
mask of the truth at every step (``tomotime.report.evaluate_against_truth``),
training seconds, peak resident memory; a static sea mine recorded the same
way checks for fake dynamics: ``mean_t ||v_t - v_{t-1}|| / ||v_mean||``.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import bench_dynamic_baselines as base
import numpy as np
import torch
from environment import environment

from tomotime.data import VolumeSeries
from tomotime.recon.dipster import DipsterConfig, train_dipster, volume_series
from tomotime.recon.inr import InrConfig, train_inr
from tomotime.report import evaluate_against_truth
from tomotime.sim import simulate_acquisition
from tomotime.sim.phantoms import sea_mine
from tomotime.solvers import sliding_window

RESULTS = Path(__file__).resolve().parent / "results"


def run_sirt(series, window: int, workdir: Path) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    out = sliding_window(series, window=window, method="sirt", iterations=30, min_value=0.0,
                         out=workdir / "sirt.h5", overwrite=True, device="cpu", progress=False)
    volumes = out.to_numpy()
    out.data.file.close()
    return volumes, time.perf_counter() - began


def run_dipster(series, steps: int, workdir: Path) -> tuple[np.ndarray, float]:
    cfg = DipsterConfig(manifold="y-t", hidden=(256,), base_channels=64, batch_size=8, lr=1e-3, steps=steps,
                        lr_step=max(1, steps // 3), patience=None, device="cpu")
    began = time.perf_counter()
    result = train_dipster(series, cfg, progress=False)
    out = volume_series(result.model, out=workdir / "dip.h5", overwrite=True, progress=False)
    volumes = out.to_numpy()
    out.data.file.close()
    return volumes, time.perf_counter() - began


def run_inr4d(series, steps: int) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    result = train_inr(series, InrConfig(dynamic=True, steps=steps, device="cpu", patience=None), progress=False)
    volumes = np.stack([result.model.volume(time=float(t)) for t in series.times])
    return volumes, time.perf_counter() - began


def fake_dynamics(volumes: np.ndarray) -> float:
    mean = volumes.mean(0)
    return float(np.mean(np.linalg.norm((volumes[1:] - volumes[:-1]).reshape(len(volumes) - 1, -1), axis=1))
                 / np.linalg.norm(mean))


def methods(series, args, workdir: Path):
    window = min(30, len(series))
    for label, runner in (("SIRT", lambda: run_sirt(series, window, workdir)),
                          ("DIP-STER", lambda: run_dipster(series, args.dipster_steps, workdir)),
                          ("INR4D", lambda: run_inr4d(series, args.train_steps))):
        volumes, seconds = runner()
        yield label, volumes, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--train-steps", type=int, default=500, help="INR4D steps (1,024 rays each)")
    parser.add_argument("--dipster-steps", type=int, default=4000,
                        help="DIP-STER steps (8 rows each; the default takes about INR4D's time on one CPU thread)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = {"environment": environment(torch.device("cpu")), "settings": vars(args), "scenarios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in base.SCENARIO_NAMES:
            truth = base.stream_truth(name, workdir / f"{name}.h5", size=args.size, steps=args.steps, seed=0)
            series = simulate_acquisition(truth, seed=0)
            rows = {}
            for label, volumes, seconds, rss in methods(series, args, workdir):
                result = evaluate_against_truth(VolumeSeries(volumes, times=truth.times), truth)
                rows[label] = {"seconds": round(seconds, 1), "peak_rss_mb_so_far": round(rss),
                               **{k: round(float(v), 4) for k, v in base.summary_of(result).items()}}
                print(name, label, rows[label], flush=True)
            base.close(truth)
            report["scenarios"][name] = rows
            (RESULTS / "inr_dynamic_cpu.json").write_text(json.dumps(report, indent=1) + "\n")
        still = sea_mine(args.size).astype(np.float32)
        frozen = VolumeSeries(np.broadcast_to(still, (args.steps, *still.shape)))
        series = simulate_acquisition(frozen, seed=0)
        report["static_sea_mine"] = {label: {"step_change_mean": round(fake_dynamics(v), 5),
                                             "seconds": round(s, 1)} for label, v, s, _ in
                                     methods(series, args, workdir)}
        print("static", report["static_sea_mine"], flush=True)
    (RESULTS / "inr_dynamic_cpu.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
