"""The simulated acquisitions of the INR paper's sweeps, on the sea-mine phantom.

Each scenario is a static sea-mine volume (``tomotime.sim.phantoms.sea_mine``)
recorded with the project's simulator (``simulate_acquisition``):

* ``wedge`` -- missing wedge of 20 deg: +-80 deg in 1 deg steps (161 views);
* ``sparse`` -- 9 views over +-90 deg (every 20 deg from -80 to +80);
* ``dose`` -- +-80 deg in 2 deg steps (81 views) at a dose of 10 counts per
  pixel: projections are scaled so that their brightest pixel is 1, then
  ``Poisson(I * dose) / dose`` (so the brightest pixel receives 10 counts on average);
* ``axis`` -- +-70 deg in 2 deg steps (71 views), the tilt axis turned in the
  image plane by 10 deg (the object turned by -10 deg about the beam, then
  every image turned by +10 deg: the 0 deg view is the object's own) and random
  shifts (normal, 2 px) per view; the truth poses ``(z1, z3, dy, dx) = (10, 10, dy, dx)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.sim import simulate_acquisition
from tomotime.sim.phantoms import sea_mine

__all__ = ["SCENARIOS", "Scenario", "make"]

SCENARIOS = ("wedge", "sparse", "dose", "axis")
DOSE, AXIS_ERROR, SHIFT_STD = 10.0, 10.0, 2.0


@dataclass
class Scenario:
    name: str
    series: TiltSeries
    truth: np.ndarray
    true_poses: np.ndarray | None  # (N, 4) as (z1, z3, dy, dx)
    description: str
    posed_truth: np.ndarray | None = None  # what the project's pose model (no z1) reconstructs: the turned object


def _angles(name: str) -> np.ndarray:
    return {"wedge": np.arange(-80.0, 80.5, 1.0), "sparse": np.linspace(-80.0, 80.0, 9),
            "dose": np.arange(-80.0, 80.5, 2.0), "axis": np.arange(-70.0, 70.5, 2.0),
            "speed": np.linspace(-70.0, 70.0, 30)}[name]


def turn_about_beam(volume: np.ndarray, degrees: float) -> np.ndarray:
    """``f(R(a) p)`` for the rotation ``R(a)`` of ``(x, y)`` about Z: the pose ``z1 = a`` of the INR rays."""
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    matrix = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])  # (z, y, x) -> (z, s x + c y, c x - s y)
    centre = (np.array(volume.shape) - 1) / 2
    return ndimage.affine_transform(volume, matrix, offset=centre - matrix @ centre, order=1).astype(np.float32)


def make(name: str, size: int, *, seed: int = 0, axis_error: float = AXIS_ERROR) -> Scenario:
    """The scenario ``name`` at ``size^3`` voxels (see the module description); ``seed`` draws the
    phantom, the shifts and the noise, ``axis_error`` (degrees) is the tilt-axis turn of ``axis``."""
    truth = sea_mine(size, seed=seed).astype(np.float32)
    angles = _angles(name)
    frozen = VolumeSeries(np.broadcast_to(truth, (len(angles), *truth.shape)))
    if name == "dose":
        clean = simulate_acquisition(frozen, angles=angles)
        peak = float(clean.images.max())
        series = simulate_acquisition(frozen, angles=angles, dose=DOSE / peak, seed=seed)
        return Scenario(name, series, truth, None, f"+-80 deg / 2 deg, {DOSE:g} counts at the brightest pixel")
    if name == "axis":
        turned = VolumeSeries(np.broadcast_to(turn_about_beam(truth, axis_error), frozen.shape))
        series = simulate_acquisition(turned, angles=angles, axis_rotation=axis_error, shift_std=SHIFT_STD,
                                      seed=seed)
        p = np.asarray(series.metadata["true_poses"], np.float64)
        true = np.stack([p[:, 0], p[:, 0], p[:, 2], p[:, 3]], axis=1)
        series = TiltSeries(series.images, angles)  # the poses are what alignment must find
        return Scenario(name, series, truth, true,
                        f"+-70 deg / 2 deg, tilt axis off by {axis_error:g} deg, shifts N(0, {SHIFT_STD:g} px)",
                        turned.data[0])
    series = simulate_acquisition(frozen, angles=angles)
    text = {"wedge": "+-80 deg / 1 deg (20 deg missing wedge)", "sparse": "9 views over +-90 deg",
            "speed": "30 views over +-70 deg"}[name]
    return Scenario(name, series, truth, None, text)
