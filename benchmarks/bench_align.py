"""Alignment methods on simulated misaligned series with known poses, and on the real NCEM series.

Run from the repository root::

    python benchmarks/bench_align.py            # -> results/align_cpu.json (about 5 minutes on one core)
    python benchmarks/bench_align.py --quick    # one case per phantom, smaller

* Simulated: a phantom (sea mine, Shepp-Logan) of 45 % of a 64^3 box, or six
  balls spread over +-20 % of the box ("particles", where the tilt axis can be
  told from the data), 41 views
  over -60..60 deg, every view shifted by up to 10 px (uniform) and the tilt
  axis turned in the image by up to 5 deg (one value per series), Gaussian noise
  of 2 % of the largest projection value. Per alignment pipeline: the shift
  error (RMS px, after removing the object translation the data cannot tell),
  the axis-angle error (deg) and the SSIM of SIRT (50 iterations, ``min_value=0``)
  of the images resampled with the estimate, after registering the volume to
  the phantom by a translation, against SIRT of the images resampled with the
  true poses ("perfect"). Targets: shifts <= 0.5 px RMS, axis <= 0.3 deg, SSIM
  within 0.02 of perfect.
* Real ``ncem_idp_fib_haadf`` (16 raw views): our shifts against the TomViz
  alignment shipped with it, RMS after removing the constant offset (target
  <= 1 px), with and without the 0 deg reference view.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from environment import environment
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from tomotime.data import TiltSeries
from tomotime.io.imod import read_tomviz_alignment, tomviz_poses
from tomotime.metrics.image import ssim
from tomotime.physics import VolumeProjector
from tomotime.preprocess.align import align_chain
from tomotime.preprocess.alignment import gauge_free_shift_error, resampled
from tomotime.sim.phantoms import make_phantom
from tomotime.solvers import reconstruct

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
RESULTS = Path(__file__).resolve().parent / "results"

PIPELINES = {
    "com": ["com"],
    "xcorr (sequential)": ["xcorr"],
    "xcorr (cumulative)": ["xcorr"],
    "xcorr + axis": ["xcorr", "axis"],
    "xcorr + projection": ["xcorr", "projection"],
    "xcorr + axis + projection": ["xcorr", "axis", "projection"],
    "xcorr + projection + axis + projection": ["xcorr", "projection", "axis", "projection"],
    "xcorr + projection + affine (DIP-STER)": ["xcorr", "projection", "affine"],
}


def _misalign(image, rotation, shift_y, shift_x):
    psi = np.deg2rad(rotation)
    m = np.array([[np.cos(psi), -np.sin(psi)], [np.sin(psi), np.cos(psi)]])
    centre = (np.array(image.shape) - 1) / 2
    return ndimage.affine_transform(image, m, offset=centre - m @ (centre + [shift_y, shift_x]), order=3)


def particles(size: int, rng: np.random.Generator, *, count: int = 6) -> np.ndarray:
    """``count`` balls (radius 5 % of the box) spread over +-20 % of the box: an object whose axis can be seen."""
    z, y, x = np.mgrid[:size, :size, :size] - (size - 1) / 2
    volume = np.zeros((size,) * 3, np.float32)
    for cz, cy, cx in rng.uniform(-0.2 * size, 0.2 * size, (count, 3)):
        volume[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 < (0.05 * size) ** 2] = 1.0
    return volume


def simulate(phantom: str, seed: int, *, size: int, n: int) -> tuple[np.ndarray, TiltSeries, np.ndarray]:
    rng = np.random.default_rng(seed)
    if phantom == "particles":
        volume = particles(size, rng)
    else:
        inner = make_phantom(phantom, int(0.45 * size), **({"seed": seed} if phantom == "sea-mine" else {}))
        volume = np.zeros((size,) * 3, np.float32)
        o = (size - inner.shape[0]) // 2
        volume[o:o + inner.shape[0], o:o + inner.shape[1], o:o + inner.shape[2]] = inner
    angles = np.linspace(-60, 60, n)
    with torch.no_grad():
        ideal = VolumeProjector(angles, volume.shape).forward(torch.from_numpy(volume)).numpy()
    poses = np.zeros((n, 4))
    poses[:, 0] = rng.uniform(-5, 5)
    poses[:, 2:] = rng.uniform(-10, 10, (n, 2))
    measured = np.stack([_misalign(im, poses[0, 0], p[2], p[3]) for im, p in zip(ideal, poses)])
    measured += 0.02 * ideal.max() * rng.standard_normal(measured.shape)
    return volume, TiltSeries(measured.astype(np.float32), angles), poses


def _sirt_ssim(series: TiltSeries, truth: np.ndarray, device: str) -> float:
    volume = reconstruct(resampled(series), method="sirt", iterations=50, min_value=0.0, device=device, progress=False)
    shift, _, _ = phase_cross_correlation(truth, volume, upsample_factor=4, normalization=None)
    volume = ndimage.shift(volume, shift, order=1)
    return ssim(volume, truth, data_range=float(truth.max() - truth.min()))


def simulated_case(phantom: str, seed: int, *, size: int, n: int, device: str) -> dict:
    truth, series, poses = simulate(phantom, seed, size=size, n=n)
    out = {"phantom": phantom, "seed": seed, "axis_rotation_deg": round(float(poses[0, 0]), 3),
           "max_shift_px": round(float(np.abs(poses[:, 2:]).max()), 2),
           "perfect": {"ssim": round(_sirt_ssim(replace(series, poses=poses), truth, device), 4)},
           "unaligned": {"ssim": round(_sirt_ssim(series, truth, device), 4),
                         "shift_rms_px": round(gauge_free_shift_error(np.zeros_like(poses), poses, series.angles)
                                               ["rms_px"], 3)}}
    for name, steps in PIPELINES.items():
        began = time.perf_counter()
        options = {"xcorr": {"mode": "cumulative" if "cumulative" in name else "sequential"},
                   "projection": {"device": device}, "affine": {"device": device}}
        aligned = align_chain(series, steps, options)
        seconds = time.perf_counter() - began
        entry = {"seconds": round(seconds, 2), "ssim": round(_sirt_ssim(aligned, truth, device), 4)}
        if aligned.poses is not None:
            error = gauge_free_shift_error(aligned.poses, poses, series.angles)
            entry["shift_rms_px"] = round(error["rms_px"], 3)
            entry["axis_error_deg"] = round(float(aligned.poses[0, 0] - poses[0, 0]), 3)
            entry["axis_estimated"] = "axis" in steps
        entry["ssim_below_perfect"] = round(out["perfect"]["ssim"] - entry["ssim"], 4)
        out[name] = entry
        print(phantom, seed, name, entry, flush=True)
    return out


def ncem() -> dict:
    folder = DATA / "ncem_idp_fib_haadf"
    angles = np.loadtxt(folder / "haadf_tiltseries.rawtlt")
    series = TiltSeries(np.load(folder / "haadf_tiltseries.npy"), angles, pixel_size=13.08)
    reference = tomviz_poses(read_tomviz_alignment(folder / "TomVizAlignments_21tilts.json")
                             [[int(round((a + 50) / 5)) for a in angles]])
    out = {"views": len(angles), "shape": list(series.shape), "tomviz_shift_px": reference[:, [3, 2]].tolist()}
    zero = int(np.argmin(np.abs(angles)))
    for name, steps, options in (("xcorr (sequential)", ["xcorr"], {}),
                                 ("xcorr (sequential, no stretch)", ["xcorr"], {"xcorr": {"stretch": False}}),
                                 ("xcorr (cumulative)", ["xcorr"], {"xcorr": {"mode": "cumulative"}})):
        began = time.perf_counter()
        poses = align_chain(series, steps, options).poses.astype(np.float64)
        entry = {"seconds": round(time.perf_counter() - began, 2), "shift_px": np.round(poses[:, [3, 2]], 2).tolist(),
                 "zero_view_jump_px": round(float(np.abs(poses[zero, 3] - np.delete(poses[:, 3], zero)).mean()), 2)}
        for label, keep in (("all_views", np.ones(len(angles), bool)), ("without_0deg_view", angles != 0)):
            diff = poses[keep][:, 2:] - reference[keep][:, 2:]
            diff -= diff.mean(axis=0)
            entry[label] = {"rms_px": round(float(np.sqrt(np.mean(np.sum(diff ** 2, axis=1)))), 3),
                            "rms_across_axis_px": round(float(np.sqrt(np.mean(diff[:, 1] ** 2))), 3),
                            "rms_along_axis_px": round(float(np.sqrt(np.mean(diff[:, 0] ** 2))), 3)}
        out[name] = entry
        print("ncem", name, {k: v for k, v in entry.items() if k != "shift_px"}, flush=True)
    out["tomviz_zero_view_jump_px"] = round(float(np.abs(reference[zero, 3] - np.delete(reference[:, 3], zero)).mean()),
                                            2)
    return out


def _summary(cases: list[dict]) -> dict:
    """Means over ``cases`` per pipeline (absolute axis error where the pipeline estimates it)."""
    summary = {}
    for name in PIPELINES:
        rows = [case[name] for case in cases]
        summary[name] = {k: round(float(np.mean([r[k] for r in rows if k in r])), 3)
                         for k in ("shift_rms_px", "ssim_below_perfect", "seconds") if any(k in r for r in rows)}
        if all(r.get("axis_estimated") for r in rows):
            errors = [abs(r["axis_error_deg"]) for r in rows]
            summary[name]["axis_error_deg_mean_abs"] = round(float(np.mean(errors)), 3)
            summary[name]["axis_error_deg_max_abs"] = round(float(np.max(errors)), 3)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed per phantom, 48 px, 31 views")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="device of the reconstructions: cpu or cuda "
                        "(writes results/align_gpu.json; the size grows to 128 px, 61 views)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    size, n, seeds = (48, 31, 1) if args.quick else (64, 41, args.seeds)
    if args.device != "cpu":
        size, n = 128, 61
    report = {"environment": environment(torch.device(args.device)), "size": size, "views": n, "simulated": []}
    for k, phantom in enumerate(("sea-mine", "shepp-logan", "particles")):
        for seed in range(seeds):
            report["simulated"].append(simulated_case(phantom, 10 * k + seed, size=size, n=n, device=args.device))
    report["summary"] = _summary(report["simulated"])
    report["summary_by_phantom"] = {p: _summary([c for c in report["simulated"] if c["phantom"] == p])
                                    for p in ("sea-mine", "shepp-logan", "particles")}
    summary = report["summary"]
    if DATA.is_dir():
        report["ncem_idp_fib_haadf"] = ncem()
    out = RESULTS / ("align_cpu.json" if args.device == "cpu" else "align_gpu.json")
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
