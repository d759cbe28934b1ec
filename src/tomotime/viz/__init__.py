"""Figures, movies and the self-contained HTML run report."""

from tomotime.viz.figures import plot_metric_curves, plot_orthoslices
from tomotime.viz.movie import write_movie
from tomotime.viz.report import write_report

__all__ = ["plot_orthoslices", "plot_metric_curves", "write_movie", "write_report"]
