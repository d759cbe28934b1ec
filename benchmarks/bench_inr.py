"""INR tomography against SIRT on the INR paper's sweeps (sea-mine phantom), and grid against H-Siren.

Run from the repository root::

    python benchmarks/bench_inr.py --quick                              # tiny sizes: checks the script
    python benchmarks/bench_inr.py --size 32 --scenarios wedge sparse   # CPU-sized, one thread
    python benchmarks/bench_inr.py --fields                             # grid vs H-Siren at equal wall time
    python benchmarks/bench_inr.py --device cuda --size 128 --steps 6000 --out results/inr_gpu_128.json

Protocol: each scenario of ``inr_scenarios.py`` is reconstructed by SIRT
(100 iterations, ``min_value=0``; for ``axis`` also with the true poses,
a reference no blind method beats) and by INR (feature-grid field, default
options, ``--steps`` steps of 1,024 rays; ``--align`` for ``axis``).
Quality against the truth, two SSIM definitions:

* ``ssim`` -- the project's :func:`tomotime.metrics.ssim` (scikit-image, 7-voxel
  window, data range of the truth, reconstructions as they are);
* ``ssim_paper`` -- the same after min-max normalising each volume to [0, 1]
  (data range 1), the usual way figures like the paper's are computed.

For ``axis`` the learned poses are compared with the truth after removing the
unobservable object translation (:func:`tomotime.recon.inr.match_gauge`): RMS
shift error (px) and the error of the tilt-axis angle ``(z1 + z3) / 2``
averaged over the views with weights ``sin^2(theta)`` (at 0 deg it is not seen).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from environment import environment
from inr_scenarios import SCENARIOS, make

from tomotime.device import resolve_device
from tomotime.metrics import ssim
from tomotime.recon.inr import InrConfig, learned_poses, match_gauge, train_inr
from tomotime.solvers import reconstruct

RESULTS = Path(__file__).resolve().parent / "results"


def ssim_pair(volume: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    norm = lambda v: (v - v.min()) / max(float(v.max() - v.min()), 1e-12)  # noqa: E731
    return {"ssim": round(ssim(volume, truth), 4), "ssim_paper": round(ssim(norm(volume), norm(truth),
                                                                            data_range=1.0), 4)}


def run_sirt(scenario, device, poses: np.ndarray | None = None) -> dict[str, Any]:
    """SIRT; with ``poses`` (truth) through the projector's pose model, which has no ``z1``: it
    reconstructs the object turned about the beam, and is compared with that."""
    series, truth = scenario.series, scenario.truth
    if poses is not None:
        truth = scenario.posed_truth
        from tomotime.data import TiltSeries

        project = np.stack([poses[:, 1], np.zeros(len(poses)), poses[:, 2], poses[:, 3]], 1)
        series = TiltSeries(series.images, series.angles, poses=project)
    began = time.perf_counter()
    volume = reconstruct(series, method="sirt", iterations=100, min_value=0.0, device=device, progress=False)
    return {"seconds": round(time.perf_counter() - began, 2), **ssim_pair(volume, truth)}


def pose_errors(model, scenario) -> dict[str, float]:
    truth = scenario.true_poses
    learned = match_gauge(learned_poses(model), truth, scenario.series.angles)
    shift = np.sqrt(np.mean(np.sum((learned[:, 2:] - truth[:, 2:]) ** 2, axis=1)))
    # the tilt-axis angle (z1 + z3) / 2 of each view is seen in proportion to sin(theta): weight sin^2
    weight = np.sin(np.deg2rad(scenario.series.angles)) ** 2
    axis = np.sum(weight * (learned[:, 0] + learned[:, 1] - truth[:, 0] - truth[:, 1]) / 2) / weight.sum()
    gauge = int(np.argmin(np.abs(scenario.series.angles)))  # its z1 = z3 = the shared axis alone
    return {"shift_rms_px": round(float(shift), 3), "axis_error_deg": round(float(axis), 3),
            "shared_axis_error_deg": round(float(learned[gauge, 0] - truth[gauge, 0]), 3),
            "shift_rms_px_unaligned": round(float(np.sqrt(np.mean(np.sum(
                (match_gauge(np.zeros_like(truth), truth, scenario.series.angles)[:, 2:] - truth[:, 2:]) ** 2,
                axis=1)))), 3)}


def run_inr(scenario, device, *, steps: int, probes: int = 5, **options) -> dict[str, Any]:
    """Train INR for ``steps``; SSIM probed at ``probes`` evaluations (probe time not counted)."""
    align = scenario.true_poses is not None
    cfg = InrConfig(steps=steps, device=str(device), align=align, eval_every=max(1, steps // probes), **options)
    curve: list[dict[str, float]] = []
    began, probing = time.perf_counter(), [0.0]

    def probe(step, info):
        if info["model"] is not None:
            t0 = time.perf_counter()
            curve.append({"step": step, "seconds": round(t0 - began - probing[0], 2),
                          **ssim_pair(info["model"].volume(), scenario.truth)})
            probing[0] += time.perf_counter() - t0

    result = train_inr(scenario.series, cfg, progress=False, callback=probe)
    seconds = time.perf_counter() - began - probing[0]
    epochs = steps * cfg.batch_size / scenario.series.images.size
    out = {"seconds": round(seconds, 2), "steps": result.steps, "epochs": round(epochs, 2),
           "best_step": result.best_step, "stopped_early": result.stopped_early,
           "seconds_per_epoch": round(seconds / epochs, 3), **ssim_pair(result.model.volume(), scenario.truth),
           "curve": curve, "config": {k: v for k, v in cfg.to_dict().items() if k in (
               "field", "lr", "batch_size", "align", "tv_weight", "holdout_fraction", "samples", "pose_lr")}}
    if align:
        out["poses"] = pose_errors(result.model, scenario)
    return out


def scenario_row(name: str, size: int, device, steps: int, options: dict[str, Any] | None = None,
                 sirt_true_poses: bool = True) -> dict[str, Any]:
    scenario = make(name, size)
    row = {"scenario": name, "description": scenario.description, "views": len(scenario.series),
           "size": size, "sirt": run_sirt(scenario, device)}
    if scenario.true_poses is not None and sirt_true_poses:
        row["sirt_true_poses"] = run_sirt(scenario, device, scenario.true_poses)
    row["inr"] = run_inr(scenario, device, steps=steps, **(options or {}))
    if options:
        row["inr_options"] = options
    return row


def parse_options(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs (values as JSON: true, 0.1, "grid") of InrConfig options."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value)
    return out


def axis_landscape(size: int, alphas: list[float]) -> list[dict[str, float]]:
    """Data misfit of the INR ray model with the TRUE volume and true shifts, against the shared tilt-axis angle.

    The field is the truth (trilinear interpolation of the phantom's voxels);
    only ``alpha`` (``z1 = z3``) varies. A minimum away from the truth's 10 deg
    means the simulated data themselves (object turned and images rotated by
    linear interpolation) pull the axis there; the depth of the minimum says how
    strongly the data determine the axis at this size.
    """
    import torch.nn.functional as F

    from tomotime.recon.inr import InrModel

    scenario = make("axis", size)
    series = scenario.series
    volume = torch.from_numpy(scenario.truth.astype(np.float32))[None, None]
    model = InrModel(InrConfig(device="cpu"), series.angles, series.times, scenario.truth.shape)

    class Voxels(torch.nn.Module):
        def forward(self, u):  # u in units of half the largest side: the box edges at +-shape/2
            g = u[:, :3] * model.length / (torch.tensor(scenario.truth.shape[::-1], dtype=u.dtype) / 2)
            return F.grid_sample(volume, g.reshape(1, 1, 1, -1, 3), mode="bilinear", padding_mode="zeros",
                                 align_corners=False).reshape(-1)

    model.field = Voxels()
    n, ny, nx = series.shape
    flat = torch.arange(n * ny * nx)
    data = torch.from_numpy(series.images.astype(np.float32)).reshape(-1)
    rows = []
    for alpha in alphas:
        poses = scenario.true_poses.copy()
        poses[:, :2] = alpha
        model.pose_init.copy_(torch.from_numpy(poses.astype(np.float32)))
        with torch.no_grad():
            pred = torch.cat([model(f // (ny * nx), (f // nx) % ny, f % nx, n_samples=2 * size)[0]
                              for f in flat.split(16384)]) * model.length
        rows.append({"alpha_deg": alpha, "mse": float(((pred - data) ** 2).mean()),
                     "relative_rmse": float(((pred - data) ** 2).mean().sqrt() / data.abs().max())})
        print(rows[-1], flush=True)
    return rows


def field_comparison(size: int, device, seconds: float) -> list[dict[str, Any]]:
    """Grid, the package-default H-Siren (3 x 256) and the paper's (4 x 512), each for ``seconds`` of training."""
    scenario = make("speed", size)
    rows = []
    for label, options in (("grid", {}), ("hsiren-3x256", {"field": "hsiren", "lr": 1e-4}),
                           ("hsiren-4x512 (paper)", {"field": "hsiren", "hidden_layers": 4, "width": 512,
                                                     "lr": 1e-4})):
        cfg = InrConfig(device=str(device), epochs=1000, lr_schedule="constant", patience=None, **options)
        began = time.perf_counter()

        def stop(step, info, began=began):
            if time.perf_counter() - began > seconds:
                raise KeyboardInterrupt

        state: dict[str, Any] = {}

        def keep(step, info):
            state["step"] = step
            stop(step, info)

        from tomotime.recon.inr.method import InrMethod
        from tomotime.training import train

        method = InrMethod(scenario.series, cfg.replace(eval_every=10 ** 9), device)
        model_holder: dict[str, Any] = {}
        original = method.build_model

        def build():
            model_holder["model"] = original()
            return model_holder["model"]

        method.build_model = build
        try:
            train(method, progress=False, callback=keep)
        except KeyboardInterrupt:
            pass
        model = model_holder["model"].eval()
        rows.append({"field": label, "seconds": round(time.perf_counter() - began, 1), "steps": state.get("step", 0),
                     "parameters": model.parameter_count(), **ssim_pair(model.volume(), scenario.truth)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--steps", type=int, default=1500, help="INR training steps (1,024 rays each)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fields", action="store_true", help="grid vs H-Siren at equal wall time instead")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time per field (--fields)")
    parser.add_argument("--options", nargs="*", default=[], help="InrConfig options key=value (JSON values), "
                        "e.g. align_angles=false; the rows are stored as 'SCENARIO [key=value ...]'")
    parser.add_argument("--no-sirt-true-poses", action="store_true", help="skip SIRT with the true poses")
    parser.add_argument("--tag", default="", help="appended to the row names (e.g. 'steps=5000')")
    parser.add_argument("--axis-landscape", nargs="*", type=float, default=None, metavar="DEG",
                        help="instead: the data misfit of the true volume against the shared axis angle")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.quick:
        args.size, args.steps, args.seconds = 16, 20, 5.0
    out = args.out or RESULTS / ("inr_fields_cpu.json" if args.fields else f"inr_{device.type}_{args.size}.json")
    out = out if out.is_absolute() else Path(__file__).resolve().parent / out
    report = json.loads(out.read_text()) if out.exists() and not args.quick else {}
    report["environment"] = environment(device, size=args.size)
    if args.axis_landscape is not None:
        report.setdefault("axis_landscape", {})[str(args.size)] = axis_landscape(
            args.size, args.axis_landscape or [9.0, 9.5, 10.0, 10.5, 11.0])
    elif args.fields:
        report["fields"] = field_comparison(args.size, device, args.seconds)
    else:
        rows = report.setdefault("scenarios", {})
        options = parse_options(args.options)
        for name in args.scenarios:
            words = [*args.options, *([args.tag] if args.tag else [])]
            key = name if not words else f"{name} [{' '.join(words)}]"
            rows[key] = scenario_row(name, args.size, device, args.steps, options,
                                     sirt_true_poses=not args.no_sirt_true_poses)
            r = rows[key]
            print(f"{name}: SIRT {r['sirt']['ssim']:.3f} INR {r['inr']['ssim']:.3f} "
                  f"({r['inr']['seconds']:.0f} s) {r['inr'].get('poses', '')}", flush=True)
    if not args.quick:
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
