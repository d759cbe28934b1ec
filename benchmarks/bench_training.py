"""Training-engine benchmark: the holdout stopping rule and the stability options on noisy dynamic data.

Case (independent of the demo's rod): the ``nanostar-reshaping`` scenario,
``--size``^3 voxels, ``--steps`` golden-ratio views (one per time step),
Poisson noise at ``--dose`` counts per unit intensity. Every variant trains
DIP-STER for the full planned length (no early stop) and records, at every
holdout evaluation, the holdout loss and, every ``--truth-every`` evaluations,
the error against the truth (Otsu-masked RMSE %, mean over time, and SSIM).
The stopping rules are then replayed on the recorded holdout curves:

* ``old``: the former rule (raw holdout values, stop after 10 evaluations
  without a new minimum, no minimum run length);
* ``new``: the engine's rule (:mod:`tomotime.training.stopping`: EMA-smoothed
  holdout, stop after 10 evaluations in a row more than one standard error
  above the best, not before half the run; the kept state is the latest one
  not clearly worse than the best).

"Truth stops improving" is the first recorded step whose truth RMSE lies
within 1 % (relative) of the run's best. The new rule passes when it stops no
earlier than that step minus 10 % of the run.

Variants (``--variants``): ``old`` (StepLR, no warm-up, no clipping, no
averaging, view holdout: the former defaults), ``rows`` (the same with row
holdout), ``cosine`` (+ warm-up and cosine decay), ``clip`` (+ gradient
clipping), ``ema`` (+ weight averaging: all options).

Run: ``python benchmarks/bench_training.py`` (about 15 minutes on 2 CPU cores);
``--quick`` for a smoke test. Writes ``benchmarks/results/training_cpu.json``
and ``training_cpu.png``.
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

from tomotime.recon.dipster import DipsterConfig, train_dipster, volume_series  # noqa: E402
from tomotime.metrics.evaluate import evaluate_against_truth  # noqa: E402
from tomotime.sim import make_scenario, simulate_acquisition  # noqa: E402
from tomotime.training.stopping import StoppingRule  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BASE = dict(manifold="y-t", hidden=(256,), base_channels=64, batch_size=8, lr=1e-3, patience=None, device="cpu")
VARIANTS = {
    "old": dict(holdout_unit="views", lr_schedule="step", lr_warmup=0.0, grad_clip=None, ema_decay=None),
    "rows": dict(holdout_unit="rows", lr_schedule="step", lr_warmup=0.0, grad_clip=None, ema_decay=None),
    "cosine": dict(holdout_unit="rows", lr_schedule="cosine", lr_warmup=0.025, grad_clip=None, ema_decay=None),
    "clip": dict(holdout_unit="rows", lr_schedule="cosine", lr_warmup=0.025, grad_clip=1.0, ema_decay=None),
    "ema": dict(holdout_unit="rows", lr_schedule="cosine", lr_warmup=0.025, grad_clip=1.0, ema_decay=0.995),
}
NEW_RULE = dict(smoothing=0.3, patience=10, min_fraction=0.5, margin=1.0)


def replay_old(steps: list[int], holdout: list[float], warmup: int, patience: int = 10) -> dict:
    """The former rule: raw values, stop after ``patience`` evaluations without a new minimum."""
    best, best_step, bad = math.inf, 0, 0
    for step, value in zip(steps, holdout):
        if value < best * (1 - 1e-4):
            best, best_step, bad = value, step, 0
        elif step > warmup:
            bad += 1
        if bad >= patience:
            return {"stop_step": step, "kept_step": best_step}
    return {"stop_step": steps[-1], "kept_step": best_step}


def replay_new(steps: list[int], holdout: list[float], se: list[float], total: int, warmup: int) -> dict:
    """The engine's rule (:class:`StoppingRule` with the defaults) on a recorded curve."""
    r = StoppingRule(smoothing=NEW_RULE["smoothing"], patience=NEW_RULE["patience"], warmup=warmup,
                     min_step=math.ceil(NEW_RULE["min_fraction"] * total), min_improvement=1e-4,
                     margin=NEW_RULE["margin"])
    for step, value, err in zip(steps, holdout, se):
        r.update(step, value, err)
        if r.should_stop(step):
            return {"stop_step": step, "kept_step": r.kept_step}
    return {"stop_step": steps[-1], "kept_step": r.kept_step}


def spikes(losses: np.ndarray, factor: float = 5.0, window: int = 100) -> dict:
    """Steps whose loss exceeds ``factor`` x the median of the ``window`` steps before."""
    ratios = [losses[i] / np.median(losses[i - window:i]) for i in range(window, losses.size)]
    ratios = np.asarray(ratios)
    return {"count": int((ratios > factor).sum()), "max_ratio": float(ratios.max()) if ratios.size else 0.0}


def run_variant(name: str, series, truth, args) -> dict:
    cfg = DipsterConfig(**BASE, **VARIANTS[name], steps=args.train_steps, eval_every=args.eval_every,
                        seed=args.seed)
    truth_points, losses, evals = {}, [], {"n": 0}

    def record(step, info):
        losses.append(info["loss"])
        if info["model"] is None:
            return
        if evals["n"] % args.truth_every == 0 or step >= args.train_steps:
            metrics = evaluate_against_truth(volume_series(info["model"], progress=False), truth)
            truth_points[step] = {"rmse": float(metrics["rmse_mean"]), "ssim": float(metrics["ssim_mean"])}
            info["model"].train()
        evals["n"] += 1

    began = time.perf_counter()
    result = train_dipster(series, cfg, progress=False, callback=record)
    seconds = time.perf_counter() - began
    final = evaluate_against_truth(volume_series(result.model, progress=False), truth)
    curve = [{"step": int(r["step"]), "holdout": r["holdout_loss"], "se": r["holdout_se"],
              **truth_points.get(int(r["step"]), {})} for r in result.history if r["step"] > 0]
    steps, holdout, se = ([p[k] for p in curve] for k in ("step", "holdout", "se"))
    truth_pts = [p for p in curve if "rmse" in p]
    best_rmse = min(p["rmse"] for p in truth_pts)
    plateau = next(p["step"] for p in truth_pts if p["rmse"] <= 1.01 * best_rmse)
    warmup = round(cfg.lr_warmup * args.train_steps)
    rules = {"old": replay_old(steps, holdout, warmup), "new": replay_new(steps, holdout, se, args.train_steps, warmup)}
    for rule in rules.values():
        for key in ("stop", "kept"):
            nearest = min(truth_pts, key=lambda p: abs(p["step"] - rule[f"{key}_step"]))
            rule[f"rmse_at_{key}"], rule[f"ssim_at_{key}"] = nearest["rmse"], nearest["ssim"]
        rule["no_earlier_than_truth_plateau"] = rule["stop_step"] >= plateau - 0.1 * args.train_steps
    return {"config": cfg.to_dict(), "train_seconds": round(seconds, 1), "curve": curve,
            "truth_plateau_step": plateau, "best_truth_rmse": best_rmse, "rules": rules,
            "returned_model": {"best_step": result.best_step, "rmse": float(final["rmse_mean"]),
                               "ssim": float(final["ssim_mean"]), "ssim_worst": float(final["ssim_worst"])},
            "relative_holdout_se": float(np.median(np.asarray(se) / np.asarray(holdout))),
            "loss_spikes": spikes(np.asarray(losses))}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, res in results["variants"].items():
        c = res["curve"]
        axes[0].semilogy([p["step"] for p in c], [p["holdout"] for p in c], label=name)
        t = [p for p in c if "rmse" in p]
        axes[1].plot([p["step"] for p in t], [p["rmse"] for p in t], label=name)
        for rule, style in (("old", ":"), ("new", "--")):
            axes[1].axvline(res["rules"][rule]["stop_step"], ls=style, lw=0.8, color=axes[1].lines[-1].get_color())
    axes[0].set(xlabel="step", ylabel="holdout loss", title="holdout loss (each variant's own holdout)")
    axes[1].set(xlabel="step", ylabel="RMSE % vs truth (masked, mean over time)",
                title="truth error; stops: old rule dotted, new rule dashed")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=80, help="time steps = GRS views")
    parser.add_argument("--dose", type=float, default=1.0)
    parser.add_argument("--train-steps", type=int, default=7600)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--truth-every", type=int, default=4, help="truth error every N evaluations")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS / "training_cpu.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.steps, args.train_steps, args.eval_every, args.truth_every = 16, 12, 60, 10, 1
        args.out = args.out.with_name("training_cpu_quick.json")
    torch.set_num_threads(args.threads)
    truth = make_scenario("nanostar-reshaping", size=args.size, steps=args.steps, seed=args.seed)
    series = simulate_acquisition(truth, dose=args.dose, seed=args.seed)
    results = {"environment": environment(torch.device("cpu")),
               "case": {"scenario": "nanostar-reshaping", "size": args.size, "views": args.steps,
                        "dose": args.dose, "train_steps": args.train_steps, "eval_every": args.eval_every},
               "new_rule": NEW_RULE,
               "variants": {}}
    for name in args.variants.split(","):
        results["variants"][name] = run_variant(name, series, truth, args)
        res = results["variants"][name]
        print(f"{name:7s} {res['train_seconds']:6.0f} s  plateau {res['truth_plateau_step']:5d}  "
              + "  ".join(f"{k}: stop {v['stop_step']} rmse {v['rmse_at_stop']:.2f}" for k, v in res["rules"].items())
              + f"  returned rmse {res['returned_model']['rmse']:.2f} ssim {res['returned_model']['ssim']:.3f}"
              + f"  spikes {res['loss_spikes']}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    plot(results, args.out.with_suffix(".png"))
    return args.out


if __name__ == "__main__":
    main()
