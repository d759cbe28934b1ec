"""Publication-style figures saved as PNG (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tomotime.io.atomic import atomic_path  # noqa: E402

__all__ = ["save_png", "plot_orthoslices", "plot_orthoslice_grid", "plot_metric_curves"]


def save_png(fig, path: str | Path, *, overwrite: bool = False, dpi: int = 110) -> Path:
    """Write the matplotlib figure ``fig`` to the PNG file ``path`` atomically, then close it."""
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def plot_orthoslice_grid(rows: Mapping[str, Sequence[np.ndarray]], times: Sequence[float], *,
                         display: tuple[float, float] | None = None):
    """Central XY / XZ / YZ sections: one row per method, one column group per time (a matplotlib figure).

    Parameters
    ----------
    rows : mapping of str to sequence of ndarray (Z, Y, X)
        For each label (e.g. ``"truth"``, ``"SIRT"``), the volumes at ``times``.
    times : sequence of float
        Times in seconds, used as column titles.
    display : (float, float), optional
        Grey-scale range shared by every panel (default: the range of the first row).
    """
    labels = list(rows)
    n_t = len(times)
    if display is None:
        first = [np.asarray(v) for v in next(iter(rows.values()))]
        display = (min(float(v.min()) for v in first), max(float(v.max()) for v in first))
    fig, axes = plt.subplots(len(labels), 3 * n_t, figsize=(1.55 * 3 * n_t, 1.7 * len(labels)), squeeze=False)
    lo, hi = display
    for r, label in enumerate(labels):
        for c, volume in enumerate(rows[label]):
            z, y, x = volume.shape
            for k, (image, name) in enumerate(((volume[z // 2], "XY"), (volume[:, y // 2], "XZ"),
                                               (volume[:, :, x // 2], "YZ"))):
                ax = axes[r, 3 * c + k]
                ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"t={times[c]:.4g} s {name}", fontsize=7)
            axes[r, 3 * c].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def plot_orthoslices(
    rows: Mapping[str, Sequence[np.ndarray]],
    times: Sequence[float],
    path: str | Path,
    *,
    overwrite: bool = False,
) -> Path:
    """Write :func:`plot_orthoslice_grid` of ``rows`` at ``times`` to the PNG file ``path`` (atomically)."""
    return save_png(plot_orthoslice_grid(rows, times), path, overwrite=overwrite)


def plot_metric_curves(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    times: np.ndarray,
    path: str | Path,
    *,
    overwrite: bool = False,
    bands: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]] | None = None,
) -> Path:
    """Per-time curves of several metrics for several methods, one panel per metric.

    Parameters
    ----------
    curves : mapping ``metric -> {method: values (T,)}``
        E.g. ``{"SSIM": {"SIRT": ..., "DIP-STER": ...}, "RMSE (%)": {...}}``.
    times : ndarray, shape (T,)
        Times in seconds (x axis).
    path : path
        PNG file to write (atomically).
    bands : mapping ``metric -> {method: (lower (T,), upper (T,))}``, optional
        Shaded bands (e.g. an ensemble's spread) drawn under the method's curve.
    """
    metrics = list(curves)
    bands = bands or {}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for method, values in curves[metric].items():
            line, = ax.plot(times, values, label=method, lw=1.5)
            if method in bands.get(metric, {}):
                lower, upper = bands[metric][method]
                ax.fill_between(times, lower, upper, color=line.get_color(), alpha=0.25, lw=0)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, overwrite=overwrite)
