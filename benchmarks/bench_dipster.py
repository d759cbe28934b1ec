"""DIP-STER against sliding-window SIRT: quality on the simulated scenarios, speed, size, and static objects.

Run from the repository root::

    python benchmarks/bench_dipster.py --quick                  # tiny sizes: checks the script (< 2 minutes)
    python benchmarks/bench_dipster.py --size 64                # the CPU-sized protocol -> results/dipster_cpu.json
    python benchmarks/bench_dipster.py --device cuda --size 128 --network full   # the papers' size on a GPU

Protocol (as ``bench_dynamic_baselines.py``): the ground truth of each scenario
is simulated at ``size^3`` voxels for ``steps`` time steps, one projection is
recorded per step at the golden-ratio (GRS) angle over +-70 deg (noise-free, or
Poisson noise for each ``--dose``), and both methods are compared with the
truth at every step: sliding-window SIRT (window 30, 30 iterations,
``min_value=0``) and DIP-STER trained on the same projections, its volumes
generated at the acquisition times. Metrics are those of the baseline script
(SSIM / RMSE % in the Otsu mask of the truth, alloying error from step 5 on,
surface-to-volume error).

Also measured, for DIP-STER: training seconds (without the quality probes),
the seconds until the probed quality first meets the target and first matches
SIRT's, the export of all volumes to HDF5, peak GPU memory of training and
export (CUDA only), and the model size against the raw float32 4D series.

Static checks: a static object must come out static. (a) a phantom held
constant over ``steps`` steps (one GRS projection per step); (b) the real
continuous-tilt liquid-cell series (``../shared/data/real/liquid_cell_au_assembly_n6``
next to the repository, skipped when absent), downsampled to ``--liquid-size``.
For each method: the mean relative step change ``mean_t ||v_t - v_{t-1}|| / ||v_mean||``
and the per-voxel standard deviation over time averaged in the object,
relative to the object's mean intensity; the DIP-STER / SIRT ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_dynamic_baselines as base
import numpy as np
import torch
from dipster_report import format_table, plot
from skimage.transform import downscale_local_mean

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.device import resolve_device
from tomotime.io import (
    VolumeSeriesWriter,
    read_tilt_series,
    read_volume_series,
    write_json,
)
from tomotime.metrics import evaluate_series, otsu_mask
from tomotime.recon.dipster import (
    DipsterConfig,
    save_model,
    train_dipster,
    volume_at,
    volume_series,
)
from tomotime.metrics.evaluate import evaluate_against_truth
from tomotime.recon.dipster.problem import choose_holdout
from tomotime.sim import (
    SCENARIOS,
    make_phantom,
    mixed_intensity_spread,
    simulate_acquisition,
)
from tomotime.solvers import sliding_window

RESULTS = base.RESULTS
LIQUID_CELL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "liquid_cell_au_assembly_n6"
CHECKS = ("static-phantom", "liquid-cell")
NETWORKS = {"small": {"hidden": (256,), "base_channels": 64}, "full": {"hidden": (512, 512), "base_channels": 128}}
QUICK = {"size": 24, "steps": 30, "train_steps": 300, "window": 10, "liquid_size": 32}
#: The papers' quality targets per scenario: SSIM at every step, RMSE % at every step, scenario error.
TARGETS = {"nanorod-alloying": {"ssim_worst": 0.90, "rmse_worst": 8.0, "alloying_error_worst": 1.0},
           "nanoshell-damage": {"ssim_worst": 0.95, "surface_to_volume_error_mean": 3.0}}
PROBE_TIMES = 10
log = base.log


# ------------------------------------------------------------------ methods


def dipster_config(args: argparse.Namespace) -> DipsterConfig:
    """The CPU-sized settings of :class:`DipsterConfig`'s notes (``--network small``) or the papers' widths."""
    return DipsterConfig(manifold="y-t", **NETWORKS[args.network], batch_size=args.batch_size, lr=1e-3,
                         steps=args.train_steps, lr_step=max(1, args.train_steps // 3),
                         eval_every=min(200, args.probe_every), patience=None, seed=args.seed,
                         device=str(args.device))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def run_sirt(series: TiltSeries, args: argparse.Namespace, out: Path) -> tuple[VolumeSeries, dict[str, Any]]:
    cpu, t0 = time.process_time(), time.perf_counter()
    recon = sliding_window(series, window=args.window, method="sirt", iterations=args.iterations, min_value=0.0,
                           out=out, overwrite=True, device=args.device, progress=args.progress)
    return recon, {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu}


class QualityProbe:
    """SSIM / RMSE % against the truth of the volumes at a few times, for models taken during training."""

    def __init__(self, truth: VolumeSeries, targets: dict[str, float], sirt_ssim: np.ndarray) -> None:
        self.targets = targets
        self.index = np.unique(np.linspace(0, len(truth) - 1, PROBE_TIMES).round().astype(int))
        self.truth = np.stack([truth[i] for i in self.index])
        self.sirt_mean = float(np.mean(sirt_ssim[self.index]))
        self.rows: list[dict[str, float]] = []
        self.seconds = 0.0

    def __call__(self, model: torch.nn.Module, result: Any) -> None:
        t0 = time.perf_counter()
        times = model.acquisition["times"][self.index]
        quality = evaluate_series(np.stack([volume_at(model, float(t)) for t in times]), self.truth)
        self.rows.append({"step": result.steps, "train_seconds": result.seconds,
                          **{k: float(quality[k]) for k in ("ssim_mean", "ssim_worst", "rmse_mean", "rmse_worst")}})
        self.seconds += time.perf_counter() - t0
        log(f"  step {result.steps}: {result.seconds:.0f} s, probe SSIM mean {quality['ssim_mean']:.3f} "
            f"worst {quality['ssim_worst']:.3f}, RMSE worst {quality['rmse_worst']:.2f} %")

    def _first(self, test) -> dict[str, float] | None:
        return next((row for row in self.rows if test(row)), None)

    def summary(self) -> dict[str, Any]:
        meets = None
        if self.targets:
            meets = self._first(lambda r: r["ssim_worst"] >= self.targets["ssim_worst"]
                                and r["rmse_worst"] < self.targets.get("rmse_worst", math.inf))
        matches = self._first(lambda r: r["ssim_mean"] >= self.sirt_mean)
        return {"probe_time_indices": self.index.tolist(), "probes": self.rows, "probe_seconds": self.seconds,
                "sirt_probe_ssim_mean": self.sirt_mean,
                "seconds_to_target_ssim": None if meets is None else meets["train_seconds"],
                "steps_to_target_ssim": None if meets is None else meets["step"],
                "seconds_to_sirt_ssim": None if matches is None else matches["train_seconds"],
                "steps_to_sirt_ssim": None if matches is None else matches["step"]}


def model_size(model: torch.nn.Module, path: Path, raw_shape: tuple[int, ...]) -> dict[str, Any]:
    """Parameters and bytes of the model (weights and saved file) against the raw float32 4D series."""
    save_model(path, model, overwrite=True)
    weight_bytes = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    raw = int(np.prod(raw_shape)) * 4
    file_bytes = path.stat().st_size
    return {"parameters": sum(p.numel() for p in model.parameters()), "weight_bytes": weight_bytes,
            "file_bytes": file_bytes, "raw_float32_bytes": raw, "raw_shape": list(raw_shape),
            "ratio_raw_to_file": raw / file_bytes, "ratio_raw_to_weights": raw / weight_bytes}


def run_dipster(series: TiltSeries, args: argparse.Namespace, workdir: Path,
                probe: QualityProbe | None = None) -> tuple[VolumeSeries, dict[str, Any]]:
    """Train (in segments when probing: resuming is exact, so the run is the same), then export every volume."""
    device = args.device
    config = dipster_config(args)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    every = args.probe_every if probe is not None else args.train_steps
    cpu, wall = time.process_time(), time.perf_counter()
    for stop in [*range(every, args.train_steps, every), args.train_steps]:
        config.steps = stop
        result = train_dipster(series, config, run_dir=workdir / "run", resume=True, progress=args.progress)
        if probe is not None:
            probe(result.model, result)
    sync(device)
    info: dict[str, Any] = {
        "train_seconds": result.seconds, "train_cpu_s": time.process_time() - cpu,
        "train_wall_seconds_with_probes": time.perf_counter() - wall, "train_steps": result.steps,
        "best_step": result.best_step, "final_train_loss": result.history[-1]["train_loss"],
        "gm_scale": result.run["config"]["gm_scale"], "gpu_peak_train_mb": gpu_peak_mb(device),
        **(probe.summary() if probe is not None else {}),
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    recon = volume_series(result.model, out=workdir / "dipster.h5", overwrite=True, progress=args.progress)
    sync(device)
    seconds = time.perf_counter() - t0
    info.update(export_seconds=seconds, export_seconds_per_volume=seconds / len(recon),
                exported_volumes=len(recon), gpu_peak_export_mb=gpu_peak_mb(device),
                seconds=result.seconds + seconds,
                model_size=model_size(result.model, workdir / "model.pt", tuple(recon.shape)))
    return recon, info


# ------------------------------------------------------------------ simulated scenarios


def case_name(scenario: str, dose: float | None) -> str:
    return scenario if dose is None else f"{scenario}@dose{dose:g}"


def evaluate(recon: VolumeSeries, truth: VolumeSeries, *, extra: dict[str, float],
             sv_truth: np.ndarray | None) -> dict[str, Any]:
    result = evaluate_against_truth(recon, truth, **extra)
    if sv_truth is not None:
        base.add_surface_to_volume(result, recon, sv_truth)
    return {"summary": base.summary_of(result), "curves": {k: result[k] for k in base.CURVES if k in result}}


def check_targets(name: str, methods: dict[str, Any]) -> dict[str, Any]:
    """Each method's summary against the papers' targets: value, target and whether it is met."""
    out: dict[str, Any] = {}
    for label, m in methods.items():
        rows = {}
        for key, target in TARGETS.get(name, {}).items():
            value = m["summary"][key]
            met = value >= target if key.startswith("ssim") else (value < target if key.startswith("rmse")
                                                                   else value <= target)
            rows[key] = {"value": value, "target": target, "met": bool(met)}
        out[label] = rows
    return out


def run_scenario(name: str, dose: float | None, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    case = case_name(name, dose)
    log(f"{case}: simulating the truth, {args.size}^3 x {args.steps} steps ...")
    truth = base.stream_truth(name, workdir / "truth.h5", size=args.size, steps=args.steps, seed=args.seed)
    series = simulate_acquisition(truth, dose=dose, seed=args.seed)
    extra = {"alloying_sigma_mixed": mixed_intensity_spread(truth[0])} if name == "nanorod-alloying" else {}
    sv_truth = base.surface_to_volume_curve(truth) if name == "nanoshell-damage" else None
    entry: dict[str, Any] = {"scenario": name, "dose": dose, "run": run_settings(args), "times": truth.times,
                             "angles_deg": series.angles, "methods": {}}
    log(f"{case}: sliding-window SIRT (window {args.window}, {args.iterations} iterations) ...")
    recon, info = run_sirt(series, args, workdir / "sirt.h5")
    entry["methods"]["SIRT"] = {**info, **evaluate(recon, truth, extra=extra, sv_truth=sv_truth)}
    base.close(recon)
    log(f"{case}: SIRT {info['seconds']:.0f} s, {summary_line(entry['methods']['SIRT'])}")
    log(f"{case}: DIP-STER, {args.train_steps} steps ...")
    probe = QualityProbe(truth, TARGETS.get(name, {}), np.asarray(entry["methods"]["SIRT"]["curves"]["ssim"]))
    recon, info = run_dipster(series, args, workdir, probe)
    entry["methods"]["DIP-STER"] = {**info, **evaluate(recon, truth, extra=extra, sv_truth=sv_truth)}
    base.close(recon)
    base.close(truth)
    log(f"{case}: DIP-STER trained in {info['train_seconds']:.0f} s, exported in {info['export_seconds']:.1f} s, "
        f"{summary_line(entry['methods']['DIP-STER'])}")
    entry["targets"] = check_targets(name, entry["methods"])
    return entry


def summary_line(method: dict[str, Any]) -> str:
    s = method["summary"]
    return (f"SSIM mean {s['ssim_mean']:.3f} worst {s['ssim_worst']:.3f}, "
            f"RMSE mean {s['rmse_mean']:.2f} worst {s['rmse_worst']:.2f} %")


# ------------------------------------------------------------------ static objects


def temporal_stats(series: VolumeSeries) -> dict[str, Any]:
    """Time-mean and per-voxel standard deviation volumes, and ``||v_t - v_{t-1}||``, one volume at a time."""
    total = square = previous = None
    steps = []
    for volume in series:
        v = np.asarray(volume, dtype=np.float64)
        if total is None:
            total, square = np.zeros_like(v), np.zeros_like(v)
        else:
            steps.append(float(np.linalg.norm(v - previous)))
        total += v
        square += v * v
        previous = v
    mean = total / len(series)
    std = np.sqrt(np.clip(square / len(series) - mean**2, 0, None))
    return {"mean": mean, "std": std, "step_norms": np.asarray(steps)}


def temporal_change(stats: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """Relative change over time of a series that should be static (see the module description)."""
    norm = float(np.linalg.norm(stats["mean"]))
    level = float(stats["mean"][mask].mean())
    curve = stats["step_norms"] / norm
    return {"step_change_mean": float(curve.mean()), "step_change_worst": float(curve.max()),
            "step_change_curve": curve, "voxel_std_in_object": float(stats["std"][mask].mean()),
            "object_mean_intensity": level, "voxel_std_relative": float(stats["std"][mask].mean()) / level}


def compare_static(series: TiltSeries, args: argparse.Namespace, workdir: Path, *,
                   truth: VolumeSeries | None = None, mask: np.ndarray | None = None) -> dict[str, Any]:
    """Both methods on a series of a static object: temporal change (and quality when the truth is known)."""
    methods: dict[str, Any] = {}
    stats = {}
    for label, runner in (("SIRT", lambda: run_sirt(series, args, workdir / "sirt.h5")),
                          ("DIP-STER", lambda: run_dipster(series, args, workdir))):
        log(f"  {label} ...")
        recon, info = runner()
        stats[label] = temporal_stats(recon)
        if truth is not None:
            info.update(evaluate(recon, truth, extra={}, sv_truth=None))
        methods[label] = {k: v for k, v in info.items() if k not in ("probes",)}
        base.close(recon)
    if mask is None:  # no truth: the object is where the two methods' time-means (averaged) lie above Otsu
        mask = otsu_mask(0.5 * (stats["SIRT"]["mean"] + stats["DIP-STER"]["mean"]))
    for label, m in methods.items():
        m["temporal_change"] = temporal_change(stats[label], mask)
    change = {label: m["temporal_change"] for label, m in methods.items()}
    ratios = {key: change["DIP-STER"][key] / change["SIRT"][key]
              for key in ("step_change_mean", "step_change_worst", "voxel_std_relative")}
    mid = series.shape[1] // 2
    slices = {label: stats[label]["mean"][:, mid, :].astype(np.float32) for label in stats}
    return {"run": run_settings(args), "mask_voxels": int(mask.sum()), "methods": methods,
            "ratios_dipster_to_sirt": ratios, "mean_slices": slices}


def static_phantom_check(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    volume = make_phantom(args.static_phantom, args.size)
    log(f"static {args.static_phantom}: {args.size}^3 held for {args.steps} steps, one GRS projection per step")
    path = workdir / "static.h5"
    with VolumeSeriesWriter(path, shape=(args.steps, *volume.shape), overwrite=True) as writer:
        for t in range(args.steps):
            writer.write(t, volume)
    truth = read_volume_series(path)
    series = simulate_acquisition(truth, seed=args.seed)
    entry = {"object": args.static_phantom, **compare_static(series, args, workdir, truth=truth,
                                                             mask=otsu_mask(volume))}
    base.close(truth)
    return entry


def liquid_cell_series(size: int) -> TiltSeries | None:
    """The real liquid-cell series, intensities uint8/255 minus their 1st percentile, downsampled to ``size``."""
    path = LIQUID_CELL / "tiltseries_uint8.npy"
    if not path.is_file():
        return None
    raw = read_tilt_series(path, angles=LIQUID_CELL / "tiltseries.rawtlt")
    images = raw.images / 255.0
    images = images - np.percentile(images, 1)  # the liquid's HAADF background, as DipsterConfig.data_offset=None
    factor = max(1, images.shape[1] // size)
    images = downscale_local_mean(images, (1, factor, factor)).astype(np.float32)
    return TiltSeries(images, raw.angles, times=raw.times, pixel_size=raw.pixel_size * factor,
                      metadata={"source": "liquid_cell_au_assembly_n6", "downsampling": factor})


def liquid_cell_check(args: argparse.Namespace, workdir: Path) -> dict[str, Any] | None:
    series = liquid_cell_series(args.liquid_size)
    if series is None:
        log(f"liquid cell: {LIQUID_CELL} not found; skipped")
        return None
    log(f"liquid cell: {series.shape[0]} views of {series.shape[1]}x{series.shape[2]} "
        f"(downsampled {series.metadata['downsampling']}x), angles {series.angles.min():g}..{series.angles.max():g}")
    return {"object": "liquid_cell_au_assembly_n6", "shape": list(series.shape),
            "downsampling": series.metadata["downsampling"], "angles_deg": series.angles,
            **compare_static(series, args, workdir)}


# ------------------------------------------------------------------ report


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"size": args.size, "steps": args.steps, "train_steps": args.train_steps, "network": args.network,
            "batch_size": args.batch_size, "probe_every": args.probe_every, "window": args.window,
            "iterations": args.iterations, "liquid_size": args.liquid_size, "device": str(args.device),
            "torch_threads": torch.get_num_threads(), "seed": args.seed, "quick": args.quick,
            "load_average": list(base.os.getloadavg()), "dipster_config": dipster_config(args).to_dict()}


def load_previous(paths: list[Path]) -> dict[str, Any]:
    """The scenarios and static checks of earlier results files (later files win)."""
    results: dict[str, Any] = {"scenarios": {}, "static_checks": {}}
    for path in paths:
        if path.is_file():
            previous = json.loads(path.read_text())
            for key, cases in results.items():
                cases.update(previous.get(key, {}))
    return results


def ordered(results: dict[str, Any]) -> dict[str, Any]:
    """Scenarios by name, the noise-free case before the noisy ones by increasing dose."""
    cases = sorted(results["scenarios"].items(),
                   key=lambda kv: (kv[1]["scenario"], kv[1]["dose"] is not None, kv[1]["dose"] or 0))
    return {**results, "scenarios": dict(cases)}


def write_results(path: Path, env: dict[str, Any], settings: dict[str, Any], results: dict[str, Any],
                  started: float) -> None:
    env = dict(env, load_average_end=base.os.getloadavg())
    write_json(path, {"environment": env, "settings": settings, **ordered(results), "peak_rss_mb": base.peak_rss_mb(),
                      "total_seconds": time.perf_counter() - started}, overwrite=True)


def parse_dose(text: str) -> float | None:
    if text.lower() in ("none", "0", "inf"):
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: expected a positive number of counts or 'none'")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, help="volume edge in voxels (default 64 on CPU, 128 on a GPU; "
                        "24 with --quick)")
    parser.add_argument("--steps", type=int, help="time steps = projections (default 100; 30 with --quick)")
    parser.add_argument("--epochs", type=float, default=25.0,
                        help="DIP-STER passes over the training rows of a scenario (default 25, the papers' "
                        "lower end: 19000 steps at 64^3, 38000 at 128^3)")
    parser.add_argument("--train-steps", type=int, help="DIP-STER training steps (default: from --epochs; 300 with "
                        "--quick)")
    parser.add_argument("--probe-every", type=int, help="training steps between quality probes "
                        "(default: a tenth of --train-steps)")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="small",
                        help="small: one hidden layer of 256, 64 generator channels (the CPU settings); "
                        "full: two of 512, 128 channels (the papers' widths)")
    parser.add_argument("--batch-size", type=int, default=8, help="DIP-STER rows per step (default 8)")
    parser.add_argument("--window", type=int, help="SIRT projections per window (default 30; 10 with --quick)")
    parser.add_argument("--iterations", type=int, default=30, help="SIRT iterations per window (default 30)")
    parser.add_argument("--scenarios", nargs="*", default=list(base.SCENARIO_NAMES), choices=sorted(SCENARIOS))
    parser.add_argument("--dose", nargs="+", type=parse_dose, default=[None],
                        help="Poisson dose(s), counts per unit projected intensity, or 'none' (default: noise-free)")
    parser.add_argument("--checks", nargs="*", default=list(CHECKS), choices=CHECKS,
                        help="static-object checks to run (default: both; none with an empty list)")
    parser.add_argument("--static-phantom", default="nanocube", help="phantom of the static check (default nanocube)")
    parser.add_argument("--liquid-size", type=int, help="image edge of the downsampled liquid-cell series "
                        "(default 64; 32 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on shared cores one thread ran fastest)")
    parser.add_argument("--out", type=Path, help="JSON file (default results/dipster_{cpu,gpu}[_quick].json; the "
                        "figure goes next to it as .png)")
    parser.add_argument("--append", action="store_true",
                        help="keep the cases of an existing --out file (cases run again are replaced)")
    parser.add_argument("--merge", nargs="+", type=Path, default=[],
                        help="also keep the cases of these results files (e.g. runs made in parallel)")
    parser.add_argument("--tmp", type=Path, help="folder for the temporary files (default: system temp)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (24^3 x 30 steps, 300 training steps)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: when stderr is a terminal)")
    args = parser.parse_args(argv)
    args.device = resolve_device(args.device)
    defaults = QUICK if args.quick else {"size": 128 if args.device.type == "cuda" else 64, "steps": 100,
                                         "window": 30, "liquid_size": 64}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.size < 16 or args.steps < 3 or not 1 <= args.window <= args.steps or args.iterations < 1:
        parser.error("expected --size >= 16, --steps >= 3, 1 <= --window <= --steps and --iterations >= 1")
    if min(args.batch_size, args.threads, args.liquid_size) < 1 or not args.epochs > 0:
        parser.error("--epochs, --batch-size, --threads and --liquid-size must be positive")
    if args.train_steps is None:
        held_out = choose_holdout(args.steps, args.size, DipsterConfig(seed=args.seed)).size
        args.train_steps = math.ceil(args.epochs * (args.steps * args.size - held_out) / args.batch_size)
    args.probe_every = args.probe_every or max(1, args.train_steps // 10)
    if min(args.train_steps, args.probe_every) < 1:
        parser.error("--train-steps and --probe-every must be positive")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    kind = "gpu" if args.device.type == "cuda" else "cpu"
    out = args.out or RESULTS / f"dipster_{kind}{'_quick' if args.quick else ''}.json"
    figure = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = base.environment(args.device)
    settings = {
        "protocol": "GRS over +-70 deg, one projection per time step; SIRT: sliding window, min_value=0",
        "this_run": run_settings(args), "doses": args.dose, "scenarios": args.scenarios, "checks": args.checks,
        "targets": TARGETS,
        "definitions": {
            "run": "each case holds the settings, thread count and load average of the run that made it",
            "ssim/rmse/alloying/surface_to_volume": "as bench_dynamic_baselines.py",
            "train_seconds": "DIP-STER training wall-clock without the quality probes",
            "train_cpu_s": "process CPU seconds of the training loop, quality probes included",
            "seconds_to_target_ssim": "training seconds until the probed SSIM (10 time points, model as "
                                      "returned after that many steps) met the scenario's SSIM/RMSE worst targets",
            "seconds_to_sirt_ssim": "the same until the probed mean SSIM reached SIRT's at those times",
            "export_seconds": "generating every volume and writing it to HDF5",
            "model_size": "saved model file and weights vs the raw float32 (T, Z, Y, X) series",
            "step_change": "mean_t ||v_t - v_(t-1)|| / ||v_mean|| over the series of a static object",
            "voxel_std_relative": "per-voxel std over time, averaged in the object, / the object's mean intensity",
        },
    }
    results = load_previous([*args.merge, *([out] if args.append else [])])
    log(f"{args.size}^3 x {args.steps} steps, DIP-STER {args.train_steps} steps ({args.network}), SIRT window "
        f"{args.window}, device {args.device}, {env['cpu_count']} CPUs, {torch.get_num_threads()} torch threads")
    for name in args.scenarios:
        for dose in args.dose:
            with tempfile.TemporaryDirectory(prefix="tomotime-dipster-", dir=args.tmp) as workdir:
                results["scenarios"][case_name(name, dose)] = run_scenario(name, dose, args, Path(workdir))
            write_results(out, env, settings, results, started)  # a partial result survives a later failure
    for check, runner in (("static-phantom", static_phantom_check), ("liquid-cell", liquid_cell_check)):
        if check in args.checks:
            with tempfile.TemporaryDirectory(prefix="tomotime-dipster-", dir=args.tmp) as workdir:
                entry = runner(args, Path(workdir))
            if entry is not None:
                results["static_checks"][check] = entry
                write_results(out, env, settings, results, started)
    print()
    write_results(out, env, settings, results, started)
    results = ordered(results)
    print(format_table(results))
    plot(results, figure, targets=TARGETS)
    print(f"\npeak RSS {base.peak_rss_mb():.0f} MiB, total {time.perf_counter() - started:.0f} s")
    print(f"wrote {out} and {figure}")
    return out


if __name__ == "__main__":
    main()
