"""Classical reconstruction: FBP, SIRT, EM and sliding-window dynamic reconstruction."""

from tomotime.solvers.em import em
from tomotime.solvers.fbp import FILTERS, angular_weights, fbp, ramp_filter
from tomotime.solvers.sirt import sirt
from tomotime.solvers.sliding_window import sliding_window, window_indices
from tomotime.solvers.static import METHODS, reconstruct

__all__ = ["fbp", "sirt", "em", "reconstruct", "sliding_window", "window_indices", "ramp_filter",
           "angular_weights", "FILTERS", "METHODS"]
