"""INR with pose refinement on the real tilt series next to the repository (skipped when absent).

Run from the repository root::

    python benchmarks/bench_inr_real.py --steps 1000  # both data sets -> results/inr_real_cpu.json + figures
    python benchmarks/bench_inr_real.py --analyse     # the TomViz comparison of the saved run again

* ``ncem_idp_fib_haadf`` (16 views, -40..35 deg, raw and unaligned): binned
  ``--bin`` times, background (1st percentile) removed; INR with ``--align``.
  The learned shifts (in original pixels) are compared with the TomViz
  alignment shipped beside the data (``TomVizAlignments_21tilts.json``, entry
  ``i`` is tilt ``-50 + 5 i``, components ``(x, y)``), see :func:`compare_with_tomviz`.
* ``etspy_needle_haadf`` (91 views, -90..90 deg, 64 px): the tilt axis lies
  along image x, so images are transposed to the project's convention (tilt
  axis = rows). INR (with ``--align``) against SIRT (100 iterations,
  ``min_value=0``): per-view reprojection error and a figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from environment import environment
from skimage.transform import downscale_local_mean

from tomotime.data import TiltSeries
from tomotime.io.imod import tomviz_poses
from tomotime.physics import VolumeProjector
from tomotime.recon.inr import InrConfig, learned_poses, reprojection_errors, train_inr
from tomotime.recon.inr.outputs import plot_reprojection
from tomotime.solvers import reconstruct

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
RESULTS = Path(__file__).resolve().parent / "results"


def _background_free(images: np.ndarray) -> np.ndarray:
    images = images.astype(np.float32)
    return np.clip(images - np.percentile(images, 1), 0, None)


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(a ** 2, axis=1))))


def ncem(steps: int, binning: int, **options) -> dict:
    folder = DATA / "ncem_idp_fib_haadf"
    raw = np.load(folder / "haadf_tiltseries.npy")
    angles = np.loadtxt(folder / "haadf_tiltseries.rawtlt")
    images = _background_free(downscale_local_mean(raw.astype(np.float32), (1, binning, binning)))
    series = TiltSeries(images, angles, pixel_size=13.08 * binning)
    began = time.perf_counter()
    result = train_inr(series, InrConfig(steps=steps, align=True, device="cpu", **options), progress=False)
    seconds = time.perf_counter() - began
    poses = learned_poses(result.model)
    tomviz = np.asarray(json.loads((folder / "TomVizAlignments_21tilts.json").read_text()), np.float64)
    ref = tomviz[[int(round((a + 50) / 5)) for a in angles]]
    ours = poses[:, [3, 2]] * binning  # (dx, dy) in original pixels
    out = {"views": len(angles), "binning": binning, "shape": list(series.shape), "seconds": round(seconds, 1),
           "steps": result.steps, "learned_shifts_px": np.round(ours, 3).tolist(),
           "learned_z1_deg": np.round(poses[:, 0], 3).tolist(), "learned_z3_deg": np.round(poses[:, 1], 3).tolist(),
           "tomviz_shifts_px": ref.tolist()}
    out["agreement"] = compare_with_tomviz(ours, tomviz_shifts(ref), angles)
    return out


def tomviz_shifts(offsets: np.ndarray) -> np.ndarray:
    """TomViz's aligning offsets ``(N, 2)`` as measured shifts ``(dx, dy)`` (signs of :func:`tomviz_poses`)."""
    return tomviz_poses(offsets)[:, [3, 2]]


def compare_with_tomviz(ours: np.ndarray, tomviz: np.ndarray, angles: np.ndarray) -> dict:
    """RMS difference (original px) per direction: along the tilt axis (our dy against TomViz's, as a
    measured shift) and across it (dx), after removing the constant offset; across the axis
    also after removing the best object translation ``a cos + b sin``; each with and without TomViz's
    reference view (0 deg, stored as (0, 0) although its neighbours sit 9-16 px away)."""
    rms = lambda v: round(float(np.sqrt(np.mean(v ** 2))), 3)  # noqa: E731
    out = {}
    for label, keep in (("all_views", np.ones(len(angles), bool)), ("without_reference_view", angles != 0)):
        dy = ours[keep, 1] - tomviz[keep, 1]
        dx = ours[keep, 0] - tomviz[keep, 0]
        theta = np.deg2rad(angles[keep])
        basis = np.stack([np.cos(theta), np.sin(theta)], 1)
        out[label] = {"along_axis_rms_px": rms(dy - dy.mean()), "across_axis_rms_px": rms(dx - dx.mean()),
                      "across_axis_rms_after_translation_px": rms(
                          dx - basis @ np.linalg.lstsq(basis, dx, rcond=None)[0])}
    return out


def _reprojection_of(volume: np.ndarray, series: TiltSeries) -> list[dict]:
    with torch.no_grad():
        pred = VolumeProjector(series.angles, volume.shape).forward(torch.from_numpy(volume)).numpy()
    span = float(series.images.max() - series.images.min())
    return [{"view": i, "angle_deg": float(a), "rmse": float(np.sqrt(np.mean((m - p) ** 2))),
             "rmse_percent": 100 * float(np.sqrt(np.mean((m - p) ** 2))) / span}
            for i, (a, m, p) in enumerate(zip(series.angles, series.images, pred))]


def needle(steps: int) -> dict:
    folder = DATA / "etspy_needle_haadf"
    raw = np.load(folder / "tiltseries.npy").transpose(0, 2, 1)  # tilt axis (image x) onto the rows
    angles = np.loadtxt(folder / "tiltseries.rawtlt")
    series = TiltSeries(_background_free(raw), angles, pixel_size=17.995, allow_wide_angles=True)
    began = time.perf_counter()
    sirt = reconstruct(series, method="sirt", iterations=100, min_value=0.0, device="cpu", progress=False)
    sirt_seconds = time.perf_counter() - began
    began = time.perf_counter()
    result = train_inr(series, InrConfig(steps=steps, align=True, device="cpu"), progress=False)
    seconds = time.perf_counter() - began
    ours, theirs = reprojection_errors(result.model, series), _reprojection_of(sirt, series)
    plot_reprojection(RESULTS / "inr_real_needle_reprojection.png", ours, reference=theirs,
                      reference_label="SIRT (100 it.)", overwrite=True)
    _sections(RESULTS / "inr_real_needle_sections.png", {"SIRT": sirt, "INR": result.model.volume()})
    mean = lambda rows: round(float(np.mean([r["rmse_percent"] for r in rows])), 3)  # noqa: E731
    return {"views": len(angles), "shape": list(series.shape), "inr_seconds": round(seconds, 1),
            "sirt_seconds": round(sirt_seconds, 1), "steps": result.steps,
            "reprojection_rmse_percent": {"inr": mean(ours), "sirt": mean(theirs)},
            "learned_shift_rms_px": round(_rms(learned_poses(result.model)[:, 2:]), 3)}


def _sections(path: Path, volumes: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(volumes), 3, figsize=(8, 2.8 * len(volumes)), squeeze=False)
    for r, (label, v) in enumerate(volumes.items()):
        v = v / max(float(np.percentile(v, 99.9)), 1e-12)
        for c, (section, name) in enumerate(((v[v.shape[0] // 2], "XY"), (v[:, v.shape[1] // 2], "XZ"),
                                             (v[:, :, v.shape[2] // 2], "YZ"))):
            axes[r, c].imshow(section, cmap="gray", vmin=0, vmax=1)
            axes[r, c].set(xticks=[], yticks=[], title=f"{label} {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reanalyse(report: dict) -> None:
    """Recompute the TomViz agreement of a saved run (``--analyse``) without training again."""
    entry = report["ncem_idp_fib_haadf"]
    angles = np.loadtxt(DATA / "ncem_idp_fib_haadf" / "haadf_tiltseries.rawtlt")
    entry["agreement"] = compare_with_tomviz(np.asarray(entry["learned_shifts_px"]),
                                             tomviz_shifts(np.asarray(entry["tomviz_shifts_px"])), angles)
    for key in [k for k in entry if k.startswith("tomviz_as_")]:
        del entry[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--bin", type=int, default=4)
    parser.add_argument("--only", choices=("ncem", "needle"), default=None)
    parser.add_argument("--analyse", action="store_true", help="recompute the TomViz agreement of the saved run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not DATA.is_dir():
        print(f"real data not found at {DATA}; nothing to do")
        return
    out = RESULTS / "inr_real_cpu.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    if args.analyse:
        reanalyse(report)
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report["ncem_idp_fib_haadf"]["agreement"], indent=1))
        return
    report["environment"] = environment(torch.device("cpu"))
    if args.only in (None, "ncem"):
        report["ncem_idp_fib_haadf"] = ncem(args.steps, args.bin)
        print(json.dumps({k: v for k, v in report["ncem_idp_fib_haadf"].items() if "shifts" not in k}), flush=True)
    if args.only in (None, "needle"):
        report["etspy_needle_haadf"] = needle(args.steps)
        print(report["etspy_needle_haadf"], flush=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
