"""Projection-matching refinement: register every view to the reprojection of a reconstruction, repeat.

Each round resamples the views with the current poses, reconstructs them with
SIRT (or EM), projects the volume back at every angle and registers each
view to its reprojection by a translation
(:func:`~tomotime.preprocess.register.register_image`). The found shifts are added to the poses and
the round repeats until the largest update is small. Consistent views are a
fixed point; views that disagree with the others are pulled towards them.
The tilt-axis rotation is not refined here: a reconstruction made with a
turned axis reproduces the turn in its reprojections (measured: the pooled
per-view rotations do not move towards the true axis), so it is left to
:func:`~tomotime.preprocess.align_axis.align_axis`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess.alignment import (add_image_shifts, alignment_failed, check_rounds, current_poses,
                                           resampled, why_not_reconstructable, with_poses)
from tomotime.preprocess.register import register_image
from tomotime.preprocess.reprojection import reconstruct_and_reproject

__all__ = ["align_projection"]


def align_projection(series: TiltSeries, *, rounds: int = 5, solver: str = "sirt", iterations: int = 30,
                     positivity: bool = True, tolerance: float = 0.05, device="cpu") -> TiltSeries:
    """Refine the poses of ``series`` against reprojections of its own reconstruction.

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)`` with a coarse alignment in ``poses`` (e.g. from
        :func:`~tomotime.preprocess.align_xcorr.align_xcorr`).
    rounds : int
        Most reconstruct-reproject-register rounds.
    solver : {"sirt", "em"}
        Reconstruction of each round.
    iterations : int
        Solver iterations per round.
    positivity : bool
        SIRT with ``min_value=0`` (dark-field data).
    tolerance : float
        Stop when no shift changes by more than this (px) in a round.
    device : str
        Device of the reconstructions (``"cpu"``, ``"cuda"``, ``"auto"``).

    Returns
    -------
    TiltSeries
        The series with refined ``poses``; unchanged, with an :class:`AlignmentWarning`,
        for fewer than three views or flat views.
    """
    if solver not in ("sirt", "em"):
        raise InputError(f"solver={solver!r}: expected sirt or em")
    check_rounds(rounds, iterations)
    reason = why_not_reconstructable(series)
    if reason:
        return alignment_failed(series, "projection-matching", reason)
    poses = current_poses(series)
    history = []
    for _ in range(int(rounds)):
        aligned = resampled(replace(series, poses=poses)).images
        _, reprojection = reconstruct_and_reproject(aligned, series.angles, solver=solver, iterations=iterations,
                                                    positivity=positivity, device=device)
        fits = [register_image(a, r, model="translation") for a, r in zip(aligned, reprojection)]
        shifts = np.array([[t[1], t[0]] for _, t, _ in fits])
        poses = add_image_shifts(poses, shifts)
        history.append(float(np.abs(shifts).max()))
        if history[-1] < tolerance:
            break
    return with_poses(series, poses, "projection", solver=solver, iterations=iterations, rounds=len(history),
                      largest_update_px=history, residual=float(np.mean([f[2] for f in fits])))
