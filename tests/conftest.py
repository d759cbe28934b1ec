"""Shared fixtures: seeded generators, smooth phantoms, the real-data folder, GPU skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def pytest_configure(config: pytest.Config) -> None:
    # The suite runs in parallel workers (pytest -n 2): one torch thread each avoids
    # oversubscribing the cores, which slows small sparse products by 100x or more.
    torch.set_num_threads(1)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")


def make_smooth_phantom(shape: tuple[int, ...], *, seed: int = 0, n_blobs: int = 4,
                        width: tuple[float, float] = (0.15, 0.25), extent: float = 0.3) -> np.ndarray:
    """Sum of Gaussian blobs on a 2D or 3D grid (float64), positive and negligible at the border.

    Blob centres lie within ``extent * r`` of the grid centre and widths are
    ``width * r`` with ``r`` half the smallest side, so with the defaults the
    object sits well inside the inscribed circle/sphere.
    """
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    radius = min(shape) / 2
    out = np.zeros(shape)
    for _ in range(n_blobs):
        centre = rng.uniform(-extent, extent, len(shape)) * radius
        sigma = rng.uniform(*width) * radius
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
        out += rng.uniform(0.5, 1.0) * np.exp(-dist2 / (2 * sigma**2))
    return out


@pytest.fixture
def smooth_phantom():
    """Factory ``smooth_phantom(shape, *, seed=0, ...) -> np.ndarray`` (float64), see :func:`make_smooth_phantom`."""
    return make_smooth_phantom


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def real_data() -> Path:
    """The folder of real experimental data next to the repository, or skip."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA
