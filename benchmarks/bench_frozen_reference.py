"""How good can a reconstruction of the benchmark's projections be if the object stood still?

Run from the repository root::

    python benchmarks/bench_frozen_reference.py                # 64^3 and 128^3 -> results/frozen_reference_cpu.json
    python benchmarks/bench_frozen_reference.py --quick        # 32^3, 50 iterations: checks the script

For each scenario of the dynamic benchmarks and a few time steps, the truth at
that step is frozen and projected at *all* ``steps`` GRS angles over +-70 deg
(what a static object would give over the whole acquisition), then
reconstructed by SIRT (``min_value=0``) with each iteration count of
``--iterations``. The result is scored with the dynamic benchmarks' metrics
(:func:`tomotime.metrics.evaluate.evaluate_against_truth`; SSIM / RMSE % inside the
truth's Otsu mask and unmasked, alloying error (also the paper's measure),
surface-to-volume error).

A dynamic method sees one projection per time step, each of a different state,
so this static reconstruction from the full set of views is a reference point
the dynamic results can be read against: where even it misses a quality
target, the missing wedge and the metric's definition, not the dynamics, set
that limit for SIRT-like reconstructions.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import bench_dynamic_baselines as base
import numpy as np
import torch
from environment import environment

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.device import resolve_device
from tomotime.geometry import grs_angles
from tomotime.io import write_json
from tomotime.metrics import surface_to_volume
from tomotime.physics import VolumeProjector
from tomotime.metrics.evaluate import evaluate_against_truth
from tomotime.sim import iter_scenario, mixed_intensity_spread
from tomotime.solvers.static import reconstruct

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = {"sizes": [32], "iterations": [50], "times": [0, 5, 39], "steps": 40}
log = base.log


def frozen_truth(name: str, *, size: int, steps: int, times: list[int], seed: int) -> dict[int, np.ndarray]:
    """Truth volumes of scenario ``name`` at ``times`` (and at step 0, which the alloying metric needs)."""
    wanted = {0, *times}
    return {t: volume for t, volume in enumerate(iter_scenario(name, size, steps, seed)) if t in wanted}


def score(recon: np.ndarray, truth: np.ndarray, first: np.ndarray, name: str) -> dict[str, float]:
    """The dynamic benchmarks' metrics of one volume (a one-step series; alloying against step ``first``)."""
    pair = VolumeSeries(np.stack([first, recon])), VolumeSeries(np.stack([first, truth]))
    extra = {"alloying_sigma_mixed": mixed_intensity_spread(first)} if name == "nanorod-alloying" else {}
    result = evaluate_against_truth(*pair, scenario=name, **extra)
    out = {key: float(result[key][1]) for key in ("ssim", "rmse", "ssim_unmasked", "rmse_unmasked", "paper_ssim",
                                                  "paper_rmse")}
    if extra:
        out.update(alloying=float(result["alloying"][1]), alloying_truth=float(result["alloying_truth"][1]))
        out["alloying_error"] = abs(out["alloying"] - out["alloying_truth"])
        # The paper's measure (Otsu + one dilation of the truth, s0 / s_inf on the truth).
        out.update(paper_alloying=float(result["paper_alloying"][1]),
                   paper_alloying_truth=float(result["paper_alloying_truth"][1]))
        out["paper_alloying_error"] = abs(out["paper_alloying"] - out["paper_alloying_truth"])
    if name == "nanoshell-damage":
        sv, sv_truth = surface_to_volume(recon), surface_to_volume(truth)
        out.update(surface_to_volume=sv, surface_to_volume_truth=sv_truth,
                   surface_to_volume_error=100.0 * abs(sv - sv_truth) / sv_truth)
    return out


def run_case(name: str, size: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    truth = frozen_truth(name, size=size, steps=args.steps, times=args.times, seed=args.seed)
    angles = grs_angles(args.steps)
    rows = []
    for t in args.times:
        volume = truth[t]
        op = VolumeProjector(angles, volume.shape, device=args.device)
        series = TiltSeries(op(torch.from_numpy(volume).to(op.device)).cpu().numpy(), angles)
        for iterations in args.iterations:
            t0 = time.perf_counter()
            recon = reconstruct(series, method="sirt", iterations=iterations, min_value=0.0, device=args.device,
                                progress=False)
            row = {"scenario": name, "size": size, "time_step": t, "views": args.steps, "iterations": iterations,
                   "seconds": time.perf_counter() - t0, **score(recon, volume, truth[0], name)}
            log(f"{name} {size}^3 step {t}, SIRT {iterations} it: paper SSIM {row['paper_ssim']:.4f}, "
                f"SSIM {row['ssim']:.3f} "
                f"(unmasked {row['ssim_unmasked']:.3f}), RMSE {row['rmse']:.2f} % "
                f"(unmasked {row['rmse_unmasked']:.2f} %)")
            rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["scenario           size  step  it   SSIM (unmasked)   RMSE % (unmasked)   scenario error",
             "-" * 92]
    for r in rows:
        err = (f"alloying {r['alloying_error']:.1f} pp (paper's {r['paper_alloying_error']:.1f})"
               if "alloying_error" in r else
               f"S/V {r['surface_to_volume_error']:.1f} %" if "surface_to_volume_error" in r else "")
        lines.append(f"{r['scenario']:<18} {r['size']:>4} {r['time_step']:>5} {r['iterations']:>4}   "
                     f"{r['ssim']:.3f} ({r['ssim_unmasked']:.3f})     {r['rmse']:6.2f} ({r['rmse_unmasked']:5.2f})"
                     f"       {err}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, help="volume edges (default 64 128; 32 with --quick)")
    parser.add_argument("--steps", type=int, help="GRS views = time steps of the dynamic protocol (default 100)")
    parser.add_argument("--times", nargs="+", type=int, help="time steps to freeze (default 0 5 50 99)")
    parser.add_argument("--iterations", nargs="+", type=int, help="SIRT iterations (default 100 300)")
    parser.add_argument("--scenarios", nargs="+", default=list(base.SCENARIO_NAMES), choices=base.SCENARIO_NAMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, help="JSON file (default results/frozen_reference_{cpu,gpu}[_quick].json)")
    parser.add_argument("--quick", action="store_true", help="32^3, 40 views, 50 iterations")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else {"sizes": [64, 128], "iterations": [100, 300], "times": [0, 5, 50, 99],
                                         "steps": 100}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.sizes) < 16 or args.steps < 2 or min(args.iterations) < 1:
        parser.error("expected --sizes >= 16, --steps >= 2 and --iterations >= 1")
    if not all(0 <= t < args.steps for t in args.times):
        parser.error(f"--times: expected steps in 0 .. {args.steps - 1}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    kind = "gpu" if args.device.type == "cuda" else "cpu"
    out = args.out or RESULTS / f"frozen_reference_{kind}{'_quick' if args.quick else ''}.json"
    started = time.perf_counter()
    env = environment(args.device)
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        for name in args.scenarios:
            rows += run_case(name, size, args)
    settings = {key: getattr(args, key) for key in ("sizes", "steps", "times", "iterations", "scenarios", "seed")}
    settings.update(device=str(args.device), quick=args.quick,
                    protocol="the truth at each time step, frozen, projected at all GRS views over +-70 deg; "
                             "SIRT with min_value=0; metrics as bench_dynamic_baselines.py")
    env["load_average_end"] = os.getloadavg()
    write_json(out, {"environment": env, "settings": settings, "rows": rows,
                     "total_seconds": time.perf_counter() - started}, overwrite=True)
    print()
    print(format_table(rows))
    print(f"\nwrote {out}")
    return out


if __name__ == "__main__":
    main()
