"""INR tilt-axis recovery: where the learned axis starts (0 or the common-line estimate), side by side in one run.

Run from the repository root (one thread; about 4-8 min per setting at 48^3)::

    python benchmarks/bench_inr_axis.py --size 48 --seed 0 --axis-error 10
    python benchmarks/bench_inr_axis.py --size 48 --seed 1 --axis-error -7
    python benchmarks/bench_inr_axis.py --size 48 --settings common-lines common-lines+hold  # a subset
    python benchmarks/bench_inr_axis.py --device cuda --size 128 --steps 4000                  # GPU, not run yet

Scenario: ``axis`` of ``inr_scenarios.py`` (sea mine, +-70 deg / 2 deg, the
tilt axis turned by ``--axis-error`` degrees, random shifts of 2 px RMS) with
the phantom, shifts and noise drawn from ``--seed``. Each setting is INR
``--align`` (feature grid, default options) for ``--steps`` steps, changed as in
:data:`SETTINGS`; the pose errors are those of ``bench_inr.py`` (after removing
the unobservable object translation) and the trajectory of the shared axis is
recorded at every evaluation; "truth (diagnostic)" starts the axis at the
true angle, to see where the joint fit takes it from there. Results accumulate in
``results/inr_axis_cpu.json`` under ``"SIZE/seed=S/axis=A"`` and the setting's name.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from bench_inr import pose_errors, ssim_pair
from environment import environment
from inr_scenarios import make

from tomotime.device import resolve_device
from tomotime.recon.inr import InrConfig, train_inr
from tomotime.recon.inr.pose_start import common_line_axis
from tomotime.recon.inr.method import InrMethod

RESULTS = Path(__file__).resolve().parent / "results"

#: name -> InrConfig changes (every axis option explicit, so that a later default does not change a row).
#: "paper pose model": the paper's (per-view z1, z3 and shifts, no shared axis, nothing pinned); "zero": the
#: earlier default start; every setting but the last starts the shifts at 0 (``shift_start="zero"``, the
#: default), the last at the cross-correlation alignment.
SETTINGS: dict[str, dict[str, Any]] = {
    "paper pose model": {"align_angles": True, "shared_axis": False, "pin_object": False, "axis_start": "zero",
                         "axis_hold": 0.0, "shift_start": "zero"},
    "zero (per-view angles)": {"align_angles": True, "axis_start": "zero", "axis_hold": 0.0, "shift_start": "zero"},
    "zero": {"align_angles": False, "axis_start": "zero", "axis_hold": 0.0, "shift_start": "zero"},
    "common-lines": {"align_angles": False, "axis_start": "common-lines", "axis_hold": 0.0, "shift_start": "zero"},
    "common-lines (per-view angles)": {"align_angles": True, "axis_start": "common-lines", "axis_hold": 0.0,
                                       "shift_start": "zero"},
    "common-lines+hold": {"align_angles": False, "axis_start": "common-lines", "axis_hold": 0.2,
                          "shift_start": "zero"},
    "common-lines+hold (per-view angles)": {"align_angles": True, "axis_start": "common-lines", "axis_hold": 0.2,
                                            "shift_start": "zero"},
    "truth (diagnostic)": {"align_angles": False, "axis_start": "zero", "axis_hold": 0.0, "shift_start": "zero"},
    "xcorr shifts+common-lines+hold": {"align_angles": False, "axis_start": "common-lines", "axis_hold": 0.2,
                                       "shift_start": "xcorr"},
}
#: Settings whose shared axis starts at the true angle (a diagnostic: what the joint fit does from there).
AT_TRUTH = ("truth (diagnostic)",)
DEFAULT_SETTINGS = ("zero", "common-lines+hold", "xcorr shifts+common-lines+hold")


def shared_axis_error(model, truth: float) -> float | None:
    """The shared axis angle minus the truth, degrees (None without a shared axis)."""
    return None if model.axis_delta is None else round(float(model.axis_delta.detach()) - truth, 3)


def run_setting(scenario, truth: float, device, steps: int, changes: dict[str, Any], *,
                at_truth: bool = False) -> dict[str, Any]:
    cfg = InrConfig(steps=steps, device=str(device), align=True, eval_every=max(1, steps // 10), **changes)
    trajectory: list[list[float]] = []

    def record(step, info):
        if info["model"] is not None and info["model"].axis_delta is not None:
            trajectory.append([step, shared_axis_error(info["model"], truth)])

    began = time.perf_counter()
    build = InrMethod.build_model
    if at_truth:
        def build_at_truth(self):
            model = build(self)
            with torch.no_grad():
                model.axis_delta.fill_(truth)
            return model

        InrMethod.build_model = build_at_truth
    try:
        result = train_inr(scenario.series, cfg, progress=False, callback=record)
    finally:
        InrMethod.build_model = build
    seconds = time.perf_counter() - began
    return {"changes": changes, "seconds": round(seconds, 1), "steps": result.steps,
            "axis_start_deg": result.run["derived"]["axis_start_deg"],
            **ssim_pair(result.model.volume(), scenario.truth), "poses": pose_errors(result.model, scenario),
            "axis_trajectory": trajectory}


def real_ncem(report: dict[str, Any], steps: int) -> None:
    """The NCEM series of ``bench_inr_real.py`` with the default options, and with the shifts started at xcorr."""
    import warnings

    import bench_inr_real

    for key, options in (("real/ncem_idp_fib_haadf", {}),
                         ("real/ncem_idp_fib_haadf/shift_start=xcorr", {"shift_start": "xcorr"})):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            row = bench_inr_real.ncem(steps, 4, **options)
        report[key] = {
            "environment": environment(torch.device("cpu"), steps=steps), "options": options,
            "warnings": sorted({str(w.message) for w in caught if "tilt axis" in str(w.message)}),
            **{k: v for k, v in row.items() if "shifts" not in k}}
        print(key, json.dumps(report[key]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--axis-error", type=float, default=10.0, help="tilt-axis turn of the scenario, degrees")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--ncem", type=int, default=None, metavar="STEPS",
                        help="instead: the real NCEM series with the default options (bench_inr_real.ncem)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = args.out or RESULTS / f"inr_axis_{device.type}.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    if args.ncem:
        real_ncem(report, args.ncem)
        out.write_text(json.dumps(report, indent=1) + "\n")
        return
    scenario = make("axis", args.size, seed=args.seed, axis_error=args.axis_error)
    key = f"{args.size}/seed={args.seed}/axis={args.axis_error:g}"
    began = time.perf_counter()
    start = common_line_axis(scenario.series)
    entry = report.setdefault(key, {})
    entry["common_line_start"] = {"error_deg": round(start - args.axis_error, 3),
                                  "seconds": round(time.perf_counter() - began, 1)}
    entry["environment"] = environment(device, size=args.size, steps=args.steps)
    print(key, "common-line start error", entry["common_line_start"], flush=True)
    for name in args.settings:
        row = run_setting(scenario, args.axis_error, device, args.steps, SETTINGS[name], at_truth=name in AT_TRUTH)
        entry.setdefault("settings", {})[name] = row
        print(f"{key} {name}: axis {row['poses']['axis_error_deg']:+.3f} deg (shared "
              f"{row['poses']['shared_axis_error_deg']:+.3f}), "
              f"shifts {row['poses']['shift_rms_px']:.3f} px, SSIM {row['ssim']:.3f}, {row['seconds']:.0f} s",
              flush=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
