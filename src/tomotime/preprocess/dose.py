"""Electron-dose bookkeeping for STEM tilt series.

The dose of one scanned frame is the charge per pixel over the pixel's area:
``D = I * t_dwell / (e * p^2)``. For example 60 pA, 1.6 us dwell and 0.44 nm
pixels give ``60e-12 * 1.6e-6 / 1.602e-19 / 4.4^2 = 31 e/A^2``. The series
total counts every scanned frame: the recorded views and the tracking or
focusing frames acquired between them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["frame_dose", "series_dose", "record_dose", "DoseParams", "ELEMENTARY_CHARGE"]

ELEMENTARY_CHARGE = 1.602176634e-19
"""Coulomb."""


class DoseParams(StepParams):
    beam_current_pa: float
    dwell_time_us: float
    pixel_size_nm: float | None = None
    tracking_frames: int = 0
    frames_per_view: int = 1


def frame_dose(beam_current_pa: float, dwell_time_us: float, pixel_size_nm: float) -> float:
    """Dose of one scanned frame in electrons per square angstrom.

    Parameters
    ----------
    beam_current_pa : float
        Probe current in pA.
    dwell_time_us : float
        Dwell time per pixel in microseconds.
    pixel_size_nm : float
        Scan step (pixel size) in nm.
    """
    for name, value in (("beam_current_pa", beam_current_pa), ("dwell_time_us", dwell_time_us),
                        ("pixel_size_nm", pixel_size_nm)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"dose: {name}={value}: expected a positive number")
    electrons = beam_current_pa * 1e-12 * dwell_time_us * 1e-6 / ELEMENTARY_CHARGE
    return float(electrons / (pixel_size_nm * 10.0) ** 2)


def series_dose(per_frame: float, n_views: int, *, tracking_frames: int = 0, frames_per_view: int = 1) -> dict:
    """Cumulative dose over a series: per view (after each recorded view) and in total, e/A^2.

    ``tracking_frames`` is the total count of extra frames (tracking, focus),
    spread evenly between the views for the cumulative curve.
    """
    if n_views < 1 or tracking_frames < 0 or frames_per_view < 1:
        raise InputError(f"dose: n_views={n_views}, tracking_frames={tracking_frames}, frames_per_view="
                         f"{frames_per_view}: expected n_views >= 1, tracking_frames >= 0, frames_per_view >= 1")
    frames = frames_per_view * np.arange(1, n_views + 1) + tracking_frames * np.arange(1, n_views + 1) / n_views
    return {"per_frame": per_frame, "recorded_frames": n_views * frames_per_view, "tracking_frames": tracking_frames,
            "total": float(per_frame * (n_views * frames_per_view + tracking_frames)),
            "cumulative": (per_frame * frames).tolist()}


@register_step("record_dose", DoseParams)
def record_dose(series: TiltSeries, beam_current_pa: float, dwell_time_us: float, pixel_size_nm: float | None = None,
                tracking_frames: int = 0, frames_per_view: int = 1) -> TiltSeries:
    """Record the electron dose per frame and over the series in the metadata (images unchanged).

    ``pixel_size_nm`` is the scan step of the acquisition (default: the
    series' pixel size, so run this before binning).
    """
    pixel = series.pixel_size if pixel_size_nm is None else pixel_size_nm
    dose = series_dose(frame_dose(beam_current_pa, dwell_time_us, pixel), len(series),
                       tracking_frames=tracking_frames, frames_per_view=frames_per_view)
    dose.update(beam_current_pa=beam_current_pa, dwell_time_us=dwell_time_us, pixel_size_nm=pixel)
    result = derived(series, None, "record_dose", **{k: v for k, v in dose.items() if k != "cumulative"})
    return replace(result, metadata={**result.metadata, "dose_e_per_A2": dose})
