"""Commands of rapid STEM tomography: ``train-filter``, ``calibrate-distortion``, ``correct``,
``dislocations``, and the ``unet`` method of ``denoise``.

* ``tomotime train-filter PAIRS --out model.pt``: train the supervised U-Net
  filter on (fast noisy frame, averaged reference) pairs: an ``.npz`` with
  arrays ``noisy`` and ``reference``, or a noisy stack with ``--reference``;
  with ``--self-supervised noise2noise`` on repeated noisy frames of each
  area alone (no averages): an ``.npz`` array ``frames`` ``(A, K, H, W)``, or a
  stack of ``A * K`` frames with ``--frames-per-area K``.
* ``tomotime calibrate-distortion FAST SLOW --out calib.npz``: the fast-scan
  x-distortion field from a fast and a slow scan of the same area.
* ``tomotime correct SERIES --distortion calib.npz --track-angles --out DIR``:
  undistort every frame and replace the nominal angles by tracked ones
  (``--scan-fraction``: also the angle of every row; ``--binarise``: also the
  dark-line maps that the paper reconstructs).
* ``tomotime dislocations VOLUME --reference REF``: dislocation centres of two
  reconstructions matched per cross-section; Delta Gx, Gy, Gz and the curl
  about the tilt axis.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer

from tomotime import __version__
from tomotime.cli.common import DeviceOption, OverwriteOption, check_outputs, handle_errors, staged_output, write_json
from tomotime.errors import FormatError, InputError
from tomotime.io.angles import write_angles
from tomotime.io.atomic import check_output
from tomotime.io.movie import movie_output_suffix, read_movie, write_movie
from tomotime.io.read import read_tilt_series, read_volume
from tomotime.rapid.dislocations import binarise_series, centre_differences
from tomotime.rapid.distortion import correct_distortion, estimate_distortion, load_calibration, save_calibration
from tomotime.physics.row_angles import row_angles_from_frames
from tomotime.rapid.tilt_tracking import check_continuous_angles, track_angles
from tomotime.rapid.noise2noise import check_repeats, train_filter_noise2noise
from tomotime.rapid.unet_filter import (UnetFilterConfig, apply_filter, check_pairs, load_filter, save_filter,
                                        train_filter)

__all__ = ["train_filter_command", "calibrate_distortion", "correct", "dislocations", "run_unet_denoise",
           "read_pairs", "read_repeats"]


def read_pairs(pairs: Path, reference: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Noisy and reference stacks from an ``.npz`` (``noisy``, ``reference``) or two stack files."""
    if reference is None:
        if Path(pairs).suffix.lower() != ".npz":
            raise InputError(f"{pairs}: give the averaged references with --reference, or an .npz holding "
                             "arrays 'noisy' and 'reference'")
        try:
            with np.load(pairs, allow_pickle=False) as data:
                missing = {"noisy", "reference"} - set(data.files)
                if missing:
                    raise InputError(f"{pairs}: no array(s) {', '.join(sorted(missing))}; expected 'noisy' and "
                                     f"'reference' (found {', '.join(data.files) or 'none'})")
                return np.asarray(data["noisy"]), np.asarray(data["reference"])
        except (OSError, ValueError) as exc:
            raise FormatError(f"{pairs}: not a readable .npz file ({exc})") from None
    return read_movie(pairs)[0], read_movie(reference)[0]


def read_repeats(path: Path, frames_per_area: int | None) -> np.ndarray:
    """Repeated noisy frames ``(A, K, H, W)``: an ``.npz`` array ``frames``, or a stack of ``A * K`` frames.

    A stack (or a 3-D ``frames`` array) needs ``frames_per_area``; its frames
    are taken in order, ``K`` consecutive frames per area.
    """
    if Path(path).suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "frames" not in data.files:
                    raise InputError(f"{path}: no array 'frames'; expected repeated noisy frames (areas, frames per "
                                     f"area, H, W) (found {', '.join(data.files) or 'none'})")
                frames = np.asarray(data["frames"])
        except (OSError, ValueError) as exc:
            raise FormatError(f"{path}: not a readable .npz file ({exc})") from None
    else:
        frames = np.asarray(read_movie(path)[0])
    if frames.ndim == 4:
        if frames_per_area is not None and frames_per_area != frames.shape[1]:
            raise InputError(f"{path}: {frames.shape[1]} frames per area in the file but --frames-per-area "
                             f"{frames_per_area}")
        return frames
    if frames.ndim != 3:
        raise InputError(f"{path}: expected a stack of frames, got shape {frames.shape}")
    if frames_per_area is None:
        raise InputError(f"{path}: a stack of {frames.shape[0]} frames; say how many consecutive frames show the "
                         "same area with --frames-per-area K")
    if frames_per_area < 2:
        raise InputError(f"--frames-per-area {frames_per_area}: Noise2Noise needs at least 2 independent noisy "
                         "frames of each area")
    if frames.shape[0] % frames_per_area:
        raise InputError(f"{path}: {frames.shape[0]} frames are not a whole number of areas of {frames_per_area} "
                         "frames")
    return frames.reshape(-1, frames_per_area, *frames.shape[1:])


@handle_errors
def train_filter_command(
    pairs: Annotated[Path, typer.Argument(help="Training pairs: .npz with 'noisy' and 'reference', or the noisy "
                                               "stack (with --reference); with --self-supervised: repeated noisy "
                                               "frames (.npz 'frames' (A, K, H, W), or a stack with "
                                               "--frames-per-area).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.pt).")],
    reference: Annotated[Optional[Path], typer.Option("--reference", help="Averaged references, one per noisy "
                                                                          "image, same size.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Training steps (overrides --epochs).")] = None,
    epochs: Annotated[Optional[float], typer.Option("--epochs", help="Passes over the training patches.")] = None,
    width: Annotated[int, typer.Option("--width", min=4, help="U-Net width (the paper's: 64).")] = 16,
    depth: Annotated[int, typer.Option("--depth", min=1, max=6, help="U-Net poolings (the paper's: 4).")] = 3,
    patch: Annotated[int, typer.Option("--patch", help="Patch side (px; the paper's: 64).")] = 64,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of initialisation and patches.")] = 0,
    self_supervised: Annotated[Optional[str], typer.Option(
        "--self-supervised", help="'noise2noise': train on pairs of independent noisy frames of the same area, "
                                  "no averaged references.")] = None,
    frames_per_area: Annotated[Optional[int], typer.Option(
        "--frames-per-area", help="With --self-supervised and a stack: consecutive frames per area (>= 2).")]
    = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run", help="Training run folder (checkpoints, metrics).")]
    = None,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Train the U-Net noise filter on (noisy, averaged) pairs, or self-supervised on repeated noisy frames."""
    check_output(out, overwrite=overwrite)
    options: dict[str, Any] = {"width": width, "depth": depth, "patch": patch, "seed": seed, "device": device}
    if self_supervised is not None:
        if self_supervised != "noise2noise":
            raise InputError(f"--self-supervised {self_supervised}: expected 'noise2noise'")
        if reference is not None:
            raise InputError("--reference: Noise2Noise training takes no averaged references; give the repeated "
                             "noisy frames only")
        frames = check_repeats(read_repeats(pairs, frames_per_area), name=str(pairs))
        options["target"] = "noisy-pair"
    elif frames_per_area is not None:
        raise InputError("--frames-per-area is for --self-supervised noise2noise")
    else:
        noisy, ref = read_pairs(pairs, reference)
        noisy, ref = check_pairs(noisy, ref, name=str(pairs), warn=False)
    if steps is not None:
        options["steps"] = steps
    if epochs is not None:
        options["epochs"] = epochs
    try:
        config = UnetFilterConfig(**options)
    except ValueError as exc:
        raise InputError(f"training options: {exc}") from None
    clock = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if self_supervised is not None:
            result = train_filter_noise2noise(frames, config, run_dir=run_dir, overwrite=overwrite)
        else:
            result = train_filter(noisy, ref, config, run_dir=run_dir, overwrite=overwrite)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)

    if self_supervised is not None:
        what = f"{frames.shape[0]} areas x {frames.shape[1]} noisy frames, Noise2Noise"
        extra = {"frames": str(Path(pairs).name), "areas": int(frames.shape[0]),
                 "frames_per_area": int(frames.shape[1]), "target": "noisy-pair"}
    else:
        what = f"{noisy.shape[0]} pairs"
        extra = {"pairs": str(Path(pairs).name), "n_pairs": int(noisy.shape[0])}
    save_filter(out, result.model, overwrite=overwrite, extra={**extra, "steps": result.steps})
    typer.echo(f"wrote {out} ({what}, {result.steps} steps, best holdout loss "
               f"{result.best_holdout_loss if result.best_holdout_loss is not None else 'n/a'}) in "
               f"{time.perf_counter() - clock:.1f} s")


def run_unet_denoise(*, file: Path, out: Path, model: Path | None, overwrite: bool, device: str,
                     command: str) -> dict[str, Any]:
    """``tomotime denoise FILE --method unet --model MODEL --out OUT``: filter every frame with a trained U-Net."""
    if model is None:
        raise InputError("--method unet needs --model MODEL.pt (train one with 'tomotime train-filter')")
    name = "denoised" + movie_output_suffix(file)
    check_outputs(out, [name, "summary.json"], overwrite=overwrite)
    net = load_filter(model, device=device)
    raw, meta = read_movie(file)
    frames = np.asarray(raw)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or not np.issubdtype(frames.dtype, np.number) or not np.isfinite(frames).all():
        raise InputError(f"{file}: expected finite grey-level frames (N, H, W), got shape {frames.shape}")
    clock = time.perf_counter()
    filtered = apply_filter(net, frames)
    summary = {"command": command, "tomotime_version": __version__, "method": "unet", "model": str(model),
               "input": {"file": str(Path(file).resolve()), "shape": list(frames.shape)},
               "output": name, "units": "normalised (each frame min-shifted to 0 and divided by its maximum)",
               "seconds": round(time.perf_counter() - clock, 3)}
    with staged_output(out, [name, "summary.json"], overwrite=overwrite) as stage:
        write_movie(stage / name, filtered, pixel_size=meta.pixel_size)
        write_json(stage / "summary.json", summary)
    typer.echo(f"wrote {Path(out) / name} (unet, {frames.shape[0]} frames) in {summary['seconds']:.1f} s")
    return summary


@handle_errors
def calibrate_distortion(
    fast: Annotated[Path, typer.Argument(help="Fast scan of the calibration area (one image).")],
    slow: Annotated[Path, typer.Argument(help="Slow scan of the same area, same size.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration file to write (.npz).")],
    window: Annotated[int, typer.Option("--window", min=8, help="Correlation window side (px).")] = 24,
    step: Annotated[int, typer.Option("--step", min=1, help="Window spacing (px).")] = 6,
    overwrite: OverwriteOption = False,
) -> None:
    """Estimate the fast-scan x-distortion field from a fast and a slow scan of the same area."""
    check_output(out, overwrite=overwrite)
    a, b = (np.squeeze(read_movie(p)[0]).astype(np.float32) for p in (fast, slow))
    if a.ndim != 2 or b.ndim != 2:
        raise InputError(f"{fast}, {slow}: expected one image each, got shapes {a.shape} and {b.shape}")
    field = estimate_distortion(a, b, window=window, step=step)
    save_calibration(out, field, overwrite=overwrite, window=window, step=step)
    typer.echo(f"wrote {out}: x correction from {field.min():.2f} to {field.max():.2f} px over "
               f"{field.shape[0]} x {field.shape[1]} px frames")


@handle_errors
def correct(
    series: Annotated[Path, typer.Argument(help="Rapid tilt series (N, Y, X) with its nominal angles.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    distortion: Annotated[Optional[Path], typer.Option("--distortion", help="Calibration from "
                                                                            "'tomotime calibrate-distortion'.")]
    = None,
    track: Annotated[bool, typer.Option("--track-angles", help="Estimate each frame's angle from tracked "
                                                               "features.")] = False,
    angles: Annotated[Optional[Path], typer.Option("--angles", help="Nominal angles file (default: sidecar or "
                                                                    "stored in SERIES).")] = None,
    scan_fraction: Annotated[float, typer.Option("--scan-fraction", min=0.0, max=1.0,
                                                 help="Scan time over frame period; > 0 also writes per-row "
                                                      "angles (row_angles.npy) for time-lag-aware SIRT.")] = 0.0,
    binarise: Annotated[bool, typer.Option("--binarise", help="Also write the dark-line maps (0/1) of the "
                                                              "corrected frames, for SIRT as in the paper.")]
    = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Undistort a rapid series and/or correct its tilt angles from tracked features."""
    if distortion is None and not track:
        raise InputError("nothing to do: give --distortion CALIB.npz and/or --track-angles")
    ts = read_tilt_series(series, angles=angles)
    name = "corrected" + movie_output_suffix(series)
    binary_name = "binarised" + movie_output_suffix(series)
    names = [name, *([binary_name] if binarise else []), "angles.tlt",
             *(["row_angles.npy"] if scan_fraction > 0 else []), "summary.json"]
    check_outputs(out, names, overwrite=overwrite)
    images = np.asarray(ts.images, np.float32)
    nominal = np.asarray(ts.angles, np.float64)
    summary: dict[str, Any] = {"tomotime_version": __version__, "input": str(Path(series).resolve()),
                               "shape": list(images.shape)}
    if distortion is not None:
        field = load_calibration(distortion, frame_shape=images.shape[1:])
        images = correct_distortion(images, field)
        summary["distortion"] = {"file": str(distortion), "max_correction_px": float(np.abs(field).max())}
    result_angles = nominal
    if track:
        check_continuous_angles(nominal, images.shape[0], name=f"{series}: angles")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = track_angles(images, nominal, scan_fraction=scan_fraction)
        for w in caught:
            typer.echo(f"warning: {w.message}", err=True)
        result_angles = result.angles
        summary["tracking"] = {"features": result.n_tracks, "fallback_to_nominal": result.fallback,
                               "residual_px": result.residual_px, "blob_scale_px": result.sigma,
                               "max_change_deg": float(np.abs(result.angles - nominal).max()),
                               "angle_standard_error_rms_deg": (None if result.angle_sd is None else
                                                                float(np.sqrt(np.mean(result.angle_sd**2))))}
    with staged_output(out, names, overwrite=overwrite) as stage:
        write_movie(stage / name, images, pixel_size=ts.pixel_size)
        if binarise:
            write_movie(stage / binary_name, binarise_series(images), pixel_size=ts.pixel_size)
        write_angles(stage / "angles.tlt", result_angles)
        if scan_fraction > 0:
            np.save(stage / "row_angles.npy", row_angles_from_frames(result_angles, images.shape[1], scan_fraction))
        write_json(stage / "summary.json", summary)
    typer.echo(f"wrote {Path(out) / name} and angles.tlt"
               + (f" ({summary['tracking']['features']} features tracked)" if track else ""))


@handle_errors
def dislocations(
    volume: Annotated[Path, typer.Argument(help="Reconstruction (Z, Y, X) of the rapid series (MRC, TIFF, ...).")],
    reference: Annotated[Path, typer.Option("--reference", "-r", help="Reconstruction of the same area to compare "
                                                                      "with (e.g. the conventional series).")],
    max_distance: Annotated[float, typer.Option("--max-distance", min=0.0, help="Largest distance (px) between "
                                                                                "matched centres.")] = 3.0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the result to this .json file.")]
    = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Match the dislocation-line centres of two reconstructions; print Delta Gx, Gy, Gz and the curl about the axis.

    Centres are the intensity-weighted centres of the line blobs in every
    cross-section perpendicular to Y and to X, matched slice by slice. The
    twist is the turn between the first and the last row that best explains
    the z differences (the time-lag curl of a continuous-tilt series).
    """
    if out is not None:
        check_output(out, overwrite=overwrite)
    (a, voxel), (b, _) = read_volume(volume), read_volume(reference)
    result = {"volume": str(volume), "reference": str(reference), "max_distance_px": max_distance,
              **centre_differences(a, b, max_distance=max_distance)}
    result["voxel_size_nm"] = voxel  # as the file records it (1 when it records none)
    typer.echo(", ".join(f"{key}: {result[key]:.3f} px" for key in ("dGx", "dGy", "dGz"))
               + f" (voxel {voxel:g} nm as recorded)")
    typer.echo(f"twist about the tilt axis: {result['twist_deg']:+.2f} deg (z error {result['dGz_twist']:.3f} px; "
               f"{result['dGz_untwisted']:.3f} px without it); {result['matched']} centres matched "
               f"({100 * result['matched_fraction']:.0f} % of the reference's)")
    if out is not None:
        write_json(out, result, overwrite=overwrite)
