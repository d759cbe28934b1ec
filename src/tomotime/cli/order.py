"""``tomotime order MOVIE --roi roi.json --vacuum vacuum.json --out DIR``: ALPS per frame.

``roi.json`` and ``vacuum.json`` hold a polygon, ``[[x, y], ...]`` or
``{"polygon": [[x, y], ...]}``, in pixel coordinates (x: column, y: row).
Output folder: ``alps.csv`` (frame, ALPS, ALPS*, p-value, significant after
Benjamini-Hochberg), ``order.png`` (ALPS* per frame with the paper's
ordered/disordered thresholds) and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import OutDirOption, OverwriteOption, command_line, handle_errors, staged_output, write_json
from tomotime.denoise import check_movie
from tomotime.errors import InputError
from tomotime.io.movie import read_movie
from tomotime.metrics.alps import (
    DISORDERED,
    ORDERED,
    PAPER_BETA,
    alps_series,
    alps_star,
    calibrate_vacuum,
    check_vacuum,
    poisson_null_test,
    polygon_mask,
)
from tomotime.training import remove_partials, run_lock

__all__ = ["order", "run_order", "read_polygon", "parse_beta", "order_plot"]

OUTPUTS = ("alps.csv", "order.png", "summary.json")


def read_polygon(path: Path, *, name: str) -> list[list[float]]:
    """The polygon of a JSON file: ``[[x, y], ...]`` or ``{"polygon": [[x, y], ...]}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{name} {path}: no such file")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{name} {path}: not valid JSON ({exc})") from None
    if isinstance(value, dict):
        value = value.get("polygon")
    if not isinstance(value, list):
        raise InputError(f"{name} {path}: expected [[x, y], ...] or {{\"polygon\": [[x, y], ...]}}")
    return value


def parse_beta(text: str) -> tuple[float, float] | None:
    """``calibrate`` (None), ``paper`` (-5.08, 0.705) or ``b0,b1``."""
    if text == "calibrate":
        return None
    if text == "paper":
        return PAPER_BETA
    try:
        b0, b1 = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--beta={text!r}: expected calibrate, paper or two numbers b0,b1") from None
    if not (math.isfinite(b0) and math.isfinite(b1) and b1 > 0):
        raise InputError(f"--beta={text!r}: expected finite b0 and a positive b1")
    return b0, b1


def order_plot(path: Path, star: np.ndarray, significant: np.ndarray) -> None:
    """ALPS* per frame with the ordered (1.3) and disordered (1.1) thresholds; significant frames marked."""
    from tomotime.viz.figures import save_png  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=120)
    frames = np.arange(star.size)
    ax.plot(frames, star, color="black", lw=0.8, label="ALPS*")
    ax.scatter(frames[significant], star[significant], color="tab:red", s=10, zorder=3,
               label="more ordered than noise (BH)")
    ax.axhline(ORDERED, color="tab:blue", ls="--", lw=0.8, label=f"ordered ({ORDERED})")
    ax.axhline(DISORDERED, color="tab:orange", ls="--", lw=0.8, label=f"disordered ({DISORDERED})")
    ax.set(xlabel="frame", ylabel="ALPS*")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_png(fig, path)


def run_order(*, file: Path, roi: Path, vacuum: Path, out: Path, sigma: float = 2.0, gain: float = 1.0,
              beta: str = "calibrate", n_sim: int = 99, alpha: float = 0.05, seed: int = 0,
              overwrite: bool = False, command: str = "tomotime order") -> dict[str, Any]:
    """ALPS, ALPS* and the Poisson-null test of every frame (see the module description)."""
    clock = time.perf_counter()
    if not (sigma >= 0 and gain > 0 and n_sim >= 1 and 0 < alpha < 1):
        raise InputError(f"expected --sigma >= 0, --gain > 0, --n-sim >= 1, --alpha in (0, 1); got "
                         f"{sigma}, {gain}, {n_sim}, {alpha}")
    fixed_beta = parse_beta(beta)
    raw, _ = read_movie(file)
    movie = check_movie(raw, name=str(file))
    shape = movie.shape[1:]
    mask = polygon_mask(read_polygon(roi, name="--roi"), shape, name=f"--roi {roi}")
    vac = polygon_mask(read_polygon(vacuum, name="--vacuum"), shape, name=f"--vacuum {vacuum}")
    try:
        check_vacuum(vac, movie.shape[0], calibrate=fixed_beta is None)
    except InputError as exc:
        raise InputError(f"--vacuum {vacuum}: {exc}") from None
    with run_lock(Path(out)):
        remove_partials(Path(out))
        with staged_output(Path(out), OUTPUTS, overwrite=overwrite) as stage:
            values = alps_series(movie, sigma=sigma, mask=mask, gain=gain)
            test = poisson_null_test(movie, mask, vac, sigma=sigma, gain=gain, n_sim=n_sim, alpha=alpha, seed=seed,
                                     observed=values)
            betas = fixed_beta or calibrate_vacuum(movie, vac, sigma=sigma, gain=gain)
            n = int(mask.sum())
            star = alps_star(values, n, betas)
            with open(stage / "alps.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["frame", "alps", "alps_star", "p_value", "significant"])
                for t in range(values.size):
                    writer.writerow([t, f"{values[t]:.6g}", f"{star[t]:.6g}", f"{test.p_values[t]:.6g}",
                                     int(test.significant[t])])
            order_plot(stage / "order.png", star, test.significant)
            summary = {
                "command": command, "tomotime_version": __version__, "input": str(Path(file).resolve()),
                "shape": list(movie.shape), "roi_pixels": n, "vacuum_pixels": int(vac.sum()), "sigma_px": sigma,
                "gain": gain, "beta": {"b0": betas[0], "b1": betas[1],
                                       "source": beta if fixed_beta else "calibrated on the vacuum region"},
                "poisson_rate": test.rate, "n_sim": n_sim, "alpha": alpha,
                "frames_significant": int(test.significant.sum()),
                "alps_star": {"mean": float(star.mean()), "std": float(star.std()),
                              "ordered_frames": int((star >= ORDERED).sum()),
                              "disordered_frames": int((star <= DISORDERED).sum())},
                "wall_seconds": round(time.perf_counter() - clock, 3), "outputs": list(OUTPUTS),
            }
            write_json(stage / "summary.json", summary)
    typer.echo(f"wrote {', '.join(str(Path(out) / n) for n in OUTPUTS)}: mean ALPS* {star.mean():.3f}, "
               f"{summary['frames_significant']} of {values.size} frames more ordered than noise")
    return summary


@handle_errors
def order(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Movie (T, H, W), e.g. a denoised one.")],
    roi: Annotated[Path, typer.Option("--roi", help="JSON polygon of the region of interest.")],
    vacuum: Annotated[Path, typer.Option("--vacuum", help="JSON polygon of a vacuum region (null and ALPS*).")],
    out: OutDirOption,
    sigma: Annotated[float, typer.Option("--sigma", help="Gaussian smoothing (px).")] = 2.0,
    gain: Annotated[float, typer.Option("--gain", help="Data units per electron count.")] = 1.0,
    beta: Annotated[str, typer.Option("--beta", help="ALPS* standardisation: calibrate (on the vacuum), paper, "
                                                     "or b0,b1.")] = "calibrate",
    n_sim: Annotated[int, typer.Option("--n-sim", help="Monte-Carlo frames of the Poisson null.")] = 99,
    alpha: Annotated[float, typer.Option("--alpha", help="False-discovery rate (Benjamini-Hochberg).")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the null simulation.")] = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Measure how ordered each frame's surface is (ALPS, ALPS*) and test it against noise."""
    run_order(file=file, roi=roi, vacuum=vacuum, out=out, sigma=sigma, gain=gain, beta=beta, n_sim=n_sim,
              alpha=alpha, seed=seed, overwrite=overwrite, command=command_line(ctx))
