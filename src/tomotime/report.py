"""Former location of :mod:`tomotime.metrics.evaluate`; kept so that old imports keep working.

Evaluation against a ground truth lives in :mod:`tomotime.metrics.evaluate`;
the HTML run report is :mod:`tomotime.viz.report`.
"""

from tomotime.metrics.evaluate import (  # noqa: F401
    evaluate_against_truth,
    format_summary_table,
    format_time_table,
    write_metrics,
)

__all__ = ["evaluate_against_truth", "write_metrics", "format_summary_table", "format_time_table"]
