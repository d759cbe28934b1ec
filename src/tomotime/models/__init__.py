"""Network building blocks shared by the self-supervised reconstructions."""

from tomotime.models.feature_grid import FeatureGrid, grid_levels
from tomotime.models.generator import SliceGenerator
from tomotime.models.hsiren import HSiren
from tomotime.models.mapping import MappingNetwork
from tomotime.models.unet import UNet

__all__ = ["MappingNetwork", "SliceGenerator", "HSiren", "FeatureGrid", "grid_levels", "UNet"]
