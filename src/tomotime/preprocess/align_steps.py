"""The alignment methods as recipe steps (``align_xcorr``, ``align_com``, ...).

Each step runs one aligner of :mod:`tomotime.preprocess.align` with validated
parameters; the poses it estimates travel with the series, so chained steps
refine each other. ``tomotime preprocess`` resamples the images with the final
poses before writing, because an image file cannot store them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from tomotime.preprocess.align_affine import align_affine
from tomotime.preprocess.align_axis import align_axis
from tomotime.preprocess.align_com import align_com
from tomotime.preprocess.align_projection import align_projection
from tomotime.preprocess.align_xcorr import align_xcorr
from tomotime.preprocess.recipe import StepParams, register_step


class XcorrParams(StepParams):
    mode: Literal["sequential", "cumulative"] = "sequential"
    reference: int | None = None
    low: float = 0.01
    high: float = 0.25
    stretch: bool = True
    upsample: PositiveInt = 20


class ComParams(StepParams):
    background: Literal["border", "none"] = "border"
    along_axis: bool = True


class AxisParams(StepParams):
    max_rotation: float = 6.0
    step: float = 1.0


class ProjectionParams(StepParams):
    rounds: PositiveInt = 5
    solver: Literal["sirt", "em"] = "sirt"
    iterations: PositiveInt = 30
    positivity: bool = True
    tolerance: float = 0.05


class AffineParams(StepParams):
    rounds: PositiveInt = 3
    iterations: PositiveInt = 25


register_step("align_xcorr", XcorrParams)(align_xcorr)
register_step("align_com", ComParams)(align_com)
register_step("align_axis", AxisParams)(align_axis)
register_step("align_projection", ProjectionParams)(align_projection)
register_step("align_affine", AffineParams)(align_affine)
