"""HAADF detector-shadowing calibration: accuracy on a simulated series, and the fake dynamics it prevents.

Run from the repository root::

    python benchmarks/bench_preprocess.py --quick          # tiny sizes: checks the script (< 2 minutes)
    python benchmarks/bench_preprocess.py --seeds 0        # 32^3, the CPU protocol -> results/preprocess_cpu.json
    python benchmarks/bench_preprocess.py --seeds 1 --append   # a second seed added to the same file
    python benchmarks/bench_preprocess.py --device cuda --size 64 --train-steps 6000   # a GPU run

Protocol. A static phantom (``--phantom``, ``size^3``) is recorded with one
golden-ratio (GRS) projection per time step over +-75 deg. Every view gets a
support membrane ``m0 + m1 / cos(beta)`` (``m0``, ``m1`` = 2 % and 8 % of the
projection maximum) and Poisson noise (2000 counts at the maximum); the measured
series is darkened by a detector-shadowing gain ``g = 1`` below 60 deg,
falling as ``1 - (1 - g75) ((|beta| - 60) / 15)^2`` above it (``g75 = 0.7``).

1. Calibration accuracy (:func:`tomotime.preprocess.calibrate_haadf`, both
   methods): the fitted ``m0, m1``; on each corrected view, the membrane mean
   against the fitted model and against the true membrane, and the view's
   total intensity against the same view without shadowing (target: within 1 %).
2. Fake dynamics: DIP-STER (existing API, small network) is trained on the
   series after median subtraction: without shadowing (ideal), shadowed and
   uncorrected, and shadowed then corrected. The object is static, so any
   change over time is fake. Reported per run: the mean relative step change
   ``mean_t ||v_t - v_{t-1}|| / ||v_mean||``, the per-voxel standard deviation
   over time in the object relative to its mean intensity, the relative
   standard deviation of the object's mean intensity over time, and the
   correlation of that intensity with the shadowing gain at each time's
   angle, and the object's mean intensity at the times of shadowed views
   relative to the other times (the signature of shadowing turned into
   dynamics). Each ``--seeds`` value draws new noise and a new network
   initialisation; the JSON keeps every seed and their mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environment import environment  # noqa: E402

from tomotime.data import TiltSeries, VolumeSeries  # noqa: E402
from tomotime.device import resolve_device  # noqa: E402
from tomotime.geometry import grs_angles  # noqa: E402
from tomotime.io import write_json  # noqa: E402
from tomotime.metrics import otsu_mask  # noqa: E402
from tomotime.preprocess import calibrate_haadf, subtract_background  # noqa: E402
from tomotime.recon.dipster import DipsterConfig, train_dipster, volume_series  # noqa: E402
from tomotime.sim import make_phantom, simulate_acquisition  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = {"size": 24, "views": 30, "train_steps": 200}
MEMBRANE = (0.02, 0.08)
COUNTS = 2000.0
"""Poisson noise: electron counts at the projection maximum (the membrane's variance then follows 1/cos too)."""
TARGET_RTOL = 0.01


def log(text: str) -> None:
    print(text, flush=True)


def shadow_gain(angles: np.ndarray, g75: float, onset: float = 60.0) -> np.ndarray:
    excess = np.clip((np.abs(angles) - onset) / (75.0 - onset), 0, None)
    return 1.0 - (1.0 - g75) * excess**2


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    volume = make_phantom(args.phantom, args.size).astype(np.float32)
    angles = grs_angles(args.views, -75.0, 75.0)
    truth = VolumeSeries(np.broadcast_to(volume, (args.views, *volume.shape)).copy())
    clean = simulate_acquisition(truth, angles=angles, seed=args.seed)
    top = float(clean.images.max())
    membrane = top * (MEMBRANE[0] + MEMBRANE[1] / np.cos(np.deg2rad(angles)))
    expected = COUNTS * (clean.images + membrane[:, None, None]) / top
    unshadowed = np.random.default_rng(args.seed).poisson(expected) * top / COUNTS
    gain = shadow_gain(angles, args.g75)
    make = lambda images: TiltSeries(images.astype(np.float32), angles, clean.times)  # noqa: E731
    return {"volume": volume, "angles": angles, "times": clean.times, "membrane": membrane, "gain": gain,
            "object": clean.images > 1e-6 * top, "ideal": make(unshadowed),
            "shadowed": make(unshadowed * gain[:, None, None]), "top": top}


def calibration_accuracy(sim: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    high = np.abs(sim["angles"]) >= 60
    true_totals = sim["ideal"].images.reshape(len(high), -1).sum(axis=1, dtype=np.float64)
    for method in ("mean_std", "gain"):
        corrected = calibrate_haadf(sim["shadowed"], method=method)
        record = corrected.metadata["preprocessing"][-1]
        background = [v[~o].mean(dtype=np.float64) for v, o in zip(corrected.images, sim["object"])]
        background = np.asarray(background)
        model = np.asarray(record["model_mean"])
        totals = corrected.images.reshape(len(high), -1).sum(axis=1, dtype=np.float64)
        err_model = np.abs(background[high] / model[high] - 1)
        err_truth = np.abs(background[high] / sim["membrane"][high] - 1)
        err_total = np.abs(totals[high] / true_totals[high] - 1)
        out[method] = {
            "fit_m0_m1_relative_to_max": [v / sim["top"] for v in record["mean_fit"]],
            "true_m0_m1_relative_to_max": list(MEMBRANE),
            "fit_relative_misfit": record["relative_misfit"],
            "corrected_views": int(high.sum()),
            "membrane_vs_model_max_error": float(err_model.max()),
            "membrane_vs_truth_max_error": float(err_truth.max()),
            "total_vs_unshadowed_max_error": float(err_total.max()),
            "total_vs_unshadowed_mean_error": float(err_total.mean()),
            "uncorrected_total_max_error": float(np.abs(sim["shadowed"].images.reshape(len(high), -1).sum(
                axis=1, dtype=np.float64)[high] / true_totals[high] - 1).max()),
            "meets_1pct_membrane_vs_model": bool(err_model.max() <= TARGET_RTOL),
            "meets_1pct_total": bool(err_total.max() <= TARGET_RTOL),
        }
    return out


def fake_dynamics(volumes: VolumeSeries, mask: np.ndarray, gain_t: np.ndarray) -> dict[str, Any]:
    vols = [np.asarray(v, dtype=np.float64) for v in volumes]
    mean = np.mean(vols, axis=0)
    steps = [np.linalg.norm(b - a) for a, b in zip(vols, vols[1:])]
    std = np.std(vols, axis=0)
    level = float(mean[mask].mean())
    curve = np.array([v[mask].mean() for v in vols])
    corr = float(np.corrcoef(curve, gain_t)[0, 1]) if np.std(gain_t) > 0 and np.std(curve) > 0 else None
    shadowed = gain_t < 1
    return {"step_change_mean": float(np.mean(steps) / np.linalg.norm(mean)),
            "voxel_std_relative": float(std[mask].mean() / level),
            "object_intensity_relative_std": float(curve.std() / curve.mean()),
            "object_intensity_gain_correlation": corr,
            "object_intensity_at_shadowed_times": float(curve[shadowed].mean() / curve[~shadowed].mean() - 1),
            "object_intensity_curve": curve / curve.mean()}


def run_dipster(series: TiltSeries, args: argparse.Namespace, workdir: Path) -> tuple[VolumeSeries, float]:
    config = DipsterConfig(manifold="y-t", hidden=(256,), base_channels=64, batch_size=8, lr=1e-3,
                           steps=args.train_steps, lr_step=max(1, args.train_steps // 3),
                           eval_every=max(1, args.train_steps // 5), patience=None, seed=args.seed,
                           device=str(args.device))
    t0 = time.perf_counter()
    result = train_dipster(series, config, run_dir=workdir, overwrite=True, progress=False)
    seconds = time.perf_counter() - t0
    return volume_series(result.model, progress=False), seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32, help="volume edge (default 32; 24 with --quick)")
    parser.add_argument("--views", type=int, default=60, help="GRS views = time steps (default 60)")
    parser.add_argument("--train-steps", type=int, default=1000, help="DIP-STER steps per run (default 1000)")
    parser.add_argument("--phantom", default="nanocube")
    parser.add_argument("--g75", type=float, default=0.7, help="shadowing gain at 75 deg (default 0.7)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="noise and network seeds, one full run each (default 0 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-dipster", action="store_true", help="only the calibration accuracy")
    parser.add_argument("--quick", action="store_true", help="24^3, 30 views, 200 training steps")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--append", action="store_true", help="keep the seeds already in --out")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.seed = args.seeds[0]
    args.device = resolve_device(args.device)
    return args


def run_seed(args: argparse.Namespace) -> dict[str, Any]:
    sim = simulate(args)
    results: dict[str, Any] = {"calibration": calibration_accuracy(sim)}
    for method, r in results["calibration"].items():
        log(f"seed {args.seed} calibration {method}: membrane vs model {r['membrane_vs_model_max_error']:.2%}, "
            f"total vs unshadowed {r['total_vs_unshadowed_max_error']:.2%} "
            f"(uncorrected {r['uncorrected_total_max_error']:.1%})")
    if not args.skip_dipster:
        inputs = {"ideal (no shadowing)": sim["ideal"], "shadowed, uncorrected": sim["shadowed"],
                  "shadowed, corrected (mean_std)": calibrate_haadf(sim["shadowed"], method="mean_std"),
                  "shadowed, corrected (gain)": calibrate_haadf(sim["shadowed"], method="gain")}
        mask = otsu_mask(sim["volume"])
        runs = {}
        with tempfile.TemporaryDirectory() as tmp:
            for k, (label, series) in enumerate(inputs.items()):
                volumes, seconds = run_dipster(subtract_background(series), args, Path(tmp) / f"run{k}")
                runs[label] = {**fake_dynamics(volumes, mask, sim["gain"]), "train_seconds": seconds}
                r = runs[label]
                log(f"seed {args.seed} DIP-STER {label}: step change {r['step_change_mean']:.4f}, voxel std "
                    f"{r['voxel_std_relative']:.4f}, object intensity std {r['object_intensity_relative_std']:.4f}, "
                    f"at shadowed times {r['object_intensity_at_shadowed_times']:+.4f}, corr with gain "
                    f"{r['object_intensity_gain_correlation']:.3f}")
        results["fake_dynamics_dipster"] = runs
    return results


def mean_over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of every number over the seeds, for the same nested keys (lists and flags left out)."""
    first = per_seed[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = mean_over_seeds([r[key] for r in per_seed])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(np.mean([r[key] for r in per_seed]))
    return out


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    kind = "gpu" if args.device.type == "cuda" else "cpu"
    out = args.out or RESULTS / f"preprocess_{kind}{'_quick' if args.quick else ''}.json"
    started = time.perf_counter()
    runs: dict[str, Any] = {}
    if args.append and out.is_file():  # seeds run in separate invocations, each under ~10 minutes on a CPU
        runs = json.loads(out.read_text())["results"]["per_seed"]
    for seed in args.seeds:
        args.seed = seed
        runs[str(seed)] = run_seed(args)
    results = {"mean_over_seeds": mean_over_seeds(list(runs.values())), "per_seed": runs}
    payload = {"environment": environment(args.device, wall_seconds=time.perf_counter() - started),
               "settings": {k: (str(v) if isinstance(v, (Path, torch.device)) else v) for k, v in vars(args).items()},
               "membrane_m0_m1": MEMBRANE, "poisson_counts_at_max": COUNTS, "results": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, payload, overwrite=True)
    log(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
