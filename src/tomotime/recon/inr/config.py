"""Options of INR tomography (pydantic, on top of the training engine's options)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from tomotime.training import TrainingConfig

__all__ = ["InrConfig", "FIELDS", "PAPER_PRESET"]

FIELDS = ("grid", "hsiren")

#: The INR paper's settings (H-Siren 4 x 512, omega0 = 30, smooth-L1 beta 0.07, pose lr 5e-2, 1,024 rays a step).
PAPER_PRESET: dict[str, Any] = {
    "field": "hsiren", "hidden_layers": 4, "width": 512, "omega0": 30.0, "smooth_l1_beta": 0.07,
    "pose_lr": 5e-2, "batch_size": 1024, "lr": 8e-6, "lr_schedule": "cosine", "tv_weight": 1e-4,
    "tv_gradient": "autograd", "shared_axis": False, "axis_start": "zero", "shift_start": "zero",
    "pin_object": False,
}


class InrConfig(TrainingConfig):
    """Options of an INR reconstruction with (optional) joint pose refinement.

    Engine options (``steps``, ``epochs``, ``batch_size`` = rays per step, ``lr``,
    schedule, holdout, ...) are those of :class:`tomotime.training.TrainingConfig`;
    a training sample is one detector pixel and a held-out unit is one pixel.

    Parameters
    ----------
    field : {"grid", "hsiren"}
        Representation: a multiresolution feature grid with a small MLP (fast,
        the default) or the paper's H-Siren MLP.
    hidden_layers, width, omega0 : int, int, float
        H-Siren sine layers after the first, their width, and the frequency factor.
    grid_resolution, grid_levels, grid_features, grid_width : int
        Finest grid size per side (None: the volume's largest side), number of
        levels (halving), features per level, width of the grid's MLP.
    dynamic : bool
        Time as a fourth input (a 4D field for a tilt-time series).
    time_knots : int
        Knots along time of the dynamic grid field.
    align : bool
        Learn per-view poses ``(z1, z3, dy, dx)``; the view nearest 0 deg stays fixed.
    align_angles : bool
        With ``align``: learn the in-plane angles ``z1, z3`` of every view as well as its shifts.
    shared_axis : bool
        With ``align``: also learn one tilt-axis angle common to all views
        (``z1 = z3 = alpha``, no effect at 0 deg, so it leaves the gauge alone); a
        tilt-axis error is then found from all views at once (not in the paper).
        With ``align_angles=False`` the poses are the shifts and this one angle
        (the usual model of classical alignment); both False: shifts only.
    axis_start : {"common-lines", "zero"}
        With ``align`` and ``shared_axis``: where the shared tilt-axis angle
        starts, at the common-line estimate of
        :func:`tomotime.recon.inr.pose_start.common_line_axis` (after a
        cross-correlation shift alignment; the default) or at 0 (beyond the
        series' own poses). Learned from 0, the angle stops short of a large
        turn (not in the paper; see ``benchmarks/README.md``). A dynamic field
        starts at 0: the criterion assumes an unchanging object.
    shift_start : {"zero", "xcorr"}
        With ``align``: where the per-view shifts start, at the series' own
        poses (the default, as in the paper) or at the project's
        cross-correlation alignment (:func:`tomotime.recon.inr.pose_start.xcorr_start`;
        not in the paper). On a real series (NCEM FIB lamella) the shifts learned
        from "zero" settle 4.6 px RMS across the axis from TomViz's alignment,
        from "xcorr" within 0.5 px. The object then sits where the
        cross-correlation's reference view puts it, not necessarily centred
        (1.9 px off on the simulated tilt-axis benchmark, whose SSIM against the
        centred truth drops accordingly). A dynamic field starts at the series'
        poses: cross-correlation assumes an unchanging object.
    axis_hold : float
        With ``shared_axis``: fraction of the steps during which the shared axis
        stays at its start while the field and the other poses are learned
        (released at once, the unformed field pulls it away and it comes back
        only part of the way; 1: never learned, the start is kept; not in the paper).
    pin_object : bool
        With ``align``: remove from the learned per-view corrections the common
        modes that move or turn the whole object (the mean of ``z1``, of ``z3``
        and of ``dy``; ``dx`` along ``cos(theta)`` and ``sin(theta)``). The data
        hardly determine them (only the gauge view opposes them), so without
        this the object drifts while the poses are learned (not in the paper).
    pose_lr : float
        Adam learning rate of the pose parameters (degrees and pixels per step, at the peak).
    samples : int, optional
        Samples per ray at the end of the ramp (None: the volume's largest side).
    samples_start : int
        Samples per ray at step 0.
    sample_ramp_epochs : float
        Epochs over which the sample count ramps up linearly.
    smooth_l1_beta : float
        Transition of the smooth-L1 data loss, in units of the normalised data (maximum 1).
    tv_weight : float
        Weight ``alpha`` of the field's total variation ``mean |grad phi|``.
    time_tv_weight : float
        Dynamic field: weight of its total variation over time, ``mean |d phi / dt|``
        (``t`` normalised to [-1, 1] over the acquisition; not in the paper).
    tv_fraction : float
        Fraction of the sampled points where the TV terms are evaluated.
    tv_gradient : {"finite", "autograd"}
        ``grad phi`` by one-voxel forward differences (fast) or by automatic differentiation (the paper).
    stratified_holdout : bool
        Hold out the same fraction of foreground and background pixels (Otsu split of the data).
    thickness : int, optional
        Volume size Z along the beam (None: the detector width X).
    memory_limit_gb : float, optional
        Refuse a problem whose estimated training memory exceeds this (None: the device's memory).
    """

    method: ClassVar[str] = "inr"

    batch_size: int = Field(1024, ge=1)
    lr: float = Field(1e-2, gt=0, allow_inf_nan=False)
    epochs: float = Field(40.0, gt=0, allow_inf_nan=False)
    eval_every: int = Field(50, ge=1)
    holdout_fraction: float = Field(0.05, ge=0, lt=0.5)
    # Measured (benchmarks/bench_inr*.py) without the engine's warm-up, clipping and weight average; a
    # global-norm clip would also couple the poses' step (degrees, pixels) to the field's gradient.
    lr_warmup: float = Field(0.0, ge=0, lt=0.5)
    grad_clip: float | None = Field(None, gt=0, allow_inf_nan=False)
    ema_decay: float | None = Field(None, gt=0, lt=1)
    field: Literal["grid", "hsiren"] = "grid"
    hidden_layers: int = Field(3, ge=0)
    width: int = Field(256, ge=1)
    omega0: float = Field(30.0, gt=0, allow_inf_nan=False)
    grid_resolution: int | None = Field(None, ge=4)
    grid_levels: int = Field(3, ge=1, le=8)
    grid_features: int = Field(4, ge=1)
    grid_width: int = Field(64, ge=1)
    dynamic: bool = False
    time_knots: int = Field(8, ge=2)
    align: bool = False
    align_angles: bool = True
    shared_axis: bool = True
    axis_start: Literal["common-lines", "zero"] = "common-lines"
    axis_hold: float = Field(0.2, ge=0, le=1)
    shift_start: Literal["zero", "xcorr"] = "zero"
    pin_object: bool = True
    pose_lr: float = Field(5e-2, gt=0, allow_inf_nan=False)
    samples: int | None = Field(None, ge=2)
    samples_start: int = Field(16, ge=2)
    sample_ramp_epochs: float = Field(2.0, ge=0, allow_inf_nan=False)
    smooth_l1_beta: float = Field(0.07, gt=0, allow_inf_nan=False)
    tv_weight: float = Field(1e-4, ge=0, allow_inf_nan=False)
    time_tv_weight: float = Field(0.0, ge=0, allow_inf_nan=False)
    tv_fraction: float = Field(0.1, gt=0, le=1)
    tv_gradient: Literal["finite", "autograd"] = "finite"
    stratified_holdout: bool = True
    thickness: int | None = Field(None, ge=2)
    memory_limit_gb: float | None = Field(None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check_combinations(self) -> InrConfig:
        if self.samples is not None and self.samples_start > self.samples:
            raise ValueError(f"samples_start={self.samples_start} exceeds samples={self.samples}")
        return self

    @classmethod
    def paper(cls, **changes: Any) -> InrConfig:
        """The paper's settings (:data:`PAPER_PRESET`) with ``changes`` applied."""
        return cls(**{**PAPER_PRESET, **changes})
