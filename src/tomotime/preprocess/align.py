"""The alignment methods by name, a chain of them, and the result as IMOD ``.xf`` rows."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.io.imod import poses_to_xf
from tomotime.preprocess.align_affine import align_affine
from tomotime.preprocess.align_axis import align_axis
from tomotime.preprocess.align_com import align_com
from tomotime.preprocess.align_projection import align_projection
from tomotime.preprocess.align_xcorr import align_xcorr
from tomotime.preprocess.alignment import AlignmentWarning

__all__ = ["ALIGNERS", "align_chain", "alignment_xf", "AlignmentFailed"]

#: ``name -> fn(series, **params) -> TiltSeries``.
ALIGNERS: dict[str, Callable[..., TiltSeries]] = {
    "xcorr": align_xcorr,
    "com": align_com,
    "axis": align_axis,
    "projection": align_projection,
    "affine": align_affine,
}


class AlignmentFailed(InputError):
    """A step of an alignment chain could not work on the series (the reason is the message)."""


def align_chain(series: TiltSeries, methods: list[str], options: dict[str, dict[str, Any]] | None = None
                ) -> TiltSeries:
    """Run the named alignment methods one after the other.

    Parameters
    ----------
    series : TiltSeries
    methods : list of str
        Names in :data:`ALIGNERS`, applied in order.
    options : dict, optional
        ``method -> keyword arguments`` for that method.

    Raises
    ------
    AlignmentFailed
        When a step warns that it could not align the series (flat images, a single view, ...).
    """
    options = options or {}
    unknown = [m for m in methods if m not in ALIGNERS]
    if unknown or not methods:
        raise InputError(f"alignment method {unknown[0] if unknown else '(none)'!r}: expected one or more of "
                         f"{', '.join(ALIGNERS)}")
    if "affine" in methods[:-1]:
        raise InputError("affine: must be the last alignment step (it resamples the images)")
    for method in methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AlignmentWarning)
            series = ALIGNERS[method](series, **options.get(method, {}))
        failed = [w for w in caught if issubclass(w.category, AlignmentWarning)]
        if failed:
            raise AlignmentFailed(str(failed[0].message))
    return series


def alignment_xf(series: TiltSeries) -> np.ndarray:
    """``.xf`` rows ``(N, 6)`` of an aligned series: its poses, or the affine maps of :func:`align_affine`."""
    steps = series.metadata.get("alignment") or []
    if steps and steps[-1].get("method") == "affine":
        return np.asarray(steps[-1]["xf"], np.float64)
    poses = np.zeros((len(series), 4)) if series.poses is None else series.poses
    return poses_to_xf(poses)
