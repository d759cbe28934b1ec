"""INR tomography: a coordinate network fitted to a tilt series through a ray forward model, with joint pose alignment.

A density field ``phi(x, y, z[, t]) >= 0`` (the paper's H-Siren, or a faster
multiresolution feature grid) is integrated along each detector pixel's ray,
cut exactly at the volume box and sampled with a ramped sample count; per-view
poses ``(z1, z3, dy, dx)`` can be learned with their own learning rate, the
view nearest 0 degrees fixed. Smooth-L1 data loss plus the field's TV;
a stratified pixel holdout gives the stopping signal and the best state.

Typical use::

    result = train_inr(series, InrConfig(align=True, epochs=40), run_dir="run")
    volume = result.model.volume()              # (Z, Y, X) at the training grid
    fine = result.model.volume((256, 256, 256))  # the same box, finer
    table = pose_table(result.model)             # learned poses per view
"""

from tomotime.recon.inr.config import FIELDS, PAPER_PRESET, InrConfig
from tomotime.recon.inr.model import InrModel, gauge_view
from tomotime.recon.inr.outputs import (
    aligned_series,
    learned_poses,
    match_gauge,
    plot_poses,
    plot_reprojection,
    pose_table,
    reprojection_errors,
    write_imod_alignment,
    write_pose_csv,
    write_reprojection_csv,
)
from tomotime.recon.inr.problem import PoseDriftWarning, check_pose_drift, estimate_memory
from tomotime.recon.inr.rays import pixel_rays, ray_box, sample_along, sample_count
from tomotime.recon.inr.store import load_model, save_model
from tomotime.recon.inr.train import train_inr

__all__ = [
    "InrConfig", "FIELDS", "PAPER_PRESET", "InrModel", "gauge_view", "train_inr", "save_model", "load_model",
    "pixel_rays", "ray_box", "sample_along", "sample_count", "estimate_memory", "check_pose_drift",
    "PoseDriftWarning", "learned_poses", "match_gauge", "pose_table", "write_pose_csv", "plot_poses", "write_imod_alignment",
    "aligned_series", "reprojection_errors", "write_reprojection_csv", "plot_reprojection",
]
