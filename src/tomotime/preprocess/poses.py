"""Undo known per-view poses in the image domain (resample each projection onto the ideal geometry).

Methods that project slice by slice (DIP-STER) cannot move rays per view, so
they train on aligned images instead. The pose model is the projector's (see
:mod:`tomotime.physics.parallel3d`): the ideal projection is rotated in-plane
by ``axis_rotation`` and shifted by ``(shift_y, shift_x)`` to give the
measured image; this module applies the inverse. An inclined tilt axis
(``axis_tilt``) changes which rays are integrated and cannot be undone on
the images, so it is refused.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tomotime.errors import InputError
from tomotime.geometry import poses_to_array

__all__ = ["apply_poses"]


def apply_poses(images: np.ndarray, poses, *, order: int = 1) -> np.ndarray:
    """Resample measured images onto the ideal (pose-free) detector.

    Parameters
    ----------
    images : numpy.ndarray, shape (N, Y, X)
        Measured projections.
    poses : array_like, shape (N, 4), or sequence of Pose
        ``[axis_rotation (deg), axis_tilt (deg), shift_y (px), shift_x (px)]`` per view.
    order : int
        Spline order of the interpolation (1: linear, exact for shifts of whole pixels).

    Returns
    -------
    numpy.ndarray, shape (N, Y, X), float32
        Images as the pose-free projector would record them (zero where the
        measured field of view does not reach).

    Raises
    ------
    InputError
        For a pose count that does not match, or a non-zero ``axis_tilt``.
    """
    images = np.asarray(images)
    poses = poses_to_array(poses)
    if images.ndim != 3 or poses.shape[0] != images.shape[0]:
        raise InputError(f"poses: expected one pose per image of {images.shape}, got {poses.shape[0]}")
    tilted = np.flatnonzero(np.abs(poses[:, 1]) > 1e-6)
    if tilted.size:
        raise InputError(f"poses: axis_tilt is non-zero in {tilted.size} view(s) (first: view {tilted[0]}, "
                         f"{poses[tilted[0], 1]:g} deg); an inclined tilt axis cannot be undone on the images")
    _, ny, nx = images.shape
    y2, s2 = np.meshgrid(np.arange(ny) - (ny - 1) / 2, np.arange(nx) - (nx - 1) / 2, indexing="ij")
    out = np.empty(images.shape, np.float32)
    for i, (psi, _, sy, sx) in enumerate(poses.astype(np.float64)):
        c, s = np.cos(np.deg2rad(psi)), np.sin(np.deg2rad(psi))
        s1, y1 = c * s2 - s * y2, s * s2 + c * y2
        coords = np.stack([y1 + sy + (ny - 1) / 2, s1 + sx + (nx - 1) / 2])
        out[i] = ndimage.map_coordinates(images[i].astype(np.float64), coords, order=order, mode="constant")
    return out
