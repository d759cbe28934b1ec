"""Sliding-window baselines (SIRT, FBP, EM) on the simulated dynamic scenarios, against ground truth.

Run from the repository root::

    python benchmarks/bench_dynamic_baselines.py            # 128^3 x 100 steps -> results/dynamic_baselines_cpu.json
    python benchmarks/bench_dynamic_baselines.py --quick    # 48^3 x 40 steps: checks the script in about a minute

Protocol (the papers' synthetic experiment): the ground truth of each scenario
(``nanorod-alloying``, ``nanoshell-damage``) is simulated at ``size^3`` voxels
for ``steps`` time steps; one projection is recorded per step at the
golden-ratio (GRS) angle over +-70 degrees, noise-free unless ``--dose`` is
given; every time step is reconstructed from the ``window`` projections centred
on it (SIRT with ``min_value=0``, FBP with the ram-lak filter, EM) and compared
with the truth at that step.

Metrics per time step: SSIM and RMSE % inside the Otsu mask of the truth and
unmasked (:func:`tomotime.metrics.evaluate.evaluate_against_truth`). Nanorod: alloying
percentage of reconstruction and truth, error in percentage points from step 5
on. Nanoshell: surface-to-volume ratio (:func:`tomotime.metrics.surface_to_volume`,
each volume binarised at its own Otsu threshold) and its relative error
``100 * |S/V_recon - S/V_truth| / S/V_truth`` in percent.

The truth and each reconstruction stream through temporary HDF5 files, one
volume at a time, so memory stays at a few volumes whatever ``steps`` is.
Times are wall-clock seconds of the whole sliding-window reconstruction
(projector set-up included) and ``cpu_s`` the process CPU time; on a shared
machine they vary with its load (``load_average_*`` in the JSON): when other
jobs keep the cores busy, torch's worker threads wait on each other and a run
can be many times slower than on an idle machine; ``--threads 1`` suffers much
less (``--quick`` uses it).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from environment import environment
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tomotime.data import VolumeSeries
from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.io import VolumeSeriesWriter, atomic_path, read_volume_series, write_json
from tomotime.metrics import summarise, surface_to_volume
from tomotime.metrics.evaluate import evaluate_against_truth
from tomotime.sim import (
    SCENARIOS,
    iter_scenario,
    mixed_intensity_spread,
    simulate_acquisition,
)
from tomotime.solvers import sliding_window

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIO_NAMES = ("nanorod-alloying", "nanoshell-damage")
METHODS = {"sirt": "SIRT", "fbp": "FBP", "em": "EM"}
QUICK = {"size": 48, "steps": 40}
CURVES = ("ssim", "rmse", "psnr", "ssim_unmasked", "rmse_unmasked", "alloying", "alloying_truth",
          "surface_to_volume", "surface_to_volume_truth")
SUMMARY_KEYS = ("ssim_mean", "ssim_worst", "rmse_mean", "rmse_worst", "psnr_mean",
                "ssim_unmasked_mean", "ssim_unmasked_worst", "rmse_unmasked_mean", "rmse_unmasked_worst",
                "alloying_error_mean", "alloying_error_worst",
                "surface_to_volume_error_mean", "surface_to_volume_error_worst")


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ simulation and reconstruction


def stream_truth(name: str, path: Path, *, size: int, steps: int, seed: int) -> VolumeSeries:
    """Simulate scenario ``name`` one volume at a time into ``path``; return the lazily read series."""
    shape = (steps, size, size, size)
    with VolumeSeriesWriter(path, shape=shape, overwrite=True) as writer:
        for t, volume in enumerate(iter_scenario(name, size, steps, seed)):
            writer.write(t, volume)
    return read_volume_series(path)


def method_options(method: str, iterations: int) -> dict[str, Any]:
    if method == "sirt":
        return {"iterations": iterations, "min_value": 0.0}
    if method == "fbp":
        return {"filter": "ram-lak"}
    return {"iterations": iterations}


def close(series: VolumeSeries) -> None:
    """Release the HDF5 file behind a lazily read series."""
    file = getattr(series.data, "file", None)
    if file is not None:
        file.close()


# ------------------------------------------------------------------ evaluation


def surface_to_volume_curve(series: VolumeSeries) -> np.ndarray:
    """S/V of every volume (NaN where a volume has no object above its Otsu threshold)."""
    values = []
    for volume in series:
        try:
            values.append(surface_to_volume(volume))
        except InputError:
            values.append(float("nan"))
    return np.asarray(values)


def add_surface_to_volume(result: dict[str, Any], recon: VolumeSeries, truth_curve: np.ndarray) -> None:
    """Add the S/V curves and the relative S/V error (percent, mean and worst) to ``result``."""
    curve = surface_to_volume_curve(recon)
    error = 100.0 * np.abs(curve - truth_curve) / truth_curve
    stats = summarise(error, higher_is_better=False)
    result.update(surface_to_volume=curve, surface_to_volume_truth=truth_curve,
                  surface_to_volume_error_mean=stats["mean"], surface_to_volume_error_worst=stats["worst"])


def summary_of(result: dict[str, Any]) -> dict[str, float]:
    out = {k: float(result[k]) for k in SUMMARY_KEYS if k in result}
    for key, higher in (("ssim_unmasked", True), ("rmse_unmasked", False)):
        s = summarise(result[key], higher_is_better=higher)
        out[f"{key}_mean"], out[f"{key}_worst"] = s["mean"], s["worst"]
    return out


def run_scenario(name: str, args: argparse.Namespace, workdir: Path, device: torch.device) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    log(f"{name}: simulating the truth, {args.size}^3 x {args.steps} steps ...")
    t0 = time.perf_counter()
    truth = stream_truth(name, workdir / "truth.h5", size=args.size, steps=args.steps, seed=args.seed)
    entry["truth_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    series = simulate_acquisition(truth, dose=args.dose, seed=args.seed)
    entry["acquisition_seconds"] = time.perf_counter() - t0
    entry["times"] = truth.times
    entry["angles_deg"] = series.angles
    log(f"{name}: truth {entry['truth_seconds']:.1f} s, acquisition {entry['acquisition_seconds']:.1f} s")

    extra: dict[str, Any] = {}
    if name == "nanorod-alloying":
        extra["alloying_sigma_mixed"] = mixed_intensity_spread(truth[0])
    sv_truth = surface_to_volume_curve(truth) if name == "nanoshell-damage" else None

    entry["methods"] = {}
    for method in args.methods:
        label = METHODS[method]
        log(f"{name}: sliding-window {label} (window {args.window}) ...")
        out = workdir / f"{method}.h5"
        cpu, t0 = time.process_time(), time.perf_counter()
        recon = sliding_window(series, window=args.window, method=method, out=out, overwrite=True,
                               device=device, progress=args.progress, **method_options(method, args.iterations))
        seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu
        t0 = time.perf_counter()
        result = evaluate_against_truth(recon, truth, **extra)
        if sv_truth is not None:
            add_surface_to_volume(result, recon, sv_truth)
        close(recon)
        out.unlink()
        evaluation_s = time.perf_counter() - t0
        entry["methods"][label] = {
            "seconds": seconds, "cpu_s": cpu_s, "seconds_per_time_step": seconds / args.steps,
            "evaluation_seconds": evaluation_s,
            "summary": summary_of(result),
            "curves": {k: result[k] for k in CURVES if k in result},
        }
        log(f"{name}: {label} done in {seconds:.1f} s (cpu {cpu_s:.1f} s), evaluated in {evaluation_s:.1f} s, "
            f"SSIM mean {result['ssim_mean']:.3f}, RMSE mean {result['rmse_mean']:.2f} %, "
            f"peak RSS {peak_rss_mb():.0f} MiB")
    close(truth)
    return entry


# ------------------------------------------------------------------ report



def scenario_error(summary: dict[str, Any]) -> str:
    """The scenario-specific error of a summary: alloying (pp) or surface-to-volume (%), mean/worst."""
    if "alloying_error_mean" in summary:
        return f"alloy {summary['alloying_error_mean']:.2f}/{summary['alloying_error_worst']:.2f} pp"
    if "surface_to_volume_error_mean" in summary:
        return (f"S/V {summary['surface_to_volume_error_mean']:.1f}/"
                f"{summary['surface_to_volume_error_worst']:.1f} %")
    return "-"


def format_table(scenarios: dict[str, Any]) -> str:
    head = (f"{'scenario':<18} {'method':<6} {'SSIM mean':>9} {'worst':>7} {'RMSE% mean':>10} {'worst':>7} "
            f"{'SSIM unm.':>9} {'RMSE% unm.':>10} {'scenario error':>22} {'time s':>8}")
    lines = [head, "-" * len(head)]
    for name, entry in scenarios.items():
        for label, m in entry["methods"].items():
            s = m["summary"]
            extra = scenario_error(s)
            lines.append(f"{name:<18} {label:<6} {s['ssim_mean']:9.3f} {s['ssim_worst']:7.3f} "
                         f"{s['rmse_mean']:10.2f} {s['rmse_worst']:7.2f} {s['ssim_unmasked_mean']:9.3f} "
                         f"{s['rmse_unmasked_mean']:10.2f} {extra:>22} {m['seconds']:8.1f}")
    lines.append("scenario error: mean/worst over time; alloying in percentage points (from step 5 on), "
                 "S/V as relative error in %")
    return "\n".join(lines)


OWN_MEASURE = {"nanorod-alloying": "alloying", "nanoshell-damage": "surface_to_volume"}
OWN_LABELS = {"alloying": "alloying (%)", "surface_to_volume": "surface / volume (1/voxel)"}
MASK_STYLES = (Line2D([], [], color="grey", lw=1.5, label="Otsu mask of the truth"),
               Line2D([], [], color="grey", lw=1, ls="--", label="whole volume"))


def plot(scenarios: dict[str, Any], path: Path) -> Path:
    """SSIM, RMSE % and the scenario's own measure over time; one row per scenario."""
    fig = Figure(figsize=(13, 3.3 * len(scenarios)), layout="tight")
    axes = fig.subplots(len(scenarios), 3, squeeze=False)
    colours = dict(zip(METHODS.values(), ("C0", "C1", "C2")))
    for row, (name, entry) in zip(axes, scenarios.items()):
        times = np.asarray(entry["times"])
        own = OWN_MEASURE.get(name)
        for label, m in entry["methods"].items():
            c = m["curves"]
            for ax, key in zip(row[:2], ("ssim", "rmse")):
                ax.plot(times, c[key], color=colours[label], lw=1.5, label=label)
                ax.plot(times, c[f"{key}_unmasked"], color=colours[label], lw=1, ls="--")
            if own is not None and own in c:
                row[2].plot(times, c[own], color=colours[label], lw=1.5, label=label)
        truth_curves = [m["curves"][f"{own}_truth"] for m in entry["methods"].values() if own in m["curves"]]
        if truth_curves:
            row[2].plot(times, truth_curves[0], color="k", lw=1.5, label="truth")
            row[2].set_ylabel(OWN_LABELS[own])
            row[2].legend(fontsize=7)
        else:
            row[2].set_axis_off()
        row[0].set_ylabel(f"{name}\nSSIM")
        row[1].set_ylabel("RMSE (%)")
        for ax in row:
            ax.set_xlabel("time (s)")
            ax.grid(alpha=0.3)
        if entry["methods"]:
            row[0].legend(handles=[*row[0].get_lines()[::2], *MASK_STYLES], fontsize=7)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def write_results(path: Path, env: dict, settings: dict, scenarios: dict, started: float) -> None:
    env = dict(env, load_average_end=os.getloadavg() if hasattr(os, "getloadavg") else None)
    write_json(path, {"environment": env, "settings": settings, "scenarios": scenarios,
                      "peak_rss_mb": peak_rss_mb(), "total_seconds": time.perf_counter() - started},
               overwrite=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, help="volume edge in voxels (default 128; 48 with --quick)")
    parser.add_argument("--steps", type=int, help="time steps = projections (default 100; 40 with --quick)")
    parser.add_argument("--window", type=int, default=30, help="projections per sliding window (default 30)")
    parser.add_argument("--iterations", type=int, default=30, help="SIRT and EM iterations per window (default 30)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIO_NAMES), choices=sorted(SCENARIOS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--dose", type=float, help="electron dose, counts per unit projected intensity (default: "
                        "noise-free)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice; 1 with --quick)")
    parser.add_argument("--out", type=Path, help="JSON file (default results/dynamic_baselines_{cpu,gpu}.json; "
                        "the figure goes next to it as .png)")
    parser.add_argument("--tmp", type=Path, help="folder for the temporary volume files (default: system temp)")
    parser.add_argument("--quick", action="store_true",
                        help="48^3 x 40 steps and one thread, unless --size/--steps/--threads are given")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: when stderr is a terminal)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else {"size": 128, "steps": 100}
    args.size = defaults["size"] if args.size is None else args.size
    args.steps = defaults["steps"] if args.steps is None else args.steps
    if args.quick and args.threads is None:
        args.threads = 1  # small problems run far slower with two threads on a busy machine
    if args.size < 16 or args.steps < 2 or not 1 <= args.window <= args.steps or args.iterations < 1:
        parser.error("expected --size >= 16, --steps >= 2, 1 <= --window <= --steps and --iterations >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads: expected a positive number of threads")
    if args.dose is not None and not args.dose > 0:
        parser.error("--dose: expected a positive number of counts")
    try:
        args.device = resolve_device(args.device)
    except InputError as exc:
        parser.error(f"--device: {exc}")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    kind = "gpu" if device.type == "cuda" else "cpu"
    out = args.out or RESULTS / f"dynamic_baselines_{kind}{'_quick' if args.quick else ''}.json"
    figure = out.with_name(out.stem.replace("_cpu", "") + ".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = environment(device)
    settings = {
        "size": args.size, "steps": args.steps, "window": args.window, "iterations": args.iterations,
        "scenarios": args.scenarios, "methods": [METHODS[m] for m in args.methods], "dose": args.dose,
        "seed": args.seed, "quick": args.quick, "device": str(device),
        "tilt_scheme": "GRS over +-70 deg, one projection per time step",
        "sirt": {"min_value": 0.0}, "fbp": {"filter": "ram-lak"},
        "definitions": {
            "ssim/rmse": "per time step inside the Otsu mask of the truth; *_unmasked over the whole volume; "
                         "RMSE in % of the truth's dynamic range",
            "alloying_error": "|alloying_recon - alloying_truth| in percentage points, from step 5 on",
            "surface_to_volume_error": "100 * |S/V_recon - S/V_truth| / S/V_truth, each volume binarised at "
                                       "its own Otsu threshold",
            "seconds": "wall-clock of the sliding-window reconstruction of all time steps; machine load varies",
        },
    }
    log(f"{settings['size']}^3 x {settings['steps']} steps, window {args.window}, {args.iterations} iterations, "
        f"device {device}, {env['cpu_count']} CPUs, torch {env['torch']} ({env['torch_threads']} threads)")
    scenarios: dict[str, Any] = {}
    for name in args.scenarios:
        with tempfile.TemporaryDirectory(prefix="tomotime-bench-", dir=args.tmp) as workdir:
            scenarios[name] = run_scenario(name, args, Path(workdir), device)
        write_results(out, env, settings, scenarios, started)  # a partial result survives a later failure
    print()
    print(format_table(scenarios))
    plot(scenarios, figure)
    print(f"\npeak RSS {peak_rss_mb():.0f} MiB, total {time.perf_counter() - started:.0f} s")
    print(f"wrote {out} and {figure}")
    return out


if __name__ == "__main__":
    main()
