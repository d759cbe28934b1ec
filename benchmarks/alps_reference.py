"""Record detectda's ALPS on seeded tie-free frames, for tests/test_alps.py to compare against.

Run with detectda's helper module importable (``pip install detectda shapely``)::

    python benchmarks/alps_reference.py

It loads ``detectda/hlpr.py`` alone (the package's ``__init__`` needs joblib and
scikit-learn, which the comparison does not use) and writes
``tests/data/alps_detectda.json``: for each case the generator seed, frame
shape, Poisson rate, polygon and smoothing, and detectda's value.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

CASES = [
    {"seed": 1, "shape": [40, 50], "rate": 3.0, "sigma": 2.0,
     "polygon": [[5.3, 4.1], [44.2, 8.7], [38.9, 33.2], [9.1, 30.4]]},
    {"seed": 2, "shape": [32, 32], "rate": 0.5, "sigma": 2.0, "polygon": None},
    {"seed": 3, "shape": [36, 28], "rate": 8.0, "sigma": 1.0, "polygon": [[2.5, 3.5], [25.5, 2.5], [14.2, 33.7]]},
    {"seed": 4, "shape": [30, 30], "rate": 1.5, "sigma": 2.0,
     "polygon": [[3.3, 3.3], [26.6, 3.1], [26.2, 26.4], [3.1, 26.7]]},
]


def frame(case: dict) -> np.ndarray:
    """The case's frame: Poisson counts as float64."""
    return np.random.default_rng(case["seed"]).poisson(case["rate"], case["shape"]).astype(np.float64)


def main() -> None:
    from importlib.metadata import version

    from shapely.geometry import Polygon

    folder = Path(importlib.util.find_spec("detectda").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("hlpr", folder / "hlpr.py")
    hlpr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hlpr)
    out = []
    for case in CASES:
        poly = None if case["polygon"] is None else Polygon(case["polygon"])
        diag = hlpr.fitsmoo(frame(case), poly, sigma=case["sigma"])
        out.append({**case, "detectda_alps": float(hlpr.alps(diag[diag[:, 3].astype(bool), 2]))})
    path = Path(__file__).resolve().parents[1] / "tests" / "data" / "alps_detectda.json"
    path.write_text(json.dumps({"detectda_version": version("detectda"), "cases": out}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
