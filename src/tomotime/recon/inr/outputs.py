"""Results of an INR run besides the volume: learned poses (CSV, plot, IMOD), aligned series, reprojection errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from tomotime.data import TiltSeries
from tomotime.io import atomic_path, check_output
from tomotime.io.imod import poses_to_xf, write_tlt, write_xf
from tomotime.preprocess import apply_poses
from tomotime.recon.inr.model import InrModel

__all__ = ["match_gauge", "learned_poses", "pose_table", "write_pose_csv", "plot_poses", "write_imod_alignment", "aligned_series",
           "predict_series", "reprojection_errors", "write_reprojection_csv", "plot_reprojection"]

POSE_COLUMNS = ("view", "angle_deg", "z1_deg", "z3_deg", "dy_px", "dx_px")


def learned_poses(model: InrModel) -> np.ndarray:
    """``(z1, z3, dy, dx)`` of every view, shape ``(N, 4)`` (degrees, degrees, pixels, pixels)."""
    with torch.no_grad():
        return model.poses().detach().cpu().numpy().astype(np.float64)


def match_gauge(poses: np.ndarray, reference: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``poses`` moved by the object translation that best matches ``reference`` (least squares).

    Translating the object by ``(x, y, z)`` voxels shifts view ``theta`` by
    ``dx = x cos(theta) - z sin(theta)`` and ``dy = y``: shifts of that form are
    not determined by the data (the gauge view fixes them only loosely), so
    poses are compared after removing the best such translation.

    Parameters
    ----------
    poses, reference : numpy.ndarray, shape (N, 4)
        ``(z1, z3, dy, dx)`` per view.
    angles : numpy.ndarray, shape (N,)
        Tilt angles, degrees.
    """
    out = np.array(poses, np.float64)
    diff = out - np.asarray(reference, np.float64)
    theta = np.deg2rad(np.asarray(angles, np.float64))
    basis = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    out[:, 3] -= basis @ np.linalg.lstsq(basis, diff[:, 3], rcond=None)[0]
    out[:, 2] -= diff[:, 2].mean()
    return out


def pose_table(model: InrModel) -> list[dict[str, float]]:
    """One row per view: ``view, angle_deg, z1_deg, z3_deg, dy_px, dx_px``."""
    angles = np.rad2deg(model.theta.cpu().numpy().astype(np.float64))
    return [dict(zip(POSE_COLUMNS, (i, float(a), *map(float, p)))) for i, (a, p) in
            enumerate(zip(angles, learned_poses(model)))]


def _write_csv(path: Path, rows: list[dict], columns: tuple[str, ...], overwrite: bool) -> Path:
    path = check_output(path, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows([{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows])
    return path


def write_pose_csv(path: str | Path, model: InrModel, *, overwrite: bool = False) -> Path:
    """Write :func:`pose_table` as CSV."""
    return _write_csv(Path(path), pose_table(model), POSE_COLUMNS, overwrite)


def plot_poses(path: str | Path, model: InrModel, *, overwrite: bool = False) -> Path:
    """Figure of ``z1, z3, dy, dx`` against view index (top) and tilt angle (bottom), PNG."""
    from tomotime.viz.figures import save_png  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    rows = pose_table(model)
    angle = np.array([r["angle_deg"] for r in rows])
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), constrained_layout=True)
    for k, (key, label) in enumerate((("z1_deg", "z1 (deg)"), ("z3_deg", "z3 (deg)"), ("dy_px", "dy (px)"),
                                      ("dx_px", "dx (px)"))):
        values = np.array([r[key] for r in rows])
        axes[0, k].plot(np.arange(len(rows)), values, ".-")
        axes[0, k].set(xlabel="view index", ylabel=label)
        order = np.argsort(angle)
        axes[1, k].plot(angle[order], values[order], ".-")
        axes[1, k].set(xlabel="tilt angle (deg)", ylabel=label)
    fig.suptitle("learned per-view poses")
    return save_png(fig, check_output(path, overwrite=overwrite), overwrite=overwrite)


def imod_transforms(poses: np.ndarray) -> np.ndarray:
    """IMOD ``.xf`` rows ``(A11, A12, A21, A22, DX, DY)`` that align the measured images.

    ``poses`` are the INR's ``(z1, z3, dy, dx)``: a measured image is the ideal
    one rotated in-plane by ``z3`` and shifted by ``(dy, dx)``; see
    :func:`tomotime.io.imod.poses_to_xf`.
    """
    poses = np.asarray(poses, np.float64)
    return poses_to_xf(np.stack([poses[:, 1], np.zeros(len(poses)), poses[:, 2], poses[:, 3]], axis=1))


def write_imod_alignment(xf_path: str | Path, tlt_path: str | Path, model: InrModel, *,
                         overwrite: bool = False) -> tuple[Path, Path]:
    """Write the learned alignment as IMOD ``.xf`` (one transform per view) and ``.tlt`` (angles, degrees).

    ``z1`` (an in-plane rotation before the tilt) has no place in these files;
    for a fixed tilt-axis error it is a rotation of the whole object and is zero
    on the gauge view. IMOD centres images at ``(n/2)``, this project at
    ``(n-1)/2``: the shifts agree to that half-pixel convention.
    """
    xf_path, tlt_path = check_output(xf_path, overwrite=overwrite), check_output(tlt_path, overwrite=overwrite)
    write_xf(xf_path, imod_transforms(learned_poses(model)), overwrite=overwrite)
    write_tlt(tlt_path, np.rad2deg(model.theta.cpu().numpy().astype(np.float64)), overwrite=overwrite)
    return xf_path, tlt_path


def aligned_series(series: TiltSeries, model: InrModel) -> TiltSeries:
    """The series resampled onto the ideal geometry with the learned ``z3, dy, dx`` (poses cleared)."""
    p = learned_poses(model)
    project_poses = np.stack([p[:, 1], np.zeros(len(p)), p[:, 2], p[:, 3]], axis=1)
    images = apply_poses(series.images, project_poses)
    return TiltSeries(images, series.angles, series.times, pixel_size=series.pixel_size,
                      metadata={**series.metadata, "aligned_by": "inr"}, allow_wide_angles=series.allow_wide_angles)


@torch.no_grad()
def predict_series(model: InrModel, *, rays_per_chunk: int = 16384) -> np.ndarray:
    """The model's projections ``(N, Y, X)`` of every view with its learned pose (raw intensity units)."""
    n = model.theta.numel()
    ny, nx = model.det_shape
    flat = torch.arange(n * ny * nx, device=model.device)
    out = torch.empty(flat.numel(), device=model.device)
    samples = int(model.config.samples or max(model.vol_shape))
    for start in range(0, flat.numel(), rays_per_chunk):
        f = flat[start:start + rays_per_chunk]
        out[start:start + rays_per_chunk], _ = model(f // (ny * nx), (f // nx) % ny, f % nx, n_samples=samples)
    return (out * model.scale).reshape(n, ny, nx).cpu().numpy()


def reprojection_errors(model: InrModel, series: TiltSeries) -> list[dict[str, float]]:
    """Per view: RMSE between measured and predicted projection, absolute and as % of the data range."""
    predicted = predict_series(model)
    span = float(series.images.max() - series.images.min()) or 1.0
    rows = []
    for i, (measured, pred) in enumerate(zip(series.images, predicted)):
        rmse = float(np.sqrt(np.mean((measured.astype(np.float64) - pred) ** 2)))
        rows.append({"view": i, "angle_deg": float(series.angles[i]), "rmse": rmse,
                     "rmse_percent": 100 * rmse / span})
    return rows


def write_reprojection_csv(path: str | Path, rows: list[dict[str, float]], *, overwrite: bool = False) -> Path:
    """Write :func:`reprojection_errors` as CSV."""
    return _write_csv(Path(path), rows, ("view", "angle_deg", "rmse", "rmse_percent"), overwrite)


def plot_reprojection(path: str | Path, rows: list[dict[str, float]], *, overwrite: bool = False,
                      reference: list[dict[str, float]] | None = None, label: str = "INR",
                      reference_label: str = "reference") -> Path:
    """Figure of the per-view reprojection error (% of range) against tilt angle, optionally with a reference."""
    from tomotime.viz.figures import save_png  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    for data, name in ((rows, label), (reference, reference_label)):
        if data:
            angle = np.array([r["angle_deg"] for r in data])
            order = np.argsort(angle)
            ax.plot(angle[order], np.array([r["rmse_percent"] for r in data])[order], ".-", label=name)
    ax.set(xlabel="tilt angle (deg)", ylabel="reprojection RMSE (% of range)")
    ax.legend()
    return save_png(fig, check_output(path, overwrite=overwrite), overwrite=overwrite)
