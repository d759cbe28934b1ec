"""ALPS and ALPS*: hand-computed cases with ties, detectda's values, polygons, calibration, the null test."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tomotime.errors import InputError
from tomotime.metrics.alps import (
    PAPER_BETA,
    alps,
    alps_star,
    benjamini_hochberg,
    calibrate_vacuum,
    frame_alps,
    lifetimes,
    poisson_null_test,
    polygon_mask,
)

REFERENCE = Path(__file__).parent / "data" / "alps_detectda.json"


@pytest.mark.parametrize("values,expected", [
    ([1.0, 2.0, 2.0], math.log(3) + math.log(2)),  # detectda's helper returns log 3 here
    ([2.0, 1.0, 2.0], math.log(3) + math.log(2)),
    ([1.0, 1.0], math.log(2)),
    ([3.0], 0.0),
    ([0.0, 0.0, 1.0], 0.0),  # zero lifetimes never count
    ([0.5, 1.5, 4.0], 0.5 * math.log(3) + 1.0 * math.log(2)),
    ([], 0.0),
])
def test_alps_of_hand_computed_lifetimes_with_ties(values, expected):
    assert alps(np.array(values)) == pytest.approx(expected, abs=1e-12)


def test_alps_refuses_negative_lifetimes():
    with pytest.raises(InputError, match=">= 0"):
        alps(np.array([1.0, -0.5]))


def test_lifetimes_of_a_hand_made_frame_with_tied_minima():
    frame = np.array([[0.0, 5.0, 0.0, 5.0, 2.0]])
    # two tied minima at 0 (one essential, dying at the maximum 5; the other merges at 5) and one at 2 (merges at 5)
    assert sorted(lifetimes(frame, sigma=0)) == [3.0, 5.0, 5.0]
    assert frame_alps(frame, sigma=0) == pytest.approx(3 * math.log(3) + 2 * math.log(2))
    left = np.zeros((1, 5), dtype=bool)
    left[0, :2] = True
    assert lifetimes(frame, sigma=0, mask=left).tolist() == [5.0]  # only the feature born at column 0


def test_equals_detectda_on_tie_free_frames():
    cases = json.loads(REFERENCE.read_text())["cases"]
    for case in cases:
        frame = np.random.default_rng(case["seed"]).poisson(case["rate"], case["shape"]).astype(np.float64)
        mask = None if case["polygon"] is None else polygon_mask(case["polygon"], frame.shape)
        assert frame_alps(frame, sigma=case["sigma"], mask=mask) == pytest.approx(case["detectda_alps"], rel=1e-9)


def test_equals_detectda_when_it_is_installed():
    spec = importlib.util.find_spec("detectda")
    if spec is None or importlib.util.find_spec("shapely") is None:
        pytest.skip("detectda (and shapely) not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from alps_reference import CASES, frame
    from shapely.geometry import Polygon

    folder = Path(spec.submodule_search_locations[0])
    helper = importlib.util.spec_from_file_location("detectda_hlpr", folder / "hlpr.py")
    hlpr = importlib.util.module_from_spec(helper)
    helper.loader.exec_module(hlpr)
    case = CASES[0]
    diag = hlpr.fitsmoo(frame(case), Polygon(case["polygon"]), sigma=case["sigma"])
    ours = frame_alps(frame(case), sigma=case["sigma"], mask=polygon_mask(case["polygon"], tuple(case["shape"])))
    assert ours == pytest.approx(hlpr.alps(diag[diag[:, 3].astype(bool), 2]), rel=1e-9)


@pytest.mark.parametrize("polygon,fragment", [
    ([[1, 1], [5, 1]], "at least 3"),
    ([[1, 1], [40, 1], [5, 5]], "outside the 20 x 10 px frame"),
    ([[1, 1], [8, 8], [8, 1], [1, 8]], "intersects itself"),
    ("not a polygon", "at least 3"),
    ([[1, 1], [1.2, 1.1], [1.1, 1.3]], "no pixel centre"),
])
def test_bad_polygons_are_refused(polygon, fragment):
    with pytest.raises(InputError, match=fragment):
        polygon_mask(polygon, (10, 20))


def test_polygon_mask_uses_x_for_columns_and_y_for_rows():
    mask = polygon_mask([[5.5, 0.5], [8.5, 0.5], [8.5, 2.5], [5.5, 2.5]], (10, 20))
    assert mask.sum() == 3 * 2 and mask[1:3, 6:9].all()


def test_benjamini_hochberg_against_a_hand_computed_case():
    p = np.array([0.01, 0.04, 0.03, 0.5, 0.02])
    # sorted 0.01 0.02 0.03 0.04 0.5 vs 0.05 * k / 5 = 0.01 0.02 0.03 0.04 0.05: the first four pass
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True, True, False, True]
    assert not benjamini_hochberg(np.array([0.2, 0.3]), 0.05).any()


def test_alps_star_is_about_one_on_noise_after_calibration():
    rng = np.random.default_rng(0)
    noise = rng.poisson(2.0, (6, 40, 40)).astype(float)
    everywhere = np.ones((40, 40), dtype=bool)
    b0, b1 = calibrate_vacuum(noise[:3], everywhere)
    region = polygon_mask([[4.5, 4.5], [34.5, 4.5], [34.5, 34.5], [4.5, 34.5]], (40, 40))
    star = alps_star([frame_alps(f, mask=region) for f in noise[3:]], int(region.sum()), (b0, b1))
    assert np.all(np.abs(star - 1) < 0.15)
    assert alps_star(PAPER_BETA[0] + PAPER_BETA[1] * math.log(100), 100) == pytest.approx(1.0)


def test_poisson_null_flags_an_ordered_lattice_not_noise():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:32, 0:32]
    lattice = 3.0 * (1 - 0.9 * (np.cos(2 * np.pi * yy / 10) * np.cos(2 * np.pi * xx / 10) > 0.5))
    frames = np.stack([rng.poisson(3.0, (32, 32)) for _ in range(3)] + [rng.poisson(lattice) for _ in range(2)])
    roi = polygon_mask([[4.5, 4.5], [27.5, 4.5], [27.5, 27.5], [4.5, 27.5]], (32, 32))
    vacuum = np.zeros((32, 32), dtype=bool)
    vacuum[:, :] = True
    test = poisson_null_test(frames[:3].astype(float), roi, vacuum, n_sim=99, seed=0,
                             observed=np.array([frame_alps(f, mask=roi) for f in frames.astype(float)]))
    assert test.rate == pytest.approx(3.0, rel=0.05)
    assert test.significant.tolist() == [False, False, False, True, True]


def test_a_vacuum_too_small_for_the_null_is_refused():
    small = np.zeros((32, 32), dtype=bool)
    small[:3, :3] = True
    with pytest.raises(InputError, match="too|at least"):
        poisson_null_test(np.ones((2, 32, 32)), np.ones((32, 32), dtype=bool), small, n_sim=2)


def test_alps_star_of_the_real_vacuum_video_is_about_one_with_the_papers_betas(real_data):
    video = np.load(real_data / "insitu_tem_vacuum_noise_video" / "vacuum_video_uint16.npy")[1:13].astype(float)
    h, w = video.shape[1:]
    region = polygon_mask([[2.5, 2.5], [w - 3.5, 2.5], [w - 3.5, h - 3.5], [2.5, h - 3.5]], (h, w))
    star = alps_star([frame_alps(f / 32.0, mask=region) for f in video], int(region.sum()))
    assert abs(float(np.mean(star)) - 1.0) < 0.1
