"""The DIP-STER paper's self-consistency re-registration with affine maps.

DIP-STER Methods (experimental data): reconstruct with EM (25 iterations),
reproject, register every view to its reprojection with an affine map
(translation, skew and scale), and repeat three times. Here each round
resamples the views with the maps found so far, reconstructs them with EM
(negative values clipped at zero), registers each resampled view to its
reprojection (:func:`~tomotime.preprocess.register.register_image`,
``model="affine"``) and composes the new map with the old one.

An affine map has no place in the projector's poses (rotation and shift), so
the result holds the resampled images (poses cleared) and the composed maps,
as IMOD ``.xf`` rows, in ``metadata["alignment"][-1]["xf"]``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess.alignment import alignment_failed, check_rounds, current_poses, why_not_reconstructable
from tomotime.preprocess.register import register_image, warp_image
from tomotime.preprocess.reprojection import reconstruct_and_reproject

__all__ = ["align_affine", "affine_to_xf"]


def _pose_maps(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M, t)`` per view with ``measured(M q + t) = ideal(q)`` for the project's poses."""
    psi = np.deg2rad(poses[:, 0])
    c, s = np.cos(psi), np.sin(psi)
    matrices = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    return matrices, poses[:, [3, 2]].copy()


def affine_to_xf(matrices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """IMOD ``.xf`` rows of maps ``measured(M q + t) = aligned(q)``: the inverse map, ``q = M^-1 (p - t)``."""
    inverse = np.linalg.inv(matrices)
    shift = -np.einsum("nij,nj->ni", inverse, offsets)
    return np.concatenate([inverse.reshape(-1, 4), shift], axis=1)


def align_affine(series: TiltSeries, *, rounds: int = 3, iterations: int = 25, device="cpu") -> TiltSeries:
    """Re-register every view to the reprojection of an EM reconstruction with an affine map.

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)``, non-negative (dark-field) and coarsely aligned
        (its poses are the starting maps).
    rounds : int
        Reconstruct-reproject-register rounds (paper: 3).
    iterations : int
        EM iterations per round (paper: 25).
    device : str
        Device of the reconstructions (``"cpu"``, ``"cuda"``, ``"auto"``).

    Returns
    -------
    TiltSeries
        Resampled images, ``poses`` cleared, and ``metadata["alignment"][-1]``
        holding the composed maps as ``.xf`` rows; unchanged, with an
        :class:`AlignmentWarning`, for fewer than three views or flat views.
    """
    check_rounds(rounds, iterations)
    reason = why_not_reconstructable(series)
    if reason:
        return alignment_failed(series, "affine", reason)
    if current_poses(series)[:, 1].any():
        raise InputError("poses: axis_tilt is non-zero; an inclined tilt axis cannot be undone on the images")
    matrices, offsets = _pose_maps(current_poses(series))
    residuals = []
    for _ in range(int(rounds)):
        aligned = np.stack([warp_image(im, m, t) for im, m, t in zip(series.images, matrices, offsets)])
        _, reprojection = reconstruct_and_reproject(aligned, series.angles, solver="em", iterations=iterations,
                                                    device=device)
        fits = [register_image(a, r, model="affine") for a, r in zip(aligned, reprojection)]
        for i, (m, t, _) in enumerate(fits):  # measured(M (m q + t) + T) = measured((M m) q + M t + T)
            offsets[i] = matrices[i] @ t + offsets[i]
            matrices[i] = matrices[i] @ m
        residuals.append(float(np.mean([f[2] for f in fits])))
    aligned = np.stack([warp_image(im, m, t) for im, m, t in zip(series.images, matrices, offsets)])
    history = list(series.metadata.get("alignment", []))
    history.append({"method": "affine", "rounds": int(rounds), "iterations": int(iterations),
                    "residual_per_round": residuals, "xf": affine_to_xf(matrices, offsets).round(6).tolist()})
    return replace(series, images=aligned.astype(np.float32), poses=None,
                   metadata={**series.metadata, "alignment": history})
