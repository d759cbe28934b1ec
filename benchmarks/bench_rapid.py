"""Rapid (five-second) STEM tomography on the simulated experiment: filters, corrections, reconstruction.

Parts (each about 2-5 minutes on a shared 2-core CPU, one torch thread)::

    python benchmarks/bench_rapid.py --part filters    # Tables 1-3: U-Net vs BM3D / best classical filter
    python benchmarks/bench_rapid.py --part recon      # distortion, tilt angles, Delta G, time-lag-aware SIRT
    python benchmarks/bench_rapid.py --part selfsup    # Noise2Noise (no averages) vs the supervised U-Net
    python benchmarks/bench_rapid.py --part selfsup --candidates neighbor2neighbor noise2noise-paper-norm udvd-3x3
    python benchmarks/bench_rapid.py --part recon --field 256 --rows 32 --seeds 11   # wider field (recon_field256)
    python benchmarks/bench_rapid.py --part angles --field 256 --rows 32 --seeds 11 12 13 14 15   # tracking only
    python benchmarks/bench_rapid.py --device cuda     # all parts on a GPU (results/rapid_gpu.json)

Each part updates its section of ``results/rapid_<cpu|gpu>.json``; ``filters``
also saves the trained U-Net (``results/rapid_unet.pt``, used by the other
parts) and ``recon`` draws ``results/rapid_cpu.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environment import environment  # noqa: E402

from tomotime.denoise import (  # noqa: E402
    Neighbor2NeighborConfig, UdvdConfig, apply_denoiser, train_neighbor2neighbor, train_udvd)
from tomotime.device import resolve_device  # noqa: E402
from tomotime.errors import InputError  # noqa: E402
from tomotime.metrics.image import psnr  # noqa: E402
from tomotime.metrics.unsupervised import umse  # noqa: E402
from tomotime.rapid.classical import best_classical, bm3d_available, classical_filter  # noqa: E402
from tomotime.rapid.dislocations import binarise_series, centre_differences  # noqa: E402
from tomotime.rapid.distortion import correct_distortion, estimate_distortion  # noqa: E402
from tomotime.rapid.lines import line_measures  # noqa: E402
from tomotime.rapid.noise2noise import train_filter_noise2noise  # noqa: E402
from tomotime.rapid.reconstruct import reconstruct_rapid  # noqa: E402
from tomotime.physics.row_angles import row_angles_from_frames  # noqa: E402
from tomotime.rapid.simulate import (  # noqa: E402
    NoiseModel, ScanDistortion, Timing, calibration_pair, fast_scan_noise, filter_pairs, simulate_conventional,
    simulate_rapid)
from tomotime.rapid.specimen import dislocation_specimen  # noqa: E402
from tomotime.rapid.tilt_tracking import fit_angles, track_angles  # noqa: E402
from tomotime.rapid.unet_filter import (UnetFilterConfig, apply_filter, load_filter, paper_normalise,  # noqa: E402
                                        save_filter, train_filter)

RESULTS = Path(__file__).resolve().parent / "results"
TILTS = (0.0, 20.0, 40.0, 60.0, 70.0)


def _norm(image: np.ndarray) -> np.ndarray:
    return paper_normalise(image)[0]


def _scores(filtered_norm: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    ref = _norm(reference)
    out = {"psnr_db": psnr(filtered_norm, ref, data_range=1.0)}
    out.update(line_measures(filtered_norm, ref))
    return out


def _summarise(rows: list[dict], tilts: np.ndarray) -> dict[str, dict]:
    table = {}
    for tilt in sorted(set(tilts.tolist())):
        sel = [r for r, t in zip(rows, tilts) if t == tilt]
        table[f"{tilt:g}"] = {k: [float(np.mean([r[k] for r in sel])), float(np.std([r[k] for r in sel]))]
                              for k in ("psnr_db", "relative_width", "relative_intensity")}
    return table


def part_filters(args, device) -> dict:
    clock = time.perf_counter()
    train = filter_pairs(args.train_fields, TILTS, seed=0)
    test = filter_pairs(args.test_fields, TILTS, seed=1000)
    t_data = time.perf_counter() - clock
    config = _unet_config(args, device)
    clock = time.perf_counter()
    result = train_filter(train["noisy"], train["reference"], config, progress=False)
    t_train = time.perf_counter() - clock
    save_filter(RESULTS / "rapid_unet.pt", result.model, overwrite=True, extra={"benchmark": "bench_rapid.py"})
    tune = slice(0, None, max(1, len(train["noisy"]) // 10))
    clock = time.perf_counter()
    names = ["gaussian", "nl_means", "tv", "wavelet"]
    name, strength, tuning = best_classical(train["noisy"][tune], train["reference"][tune], names=names)
    t_tune = time.perf_counter() - clock
    unet_out = apply_filter(result.model, test["noisy"])
    rows = {"unet": [], "classical": [], "noisy": []}
    if bm3d_available():
        rows["bm3d"] = []
        few = slice(0, None, max(1, len(train["noisy"]) // 5))
        bm3d_strength = max((1.0, 2.0), key=lambda s: np.mean(
            [psnr(_norm(classical_filter(a, "bm3d", s)), _norm(b), data_range=1.0)
             for a, b in zip(train["noisy"][few], train["reference"][few])]))
    for k in range(len(test["noisy"])):
        noisy, ref = test["noisy"][k], test["reference"][k]
        rows["unet"].append(_scores(unet_out[k], ref))
        rows["classical"].append(_scores(_norm(classical_filter(noisy, name, strength)), ref))
        rows["noisy"].append({"psnr_db": psnr(_norm(noisy), _norm(ref), data_range=1.0),
                              "relative_width": float("nan"), "relative_intensity": float("nan")})
        if "bm3d" in rows:
            rows["bm3d"].append(_scores(_norm(classical_filter(noisy, "bm3d", bm3d_strength)), ref))
    tables = {m: _summarise(r, test["tilts"]) for m, r in rows.items()}
    return {
        "setup": {"frame_px": list(train["noisy"].shape[1:]), "train_pairs": len(train["noisy"]),
                  "test_fields_per_tilt": args.test_fields, "tilts": TILTS, "noise": NoiseModel().__dict__,
                  "reference": "average of 50 fast frames", "unet": {"width": args.width, "depth": 3, "patch": 64,
                                                                   "steps": result.steps,
                                                                   "best_step": result.best_step},
                  "classical_choice": f"{name} (strength {strength})", "classical_tuning_psnr_db": tuning,
                  "bm3d_strength": bm3d_strength if "bm3d" in rows else None,
                  "metrics": "PSNR of min-shifted/max-normalised images against the normalised 50-frame average; "
                             "relative width/intensity: FWHM/depth of automatic line profiles over the reference's"},
        "tables": tables,
        "seconds": {"data": round(t_data, 1), "unet_training": round(t_train, 1), "classical_tuning": round(t_tune, 1)},
    }


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(np.asarray(a) ** 2)))


TIMINGS = {"paper_timing": Timing(), "slow_scan": Timing(scan_time=0.07, store_time=0.0)}


class _Setup:
    """The simulated field of ``recon`` and ``angles``: specimen size, densities, distortion calibration."""

    def __init__(self, args) -> None:
        rows, width = args.rows, args.field
        self.args = args
        self.vol_shape = (32 if width <= 64 else 48, rows, width)
        area = rows * width / (48 * 64)  # line and marker densities of the 48 x 64 field at any size
        self.n_lines, self.n_particles = max(1, round(6 * area)), max(4, round(32 * area))
        self.warp = ScanDistortion()
        self.field = estimate_distortion(*calibration_pair((rows, width), distortion=self.warp, seed=6),
                                         window=16, step=4)

    def track(self, model, timing: Timing, seed: int) -> dict:
        """Specimen, rapid series, U-Net-filtered and undistorted frames, tracked angles and their warnings."""
        specimen = dislocation_specimen(self.vol_shape, seed=seed, n_lines=self.n_lines,
                                        n_particles=self.n_particles, **self.args.specimen)
        rapid = simulate_rapid(specimen, timing=timing, distortion=self.warp, seed=seed)
        filtered = apply_filter(model, rapid.images)
        corrected = correct_distortion(filtered, self.field)
        fraction = timing.scan_fraction
        clock = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracked = track_angles(corrected, rapid.nominal_angles, scan_fraction=fraction)
        return {"specimen": specimen, "rapid": rapid, "filtered": filtered, "corrected": corrected,
                "tracked": tracked, "fraction": fraction, "warnings": caught,
                "tracking_seconds": round(time.perf_counter() - clock, 1)}


def part_recon(args, device, model) -> dict:
    out: dict = {}
    # Distortion calibration on a cross-grating, 128 x 128 and the series' frame size.
    warp = ScanDistortion()
    for shape in ((128, 128), (48, 64)):
        fast, slow = calibration_pair(shape, distortion=warp, seed=5)
        big = min(shape) >= 64
        field = estimate_distortion(fast, slow, window=24 if big else 16, step=6 if big else 4)
        true = warp.correction_field(shape)
        ok = np.isfinite(true)
        out[f"distortion_{shape[0]}x{shape[1]}"] = {"residual_rms_px": _rms((field - true)[ok]),
                                                    "uncorrected_rms_px": _rms(true[ok]),
                                                    "residual_max_px": float(np.abs(field - true)[ok].max())}
    setup = _Setup(args)
    vol_shape = setup.vol_shape
    cache = int(args.cache_gb * (1 << 30))  # the per-row projector's ray weights: 2.6 GB at 256 px
    for label in args.timings:
        timing = TIMINGS[label]
        per_seed = []
        for seed in args.seeds:
            run = setup.track(model, timing, seed)
            specimen, rapid, filtered, corrected, tracked = (run[k] for k in (
                "specimen", "rapid", "filtered", "corrected", "tracked"))
            fraction = run["fraction"]
            conv = simulate_conventional(specimen, seed=seed + 100)
            oracle = _oracle_track_fit(specimen, rapid, fraction, seed)
            binary = binarise_series(corrected)
            reference = reconstruct_rapid(binarise_series(conv.images), conv.nominal_angles, thickness=vol_shape[0])
            recons = {
                "nominal_uniform": rapid.nominal_angles,
                "tracked_uniform": tracked.angles,
                "tracked_row_lag": row_angles_from_frames(tracked.angles, vol_shape[1], fraction),
                "true_uniform": rapid.frame_angles,
                "true_row_lag": rapid.row_angles,
            }
            dg, volumes = {}, {}
            for k, a in recons.items():
                volumes[k] = reconstruct_rapid(binary, a, thickness=vol_shape[0], cache_bytes=cache)
                try:
                    dg[k] = centre_differences(volumes[k], reference)
                except InputError as exc:
                    dg[k] = {"error": str(exc)}
            # How far the per-row model moves the line centres (the curl it removes), same data and angles.
            dg["lag_effect_true_uniform_vs_row_lag"] = centre_differences(volumes["true_uniform"],
                                                                          volumes["true_row_lag"])
            span = rapid.row_angles[:, -1] - rapid.row_angles[:, 0]
            per_seed.append({
                "seed": seed, "frames": int(rapid.images.shape[0]),
                # The curl a per-frame model leaves: the turn between a frame's first and last row.
                "row_angle_span_deg": {"median": float(np.median(span)), "max": float(np.max(np.abs(span)))},
                "angles": (_angle_scores(tracked, rapid, run["warnings"])
                           | {"fit_of_true_feature_tracks_rms_deg": oracle}),
                "delta_g_px": dg,
            })
            print(f"recon {label} seed {seed}: " + ", ".join(
                f"{k} dGz {v['dGz']:.3f} twist {v['twist_deg']:+.2f}" for k, v in dg.items() if "dGz" in v), flush=True)
            if label == "paper_timing" and seed == args.seeds[0] and args.field == 64:
                _figure(rapid, filtered, corrected, tracked, args)
        out[label] = {"lag_per_frame_deg": timing.lag_per_frame, "scan_fraction": timing.scan_fraction,
                      "seeds": per_seed}
    out["setup"] = {"volume": vol_shape, "field_px": vol_shape[2], "n_lines": setup.n_lines,
                    "n_particles": setup.n_particles,
                    "specimen": args.specimen, "seeds": args.seeds, "sirt_iterations": 50,
                    "pipeline": "U-Net filter -> distortion correction -> angle tracking -> binarisation -> SIRT; "
                                "reference: conventional series (2-degree steps, 53x dose) binarised -> SIRT"}
    return out


def part_angles(args, device, model) -> dict:
    """Tilt-angle tracking alone (no reconstruction), so that wide fields fit a CPU run."""
    setup = _Setup(args)
    out: dict = {"setup": {"volume": setup.vol_shape, "n_lines": setup.n_lines, "n_particles": setup.n_particles,
                           "specimen": args.specimen, "seeds": args.seeds,
                           "pipeline": "U-Net filter -> distortion correction -> angle tracking"}}
    for label in args.timings:
        timing = TIMINGS[label]
        per_seed = []
        for seed in args.seeds:
            run = setup.track(model, timing, seed)
            oracle = _oracle_track_fit(run["specimen"], run["rapid"], run["fraction"], seed)
            per_seed.append(_angle_scores(run["tracked"], run["rapid"], run["warnings"])
                            | {"seed": seed, "tracking_seconds": run["tracking_seconds"],
                               "fit_of_true_feature_tracks_rms_deg": oracle})
            print(f"angles {label} seed {seed}: {per_seed[-1]['tracked_rms_deg']:.3f} deg", flush=True)
        errors = np.array([s["tracked_rms_deg"] for s in per_seed])
        out[label] = {"seeds": per_seed, "tracked_rms_deg_mean": float(errors.mean()),
                      "tracked_rms_deg_max": float(errors.max()),
                      "nominal_rms_deg_mean": float(np.mean([s["nominal_rms_deg"] for s in per_seed]))}
    return out


def _angle_scores(tracked, rapid, caught) -> dict:
    return {"tracked_rms_deg": _rms(tracked.angles - rapid.frame_angles),
            "nominal_rms_deg": _rms(rapid.nominal_angles - rapid.frame_angles),
            "features": tracked.n_tracks, "fallback": tracked.fallback,
            "residual_px": tracked.residual_px, "blob_scale_px": tracked.sigma,
            "angle_sd_rms_deg": None if tracked.angle_sd is None else _rms(tracked.angle_sd),
            "warnings": [str(w.message) for w in caught]}


def _oracle_track_fit(specimen, rapid, fraction: float, seed: int) -> float:
    """Angle RMS error of the angle fit alone, on the true marker columns (0.3 px noise, per-row lag)."""
    rng = np.random.default_rng(seed)
    z, y, x = specimen.particle_positions.T
    ny, nx = rapid.images.shape[1:]
    rows = np.clip(np.round(y + (ny - 1) / 2).astype(int), 0, ny - 1)
    theta = np.radians(rapid.row_angles[:, rows].T)  # (P, N)
    cols = x[:, None] * np.cos(theta) - z[:, None] * np.sin(theta) + (nx - 1) / 2
    cols = cols + rng.normal(0, 0.3, cols.shape)
    cols[(cols < 3) | (cols > nx - 4)] = np.nan
    tracks = np.stack([np.broadcast_to((y + (ny - 1) / 2)[:, None], cols.shape), cols], axis=-1)
    fit = fit_angles(tracks, rapid.nominal_angles, nx, ny, scan_fraction=fraction)
    return _rms(fit.angles - rapid.frame_angles)


def _figure(rapid, filtered, corrected, tracked, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i = int(np.argmin(np.abs(rapid.nominal_angles - 40)))
    fig, ax = plt.subplots(1, 4, figsize=(14, 3.2))
    for a, img, title in zip(ax[:3], (rapid.images[i], filtered[i], corrected[i]),
                             ("rapid frame (noisy, distorted)", "U-Net filtered", "distortion corrected")):
        a.imshow(img, cmap="gray")
        a.set_title(title, fontsize=9)
        a.axis("off")
    ax[3].plot(rapid.times, rapid.nominal_angles - rapid.frame_angles, label="nominal - true")
    ax[3].plot(rapid.times, tracked.angles - rapid.frame_angles, label="tracked - true")
    ax[3].set_xlabel("time (s)")
    ax[3].set_ylabel("angle error (deg)")
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"rapid_{args.tag}{'_quick' if args.quick else ''}.png", dpi=110)
    plt.close(fig)


SELFSUP = ("noise2noise", "noise2noise-paper-norm", "neighbor2neighbor", "blindspot-row", "udvd-3x3")


def _unet_config(args, device, **changes) -> UnetFilterConfig:
    """The U-Net of the filters part (the self-supervised candidates change only their target)."""
    return UnetFilterConfig(**{"steps": args.unet_steps, "width": args.width, "depth": 3, "eval_every": 50,
                               "device": str(device), **changes})


def _mean_scores(rows: list[dict]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_db", "relative_width", "relative_intensity")}


def _unit_free_psnr(filtered: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) after the least-squares affine map of ``filtered`` onto the normalised reference.

    A diagnostic beside the paper's PSNR: it ignores in which units (offset,
    scale) a filter returns the image and scores only its shape.
    """
    ref = _norm(reference)
    coef = np.linalg.lstsq(np.column_stack([filtered.ravel(), np.ones(filtered.size)]), ref.ravel(), rcond=None)[0]
    return psnr(filtered * coef[0] + coef[1], ref, data_range=1.0)


def _test_scores(filtered_norm: np.ndarray, test: dict) -> dict:
    """Tables 1-3 per tilt, the mean over all test fields, and reference-free uMSE next to the true MSE.

    uMSE (:func:`tomotime.metrics.unsupervised.umse`) takes three further
    independent noisy frames of each test field as references; the filtered
    frame is mapped to the frame's units by a least-squares affine fit to its
    own noisy input. The true MSE is against the clean image in the same units.
    """
    rows = [_scores(f, r) for f, r in zip(filtered_norm, test["reference"])]
    u, true = [], []
    for f, noisy, refs, clean in zip(filtered_norm, test["noisy"], test["repeats"], test["clean"]):
        coef = np.linalg.lstsq(np.column_stack([f.ravel(), np.ones(f.size)]), noisy.ravel(), rcond=None)[0]
        units = f * coef[0] + coef[1]
        u.append(umse(units, *refs[:3]))
        true.append(float(np.mean((units - clean) ** 2)))
    return {"tables": _summarise(rows, test["tilts"]), "mean": _mean_scores(rows),
            "unit_free_psnr_db": float(np.mean([_unit_free_psnr(f, r) for f, r in zip(filtered_norm,
                                                                                     test["reference"])])),
            "umse": float(np.mean(u)), "true_mse": float(np.mean(true))}


def _rapid_scores(filtered_norm: np.ndarray, reference: np.ndarray, frames: list[int]) -> dict[str, float]:
    out = _mean_scores([_scores(filtered_norm[i], reference[i]) for i in frames])
    out["unit_free_psnr_db"] = float(np.mean([_unit_free_psnr(filtered_norm[i], reference[i]) for i in frames]))
    return out


def _candidate(name: str, args, device, train: dict, test: dict, rapid) -> tuple[dict, np.ndarray, np.ndarray]:
    """Train a self-supervised candidate on noisy frames alone; its normalised outputs on test and rapid frames."""
    h, w = train["repeats"].shape[-2:]
    clock = time.perf_counter()
    if name.startswith("noise2noise"):
        norm = "paper" if name.endswith("paper-norm") else "robust"
        result = train_filter_noise2noise(train["repeats"], _unet_config(args, device, target="noisy-pair",
                                                                         normalisation=norm), progress=False)
        seconds = time.perf_counter() - clock
        info = {"normalisation": norm, "frames_per_area": int(train["repeats"].shape[1]),
                "areas": int(train["repeats"].shape[0])}
        return ({**info, "steps": result.steps, "best_step": result.best_step, "seconds": round(seconds, 1)},
                apply_filter(result.model, test["noisy"]), apply_filter(result.model, rapid.images))
    if name in ("neighbor2neighbor", "blindspot-row"):  # single-frame denoisers of the same frames, one at a time
        movie = train["repeats"].reshape(-1, h, w)
        common = {"width": args.width, "steps": args.unet_steps, "crop": 64, "batch_size": 8, "eval_every": 50,
                  "holdout_crop": min(h, w) // 8 * 8, "device": str(device), "seed": 0}
        if name == "neighbor2neighbor":
            result, norm = train_neighbor2neighbor(movie, Neighbor2NeighborConfig(**common), progress=False)
        else:  # a blind spot that never sees its own scan line
            result, norm = train_udvd(movie, UdvdConfig(frames=1, blind_spot="row", **common), progress=False)
        seconds = time.perf_counter() - clock
        out = [np.stack([_norm(f) for f in apply_denoiser(result.model, norm, x)]) for x in (test["noisy"],
                                                                                           rapid.images)]
        return ({"width": args.width, "frames": int(movie.shape[0]), "steps": result.steps,
                 "best_step": result.best_step, "seconds": round(seconds, 1)}, out[0], out[1])
    if name == "udvd-3x3":  # a video denoiser: trained on the rapid series itself, scored on it only
        config = UdvdConfig(blind_spot="3x3", steps=args.udvd_steps, eval_every=100, holdout_crop=96,
                            device=str(device), seed=0)
        result, norm = train_udvd(rapid.images, config, progress=False)
        seconds = time.perf_counter() - clock
        out = np.stack([_norm(f) for f in apply_denoiser(result.model, norm, rapid.images)])
        return {"blind_spot": "3x3", "steps": result.steps, "seconds": round(seconds, 1)}, None, out
    raise ValueError(name)


def part_selfsup(args, device) -> dict:
    """Self-supervised filters (no averaged references) against the supervised U-Net, same fields and metrics.

    Scored (a) on the filters part's test fields (same seed: the same frames
    and 50-frame averages) per tilt and (b) on 9 frames of a 96 x 96 px rapid
    series against simulated 50-frame averages at each frame's per-row angles.
    """
    clock = time.perf_counter()
    train = filter_pairs(args.train_fields, TILTS, seed=0, repeats=args.repeats)
    test = filter_pairs(args.test_fields, TILTS, seed=1000, repeats=3)
    noise = NoiseModel()
    rapid = simulate_rapid(dislocation_specimen((24, 96, 96), seed=7), distortion=None, noise=noise, seed=7)
    rapid_reference = fast_scan_noise(rapid.clean, noise.scaled(50), np.random.default_rng(8))
    t_data = time.perf_counter() - clock
    model = _unet_model(args, device, train)
    frames = [int(np.argmin(np.abs(rapid.frame_angles - t))) for t in (-70, -60, -40, -20, 0, 20, 40, 60, 70)]
    unet_test, unet_rapid = apply_filter(model, test["noisy"]), apply_filter(model, rapid.images)
    unet = {"test": _test_scores(unet_test, test), "rapid": _rapid_scores(unet_rapid, rapid_reference, frames),
            # the U-Net's output min-shifted and divided by its maximum, as the self-supervised outputs are
            "test_renormalised": _test_scores(_norm(unet_test), test)["mean"],
            "rapid_renormalised": _rapid_scores(_norm(unet_rapid), rapid_reference, frames)}
    # The noise-free image scored as a filter output: what a filter returning the clean image exactly would score.
    clean_image = {"test": _test_scores(_norm(test["clean"]), test)["mean"],
                   "rapid": _rapid_scores(_norm(rapid.clean), rapid_reference, frames)}
    candidates = {}
    for name in args.candidates:
        info, test_out, rapid_out = _candidate(name, args, device, train, test, rapid)
        entry = {"training": info, "rapid": _rapid_scores(rapid_out, rapid_reference, frames)}
        gap = {"rapid_psnr_gap_db": unet["rapid"]["psnr_db"] - entry["rapid"]["psnr_db"],
               "rapid_width_gap": entry["rapid"]["relative_width"] - unet["rapid"]["relative_width"]}
        if test_out is not None:
            entry["test"] = _test_scores(test_out, test)
            per_tilt = {t: (unet["test"]["tables"][t]["psnr_db"][0] - entry["test"]["tables"][t]["psnr_db"][0],
                            entry["test"]["tables"][t]["relative_width"][0]
                            - unet["test"]["tables"][t]["relative_width"][0]) for t in unet["test"]["tables"]}
            gap.update({"test_psnr_gap_db": unet["test"]["mean"]["psnr_db"] - entry["test"]["mean"]["psnr_db"],
                        "test_width_gap": entry["test"]["mean"]["relative_width"]
                        - unet["test"]["mean"]["relative_width"],
                        "test_per_tilt_psnr_gap_db": {t: v[0] for t, v in per_tilt.items()},
                        "test_per_tilt_width_gap": {t: v[1] for t, v in per_tilt.items()}})
        for where in ("test", "rapid"):
            if f"{where}_psnr_gap_db" in gap:
                gap[f"target_met_{where}"] = bool(gap[f"{where}_psnr_gap_db"] <= 1.0
                                                  and abs(gap[f"{where}_width_gap"]) <= 0.10)
        entry["gap_to_unet"] = gap
        candidates[name] = entry
    return {
        "setup": {"train": f"{args.train_fields} fields x {len(TILTS)} tilts (the filters part's), "
                           f"{args.repeats} independent noisy frames each, no averages",
                  "unet": "supervised, the filters part's model (fast frame -> 50-frame average)",
                  "steps": args.unet_steps, "width": args.width,
                  "test": f"{args.test_fields} fields x {len(TILTS)} tilts (the filters part's test set)",
                  "rapid_frames_scored": frames,
                  "target": "PSNR gap <= 1 dB and |width gap| <= 0.10 (relative width) against the U-Net",
                  "scoring": "filtered frames min-shifted/max-normalised (the U-Net's output as it comes); "
                             "metrics as in the filters part; unit_free_psnr_db: after the least-squares affine "
                             "map onto the normalised reference (a diagnostic)"},
        "unet": unet, "clean_image": clean_image, "candidates": candidates, "seconds_data": round(t_data, 1)}


def _unet_model(args, device, train: dict | None = None):
    """The filters part's U-Net (``results/rapid_unet.pt``), trained the same way on ``train`` when absent."""
    path = RESULTS / "rapid_unet.pt"
    if not path.exists() or args.quick:
        train = train or filter_pairs(args.train_fields, TILTS, seed=0)
        model = train_filter(train["noisy"], train["reference"], _unet_config(args, device), progress=False).model
        if args.quick:
            return model
        save_filter(path, model, overwrite=True, extra={"benchmark": "bench_rapid.py"})
    return load_filter(path, device=device)


def _merge_selfsup(old: dict, new: dict) -> dict:
    """Keep candidates of earlier runs not re-run now (the first version of this part held one UDVD run)."""
    kept = dict(old.get("candidates", {}))
    if "udvd" in old and "mean" in old:
        kept["udvd-3x3"] = {"training": old["udvd"], "rapid": old["mean"]["udvd"],
                            "gap_to_unet": {"rapid_psnr_gap_db": old["psnr_gap_db"], "rapid_width_gap":
                                            old["mean"]["udvd"]["relative_width"]
                                            - old["mean"]["unet"]["relative_width"]},
                            "note": "earlier run; trained on the rapid series alone, scored on its 9 frames"}
    new["candidates"] = {**kept, **new["candidates"]}
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("filters", "recon", "angles", "selfsup", "all"), default="all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="Tiny settings (a smoke run; not for the tables).")
    parser.add_argument("--candidates", nargs="+", choices=SELFSUP, default=None,
                        help="Self-supervised filters of --part selfsup, each added to the JSON's selfsup section "
                             "(default: noise2noise on the CPU, all on a GPU).")
    parser.add_argument("--field", type=int, default=64, help="recon, angles: field width in px (the paper's is "
                        "512); other than 64 the results go to '<part>_field<W>'.")
    parser.add_argument("--rows", type=int, default=48,
                        help="recon, angles: frame height (rows along the tilt axis), px.")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="recon, angles: specimen seeds (default 11 12).")
    parser.add_argument("--particle-sigma", type=float, default=1.0, help="recon, angles: marker radius (px); "
                        "other than 1.0 the results go to '<part>_markers<sigma>'.")
    parser.add_argument("--timings", nargs="+", choices=list(TIMINGS), default=list(TIMINGS),
                        help="recon, angles: acquisition timings to run (default both).")
    parser.add_argument("--cache-gb", type=float, default=4.0,
                        help="recon: memory for the per-row projector's ray weights (GB; a 512 px field needs 11).")
    parser.add_argument("--threads", type=int, default=1, help="CPU: torch threads.")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    args.tag = "gpu" if device.type == "cuda" else "cpu"
    big = device.type == "cuda"
    args.train_fields, args.test_fields = (4, 2) if args.quick else ((40, 10) if big else (12, 5))
    args.unet_steps = 30 if args.quick else (3000 if big else 600)
    args.width = 32 if big else 16
    args.udvd_steps = 20 if args.quick else (2000 if big else 200)
    args.repeats = 3 if args.quick else (50 if big else 16)
    args.candidates = args.candidates or (list(SELFSUP) if big else ["noise2noise"])
    args.seeds = args.seeds or ([11] if args.quick else [11, 12])
    args.specimen = {"particle_sigma": args.particle_sigma}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"rapid_{args.tag}{'_quick' if args.quick else ''}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["environment"] = environment(device)
    parts = ("filters", "recon", "selfsup") if args.part == "all" else (args.part,)
    for part in parts:
        clock = time.perf_counter()
        key = part
        if part == "filters":
            data[key] = part_filters(args, device)
        elif part in ("recon", "angles"):
            key += (f"_field{args.field}" if args.field != 64 else "") + (
                f"_rows{args.rows}" if part == "angles" and args.rows != 48 else "") + (
                f"_markers{args.particle_sigma:g}" if args.particle_sigma != 1.0 else "")
            model = _unet_model(args, device)
            data[key] = (part_recon if part == "recon" else part_angles)(args, device, model)
        else:
            data[key] = _merge_selfsup(data.get(part, {}), part_selfsup(args, device))
        data[key]["wall_seconds"] = round(time.perf_counter() - clock, 1)
        current = json.loads(path.read_text()) if path.exists() else {}  # another run may have written meanwhile
        current.update({"environment": data["environment"], key: data[key]})
        path.write_text(json.dumps(current, indent=1, default=float))
        print(f"{key}: {data[key]['wall_seconds']} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
