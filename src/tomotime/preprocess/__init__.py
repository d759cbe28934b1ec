"""Preprocessing of tilt series before reconstruction."""

from tomotime.preprocess.poses import apply_poses

__all__ = ["apply_poses"]
