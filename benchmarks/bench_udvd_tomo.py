"""Does denoising the frames of a continuous tilt with UDVD help DIP-STER at low dose?

A simulated dynamic object (``nanorod-alloying``) is recorded with a
continuous incremental tilt from -70 to +70 degrees, one projection per time
step, at a low dose. DIP-STER is trained (same settings, same seed) on the raw
projections and on the UDVD-denoised ones; both volume series are compared
with the truth (RMSE % of the truth's range and SSIM at every time step)::

    python benchmarks/bench_udvd_tomo.py                 # about 5 minutes on one CPU thread
    python benchmarks/bench_udvd_tomo.py --dose 20        # a higher dose

Writes ``results/udvd_tomography_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environment import environment  # noqa: E402

from tomotime.denoise import UdvdConfig, denoise_tilt_series  # noqa: E402
from tomotime.metrics import rmse_percent, ssim  # noqa: E402
from tomotime.recon.dipster import DipsterConfig, reconstruct_dipster  # noqa: E402
from tomotime.sim import make_scenario, simulate_acquisition  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def quality(volumes, truth) -> dict:
    rm = [rmse_percent(np.asarray(volumes[t]), np.asarray(truth[t])) for t in range(len(truth.times))]
    ss = [ssim(np.asarray(volumes[t]), np.asarray(truth[t])) for t in range(len(truth.times))]
    return {"rmse_mean": float(np.mean(rm)), "rmse_worst": float(np.max(rm)), "ssim_mean": float(np.mean(ss)),
            "ssim_worst": float(np.min(ss))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=24)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--dose", type=float, default=2.0, help="counts per unit of projected intensity")
    parser.add_argument("--udvd-steps", type=int, default=150)
    parser.add_argument("--dipster-steps", type=int, default=800)
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = environment(torch.device("cpu"))
    began = time.perf_counter()
    truth = make_scenario("nanorod-alloying", args.size, args.steps, seed=0)
    angles = np.linspace(-70, 70, args.steps)
    noisy = simulate_acquisition(truth, angles=angles, dose=args.dose, seed=0)
    clean = simulate_acquisition(truth, angles=angles, seed=0)
    peak = float(clean.images.max() - clean.images.min())
    t0 = time.perf_counter()
    udvd_cfg = UdvdConfig(steps=args.udvd_steps, crop=24, batch_size=4, lr=1e-3, eval_every=50, device="cpu")
    denoised, udvd_run = denoise_tilt_series(noisy, udvd_cfg, progress=False)
    udvd_seconds = time.perf_counter() - t0

    def proj_psnr(images):
        return 10 * math.log10(peak ** 2 / float(np.mean((images - clean.images) ** 2)))

    out = {"settings": vars(args), "tilt": "continuous incremental, -70 to +70 deg, one view per time step",
           "projections_psnr": {"raw": proj_psnr(noisy.images), "udvd": proj_psnr(denoised.images)},
           "udvd": {"steps": udvd_run.steps, "best_step": udvd_run.best_step, "seconds": udvd_seconds}}
    cfg = DipsterConfig(manifold="y-t", hidden=(256,), base_channels=64, batch_size=8, lr=1e-3,
                        steps=args.dipster_steps, lr_step=max(1, args.dipster_steps // 3), eval_every=100,
                        patience=None, seed=0, device="cpu")
    for name, series in (("dipster_raw", noisy), ("dipster_after_udvd", denoised)):
        t0 = time.perf_counter()
        volumes, _ = reconstruct_dipster(series, cfg, progress=False)
        out[name] = {**quality(volumes, truth), "seconds": time.perf_counter() - t0}
    out["udvd_helps"] = {"rmse_gain": out["dipster_raw"]["rmse_mean"] - out["dipster_after_udvd"]["rmse_mean"],
                         "ssim_gain": out["dipster_after_udvd"]["ssim_mean"] - out["dipster_raw"]["ssim_mean"]}
    result = {"environment": env, "wall_seconds": time.perf_counter() - began, **out}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "udvd_tomography_cpu.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
