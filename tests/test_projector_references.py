"""The projector's geometry pinned against independent implementations.

* scikit-image ``radon``: ours(theta) == radon(theta), slice rows = Z, on odd sizes.
* astra-toolbox 2D ``parallel`` geometry, ``linear`` (Joseph) projector, CPU only:
  ours(theta) == astra(theta) with ``create_vol_geom(Z, X)``. Only 2D astra
  functions are called; its 3D functions need a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import radon

from tomotime.physics import ParallelProjector2D

ANGLES = np.array([-70.0, -33.3, -5.0, 0.0, 12.5, 45.0, 60.0, 89.0, 90.0, 120.0, 179.0])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _radon_centre(f: np.ndarray, angles: np.ndarray, n_det: int) -> np.ndarray:
    """``radon(f, angles, circle=False)`` cropped to the ``n_det`` central bins, as ``(A, D)``.

    radon pads the image to its diagonal and puts the rotation centre at bin
    ``L // 2``, which is our detector centre ``(D - 1) / 2`` for odd ``D``.
    """
    full = radon(f, angles, circle=False)
    start = full.shape[0] // 2 - n_det // 2
    return full[start:start + n_det].T


@pytest.mark.parametrize("shape, n_det", [((31, 31), 31), ((33, 33), 41), ((25, 41), 41), ((41, 25), 45),
                                          ((21, 35), 27)])
def test_matches_skimage_radon(smooth_phantom, shape, n_det):
    f = smooth_phantom(shape)
    ours = ParallelProjector2D(ANGLES, shape, n_det=n_det, dtype=torch.float64)(torch.tensor(f)).numpy()
    assert _rel(ours, _radon_centre(f, ANGLES, n_det)) <= 0.02
    assert _rel(ours, _radon_centre(f, -ANGLES, n_det)) > 0.2  # the sign is really pinned


@pytest.fixture
def astra():
    return pytest.importorskip("astra")


def _astra_linear(astra, shape, n_det, angles_deg):
    vol_geom = astra.create_vol_geom(*shape)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n_det, np.radians(angles_deg))
    return astra.create_projector("linear", proj_geom, vol_geom)


@pytest.mark.parametrize("shape, n_det", [((31, 31), 31), ((19, 25), 29), ((26, 20), 24)])
def test_matches_astra_parallel_linear_cpu(astra, smooth_phantom, shape, n_det):
    f = smooth_phantom(shape, seed=1).astype(np.float32)
    op = ParallelProjector2D(ANGLES, shape, n_det=n_det)
    ours = op(torch.tensor(f)).numpy()
    projector = _astra_linear(astra, shape, n_det, ANGLES)
    flipped = _astra_linear(astra, shape, n_det, -ANGLES)
    try:
        sino_id, sino = astra.create_sino(f, projector)
        astra.data2d.delete(sino_id)
        # the same Joseph discretisation: agreement to float precision, not just interpolation error
        assert _rel(ours, sino) < 1e-3
        sino_id, sino_flipped = astra.create_sino(f, flipped)
        astra.data2d.delete(sino_id)
        assert _rel(ours, sino_flipped) > 0.2

        y = np.random.default_rng(2).standard_normal(ours.shape).astype(np.float32)
        back_id, back = astra.create_backprojection(y, projector)
        astra.data2d.delete(back_id)
        assert _rel(op.adjoint(torch.tensor(y)).numpy(), back) < 1e-3
    finally:
        astra.projector.delete(projector)
        astra.projector.delete(flipped)
