"""Preprocessing of tilt series before reconstruction.

Each step is a pure function ``step(series, **params) -> TiltSeries`` that
returns a new series and appends a short record of what it did to
``metadata["preprocessing"]``. Steps are registered by name (see
:mod:`tomotime.preprocess.recipe`) so that a YAML recipe can chain them and
be re-applied to another series.
"""

from tomotime.preprocess import align_steps  # noqa: F401  (registers the alignment steps)
from tomotime.preprocess.background import fit_background, mask_background, subtract_background
from tomotime.preprocess.contrast import convert_contrast, looks_like_bright_field
from tomotime.preprocess.dose import frame_dose, record_dose, series_dose
from tomotime.preprocess.haadf import calibrate_haadf, plot_haadf_calibration
from tomotime.preprocess.normalise import normalise
from tomotime.preprocess.poses import apply_poses
from tomotime.preprocess.recipe import (STEPS, Recipe, apply_recipe, load_recipe, parse_recipe, parse_step_option,
                                        register_step, save_recipe)
from tomotime.preprocess.repair import repair_pixels
from tomotime.preprocess.resample import bin_series, crop, resize

__all__ = [
    "apply_poses",
    "convert_contrast",
    "looks_like_bright_field",
    "bin_series",
    "crop",
    "resize",
    "subtract_background",
    "mask_background",
    "fit_background",
    "normalise",
    "calibrate_haadf",
    "plot_haadf_calibration",
    "repair_pixels",
    "frame_dose",
    "series_dose",
    "record_dose",
    "STEPS",
    "Recipe",
    "register_step",
    "parse_recipe",
    "parse_step_option",
    "load_recipe",
    "save_recipe",
    "apply_recipe",
]
