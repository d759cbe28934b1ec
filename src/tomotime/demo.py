"""The demo: a simulated in situ experiment reconstructed and evaluated end to end.

A core-shell nanorod alloys over ``steps`` time steps; one projection per step
is recorded with a golden-ratio (GRS) tilt scheme over +-70 degrees; each time
point is reconstructed with the sliding-window SIRT baseline (window 30, or
every projection when there are fewer) and
compared with the ground truth. Results go to one folder: the metric table
(``metrics.csv`` / ``metrics.json``), figures, and ``summary.json`` with, for
each method, ``ssim_mean``, ``ssim_worst``, ``rmse_mean``, ``rmse_worst`` and
``seconds``. The folder is a run folder in the sense of :mod:`tomotime.viz.rundata`:
it also holds the simulated tilt series (``series.mrc`` + ``.rawtlt`` / ``.times``),
the truth (``truth.h5``), the volume series of each method (``volumes_*.h5``),
the DIP-STER training run (``run/``) and the HTML report (``report.html``).
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

import tomotime
from tomotime.data import VolumeSeries
from tomotime.errors import InputError, OutputExistsError
from tomotime.io import write_json, write_tilt_series, write_volume_series
from tomotime.metrics.evaluate import evaluate_against_truth, format_summary_table, write_metrics
from tomotime.sim import iter_scenario, mixed_intensity_spread, simulate_acquisition
from tomotime.recon.dipster import DipsterConfig, save_model, train_dipster, volume_series
from tomotime.recon.dipster.ensemble import Band, ensemble_band
from tomotime.solvers import sliding_window
from tomotime.viz import plot_metric_curves, plot_orthoslices

__all__ = ["run_demo"]

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 30
DEFAULT_ENSEMBLE = 1
"""DIP-STER members of the demo. One by default: three seeds triple the training time (4.5 min instead of
1.5 on 2 cores) for a band 0.4 percentage points wide, too thin to see, that does not contain the truth."""
EXPERIMENT = "nanorod-alloying"
"""The demo's scenario, with its default (``subdiffusion``) reading: alloying rises over the whole run."""
DEMO_FILES = ("summary.json", "metrics.csv", "metrics.json", "orthoslices.png", "metrics.png", "dipster_model.pt",
              "series.mrc", "series.rawtlt", "series.times", "truth.h5", "volumes_sirt.h5", "volumes_dipster.h5",
              "report.html")
RUN_FOLDER = "run"
_VOLUME_FILES = {"SIRT (sliding window)": "volumes_sirt.h5", "DIP-STER": "volumes_dipster.h5"}


def demo_dipster_config(*, steps: int = 6000, seed: int = 0, device: str = "auto") -> DipsterConfig:
    """DIP-STER settings sized for a CPU demo (32^3, 100 time steps, about 1-2 minutes).

    A single hidden layer of 256 and 64 base channels, time and row as the only
    coordinates (``"y-t"``), L2 loss, a larger learning rate than the paper's
    1e-4 so that a few thousand steps suffice, and no early stopping.
    """
    return DipsterConfig(manifold="y-t", hidden=(256,), base_channels=64, batch_size=8, lr=1e-3, steps=steps,
                         eval_every=200, patience=None, seed=seed, device=device)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    existing = [out_dir / f for f in (*DEMO_FILES, RUN_FOLDER) if (out_dir / f).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists; pass --overwrite to replace the demo results")


def run_demo(
    out_dir: str | Path = "demo_output",
    *,
    size: int = 32,
    steps: int = 100,
    window: int | None = None,
    iterations: int = 30,
    dipster_steps: int | None = 6000,
    ensemble: int = DEFAULT_ENSEMBLE,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool | None = None,
    report: bool = True,
    command: str | None = None,
    echo=print,
) -> dict[str, Any]:
    """Simulate the nanorod-alloying experiment, reconstruct it with sliding-window SIRT and DIP-STER, evaluate.

    Parameters
    ----------
    out_dir : path
        Folder for the results (created if needed).
    size, steps : int
        Volume edge in voxels and number of time steps (= projections).
    window : int, optional
        Sliding-window size, at most ``steps`` (default 30, or ``steps`` when fewer).
    iterations : int
        SIRT iterations per window.
    dipster_steps : int or None
        Training steps of DIP-STER (None: leave DIP-STER out).
    ensemble : int
        DIP-STER members (seeds ``seed``, ``seed + 1``, ...): with 2 or more the
        figure shades the band (smallest to largest member) of DIP-STER's
        alloying curve; 1 trains one network and draws no band.
    seed : int
        Seed of the simulation.
    report : bool
        Write ``report.html``, the HTML report of the run.
    command : str, optional
        The command line, recorded in ``summary.json``.
    echo : callable
        Where progress lines and the final table go (``print`` by default).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    volumes = iter_scenario(EXPERIMENT, size, steps, seed)  # checks size and steps, computes nothing yet
    window = min(DEFAULT_WINDOW, steps) if window is None else window
    if int(window) != window or not 1 <= window <= steps:
        raise InputError(f"window={window}: expected an integer between 1 and steps ({steps})")
    if int(ensemble) != ensemble or ensemble < 1:
        raise InputError(f"ensemble={ensemble}: expected a whole number of DIP-STER members, at least 1")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(out_dir, volumes, size=size, steps=steps, window=window, iterations=iterations,
                    dipster_steps=dipster_steps, ensemble=int(ensemble), seed=seed, device=device,
                    overwrite=overwrite, progress=progress, report=report, command=command, echo=echo)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # an interrupted first run leaves no empty folder behind
        raise


def _band_note(band: Band, truth: Any) -> dict[str, Any]:
    """Members, mean and largest width (percentage points) of an alloying band, and the share of time in it."""
    inside = (np.asarray(truth) >= band.lower) & (np.asarray(truth) <= band.upper)
    return {"members": int(band.members.shape[0]), "width_mean": float(np.mean(band.width)),
            "width_max": float(np.max(band.width)), "truth_inside_fraction": float(np.mean(inside))}


def plot_demo_curves(results: Mapping[str, Mapping[str, Any]], times: np.ndarray, path: str | Path, *,
                     overwrite: bool = False,
                     alloying_bands: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """The demo's figure: SSIM and RMSE (strict and the paper's) and the paper's alloying of truth and each method.

    ``alloying_bands`` maps a method name to ``(lower, upper)`` arrays (T,),
    e.g. an ensemble's spread, shaded around that method's alloying curve.
    """
    first = next(iter(results.values()))
    curves = {"SSIM (Otsu mask)": {n: r["ssim"] for n, r in results.items()},
              "SSIM (paper)": {n: r["paper_ssim"] for n, r in results.items()},
              "RMSE (%)": {n: r["rmse"] for n, r in results.items()},
              "alloying (%, paper)": {"truth": first["paper_alloying_truth"],
                                      **{n: r["paper_alloying"] for n, r in results.items()}}}
    bands = {"alloying (%, paper)": dict(alloying_bands)} if alloying_bands else None
    return plot_metric_curves(curves, times, path, overwrite=overwrite, bands=bands)


def _run(out_dir: Path, volumes, *, size: int, steps: int, window: int, iterations: int, dipster_steps: int | None,
         ensemble: int, seed: int, device: str, overwrite: bool, progress: bool | None, report: bool,
         command: str | None, echo) -> dict[str, Any]:
    started = time.perf_counter()

    echo(f"Simulating nanorod alloying (the paper's curve, about 10 % to 53 %): {size}^3 voxels, {steps} steps, "
         "GRS tilt over +-70 deg ...")
    truth = VolumeSeries(np.stack(list(volumes)))
    series = simulate_acquisition(truth, seed=seed)
    sigma_mixed = mixed_intensity_spread(truth[0])  # 0: a fully mixed particle is uniform
    write_tilt_series(out_dir / "series.mrc", series, overwrite=overwrite)
    write_volume_series(out_dir / "truth.h5", truth, overwrite=overwrite, compression="gzip")

    methods: dict[str, Any] = {}
    echo(f"Reconstructing every time step with sliding-window SIRT (window {window}, {iterations} iterations) ...")
    t0 = time.perf_counter()
    recon = sliding_window(series, window=window, method="sirt", iterations=iterations, min_value=0.0,
                           device=device, progress=progress)
    methods["SIRT (sliding window)"] = (recon, time.perf_counter() - t0)

    model_note, training, extra = None, None, []
    if dipster_steps:
        echo(f"Training DIP-STER ({dipster_steps} steps, a space-time network fitted to the projections) ...")
        t0 = time.perf_counter()
        trained = train_dipster(series, demo_dipster_config(steps=dipster_steps, seed=seed, device=device),
                                run_dir=out_dir / RUN_FOLDER, overwrite=overwrite, progress=progress)
        training = {"steps": trained.steps, "best_step": trained.best_step, "stopped_early": trained.stopped_early}
        dip_volumes = volume_series(trained.model, truth.times, progress=False)
        model_path = save_model(out_dir / "dipster_model.pt", trained.model, overwrite=overwrite)
        raw_bytes = 4 * int(np.prod(truth.shape))
        model_note = {"model_bytes": model_path.stat().st_size, "raw_series_bytes": raw_bytes}
        for k in range(1, ensemble):
            echo(f"Training DIP-STER ensemble member {k + 1} of {ensemble} (seed {seed + k}) ...")
            member = train_dipster(series, demo_dipster_config(steps=dipster_steps, seed=seed + k, device=device),
                                   progress=progress)
            extra.append(volume_series(member.model, truth.times, progress=False))
        methods["DIP-STER"] = (dip_volumes, time.perf_counter() - t0)

    results, summary_methods = {}, {}
    for name, (volumes, seconds) in methods.items():
        result = evaluate_against_truth(volumes, truth, alloying_sigma_mixed=sigma_mixed, scenario=EXPERIMENT,
                                        alloying_fixed_mask=True)
        results[name] = result
        summary_methods[name] = {k: float(result[k]) for k in
                                 ("ssim_mean", "ssim_worst", "rmse_mean", "rmse_worst", "paper_ssim_mean",
                                  "paper_ssim_worst", "paper_rmse_mean", "paper_rmse_worst", "alloying_error_mean",
                                  "paper_alloying_error_mean", "paper_alloying_error_worst")}
        summary_methods[name]["seconds"] = round(seconds, 3)

    write_metrics(out_dir, results, overwrite=overwrite)
    for name, (volumes, _) in methods.items():
        write_volume_series(out_dir / _VOLUME_FILES[name], volumes, overwrite=overwrite, compression="gzip")
    shown = np.unique(np.linspace(0, steps - 1, 3).round().astype(int))
    rows = {"truth": [truth[int(t)] for t in shown]}
    rows.update({name: [vols[int(t)] for t in shown] for name, (vols, _) in methods.items()})
    plot_orthoslices(rows, truth.times[shown], out_dir / "orthoslices.png", overwrite=overwrite)
    band = None
    if extra:
        def paper_alloying(vols: VolumeSeries) -> np.ndarray:
            return evaluate_against_truth(vols, truth, alloying_sigma_mixed=sigma_mixed, scenario=EXPERIMENT,
                                          alloying_fixed_mask=True)["paper_alloying"]

        band = ensemble_band([methods["DIP-STER"][0], *extra], paper_alloying)
    plot_demo_curves(results, truth.times, out_dir / "metrics.png", overwrite=overwrite,
                     alloying_bands={"DIP-STER": (band.lower, band.upper)} if band else None)

    summary = {
        "command": command,
        "experiment": EXPERIMENT,
        "alloying_measure": "paper (Otsu + one dilation of the truth, mask of the first volume at every step)",
        "size": size, "steps": steps, "window": window, "iterations": iterations, "seed": seed,
        "device": str(tomotime.device.resolve_device(device)),
        "tomotime_version": tomotime.__version__, "torch_version": torch.__version__,
        "python": platform.python_version(),
        "methods": summary_methods,
        "dipster_model": model_note,
        "input": {"file": "series.mrc", "shape": list(series.shape), "pixel_size_nm": series.pixel_size},
        "truth": "truth.h5",
        "volumes": {name: _VOLUME_FILES[name] for name in methods},
        "run_dir": RUN_FOLDER if dipster_steps else None,
        "training": training,
        "dipster_alloying_band": None if band is None else _band_note(band, results["DIP-STER"]["paper_alloying_truth"]),
        "total_seconds": round(time.perf_counter() - started, 3),
    }
    write_json(out_dir / "summary.json", summary, overwrite=overwrite)
    if report:
        from tomotime.viz.report import write_report

        written = write_report(out_dir, overwrite=True)
        echo(f"Report: {written.path} ({written.bytes / 1e6:.1f} MB), open it in a browser")
    echo("")
    echo(format_summary_table(summary_methods))
    echo("")
    if band is not None:
        note = summary["dipster_alloying_band"]
        echo(f"DIP-STER alloying band over {note['members']} seeds: {note['width_mean']:.1f} percentage points wide "
             f"on average ({note['width_max']:.1f} at most); the truth lies inside it at "
             f"{100 * note['truth_inside_fraction']:.0f} % of the time steps.")
    if model_note:
        echo(f"The trained DIP-STER model ({model_note['model_bytes'] / 1e6:.1f} MB, dipster_model.pt) regenerates "
             f"the whole 4D series ({model_note['raw_series_bytes'] / 1e6:.1f} MB as float32) at any time: "
             f"tomotime query {out_dir / 'dipster_model.pt'} --time 12.5 --out vol.mrc")
    echo(f"Results in {out_dir.resolve()}: summary.json, metrics.csv, orthoslices.png, metrics.png"
         f"{', report.html' if report else ''}")
    echo("This demo runs a small problem on the CPU; full-size (128^3) runs want a GPU.")
    return summary
