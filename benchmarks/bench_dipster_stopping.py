"""Where DIP-STER stops on a noisy independent case with the engine's stopping rule and row holdouts.

Case (neither the demo's rod nor the nanostar of ``bench_training.py``): the
``nanoshell-damage`` scenario, ``--size``^3 voxels, ``--views`` golden-ratio
views (one per time step), Poisson noise at ``--dose`` counts per unit
intensity. DIP-STER trains with its defaults (rows held out, spread over all
views; the engine's robust rule: smoothed holdout, patience 10, not before
half of the run), and the error against the truth (Otsu-masked RMSE %, mean
over time) is recorded every ``--truth-every`` evaluations. Reported: the
step where the rule stopped (fraction of the planned steps), the step of the
returned state, and the step where the truth error stops improving (first
recorded step within 1 % of the best).

Run: ``python benchmarks/bench_dipster_stopping.py`` (about 5 minutes on one
CPU core); writes ``benchmarks/results/dipster_stopping_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environment import environment  # noqa: E402

from tomotime.metrics.evaluate import evaluate_against_truth  # noqa: E402
from tomotime.recon.dipster import DipsterConfig, train_dipster, volume_series  # noqa: E402
from tomotime.sim import make_scenario, simulate_acquisition  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="nanoshell-damage")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--views", type=int, default=60)
    parser.add_argument("--dose", type=float, default=2.0)
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--truth-every", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--residual-filter", choices=["none", "ramp"], default=None,
                        help="DipsterConfig.residual_filter (default: the config's default)")
    parser.add_argument("--out", type=Path, default=RESULTS / "dipster_stopping_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    env = environment(torch.device(args.device))
    truth = make_scenario(args.scenario, args.size, args.views, seed=args.seed)
    series = simulate_acquisition(truth, dose=args.dose, seed=args.seed)
    extra = {} if args.residual_filter is None else {"residual_filter": args.residual_filter}
    cfg = DipsterConfig(hidden=(256,), base_channels=64, batch_size=8, steps=args.train_steps,
                        eval_every=args.eval_every, seed=args.seed, device=args.device, **extra)
    points, evals = [], {"n": 0}

    def record(step, info):
        if info["model"] is None:
            return
        if evals["n"] % args.truth_every == 0:
            m = evaluate_against_truth(volume_series(info["model"], progress=False), truth)
            points.append({"step": int(step), "rmse": float(m["rmse_mean"]), "ssim": float(m["ssim_mean"])})
            info["model"].train()
        evals["n"] += 1

    began = time.perf_counter()
    result = train_dipster(series, cfg, progress=False, callback=record)
    seconds = time.perf_counter() - began
    final = evaluate_against_truth(volume_series(result.model, progress=False), truth)
    best = min(p["rmse"] for p in points)
    plateau = next(p["step"] for p in points if p["rmse"] <= 1.01 * best)
    report = {
        "environment": env,
        "case": {"scenario": args.scenario, "size": args.size, "views": args.views, "dose": args.dose,
                 "train_steps": args.train_steps, "eval_every": args.eval_every, "holdout_unit": cfg.holdout_unit,
                 "residual_filter": cfg.residual_filter},
        "rule": {k: getattr(cfg, k) for k in ("patience", "min_fraction", "stop_margin", "holdout_smoothing")},
        "stop_step": result.steps, "stop_fraction": result.steps / args.train_steps,
        "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
        "kept_step": result.best_step, "truth_plateau_step": plateau, "best_recorded_truth_rmse": best,
        "returned": {"rmse": float(final["rmse_mean"]), "ssim": float(final["ssim_mean"]),
                     "ssim_worst": float(final["ssim_worst"])},
        "truth_curve": points, "train_seconds": round(seconds, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("truth_curve", "environment")}, indent=1))
    return args.out


if __name__ == "__main__":
    main()
