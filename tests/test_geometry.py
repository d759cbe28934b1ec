"""Tilt schemes, acquisition plans and poses."""

from __future__ import annotations

import numpy as np
import pytest

from tomotime.errors import InputError
from tomotime.geometry import (
    GOLDEN_RATIO,
    Pose,
    acquisition_plan,
    dose_symmetric_angles,
    grs_angles,
    incremental_angles,
    poses_to_array,
    tilt_scheme,
)

SCHEMES = [grs_angles, incremental_angles, dose_symmetric_angles]


def _max_gap(angles: np.ndarray, start: float, stop: float) -> float:
    """Largest uncovered interval of [start, stop], range ends included."""
    return float(np.diff(np.sort(np.r_[start, angles, stop])).max())


def test_golden_ratio():
    assert GOLDEN_RATIO == pytest.approx(1.6180339887498949, abs=1e-15)


def test_grs_first_values_by_hand():
    # theta_i = start + frac(i * phi) * R, with frac(phi) = phi - 1, frac(2 phi) = 2 phi - 3, frac(3 phi) = 3 phi - 4
    phi, start, span = (1 + 5**0.5) / 2, -70.0, 140.0
    expected = [start, start + (phi - 1) * span, start + (2 * phi - 3) * span, start + (3 * phi - 4) * span]
    np.testing.assert_allclose(grs_angles(4), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(grs_angles(4), [-70.0, 16.5247584, -36.9504832, 49.5742753], atol=1e-6)


@pytest.mark.parametrize("n, start, stop", [(200, -70.0, 70.0), (57, -60.0, 45.0), (10, 0.0, 180.0)])
def test_grs_matches_formula_and_range(n, start, stop):
    angles = grs_angles(n, start, stop)
    span = stop - start
    i = np.arange(n)
    np.testing.assert_allclose(angles, np.mod(i * span * GOLDEN_RATIO, span) + start, atol=1e-9)
    assert angles.shape == (n,) and angles.dtype == np.float64
    assert (angles >= start).all() and (angles < stop).all()
    assert np.unique(angles).size == n


def test_grs_windows_cover_the_range():
    """Every window of w consecutive GRS views leaves no gap wider than 2.5 R / w."""
    n, w, start, stop = 200, 30, -70.0, 70.0
    limit = 2.5 * (stop - start) / w
    grs = grs_angles(n, start, stop)
    assert max(_max_gap(grs[i:i + w], start, stop) for i in range(n - w + 1)) <= limit
    # the same check rejects sequential tilting, so it measures something
    inc = incremental_angles(n, start, stop)
    assert max(_max_gap(inc[i:i + w], start, stop) for i in range(n - w + 1)) > limit


def test_incremental():
    np.testing.assert_allclose(incremental_angles(5, -60, 60), [-60, -30, 0, 30, 60])
    np.testing.assert_allclose(incremental_angles(1, -60, 40), [-10.0])


def test_dose_symmetric_values():
    np.testing.assert_allclose(dose_symmetric_angles(5, -60, 60), [0, 30, -30, 60, -60])
    np.testing.assert_allclose(dose_symmetric_angles(4, -60, 60), [0, 30, -30, 60])
    np.testing.assert_allclose(dose_symmetric_angles(3, -40, 60), [10, 60, -40])
    np.testing.assert_allclose(dose_symmetric_angles(1, -60, 60), [0.0])


@pytest.mark.parametrize("n", range(1, 14))
def test_dose_symmetric_alternates_outwards(n):
    start, stop = -60.0, 60.0
    angles = dose_symmetric_angles(n, start, stop)
    assert angles.shape == (n,) and angles[0] == 0.0
    assert (angles >= start - 1e-9).all() and (angles <= stop + 1e-9).all()
    assert np.unique(np.round(angles, 9)).size == n
    assert (np.diff(np.abs(angles)) >= -1e-9).all()
    assert (np.sign(angles[1::2]) > 0).all() and (np.sign(angles[2::2]) < 0).all()
    if n > 1:
        assert angles.max() == pytest.approx(stop)


@pytest.mark.parametrize("name, fn", [("grs", grs_angles), ("incremental", incremental_angles),
                                      ("dose-symmetric", dose_symmetric_angles)])
def test_tilt_scheme_dispatch(name, fn):
    np.testing.assert_array_equal(tilt_scheme(name, 9, -50, 50), fn(9, -50, 50))


def test_tilt_scheme_unknown_name():
    with pytest.raises(InputError, match=r"scheme='golden'.*dose-symmetric.*grs.*incremental"):
        tilt_scheme("golden", 10)


@pytest.mark.parametrize("fn", SCHEMES)
@pytest.mark.parametrize("n, start, stop, match", [
    (0, -70, 70, r"n=0: expected a positive integer"),
    (-3, -70, 70, r"n=-3"),
    (2.5, -70, 70, r"n=2.5"),
    (10, 70, -70, r"start=70, stop=-70: expected start < stop"),
    (10, 20, 20, r"start=20, stop=20"),
])
def test_schemes_reject_bad_ranges(fn, n, start, stop, match):
    with pytest.raises(InputError, match=match):
        fn(n, start, stop)


ROUTE = [0.0, 10.0, 5.0, 20.0, -10.0]


def test_acquisition_plan_without_backlash():
    plan = acquisition_plan(np.array(ROUTE))
    assert [p["index"] for p in plan] == list(range(5))
    assert [p["angle_deg"] for p in plan] == ROUTE
    assert [p["move_deg"] for p in plan] == [0.0, 10.0, -5.0, 15.0, -30.0]
    assert all(p["pre_angle_deg"] is None for p in plan)


@pytest.mark.parametrize("approach, expected", [
    ("+", [-2.0, None, 3.0, None, -12.0]),  # overshoot below, then come up, wherever the stage moved down
    ("-", [2.0, 12.0, None, 22.0, None]),
])
def test_acquisition_plan_backlash_pre_angles(approach, expected):
    plan = acquisition_plan(ROUTE, backlash=2.0, approach=approach)
    assert [p["pre_angle_deg"] for p in plan] == expected


def test_acquisition_plan_bad_options():
    with pytest.raises(InputError, match=r"approach='up'"):
        acquisition_plan(ROUTE, approach="up")
    with pytest.raises(InputError, match=r"backlash=-1.0"):
        acquisition_plan(ROUTE, backlash=-1.0)


def test_poses():
    pose = Pose(axis_rotation=1.5, axis_tilt=-0.5, shift_y=2.0, shift_x=-3.0)
    assert pose.as_array().dtype == np.float32
    np.testing.assert_array_equal(pose.as_array(), [1.5, -0.5, 2.0, -3.0])
    np.testing.assert_array_equal(poses_to_array([Pose(), pose]), [[0, 0, 0, 0], [1.5, -0.5, 2.0, -3.0]])
    arr = poses_to_array(np.ones((3, 4), np.float64))
    assert arr.shape == (3, 4) and arr.dtype == np.float32
    for bad in (np.ones((3, 3)), np.ones(4), [], np.ones((2, 4, 1))):
        with pytest.raises(InputError, match=r"poses: expected shape \(N, 4\)"):
            poses_to_array(bad)
