"""Figures: orthoslices of volumes and curves of metrics over time."""

from tomotime.viz.figures import plot_metric_curves, plot_orthoslices

__all__ = ["plot_orthoslices", "plot_metric_curves"]
