"""Centre-of-mass centring on the tilt axis (the INR paper's coarse alignment).

For an object wholly inside every view on an empty background, the centre of
mass of view ``theta`` lies at ``x_c cos(theta) - z_c sin(theta)`` across the
axis and at ``y_c`` along it. Moving every view's centre of mass onto the
image centre puts the object's centre of mass on the tilt axis: exact up to
an object translation, which the data cannot tell.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess.alignment import (add_image_shifts, alignment_failed, current_poses, flat_views,
                                           resampled, with_poses)

__all__ = ["align_com"]


def _border_median(image: np.ndarray, width: int) -> float:
    return float(np.median(np.concatenate([image[:width].ravel(), image[-width:].ravel(),
                                           image[:, :width].ravel(), image[:, -width:].ravel()])))


def align_com(series: TiltSeries, *, background: str = "border", along_axis: bool = True) -> TiltSeries:
    """Shift every view so that its centre of mass sits on the tilt axis (image centre).

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)`` of an object on an empty background
        (dark-field contrast); existing poses are applied first and refined.
    background : {"border", "none"}
        Subtract each view's median over a border 5 % wide (and clip at zero)
        before weighting, or use the intensities as they are.
    along_axis : bool
        Also make the centre of mass along the axis (Y) equal in every view
        (at its mean); otherwise only the X shifts are estimated.

    Returns
    -------
    TiltSeries
        The series with ``poses`` holding the shifts; unchanged, with an
        :class:`~tomotime.preprocess.alignment.AlignmentWarning`, when a view has
        no positive weight left.
    """
    if background not in ("border", "none"):
        raise InputError(f"background={background!r}: expected border or none")
    images = resampled(series).images.astype(np.float64)
    flat = flat_views(images)
    if flat.size:
        return alignment_failed(series, "centre-of-mass", f"view {flat[0]} is flat (no contrast)")
    _, ny, nx = images.shape
    width = max(1, int(round(0.05 * min(ny, nx))))
    shifts = np.zeros((len(images), 2))
    for i, image in enumerate(images):
        weights = np.clip(image - _border_median(image, width), 0, None) if background == "border" else image
        if weights.sum() <= 0:
            return alignment_failed(series, "centre-of-mass", f"view {i} has no intensity above its background")
        cy, cx = ndimage.center_of_mass(weights)
        shifts[i] = cy, cx - (nx - 1) / 2
    shifts[:, 0] = shifts[:, 0] - shifts[:, 0].mean() if along_axis else 0.0
    poses = add_image_shifts(current_poses(series), shifts)
    return with_poses(series, poses, "com", background=background, along_axis=along_axis)
