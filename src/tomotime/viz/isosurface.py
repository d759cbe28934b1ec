"""Isosurfaces of a volume coloured by the gain or loss of material between two times (marching cubes)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import measure

from tomotime.metrics import otsu_threshold

__all__ = ["surface_mesh", "plot_gain_loss"]

_MAX_FACES = 40_000


def surface_mesh(volume: np.ndarray, level: float, *, max_faces: int = _MAX_FACES) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(V, 3)`` in voxel units ``(z, y, x)`` and triangles ``(F, 3)`` of the ``level`` isosurface.

    The marching-cubes step grows until the mesh has at most about ``max_faces`` triangles.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if not (volume.min() < level < volume.max()):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    step = 1
    while True:
        verts, faces, _, _ = measure.marching_cubes(volume, level=level, step_size=step, allow_degenerate=False)
        if len(faces) <= max_faces or step >= 8:
            return verts, faces
        step += 1


def plot_gain_loss(before: np.ndarray, after: np.ndarray, *, times: tuple[float, float], voxel_nm: float = 1.0,
                   level: float | None = None):
    """Two isosurfaces: at the first time in grey, at the second coloured by ``after - before``.

    Red marks material gained between the two times, blue material lost (the
    difference sampled at the surface of the later volume, symmetric colour
    scale). ``level`` defaults to the Otsu threshold of the later volume.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    before = np.asarray(before, dtype=np.float32)
    after = np.asarray(after, dtype=np.float32)
    level = float(otsu_threshold(after)) if level is None else float(level)
    difference = after - before
    limit = float(np.percentile(np.abs(difference), 99.5)) or 1.0
    norm = colors.Normalize(-limit, limit)
    fig = plt.figure(figsize=(8.4, 4.0))
    for k, (volume, title) in enumerate(((before, f"t = {times[0]:.4g} s"),
                                         (after, f"t = {times[1]:.4g} s: gain (red) / loss (blue)"))):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        verts, faces = surface_mesh(volume, level)
        if len(faces):
            xyz = verts[:, ::-1] * voxel_nm  # plot as (x, y, z)
            if k == 0:
                facecolors = (0.75, 0.75, 0.75, 1.0)
            else:
                centres = verts[faces].mean(axis=1).T  # (3, F) in (z, y, x)
                values = ndimage.map_coordinates(difference, centres, order=1, mode="nearest")
                facecolors = cm.RdBu_r(norm(values))
            mesh = Poly3DCollection(xyz[faces], facecolors=facecolors, edgecolor="none", linewidth=0)
            if k == 0:
                mesh.set_facecolor(facecolors)
            ax.add_collection3d(mesh)
        extent = np.array(volume.shape[::-1]) * voxel_nm
        ax.set_xlim(0, extent[0])
        ax.set_ylim(0, extent[1])
        ax.set_zlim(0, extent[2])
        ax.set_box_aspect(tuple(extent))
        ax.set_xlabel("x (nm)", fontsize=8)
        ax.set_ylabel("y (nm)", fontsize=8)
        ax.set_zlabel("z (nm)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=9)
        ax.view_init(elev=25, azim=-60)
    mappable = cm.ScalarMappable(norm=norm, cmap="RdBu_r")
    fig.colorbar(mappable, ax=fig.axes, shrink=0.6, label="change of density", pad=0.08)
    return fig
