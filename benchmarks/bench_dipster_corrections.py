"""DIP-STER beyond the paper: learned acquisition corrections, time-lag-aware training and ensemble bands.

Parts (``--parts``, each writes its own JSON in ``benchmarks/results/``):

``corrections`` (``dipster_corrections_cpu.json``)
    A *static* core-shell nanorod, ``--size``^3, ``--views`` GRS views over
    +-70 deg, recorded with acquisition effects that a dynamic reconstruction
    turns into fake dynamics: a beam-current drift (gain ``1 + drift * i / (N - 1)``
    plus a slow ripple), a support film whose projected thickness grows as
    ``1 / cos(theta)`` (offset ``film / cos(theta)`` of the peak intensity),
    and random shifts (normal, ``--shift-std`` pixels). DIP-STER trains on the
    clean series, on the corrupted series without corrections and with
    ``corrections=("gain", "offset", "shift")``. Reported per run: the *fake
    change* ``100 * mean_t ||V_t - V_mean|| / ||V_mean||`` (the specimen does
    not change, so all of it is fake), the Otsu-masked SSIM/RMSE % against the
    truth (mean over time), and the learned corrections against the applied ones
    (correlation; errors after removing the gauge). A control trains on the
    *dynamic* alloying rod (clean data) with and without corrections: the
    corrections must not absorb the real change (alloying curve, RMSE).
``rowlag`` (``dipster_rowlag_cpu.json``)
    The alloying rod recorded while the tilt advances during each frame: row
    ``y`` at ``theta + --row-lag * y / Y`` and time ``t + y / Y`` (a frame per
    time step). DIP-STER trains with one angle and time per view (uniform) and
    with per-row angles and times. Reported: SSIM/RMSE % and the RMSE in the
    first and the last quarter of the rows (the lag grows along Y).
``preset`` (``dipster_preset_cpu.json``)
    The defaults against ``--preset paper`` (same small network, same steps)
    on the alloying rod, noise-free and with Poisson noise (``--dose``).
``ensemble`` (``dipster_ensemble_cpu.json``)
    ``--members`` seeds on the alloying rod with Poisson noise (``--dose``): the
    band (min .. max over members) of the alloying % (truth-free, sigma_inf = 0,
    and with the truth's sigma_inf), surface-to-volume and redistributed volume,
    with its mean and largest width, beside the truth.

Run: ``python benchmarks/bench_dipster_corrections.py --parts corrections`` (about
8 minutes on one loaded CPU core; each part alike). ``--device cuda`` runs the
same on a GPU (``--size 64 --train-steps 6000`` there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from environment import environment  # noqa: E402

from tomotime.data import TiltSeries, VolumeSeries  # noqa: E402
from tomotime.metrics import alloying_curve, particle_std  # noqa: E402
from tomotime.metrics.evaluate import evaluate_against_truth  # noqa: E402
from tomotime.recon.dipster import (  # noqa: E402
    QUANTITIES,
    DipsterConfig,
    ensemble_curves,
    train_dipster,
    train_ensemble,
    volume_series,
)
from tomotime.sim import (  # noqa: E402
    core_shell_nanorod,
    fully_mixed,
    make_scenario,
    misalign_image,
    simulate_acquisition,
)

RESULTS = Path(__file__).resolve().parent / "results"
NET = dict(hidden=(256,), base_channels=32, batch_size=8)


def fake_change(volumes: VolumeSeries) -> float:
    """``100 * mean_t ||V_t - V_mean|| / ||V_mean||`` (%): all of it is fake for a static specimen."""
    v = np.stack([np.asarray(x, dtype=np.float64) for x in volumes])
    mean = v.mean(axis=0)
    return float(100 * np.mean([np.linalg.norm(x - mean) for x in v]) / np.linalg.norm(mean))


def corrupt(series: TiltSeries, *, drift: float, film: float, shift_std: float, seed: int) -> tuple[TiltSeries, dict]:
    """Apply gain drift, a 1/cos support-film offset and shifts; return the series and the applied values."""
    n = len(series)
    i = np.arange(n)
    rng = np.random.default_rng(seed)
    gain = 1 + drift * i / (n - 1) + 0.03 * np.sin(2 * np.pi * i / (n / 3))
    offset = film * float(series.images.max()) / np.cos(np.radians(series.angles))
    shifts = rng.normal(0, shift_std, size=(n, 2))
    images = np.stack([gain[k] * misalign_image(series.images[k], axis_rotation=0, shift_y=shifts[k, 0],
                                                shift_x=shifts[k, 1]) + offset[k] for k in range(n)])
    applied = {"gain": gain, "offset": offset, "shift_y": shifts[:, 0], "shift_x": shifts[:, 1]}
    return TiltSeries(images.astype(np.float32), series.angles, times=series.times,
                      pixel_size=series.pixel_size), applied


def compare_corrections(learned: dict, applied: dict, scale: float) -> dict:
    """Correlation and gauge-free RMS error of learned against applied corrections (offsets in data units)."""
    out = {}
    for key in ("gain", "offset", "shift_y", "shift_x"):
        a = np.asarray(applied[key], dtype=np.float64)
        b = np.asarray(learned[key], dtype=np.float64) * (scale if key == "offset" else 1.0)
        if key == "gain":
            a, b = np.log(a), np.log(b)
        a, b = a - a.mean(), b - b.mean()
        out[key] = {"correlation": float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None,
                    "rms_applied": float(np.sqrt(np.mean(a**2))), "rms_error": float(np.sqrt(np.mean((a - b) ** 2)))}
    return out


def train_and_score(series, truth, cfg, **extra) -> tuple[dict, object]:
    began = time.perf_counter()
    result = train_dipster(series, cfg, progress=False)
    seconds = time.perf_counter() - began
    vols = volume_series(result.model, progress=False)
    m = evaluate_against_truth(vols, truth, **extra)
    row = {"fake_change_percent": fake_change(vols), "ssim": float(m["ssim_mean"]),
           "ssim_worst": float(m["ssim_worst"]),
           "rmse_percent": float(m["rmse_mean"]), "steps": result.steps, "train_seconds": round(seconds, 1)}
    if "alloying" in m:
        row["alloying_error_mean"] = float(m["alloying_error_mean"])
        row["alloying"] = np.asarray(m["alloying"]).tolist()
    return row, (result, vols)


def part_corrections(args) -> dict:
    static = core_shell_nanorod(args.size)
    truth = VolumeSeries(np.stack([static] * args.views))
    clean = simulate_acquisition(truth, seed=args.seed)
    bad, applied = corrupt(clean, drift=args.drift, film=args.film, shift_std=args.shift_std, seed=args.seed)
    base = DipsterConfig(**NET, steps=args.train_steps, seed=args.seed, device=args.device, patience=None)
    runs = {}
    runs["clean"], _ = train_and_score(clean, truth, base)
    runs["corrupted"], _ = train_and_score(bad, truth, base)
    corrected = base.replace(corrections=("gain", "offset", "shift"))
    runs["corrupted_corrected"], (res, _) = train_and_score(bad, truth, corrected)
    recovery = compare_corrections(res.model.corrections.to_dict(), applied, res.model.normalisation.scale)
    # Control: real dynamics must survive the corrections.
    rod = make_scenario("nanorod-alloying", args.size, args.views, seed=args.seed)
    rod_series = simulate_acquisition(rod, seed=args.seed)
    sigma_mixed = particle_std(fully_mixed(rod[0]), mask=rod[0] > 0)
    control = {}
    control["dynamic_plain"], _ = train_and_score(rod_series, rod, base, alloying_sigma_mixed=sigma_mixed)
    control["dynamic_corrected"], (res_c, _) = train_and_score(rod_series, rod, corrected,
                                                               alloying_sigma_mixed=sigma_mixed)
    learned = res_c.model.corrections.to_dict()
    control["dynamic_corrected"]["learned_spread"] = {
        "gain_std": float(np.std(learned["gain"])), "shift_rms_px": float(np.sqrt(np.mean(
            np.asarray(learned["shift_x"]) ** 2 + np.asarray(learned["shift_y"]) ** 2)))}
    truth_alloy = alloying_curve(rod, mask=rod[0] > 0, sigma_mixed=sigma_mixed)
    return {"case": {"object": "core_shell_nanorod (static)", "size": args.size, "views": args.views,
                     "drift": args.drift, "film": args.film, "shift_std_px": args.shift_std,
                     "train_steps": args.train_steps, "network": NET},
            "runs": runs, "recovery": recovery, "dynamic_control": control,
            "truth_alloying": truth_alloy.tolist()}


def part_rowlag(args) -> dict:
    rod = make_scenario("nanorod-alloying", args.size, args.views, seed=args.seed)
    series = simulate_acquisition(rod, row_lag=args.row_lag, seed=args.seed)
    sigma_mixed = particle_std(fully_mixed(rod[0]), mask=rod[0] > 0)
    base = DipsterConfig(**NET, steps=args.train_steps, seed=args.seed, device=args.device, patience=None)
    runs = {}
    q = args.size // 4
    for name, cfg in (("uniform", base), ("per_row", base.replace(row_lag=args.row_lag, row_time_lag=1.0))):
        row, (_, vols) = train_and_score(series, rod, cfg, alloying_sigma_mixed=sigma_mixed)
        v = np.stack([np.asarray(x) for x in vols])
        t = np.stack([np.asarray(x) for x in rod])
        norm = np.sqrt(np.mean(t**2))
        row["rmse_first_rows_percent"] = float(100 * np.sqrt(np.mean((v[:, :, :q] - t[:, :, :q]) ** 2)) / norm)
        row["rmse_last_rows_percent"] = float(100 * np.sqrt(np.mean((v[:, :, -q:] - t[:, :, -q:]) ** 2)) / norm)
        row.pop("alloying", None)
        runs[name] = row
    return {"case": {"scenario": "nanorod-alloying", "size": args.size, "views": args.views,
                     "row_lag_deg": args.row_lag, "row_time_lag_s": 1.0, "train_steps": args.train_steps,
                     "network": NET}, "runs": runs}


def part_ensemble(args) -> dict:
    rod = make_scenario("nanorod-alloying", args.size, args.views, seed=args.seed)
    series = simulate_acquisition(rod, dose=args.dose, seed=args.seed)
    sigma_mixed = particle_std(fully_mixed(rod[0]), mask=rod[0] > 0)
    mask = rod[0] > 0
    cfg = DipsterConfig(**NET, steps=args.train_steps, seed=args.seed, device=args.device)
    began = time.perf_counter()
    members = train_ensemble(series, cfg, args.members, progress=False)
    seconds = time.perf_counter() - began
    quantities = {**QUANTITIES, "alloying_truth_sigma": lambda v: alloying_curve(
        v, mask=mask, sigma_initial=float(rod[0][mask].std()), sigma_mixed=sigma_mixed)}
    bands = ensemble_curves([m.model for m in members], quantities)
    truth = {name: np.asarray(f(rod)).tolist() for name, f in quantities.items()}
    out = {}
    for name, band in bands.items():
        t = np.asarray(truth[name])
        inside = (band.lower <= t) & (t <= band.upper)
        out[name] = {**band.to_dict(), "truth": truth[name], "truth_inside_fraction": float(inside.mean()),
                     "mean_abs_error_of_mean": float(np.mean(np.abs(band.mean - t)))}
    return {"case": {"scenario": "nanorod-alloying", "size": args.size, "views": args.views, "dose": args.dose,
                     "members": args.members, "train_steps": args.train_steps, "network": NET},
            "stopped_at": [m.steps for m in members], "train_seconds": round(seconds, 1), "quantities": out}


def part_preset(args) -> dict:
    rod = make_scenario("nanorod-alloying", args.size, args.views, seed=args.seed)
    sigma_mixed = particle_std(fully_mixed(rod[0]), mask=rod[0] > 0)
    runs = {}
    for dose in (None, args.dose):
        series = simulate_acquisition(rod, dose=dose, seed=args.seed)
        for name, cfg in (("default", DipsterConfig(**NET)), ("paper", DipsterConfig.paper(**NET))):
            cfg = cfg.replace(steps=args.train_steps, seed=args.seed, device=args.device, patience=None)
            row, _ = train_and_score(series, rod, cfg, alloying_sigma_mixed=sigma_mixed)
            row.pop("alloying", None)
            runs[f"{name}_{'clean' if dose is None else f'dose{dose:g}'}"] = row
    return {"case": {"scenario": "nanorod-alloying", "size": args.size, "views": args.views, "dose": args.dose,
                     "train_steps": args.train_steps, "network": NET,
                     "note": "both recipes with the same (small) network; the paper's is 2 x 512 / 128 channels"},
            "runs": runs}


def plot_ensemble(path: Path) -> Path:
    """Alloying bands (truth-free and with the truth's sigma_inf) beside the truth, from the part's JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = json.loads(path.read_text())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, name, title in ((axes[0], "alloying_truth_sigma", "alloying %, truth's sigma_inf"),
                            (axes[1], "alloying", "alloying %, truth-free (sigma_inf = 0)")):
        q = report["quantities"][name]
        t = np.arange(len(q["mean"]))
        ax.fill_between(t, q["lower"], q["upper"], alpha=0.35, label=f"band of {report['case']['members']} seeds")
        ax.plot(t, q["mean"], label="ensemble mean")
        ax.plot(t, q["truth"], "k--", label="truth")
        ax.set(xlabel="time step", title=title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=100)
    return out


PARTS = {"corrections": part_corrections, "rowlag": part_rowlag, "ensemble": part_ensemble, "preset": part_preset}


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--views", type=int, default=60)
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--drift", type=float, default=0.3)
    parser.add_argument("--film", type=float, default=0.03)
    parser.add_argument("--shift-std", type=float, default=1.0)
    parser.add_argument("--row-lag", type=float, default=15.0)
    parser.add_argument("--dose", type=float, default=5.0)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--suffix", default=None, help="result files end in _<suffix>.json (default: the device)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    suffix = args.suffix or ("cpu" if device.type == "cpu" else "gpu")
    written = []
    for name in args.parts.split(","):
        began = time.perf_counter()
        report = {"environment": environment(device), **PARTS[name](args)}
        report["wall_seconds"] = round(time.perf_counter() - began, 1)
        path = RESULTS / f"dipster_{name}_{suffix}.json"
        path.write_text(json.dumps(report, indent=1))
        if name == "ensemble":
            plot_ensemble(path)
        print(path, json.dumps({k: v for k, v in report.items() if k not in ("environment",)}, indent=1)[:3000])
        written.append(path)
    return written


if __name__ == "__main__":
    main()
