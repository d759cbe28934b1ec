"""Draw docs/images/conventions.png: array axes of volumes and tilt series, and the sign of the tilt angle.

Run from the repository root: ``python docs/_scripts/conventions_figure.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "images" / "conventions.png"


def _arrow(ax, start, end, text, color, **kw):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color=color, lw=2))
    ax.text(*end, text, color=color, fontsize=10, **kw)


def volume_axes(ax):
    """Oblique drawing of the volume box with its array axes."""
    ax.set_title("volume (Z, Y, X)", fontsize=11)
    depth = np.array([0.45, 0.3])
    corners = {"o": np.array([0.0, 0.0]), "x": np.array([1.0, 0.0]), "y": depth, "z": np.array([0.0, 1.0])}
    o, x, y, z = corners["o"], corners["x"], corners["y"], corners["z"]
    for a, b in ((o, x), (o, z), (x, x + z), (z, x + z), (o, y), (x, x + y), (z, z + y), (x + z, x + y + z),
                 (y, y + x), (y, y + z), (y + x, y + x + z), (y + z, y + x + z)):
        ax.plot(*zip(a, b), color="0.6", lw=1)
    _arrow(ax, o, o + 1.35 * x, " X (columns, detector)", "C0", va="center")
    _arrow(ax, o, o + 1.9 * y, " Y: tilt axis (rows)", "C3", va="bottom")
    _arrow(ax, o, o + 1.35 * z, " Z: beam at 0°", "C2", ha="left")
    for dx in (0.25, 0.55, 0.85):
        ax.annotate("", xy=(dx, -0.3), xytext=(dx, 1.6), arrowprops=dict(arrowstyle="->", color="0.3", lw=1,
                                                                         ls="--"))
    ax.text(0.9, 1.55, "electron beam at 0°\n(projection sums over Z)", fontsize=8, color="0.3")
    ax.text(-0.05, -0.55, "vol[z, y, x]; slice perpendicular to the tilt axis: vol[:, k, :]\n"
            "series: (T, Z, Y, X)", fontsize=9)
    ax.set_xlim(-0.2, 2.3)
    ax.set_ylim(-0.7, 1.9)


def angle_sign(ax):
    """The slice vol[:, k, :] and the rays at 0 and +30 degrees."""
    ax.set_title("tilt angle θ, in the slice vol[:, k, :]", fontsize=11)
    ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, color="0.5"))
    ax.plot([-0.35, 0.1, 0.45], [0.3, -0.4, 0.2], "o", color="k", ms=5)
    for theta, color in ((0.0, "C2"), (30.0, "C1")):
        t = np.deg2rad(theta)
        ray = np.array([np.sin(t), np.cos(t)])  # direction in (x, z)
        s_axis = np.array([np.cos(t), -np.sin(t)])
        for s in np.linspace(-0.9, 0.9, 5):
            p = s * s_axis
            ax.plot(*zip(p - 1.5 * ray, p + 1.1 * ray), color=color, lw=0.8, alpha=0.8)
        base = -1.65 * ray
        ax.plot(*zip(base - 1.2 * s_axis, base + 1.2 * s_axis), color=color, lw=3)
        ax.annotate("", xy=base + 1.45 * s_axis, xytext=base + 1.1 * s_axis,
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=2))
        ax.text(*(base + 1.5 * s_axis + np.array([0.05, -0.15])), f"s at {theta:+.0f}°", color=color, fontsize=9)
    _arrow(ax, (-1.35, 1.25), (-0.85, 1.25), " x", "C0", va="center")
    _arrow(ax, (-1.35, 1.25), (-1.35, 1.75), " z", "C2", va="bottom")
    ax.text(-1.9, -3.05, "detector coordinate  s = x cos θ − z sin θ\n(degrees in files and APIs; "
            "same as skimage radon, astra parallel)", fontsize=8.5)
    ax.set_xlim(-2.2, 2.4)
    ax.set_ylim(-3.2, 1.95)


def tilt_series(ax):
    """Image layout of a tilt series."""
    ax.set_title("tilt series (N, Y, X)", fontsize=11)
    for i, off in enumerate((0.3, 0.15, 0.0)):
        ax.add_patch(plt.Rectangle((off, off), 1, 1, facecolor=f"{0.95 - 0.1 * i}", edgecolor="0.4"))
    ax.plot([0.5, 0.5], [-0.1, 1.1], color="C3", lw=2)
    ax.text(0.53, 1.12, "tilt axis = image Y (rows)", color="C3", fontsize=9)
    ax.plot([0.0, 1.0], [0.35, 0.35], color="C1", lw=2)
    ax.text(1.05, 0.33, "row k", color="C1", fontsize=9)
    _arrow(ax, (0, -0.25), (0.6, -0.25), " X", "C0", va="center")
    _arrow(ax, (-0.15, 1.0), (-0.15, 0.4), " Y", "C3", ha="right")
    ax.text(-0.15, -0.65, "images[i]: view i at angles[i] (deg), times[i] (s)\n"
            "sinogram of row k: images[:, k, :]", fontsize=9)
    ax.set_xlim(-0.5, 1.9)
    ax.set_ylim(-0.8, 1.45)


def main() -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.4))
    for ax, draw in zip(axes, (volume_axes, angle_sign, tilt_series)):
        draw(ax)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
