"""The DIP-STER paper's simulations and metrics: the alloying truth, both methods, noisy data, static objects.

Run from the repository root::

    python benchmarks/bench_paper_metrics.py --parts truth                 # alloying truth at 64^3 and 128^3
    python benchmarks/bench_paper_metrics.py --parts methods static --size 32 --steps 40 --train-steps 1500
    python benchmarks/bench_paper_metrics.py --parts methods --scenarios nanorod-alloying --size 64 --steps 100 \
        --train-steps 6000 --dose                                         # the 64^3 protocol on CPU, noise-free
    python benchmarks/bench_paper_metrics.py --device cuda --size 128 --steps 100 --train-steps 20000

Parts:

- ``truth``: the paper's alloying measure (Otsu + one dilation of the
  simulated volume, ``s0``/``s_inf`` on the truth) of the alloying rod, both
  readings of the recipe (``subdiffusion``, the default, and
  ``paper-literal``), at each ``--truth-sizes``; target 9.6 +- 2 % after the
  first step and 53.5 +- 3 % at step 99.
- ``methods``: ``nanorod-alloying`` and ``nanoshell-damage`` at ``--size``^3,
  ``--steps`` GRS projections over +-70 deg, noise-free and with Poisson noise
  at ``--dose``; sliding-window SIRT (window 30, 30 iterations) and DIP-STER
  (the demo's settings, ``--train-steps``), evaluated with the paper's
  definitions (``paper_ssim``, ``paper_rmse``, paper alloying, S/V) beside the
  strict ones. Targets (paper's definitions): nanorod SSIM > 0.90 and RMSE < 8 %
  at every step, alloying within 1 point from step 5; nanoshell SSIM > 0.95 at
  every step, S/V error <= 2.1 +- 4.3 %. For the nanorod it also reports the
  alloying error left when the two voxel layers around the particle's outer
  surface are taken from the truth (``paper_alloying_error_inside_*``): how
  much of the error is the blur of that one edge. ``--variant NAME:KEY=VALUE,...``
  adds DIP-STER runs with changed settings beside the default one (with
  ``--variants-only``, only those, added to the case already in the file);
  ``--keep DIR`` saves every reconstructed series as ``.npy``. Results are
  keyed ``scenario/size/noise``; each run records wall and CPU seconds;
  ``--skip-noise-free`` runs only the ``--dose`` cases.
- ``plot``: redraws ``paper_methods_<size>_<device>.png`` (per-step alloying,
  paper SSIM and S/V of the noise-free cases at ``--size``) from the results
  file; ``methods`` draws it too.
- ``static``: a static nanocube recorded one GRS projection per step; the
  fake dynamics ``mean_t ||v_t - v_(t-1)|| / ||v_mean||`` of DIP-STER against
  sliding-window SIRT's (target: at most 5 % of it), for DIP-STER and each
  ``--variant``; kept per ``--train-steps`` under ``static_by_train_steps``.

Results go to ``benchmarks/results/paper_metrics_<device>.json`` (or
``--out``), added to what the file holds when the run ends (so runs going on
at the same time keep each other's results), and the figures beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from environment import environment

from tomotime.data import VolumeSeries
from tomotime.demo import demo_dipster_config
from tomotime.device import resolve_device
from tomotime.io import write_json
from tomotime.metrics import paper_alloying_curve
from tomotime.metrics.evaluate import ALLOYING_FROM_STEP, evaluate_against_truth
from tomotime.recon.dipster import train_dipster, volume_series
from tomotime.sim import make_phantom, make_scenario, simulate_acquisition
from tomotime.solvers import sliding_window

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_TRUTH = {"step_1": 9.6, "step_99": 53.5, "tolerance_1": 2.0, "tolerance_99": 3.0}
TARGETS = {"nanorod-alloying": {"paper_ssim_worst": 0.90, "paper_rmse_worst": 8.0, "paper_alloying_error_worst": 1.0},
           "nanoshell-damage": {"paper_ssim_worst": 0.95, "surface_to_volume_error_mean": 2.1 + 4.3}}
KEYS = ("paper_ssim_mean", "paper_ssim_worst", "paper_rmse_mean", "paper_rmse_worst", "ssim_mean", "ssim_worst",
        "rmse_mean", "rmse_worst", "paper_alloying_error_mean", "paper_alloying_error_worst",
        "surface_to_volume_error_mean", "surface_to_volume_error_std")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def truth_part(args) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in args.truth_sizes:
        for recipe in args.recipes:
            t0 = time.perf_counter()
            truth = make_scenario("nanorod-alloying", size, steps=100, seed=0, recipe=recipe)
            curve = paper_alloying_curve(truth, truth=truth)
            fixed = paper_alloying_curve(truth, truth=truth, fixed_mask=True)
            entry = {"step_1": float(curve[1]), "step_99": float(curve[99]), "curve": curve.round(3).tolist(),
                     "fixed_mask_step_1": float(fixed[1]), "fixed_mask_step_99": float(fixed[99]),
                     "seconds": round(time.perf_counter() - t0, 1)}
            off_1 = abs(entry["step_1"] - PAPER_TRUTH["step_1"])
            off_99 = abs(entry["step_99"] - PAPER_TRUTH["step_99"])
            entry["meets_target"] = bool(off_1 <= PAPER_TRUTH["tolerance_1"] and off_99 <= PAPER_TRUTH["tolerance_99"])
            out[f"{recipe}_{size}"] = entry
            log(f"truth {recipe} {size}^3: {entry['step_1']:.1f} % after step 1, {entry['step_99']:.1f} % at 99 "
                f"({entry['seconds']} s)")
    return out


def plot_truth(curves: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, entry in curves.items():
        ax.plot(entry["curve"], label=name.replace("_", " ") + "^3", lw=1.5)
    ax.scatter([1, 99], [PAPER_TRUTH["step_1"], PAPER_TRUTH["step_99"]], color="k", zorder=5, label="paper")
    ax.set_xlabel("time step")
    ax.set_ylabel("alloying (%, paper's measure)")
    ax.set_ylim(-5, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_methods(methods: dict[str, Any], size: int, path: Path) -> bool:
    """Per-step curves of the noise-free cases at ``size``: alloying (nanorod) and paper SSIM (nanoshell)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = {s: methods.get(f"{s}/{size}/noise-free") for s in ("nanorod-alloying", "nanoshell-damage")}
    cases = {k: v for k, v in cases.items() if v}
    if not cases:
        return False
    fig, axes = plt.subplots(len(cases), 2, figsize=(10.5, 3.4 * len(cases)), squeeze=False)
    axes = axes.ravel()
    panels = iter(axes)
    for scenario, entries in cases.items():
        if scenario == "nanorod-alloying":
            ax = next(panels)
            ax.plot(next(iter(entries.values()))["paper_alloying_truth_curve"], "k", lw=2, label="truth")
            for name, e in entries.items():
                ax.plot(e["paper_alloying_curve"], lw=1.2, label=name)
            ax.set(xlabel="time step", ylabel="alloying (%, paper's measure)", title=f"nanorod {size}^3")
            ax.legend(fontsize=7)
            ax = next(panels)
            for name, e in entries.items():
                err = np.subtract(e["paper_alloying_curve"], e["paper_alloying_truth_curve"])
                ax.plot(np.arange(ALLOYING_FROM_STEP, len(err)), err[ALLOYING_FROM_STEP:], lw=1.2, label=name)
            ax.axhspan(-1, 1, color="g", alpha=0.15, label="target +-1 pp")
            ax.set(xlabel="time step", ylabel="alloying error (pp)", title="error from step 5")
        else:
            ax = next(panels)
            for name, e in entries.items():
                ax.plot(e["paper_ssim_curve"], lw=1.2, label=name)
            ax.axhline(TARGETS[scenario]["paper_ssim_worst"], color="g", ls="--", lw=1, label="target")
            ax.set(xlabel="time step", ylabel="paper SSIM", title=f"nanoshell {size}^3")
            ax = next(panels)
            ax.plot(next(iter(entries.values()))["surface_to_volume_truth_curve"], "k", lw=2, label="truth")
            for name, e in entries.items():
                ax.plot(e["surface_to_volume_curve"], lw=1.2, label=name)
            ax.set(xlabel="time step", ylabel="surface / volume (1/voxel)", title="S/V")
        ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _variant(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:key=value,key=value`` -> (name, DipsterConfig changes); values parsed as JSON where they can be."""
    name, _, spec = text.partition(":")
    changes: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value.strip()
    return name, changes


def _dipster_config(args, changes: dict[str, Any]):
    """The demo's DIP-STER settings at ``--train-steps`` with a variant's ``changes``."""
    config = demo_dipster_config(steps=args.train_steps, seed=0, device=args.device)
    return type(config)(**{**config.to_dict(), **changes})


def _surface_share(vols, truth) -> dict[str, float]:
    """How much of the paper's alloying error sits in the particle's outer surface.

    The alloying error from step 5 on, mean over time, with the two voxel
    layers around the truth's outer surface (the particle's outermost layer and
    the background layer touching it) taken from the truth: what is left is the
    error inside the particle.
    """
    v, t = vols.to_numpy(), truth.to_numpy()
    particle = t > 0
    layers = (particle & ~ndimage.binary_erosion(particle, axes=(1, 2, 3))) | \
        (ndimage.binary_dilation(particle, axes=(1, 2, 3)) & ~particle)
    reference = paper_alloying_curve(truth, truth=truth)
    inside = paper_alloying_curve(np.where(layers, t, v), truth=truth) - reference
    return {"paper_alloying_error_inside_mean": float(np.abs(inside[ALLOYING_FROM_STEP:]).mean()),
            "paper_alloying_error_inside_worst": float(np.abs(inside[ALLOYING_FROM_STEP:]).max())}


def _methods(series, truth, args, scenario: str, label: str) -> dict[str, Any]:
    runs: dict[str, Any] = {} if args.variants_only else {"SIRT (sliding window)": None}
    if args.train_steps:
        if not args.variants_only:
            runs["DIP-STER"] = {}
        runs.update(_variant(v) for v in args.variant)
    out = {}
    for name, changes in runs.items():
        t0, c0 = time.perf_counter(), time.process_time()
        if changes is None:
            vols = sliding_window(series, window=min(30, len(truth)), method="sirt", iterations=30, min_value=0.0,
                                  device=args.device, progress=False)
        else:
            trained = train_dipster(series, _dipster_config(args, changes), progress=False)
            vols = volume_series(trained.model, truth.times, progress=False)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            stem = f"{label}/{name}".replace("/", "_").replace(" ", "_").replace("(", "").replace(")", "")
            np.save(args.keep / f"{stem}.npy", vols.to_numpy())
        ev = evaluate_against_truth(vols, truth, scenario=scenario)
        entry = {k: float(ev[k]) for k in KEYS if k in ev}
        if scenario == "nanorod-alloying":
            entry.update(_surface_share(vols, truth))
        entry["seconds"] = round(seconds, 1)
        entry["cpu_seconds"] = round(cpu_seconds, 1)
        if changes:
            entry["config_changes"] = changes
        for key in ("paper_ssim", "paper_rmse", "paper_alloying", "paper_alloying_truth", "surface_to_volume",
                    "surface_to_volume_truth"):
            if key in ev:
                entry[f"{key}_curve"] = np.round(ev[key], 4).tolist()
        if "paper_ssim" in ev:
            half = len(ev["paper_ssim"]) // 2
            entry["paper_ssim_first_half"] = float(np.mean(ev["paper_ssim"][:half]))
            entry["paper_ssim_second_half"] = float(np.mean(ev["paper_ssim"][half:]))
        targets = TARGETS[scenario]
        entry["targets_met"] = {k: (entry[k] > v if "ssim" in k else abs(entry[k]) < v)
                                for k, v in targets.items() if k in entry}
        out[name] = entry
        log(f"  {name}: " + ", ".join(f"{k}={entry[k]:.3f}" for k in KEYS if k in entry)
            + f" ({seconds:.0f} s wall, {cpu_seconds:.0f} s CPU)")
    return out


def methods_part(args) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in args.scenarios:
        truth = make_scenario(scenario, args.size, steps=args.steps, seed=0)
        for dose in (*(() if args.skip_noise_free else (None,)), *args.dose):
            label = f"{scenario}/{args.size}/{'noise-free' if dose is None else f'dose-{dose:g}'}"
            log(f"{label}: {args.size}^3, {args.steps} steps")
            series = simulate_acquisition(truth, dose=dose, seed=0)
            out[label] = _methods(series, truth, args, scenario, label)
    return out


def _fake_dynamics(vols: VolumeSeries) -> float:
    v = vols.to_numpy()
    mean = np.linalg.norm(v.mean(0))
    return float(np.mean([np.linalg.norm(v[t] - v[t - 1]) for t in range(1, len(v))]) / mean)


def static_part(args) -> dict[str, Any]:
    """Fake dynamics of DIP-STER (and of each ``--variant``) on a static nanocube, against the sliding window's."""
    volume = make_phantom("nanocube", args.size)
    truth = VolumeSeries(np.repeat(volume[None], args.steps, axis=0).astype(np.float32))
    series = simulate_acquisition(truth, seed=0)
    log(f"static nanocube: {args.size}^3 held for {args.steps} steps")
    sirt = sliding_window(series, window=min(30, args.steps), method="sirt", iterations=30, min_value=0.0,
                          device=args.device, progress=False)
    out: dict[str, Any] = {"sirt_step_change": _fake_dynamics(sirt)}
    if args.train_steps:
        for name, changes in [("DIP-STER", {}), *(_variant(v) for v in args.variant)]:
            config = _dipster_config(args, changes)
            dip = volume_series(train_dipster(series, config, progress=False).model, truth.times, progress=False)
            change = _fake_dynamics(dip)
            entry = {"residual_filter": config.residual_filter, "dipster_step_change": change,
                     "ratio": change / out["sirt_step_change"]}
            entry["meets_target"] = bool(entry["ratio"] <= 0.05)
            if name == "DIP-STER":
                out.update(entry)
            else:
                out.setdefault("variants", {})[name] = {**entry, "config_changes": changes}
    log(f"  static: {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["truth", "methods", "static"],
                        choices=["truth", "methods", "static", "plot"],
                        help="plot: only redraw the per-step figure of --size from the results file")
    parser.add_argument("--truth-sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--recipes", nargs="+", default=["subdiffusion", "paper-literal"])
    parser.add_argument("--scenarios", nargs="+", default=["nanorod-alloying", "nanoshell-damage"])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--train-steps", type=int, default=1500, help="DIP-STER training steps (0: SIRT only)")
    parser.add_argument("--dose", type=float, nargs="*", default=[200.0], help="Poisson doses (counts per unit)")
    parser.add_argument("--skip-noise-free", action="store_true", help="run only the --dose cases")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="an extra DIP-STER run with these DipsterConfig changes (repeatable)")
    parser.add_argument("--variants-only", action="store_true",
                        help="train only the --variant runs, adding them to the case's results already in the file")
    parser.add_argument("--keep", type=Path, default=None, help="folder to save every reconstructed series (.npy)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default results/paper_metrics_<device>.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    path = args.out or RESULTS / f"paper_metrics_{device.type}.json"
    began = time.perf_counter()
    settings = {"size": args.size, "steps": args.steps, "train_steps": args.train_steps, "dose": args.dose,
                "variants": args.variant,
                "dipster": "the demo's settings (tomotime.demo.demo_dipster_config)"}
    truth = truth_part(args) if "truth" in args.parts else None
    methods = methods_part(args) if "methods" in args.parts else None
    static = {**static_part(args), "settings": settings} if "static" in args.parts else None
    # Read the file only now and add to it, so that runs going on at the same time keep each other's results.
    results = json.loads(path.read_text()) if path.exists() else {}
    if truth is not None:
        results["alloying_truth"] = {**results.get("alloying_truth", {}), **truth}
        plot_truth(results["alloying_truth"], path.parent / "paper_alloying_truth.png")
    if methods is not None:
        merged = results.setdefault("methods", {})
        for label, entries in methods.items():
            merged[label] = {**merged.get(label, {}), **entries}
        results.setdefault("methods_settings_by_size", {})[str(args.size)] = settings
    if {"methods", "plot"} & set(args.parts):
        figure = path.parent / f"paper_methods_{args.size}_{device.type}.png"
        plot_methods(results.get("methods", {}), args.size, figure)
    if static is not None:
        results["static"] = static
        results.setdefault("static_by_train_steps", {})[str(args.train_steps)] = static
    results.setdefault("environments", []).append(
        environment(device, parts=args.parts, wall_seconds=round(time.perf_counter() - began, 1)))
    results["paper_truth"] = PAPER_TRUTH
    results["targets"] = TARGETS
    write_json(path, results, overwrite=True)
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
