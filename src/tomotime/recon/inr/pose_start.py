"""Starting values for the learned poses: cross-correlation shifts and the common-line tilt axis.

Learned jointly with the field from 0 deg, the shared tilt-axis angle stops
short of the truth: the field formed in the first steps, under a wrong axis,
holds it back (benchmarked: -0.71 deg of a 10 deg turn at 48^3; started at the
truth, the same fit stays within 0.13 deg). Starting it from the
common-line criterion of :func:`tomotime.preprocess.align_axis` (after a
cross-correlation shift alignment, which that criterion needs) removes most of
that distance before training; the joint fit then refines it.

The per-view shifts can have the same trouble across the tilt axis: learned
from 0 on a real series (the NCEM FIB lamella), they settle 4.6 px RMS away
from TomViz's alignment, while started at the project's cross-correlation
alignment (:func:`xcorr_start`, ``InrConfig(shift_start="xcorr")``) they end
within 0.5 px of TomViz's (``benchmarks/README.md``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from tomotime.data import TiltSeries
from tomotime.preprocess.align import AlignmentFailed, align_chain
from tomotime.preprocess.alignment import AlignmentWarning

__all__ = ["common_line_axis", "xcorr_start", "EDGE"]

#: An estimate within this many degrees of the search's edge is not trusted (the coarse grid's step).
EDGE = 1.0

log = logging.getLogger(__name__)


def xcorr_start(series: TiltSeries) -> TiltSeries:
    """``series`` with its poses' shifts refined by cross-correlation (the series itself when that fails).

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)``; its poses, if any, are the starting point.

    Returns
    -------
    TiltSeries
        The same images with poses whose shifts ``(dy, dx)`` (pixels) follow the
        cross-correlation alignment (relative to its reference view, which
        therefore also sets where the object sits in the box, as in IMOD or
        TomViz); unchanged, with an :class:`AlignmentWarning`, when the series
        cannot be aligned (fewer than two views, flat views).
    """
    try:
        aligned = align_chain(series, ["xcorr"])
    except AlignmentFailed as failed:
        warnings.warn(f"no cross-correlation start for the shifts ({failed}); they start at the series' poses",
                      AlignmentWarning, stacklevel=2)
        return series
    log.info("cross-correlation start of the shifts: %.2f px RMS", float(np.sqrt(np.mean(aligned.poses[:, 2:] ** 2))))
    return aligned


def common_line_axis(series: TiltSeries, *, max_rotation: float = 15.0, shifts_aligned: bool = False) -> float:
    """In-plane turn of the tilt axis (degrees) beyond the series' own poses, by common lines.

    Parameters
    ----------
    series : TiltSeries
        Tilt series ``(N, Y, X)``; its poses, if any, are the starting point.
    max_rotation : float
        Search ``-max_rotation .. max_rotation`` degrees.
    shifts_aligned : bool
        The series' poses already hold a cross-correlation alignment
        (:func:`xcorr_start`), so it is not repeated.

    Returns
    -------
    float
        The rotation to add to the tilt axis; 0 (with an :class:`AlignmentWarning`)
        when the series cannot tell it (fewer than three views, flat views,
        a narrow tilt range) or the estimate lies within :data:`EDGE` of the
        search's edge (no minimum inside it: seen on a real series whose axis
        the joint fit puts at -3.5 deg).
    """
    try:
        steps = ["axis"] if shifts_aligned else ["xcorr", "axis"]
        aligned = align_chain(series, steps, {"axis": {"max_rotation": max_rotation}})
    except AlignmentFailed as failed:
        warnings.warn(f"no common-line start for the tilt axis ({failed}); it starts at 0", AlignmentWarning,
                      stacklevel=2)
        return 0.0
    before = np.zeros(len(series)) if series.poses is None else np.asarray(series.poses[:, 0], np.float64)
    rotation = float(np.median(np.asarray(aligned.poses[:, 0], np.float64) - before))
    if abs(rotation) > max_rotation - EDGE:  # the criterion found no minimum inside the search
        warnings.warn(f"no common-line start for the tilt axis (its estimate {rotation:.2f} deg lies at the edge of "
                      f"the +-{max_rotation:g} deg search); it starts at 0", AlignmentWarning, stacklevel=2)
        return 0.0
    log.info("common-line start of the tilt axis: %.3f deg", rotation)
    return rotation
