"""The figures of the run report (matplotlib): input, acquisition, training, quality.

Each function returns a matplotlib figure; :func:`tomotime.viz.encode.figure_data_uri`
turns it into an embeddable PNG.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tomotime.data import TiltSeries  # noqa: E402

__all__ = ["plot_montage", "plot_acquisition", "plot_training", "plot_reprojection", "plot_truth_metrics"]


def plot_montage(series: TiltSeries, *, max_views: int = 12):
    """Up to ``max_views`` views evenly spread over the series, labelled with index, angle and time."""
    n = len(series)
    picks = np.unique(np.linspace(0, n - 1, min(n, max_views)).round().astype(int))
    cols = min(6, len(picks))
    rows = int(np.ceil(len(picks) / cols))
    lo, hi = np.percentile(series.images[picks], [0.5, 99.5])
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.85 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), picks):
        ax.imshow(series.images[i], cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
        ax.set_title(f"#{i}  {series.angles[i]:+.1f}°\nt={series.times[i]:.4g} s", fontsize=7)
    fig.tight_layout()
    return fig


def plot_acquisition(series: TiltSeries, *, dose: float | None = None):
    """Tilt angle and acquisition time against view index (one panel each), with the dose when known."""
    index = np.arange(len(series))
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 2.8))
    axes[0].plot(index, series.angles, "o", ms=3, color="C0")
    axes[0].set_ylabel("tilt angle (°)")
    axes[1].plot(index, series.times, "o", ms=3, color="C1")
    axes[1].set_ylabel("time (s)")
    for ax in axes:
        ax.set_xlabel("view index")
        ax.grid(alpha=0.3)
    title = f"{len(series)} views, {series.angles.min():+.1f}° to {series.angles.max():+.1f}°"
    if dose is not None:
        title += f", dose {dose:g} counts per unit intensity"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_training(history: Mapping[str, np.ndarray], *, best_step: int | None = None):
    """Training and holdout loss against step (log scale) with the chosen state, and the learning rate.

    Parameters
    ----------
    history : mapping of column -> array
        ``step`` and any of ``train_loss``, ``holdout_loss``, ``lr``.
    best_step : int, optional
        The step whose state was kept, marked by a vertical line.
    """
    has_lr = "lr" in history and np.isfinite(history["lr"]).any()
    fig, axes = plt.subplots(1, 2 if has_lr else 1, figsize=(8.4 if has_lr else 5, 2.9), squeeze=False)
    ax = axes[0, 0]
    step = history["step"]
    for key, label in (("train_loss", "training loss"), ("holdout_loss", "holdout loss")):
        values = history.get(key)
        if values is not None and np.isfinite(values).any():
            ok = np.isfinite(values)
            ax.plot(step[ok], values[ok], label=label, lw=1.4, marker="o" if ok.sum() < 30 else None, ms=3)
    if best_step is not None:
        ax.axvline(best_step, color="k", ls="--", lw=1, label=f"kept: step {best_step}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if has_lr:
        ax = axes[0, 1]
        ax.plot(step, history["lr"], color="C2")
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_reprojection(errors: Mapping[str, np.ndarray], series: TiltSeries):
    """Per-view relative reprojection error against acquisition time and against tilt angle, per method."""
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 2.9), sharey=True)
    for k, (method, values) in enumerate(errors.items()):
        axes[0].plot(series.times, values, "o", ms=3, alpha=0.8, color=f"C{k}", label=method)
        axes[1].plot(series.angles, values, "o", ms=3, alpha=0.8, color=f"C{k}", label=method)
    axes[0].set_xlabel("acquisition time (s)")
    axes[1].set_xlabel("tilt angle (°)")
    axes[0].set_ylabel("relative error ||Pv − b|| / ||b||")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_truth_metrics(results: Mapping[str, Mapping[str, Sequence[float]]], *,
                       metrics: Sequence[tuple[str, str]] = (("ssim", "SSIM (Otsu mask)"), ("rmse", "RMSE (%)"),
                                                            ("alloying", "alloying (%)"))):
    """Per-time metric curves against the truth, every method side by side, one panel per metric."""
    shown = [(key, label) for key, label in metrics if any(key in r for r in results.values())]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.0 * len(shown), 3.0), squeeze=False)
    for ax, (key, label) in zip(axes[0], shown):
        if key == "alloying":
            truth = next((r["alloying_truth"] for r in results.values() if "alloying_truth" in r), None)
            first = next(iter(results.values()))
            if truth is not None:
                ax.plot(first["times"], truth, color="k", lw=1.5, label="truth")
        for k, (method, result) in enumerate(results.items()):
            if key in result:
                ax.plot(result["times"], result[key], lw=1.4, color=f"C{k}", label=method)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
