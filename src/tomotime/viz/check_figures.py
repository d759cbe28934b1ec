"""The figure of ``tomotime check``: per-view reprojection RMSE and SSIM against time and angle."""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_check"]


def plot_check(results: Mapping[str, Mapping[str, Any]]):
    """One row per measure (RMSE %, SSIM), columns: against time, against angle, and fake dynamics if any.

    ``results`` maps a method name to ``{"views": view_consistency(...), "dynamics": fake_dynamics(...) or None}``.
    """
    dynamic = any(r.get("dynamics") for r in results.values())
    fig, axes = plt.subplots(2, 3 if dynamic else 2, figsize=(12.0 if dynamic else 8.4, 5.4), squeeze=False)
    for k, (method, result) in enumerate(results.items()):
        views = result["views"]
        for row, (key, label) in enumerate((("rmse_percent", "reprojection RMSE (% of range)"),
                                            ("ssim", "reprojection SSIM"))):
            for col, (axis_key, axis_label) in enumerate((("time_s", "acquisition time (s)"),
                                                          ("angle_deg", "tilt angle (°)"))):
                ax = axes[row, col]
                ax.plot(views[axis_key], views[key], "o", ms=3, alpha=0.8, color=f"C{k}", label=method)
                ax.set(xlabel=axis_label, ylabel=label)
                ax.grid(alpha=0.3)
        if result.get("dynamics"):
            d = result["dynamics"]
            axes[0, 2].plot(d["time_s"], d["change_percent"], lw=1.4, color=f"C{k}", label=method)
            axes[1, 2].plot(d["time_s"], d["step_percent"], lw=1.4, color=f"C{k}", label=method)
    if dynamic:
        axes[0, 2].set(xlabel="time (s)", ylabel="change from time-mean (%)", title="change inside the object")
        axes[1, 2].set(xlabel="time (s)", ylabel="change from previous time (%)")
        for ax in axes[:, 2]:
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
