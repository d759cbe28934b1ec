"""Network building blocks shared by the self-supervised reconstructions."""

from tomotime.models.generator import SliceGenerator
from tomotime.models.mapping import MappingNetwork

__all__ = ["MappingNetwork", "SliceGenerator"]
