"""Make ``docs/images/haadf_calibration.png``: the calibration of the benchmark's simulated shadowed series.

Run from the repository root: ``python docs/_scripts/haadf_calibration_figure.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_preprocess import parse_args, simulate  # noqa: E402

from tomotime.preprocess import calibrate_haadf, plot_haadf_calibration  # noqa: E402

if __name__ == "__main__":
    series = simulate(parse_args([]))["shadowed"]
    record = calibrate_haadf(series).metadata["preprocessing"][-1]
    print(plot_haadf_calibration(record, ROOT / "docs" / "images" / "haadf_calibration.png"))
