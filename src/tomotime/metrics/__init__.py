"""Quality and physics metrics of reconstructions: image fidelity, resolution, shape, alloying, time.

All functions take numpy arrays (or torch tensors), check shapes and values at
the door (:class:`~tomotime.errors.InputError` naming the argument) and state
their exact definition in the docstring.
"""

from tomotime.metrics.alloying import alloying_curve, alloying_percentage, particle_std
from tomotime.metrics.fsc import fourier_shell_correlation, fsc_resolution
from tomotime.metrics.image import otsu_mask, otsu_threshold, psnr, rmse_percent, ssim
from tomotime.metrics.histogram import intensity_histograms
from tomotime.metrics.morphology import (Redistribution, binarise, redistribution_curve, redistribution_map,
                                         surface_to_volume, volume_redistribution)
from tomotime.metrics.paper import otsu_masked, paper_alloying_curve, paper_mask, paper_rmse, paper_ssim
from tomotime.metrics.reprojection import reprojection_error
from tomotime.metrics.temporal import METRICS, evaluate_series, per_time, summarise

__all__ = [
    "rmse_percent",
    "ssim",
    "psnr",
    "otsu_threshold",
    "otsu_mask",
    "fourier_shell_correlation",
    "fsc_resolution",
    "binarise",
    "surface_to_volume",
    "volume_redistribution",
    "Redistribution",
    "particle_std",
    "alloying_percentage",
    "alloying_curve",
    "per_time",
    "summarise",
    "evaluate_series",
    "METRICS",
    "reprojection_error",
    "redistribution_curve",
    "redistribution_map",
    "intensity_histograms",
    "otsu_masked",
    "paper_mask",
    "paper_rmse",
    "paper_ssim",
    "paper_alloying_curve",
]
