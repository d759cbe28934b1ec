"""Differentiable forward models: projectors (forward + exact adjoint)."""

from tomotime.physics.linear_operator import LinearOperator
from tomotime.physics.parallel2d import ParallelProjector2D, project_slices
from tomotime.physics.parallel3d import VolumeProjector, project_with_poses
from tomotime.physics.row_angles import RowAngleProjector, row_angles_from_frames

__all__ = ["LinearOperator", "ParallelProjector2D", "project_slices", "VolumeProjector", "project_with_poses",
           "RowAngleProjector", "row_angles_from_frames"]
