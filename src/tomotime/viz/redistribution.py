"""The paper's redistribution figure: gained and lost volume on central orthoslices, and its cumulative curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from tomotime.viz.figures import save_png  # noqa: E402
from tomotime.metrics.morphology import redistribution_curve, redistribution_map  # noqa: E402

__all__ = ["plot_redistribution"]

_COLOURS = ListedColormap(["#d62728", "#ffffff", "#2ca02c"])  # lost, unchanged, gained


def plot_redistribution(series: Any, path: str | Path, *, first: int = 0, last: int = -1,
                        threshold: float | None = None, overwrite: bool = False) -> Path:
    """Gained (green) and lost (red) voxels between two time points on the central XY/XZ/YZ sections,
    over the earlier particle in grey, beside the cumulative redistributed volume (nm^3) over time.

    Parameters
    ----------
    series : VolumeSeries
        The series (reconstruction or truth), T >= 2.
    path : path
        PNG file to write (atomically).
    first, last : int
        The two time indices compared (default the first and the last).
    threshold : float, optional
        Binarisation threshold (default Otsu's of the first volume).
    """
    curve = redistribution_curve(series, voxel_size=series.voxel_size, threshold=threshold)
    a, b = np.asarray(series[first]), np.asarray(series[last])
    signed = redistribution_map(a, b, threshold=curve["threshold"])
    centre = [n // 2 for n in a.shape]
    cuts = {"XY": (slice(None), centre[0]), "XZ": (1, centre[1]), "YZ": (2, centre[2])}
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, (name, (axis, index)) in zip(axes[:3], cuts.items()):
        take = (lambda v: v[index]) if name == "XY" else (lambda v, axis=axis, index=index: np.take(v, index, axis))
        ax.imshow(take(a) > curve["threshold"], cmap="Greys", alpha=0.35, origin="lower")
        shown = np.ma.masked_equal(take(signed), 0)
        ax.imshow(shown, cmap=_COLOURS, vmin=-1, vmax=1, origin="lower")
        ax.set_title(f"{name}: gained (green) / lost (red)", fontsize=8)
        ax.axis("off")
    ax = axes[3]
    times = np.asarray(series.times)
    ax.plot(times, curve["gained_nm3"], color="#2ca02c", label="gained")
    ax.plot(times, curve["lost_nm3"], color="#d62728", label="lost")
    ax.plot(times, curve["total_nm3"], color="k", label="redistributed")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("cumulative volume (nm$^3$)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, overwrite=overwrite)
