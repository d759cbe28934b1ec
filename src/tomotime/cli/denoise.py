"""``tomotime denoise MOVIE --method udvd|udvd-3x3|single|n2n|gaussian|unet --out DIR``.

Output folder ``OUT``: ``denoised.<ext>`` (the input's format; TIFF for
vendor formats), ``summary.json`` (method, options, uPSNR with its 90 %
bootstrap interval before and after denoising -- with temporal references
(skipping the next frame when the noise of consecutive frames is correlated
above 0.1) and with the 2x2 polyphase references of each frame, the denoiser then run
at half resolution on the other component --, spatial and temporal noise
correlation of the input, timings) and, for the learned methods,
``model.pt`` and the training run folder ``run/`` (``--resume`` continues
it after Ctrl-C). Results are staged and published together, summary last.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import (
    DeviceOption,
    OutDirOption,
    OverwriteOption,
    check_run_outputs,
    command_line,
    handle_errors,
    write_json,
)
from tomotime.cli.training_run import RUN_FOLDER, method_config, training_output
from tomotime.cli.report import NoReportOption, write_run_report
from tomotime.denoise import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    Neighbor2NeighborConfig,
    UdvdConfig,
    apply_denoiser,
    check_movie,
    gaussian_denoise,
    gaussian_frames,
    save_denoiser,
    save_neighbor2neighbor,
    train_neighbor2neighbor,
    train_udvd,
)
from tomotime.errors import InputError
from tomotime.io.movie import movie_output_suffix, read_movie, write_movie
from tomotime.metrics.unsupervised import (
    bootstrap_upsnr,
    noise_correlation,
    polyphase_umse_frames,
    signal_peak,
    temporal_umse,
)

__all__ = ["denoise", "run_denoise", "METHODS", "upsnr_report"]

METHODS = ("udvd", "udvd-3x3", "single", "n2n", "gaussian", "unet")
_REACH = {"udvd": 2, "udvd-3x3": 2, "single": 0, "n2n": 0, "gaussian": 0}
#: Noise correlation above which references next to the input are biased: polyphase references (pixels) are
#: flagged, temporal ones skip the next frame.
_MAX_CORRELATION = 0.1


def upsnr_report(denoised: np.ndarray, noisy: np.ndarray, *, reach: int, peak: float,
                 gap: int = 1) -> dict[str, Any]:
    """uMSE and uPSNR (90 % bootstrap interval over frames) with temporal references, as plain types.

    The references lie at least ``gap`` frames outside the window. A movie too
    short for three of them gets a note instead.
    """
    note = None
    if gap > 1 and noisy.shape[0] < 2 * (reach + gap) + 2:
        note = (f"the noise is correlated between frames, but {noisy.shape[0]} frames are too few to skip one: "
                "the references are the next frames, and the uMSE is biased low")
        gap = 1
    need = 2 * (reach + gap) + 2
    if noisy.shape[0] < need:
        return {"upsnr": None, "note": f"{noisy.shape[0]} frames: too few for temporal references outside "
                                       f"+-{reach} frames (need {need}); no uPSNR"}
    values, _ = temporal_umse(denoised, noisy, reach=reach, gap=gap)
    where = f"temporal, outside +-{reach} frames" + (f", skipping {gap - 1} more" if gap > 1 else "")
    report = {**bootstrap_upsnr(values, peak=peak).to_dict(), "references": where}
    if note is not None:
        report["note"] = f"{report['note']}; {note}" if report.get("note") else note
    return report


def polyphase_report(denoise: Callable[[np.ndarray], np.ndarray], noisy: np.ndarray, *, peak: float,
                     spatial_correlation: float | None) -> dict[str, Any]:
    """uMSE/uPSNR (90 % bootstrap interval) with the 2x2 polyphase references of every frame, as plain types.

    ``denoise`` maps the half-resolution movie ``noisy[:, 0::2, 0::2]`` to its
    denoised version. Frames under 8 px, or noise correlated between
    neighbouring pixels, get a note (the references assume independent pixels).
    """
    if min(noisy.shape[1:]) < 8:
        return {"upsnr": None, "note": f"frames of {noisy.shape[1]} x {noisy.shape[2]} px: too small for "
                                       "polyphase references (need 8 x 8); no polyphase uPSNR"}
    values = polyphase_umse_frames(denoise, noisy)
    report = {**bootstrap_upsnr(values, peak=peak).to_dict(),
              "references": "2x2 polyphase; denoiser run at half resolution on the (0, 0) component"}
    if spatial_correlation is not None and abs(spatial_correlation) > _MAX_CORRELATION:
        extra = (f"the noise is correlated between neighbouring pixels ({spatial_correlation:.2f}); polyphase "
                 "references are then biased: prefer the temporal estimate")
        report["note"] = f"{report['note']}; {extra}" if report.get("note") else extra
    return report


def _config(method: str, options: dict[str, Any], run_file: Path | None, run_dir: Path, resume: bool,
            device: str) -> UdvdConfig | Neighbor2NeighborConfig:
    if method == "n2n":
        if options.get("preset") is not None:
            raise InputError("--preset applies to the UDVD methods, not to --method n2n")
        cls, fixed = Neighbor2NeighborConfig, {}
        options = {k: v for k, v in options.items() if k != "preset"}
    else:
        cls, fixed = UdvdConfig, {"udvd": {}, "udvd-3x3": {"blind_spot": "3x3"}, "single": {"frames": 1}}[method]
    return method_config(cls, run_file, {**options, **fixed}, run_dir=run_dir, resume=resume, device=device,
                         clear_steps=options.get("epochs") is not None and options.get("steps") is None)


def run_denoise(*, file: Path, out: Path, method: str, options: dict[str, Any], run_file: Path | None = None,
                resume: bool = False, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                peak: float | None = None, overwrite: bool = False, device: str = "auto",
                command: str = "tomotime denoise") -> dict[str, Any]:
    """Denoise the movie ``file`` into ``out`` (see the module description); returns the summary."""
    clock = time.perf_counter()
    out = Path(out)
    run_dir = out / RUN_FOLDER
    learned = method != "gaussian"
    denoised_name = "denoised" + movie_output_suffix(file)
    names = (denoised_name, *(("model.pt",) if learned else ()), "summary.json")
    check_run_outputs(out, run_dir, names, overwrite=overwrite, resume=resume)
    config = _config(method, options, run_file, run_dir, resume, device) if learned else None
    raw, meta = read_movie(file)
    movie = check_movie(raw, name=str(file), min_frames=config.frames if learned else 4)
    if not learned and movie.shape[0] < 4:
        raise InputError(f"{file}: {movie.shape[0]} frames; the Gaussian baseline needs 4 to choose its width")
    peak = signal_peak(movie) if peak is None else float(peak)
    if not peak > 0:
        raise InputError(f"--peak={peak}: expected a positive signal range")
    summary: dict[str, Any] = {"command": command, "tomotime_version": __version__, "method": method,
                               "input": {"file": str(Path(file).resolve()), "shape": list(movie.shape),
                                         "dtype": str(raw.dtype), "format": meta.format}}
    correlation = noise_correlation(movie) if movie.shape[0] >= 3 else None
    gap = 2 if correlation is not None and abs(correlation["temporal"]) > _MAX_CORRELATION else 1
    if not learned and movie.shape[0] < 2 * gap + 2:
        gap = 1
    with training_output(out, names, run_dir, overwrite=overwrite, resume=resume) as stage:
        began = time.perf_counter()
        if learned:
            trainer, saver = ((train_neighbor2neighbor, save_neighbor2neighbor) if method == "n2n"
                              else (train_udvd, save_denoiser))
            result, norm = trainer(movie, config, run_dir=run_dir, resume=resume, overwrite=overwrite)
            denoised = apply_denoiser(result.model, norm, movie, tile=tile, overlap=overlap)
            saver(stage / "model.pt", result.model, norm, extra={"source": str(Path(file).resolve())})
            half = lambda y: apply_denoiser(result.model, norm, y, tile=tile, overlap=overlap)  # noqa: E731
            summary["config"] = json.loads((run_dir / "config.json").read_text())
            summary["training"] = {"steps": result.steps, "best_step": result.best_step,
                                   "stopped_early": result.stopped_early,
                                   "best_holdout_loss": result.best_holdout_loss,
                                   "seconds": round(result.seconds, 3)}
            summary["run_dir"] = RUN_FOLDER
        else:
            denoised, sigma, scores = gaussian_denoise(movie, gap=gap)
            summary["gaussian"] = {"sigma_px": sigma, "umse_by_sigma": {str(k): v for k, v in scores.items()}}
            half = lambda y: gaussian_frames(y, sigma / 2)  # noqa: E731  (the same width in the scene)
        summary["seconds"] = round(time.perf_counter() - began, 3)
        write_movie(stage / denoised_name, denoised, pixel_size=meta.pixel_size)
        summary["output"] = denoised_name
        summary["noise_correlation"] = correlation
        spatial = None if correlation is None else max(correlation["spatial_x"], correlation["spatial_y"], key=abs)
        summary["quality"] = {"peak": peak,
                              "before": upsnr_report(movie, movie, reach=0, peak=peak, gap=gap),
                              "after": upsnr_report(denoised, movie, reach=_REACH[method], peak=peak, gap=gap),
                              "polyphase": {
                                  "before": polyphase_report(lambda y: y, movie, peak=peak,
                                                             spatial_correlation=spatial),
                                  "after": polyphase_report(half, movie, peak=peak, spatial_correlation=spatial)}}
        summary["wall_seconds"] = round(time.perf_counter() - clock, 3)
        write_json(stage / "summary.json", summary)
    before, after = summary["quality"]["before"], summary["quality"]["after"]
    poly = summary["quality"]["polyphase"]
    typer.echo(f"wrote {out / denoised_name} ({method}); uPSNR {_db(before)} -> {_db(after)} "
               f"(90 % CI {_ci(after)}; polyphase {_db(poly['before'])} -> {_db(poly['after'])}, "
               f"90 % CI {_ci(poly['after'])}) in {summary['wall_seconds']:.1f} s")
    for note in {before.get("note"), after.get("note"), poly["after"].get("note")} - {None}:
        typer.echo(f"note: {note}", err=True)
    return summary


def _db(report: dict[str, Any]) -> str:
    return "undefined" if report["upsnr"] is None else f"{report['upsnr']:.2f} dB"


def _ci(report: dict[str, Any]) -> str:
    lo, hi = report.get("upsnr_ci", (None, None))
    return f"{'-inf' if lo is None else f'{lo:.2f}'} .. {'inf' if hi is None else f'{hi:.2f}'} dB"


@handle_errors
def denoise(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Movie (T, H, W): TIFF, NPY, MRC, HDF5, EMD, DM3/DM4 or SER.")],
    out: OutDirOption,
    method: Annotated[Literal[METHODS], typer.Option(
        "--method", help="udvd (5 frames, 1-px blind spot), udvd-3x3 (for spatially correlated noise), single "
                         "(one frame, blind spot), n2n (Neighbor2Neighbor, one frame, sub-sampled pairs), "
                         "gaussian (width chosen by uMSE), unet (a supervised filter trained with "
                         "'tomotime train-filter'; needs --model).")] = "udvd",
    model: Annotated[Optional[Path], typer.Option("--model", help="Trained U-Net filter (--method unet).")] = None,
    preset: Annotated[Optional[Literal["fast", "paper"]], typer.Option(
        "--preset", help="Network: fast (one blind U-Net, default) or paper (the UDVD paper's).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Training steps (overrides --epochs).")] = None,
    epochs: Annotated[Optional[float], typer.Option("--epochs", help="Passes over the training crops.")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Training crop side (px, multiple of 4; of 8 for "
                                                               "n2n).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Crops per step.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.")] = None,
    holdout: Annotated[Optional[float], typer.Option("--holdout", help="Fraction of frames held out.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", min=0, help="Seed of initialisation and crops.")] = None,
    run_file: Annotated[Optional[Path], typer.Option("--config", help="Run file of UDVD options.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the training in OUT/run.")] = False,
    tile: Annotated[int, typer.Option("--tile", help="Inference tile side (px, multiple of 4).")] = DEFAULT_TILE,
    overlap: Annotated[int, typer.Option("--overlap",
                                         help="Tile margin dropped (px, multiple of 4).")] = DEFAULT_OVERLAP,
    peak: Annotated[Optional[float], typer.Option("--peak", help="Signal range M of uPSNR (default: range of the "
                                                                 "temporal mean).")] = None,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
    no_report: NoReportOption = False,
) -> None:
    """Denoise a frame series without clean data; report uPSNR before and after."""
    if method == "unet":
        from tomotime.cli.rapid import run_unet_denoise

        run_unet_denoise(file=file, out=out, model=model, overwrite=overwrite, device=device,
                         command=command_line(ctx))
        return
    if method == "gaussian" and any(v is not None for v in (preset, steps, epochs, crop, batch_size, lr, holdout,
                                                            run_file)):
        raise InputError("--method gaussian takes no training options")
    options = {"preset": preset, "steps": steps, "epochs": epochs, "crop": crop, "batch_size": batch_size, "lr": lr,
               "holdout_fraction": holdout, "seed": seed}
    run_denoise(file=file, out=out, method=method, options=options, run_file=run_file, resume=resume, tile=tile,
                overlap=overlap, peak=peak, overwrite=overwrite, device=device,
                command=command_line(ctx))
    if not no_report:
        write_run_report(Path(out))

