"""Dynamic scenarios: contracts, reproducibility and the physics each one promises."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.sim import (
    SCENARIOS,
    core_shell_nanorod,
    fully_mixed,
    iter_scenario,
    make_scenario,
    mixed_intensity_spread,
    nanorod_alloying,
    nanoshell_damage,
    nanostar,
    nanostar_reshaping,
    star_volume,
)


def _spread_inside(series: VolumeSeries, mask: np.ndarray) -> np.ndarray:
    return np.array([vol[mask].std(dtype=np.float64) for vol in series])


def _totals(series: VolumeSeries) -> np.ndarray:
    return np.array([vol.sum(dtype=np.float64) for vol in series])


@pytest.fixture(scope="module")
def alloying() -> VolumeSeries:
    return nanorod_alloying(32, steps=20, seed=0)


@pytest.fixture(scope="module")
def damage() -> VolumeSeries:
    return nanoshell_damage(32, steps=20, seed=0)


@pytest.fixture(scope="module")
def reshaping() -> VolumeSeries:
    return nanostar_reshaping(32, steps=20, seed=0)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_meets_the_series_contract(name):
    series = make_scenario(name, (16, 24, 20), steps=5, seed=2)
    assert isinstance(series, VolumeSeries)
    assert series.shape == (5, 16, 24, 20)
    assert np.array_equal(series.times, np.arange(5.0))
    data = series.to_numpy()
    assert data.dtype == np.float32 and np.isfinite(data).all()
    assert data.min() >= 0.0 and data.max() <= 1.0 and data[0].max() > 0.5
    assert not np.array_equal(data[0], data[-1]), "the specimen changes"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_are_reproducible_and_seeded(name):
    first = make_scenario(name, 20, steps=4, seed=5).to_numpy()
    assert np.array_equal(first, make_scenario(name, 20, steps=4, seed=5).to_numpy())
    assert not np.array_equal(first, make_scenario(name, 20, steps=4, seed=6).to_numpy())
    streamed = np.stack(list(iter_scenario(name, 20, steps=4, seed=5)))
    assert np.array_equal(first, streamed)


def test_alloying_starts_from_the_core_shell_rod(alloying):
    assert np.array_equal(alloying[0], core_shell_nanorod(32))


def test_alloying_conserves_total_intensity_and_outer_shape(alloying):
    totals = _totals(alloying)
    assert np.abs(totals / totals[0] - 1).max() < 1e-3
    particle = alloying[0] > 0
    for vol in alloying:
        assert np.array_equal(vol > 0, particle)
        assert vol[particle].min() >= 0.3 - 1e-6 and vol.max() <= 1.0


def test_alloying_spread_decreases_monotonically(alloying):
    spread = _spread_inside(alloying, alloying[0] > 0)
    assert (np.diff(spread) < 0).all(), spread
    assert spread[-1] < 0.9 * spread[0]  # measured 0.82: the paper's curve mixes slowly (about 53 % at step 99)


def test_alloying_rate_follows_the_diffusion_width():
    mask = core_shell_nanorod(32) > 0
    slow = _spread_inside(nanorod_alloying(32, steps=6, sigma=0.05), mask)
    fast = _spread_inside(nanorod_alloying(32, steps=6), mask)
    assert slow[0] == pytest.approx(fast[0])
    assert fast[-1] < slow[-1] < slow[0]


def test_fully_mixed_rod_has_no_spread_and_the_same_total(alloying):
    first = alloying[0]
    mixed = fully_mixed(first)
    assert mixed.sum(dtype=np.float64) == pytest.approx(first.sum(dtype=np.float64), rel=1e-6)
    assert mixed_intensity_spread(first) == pytest.approx(0.0, abs=1e-6)
    bigger = ndi.binary_dilation(first > 0)
    assert mixed_intensity_spread(first, mask=bigger) > 0.0


def test_damage_never_gains_material_and_loses_some(damage):
    totals = _totals(damage)
    assert (np.diff(totals) <= 0).all(), totals
    assert totals[-1] < 0.97 * totals[0]


def _cavity_open(vol: np.ndarray) -> bool:
    labels = ndi.label(vol <= 0.5)[0]
    centre = tuple(n // 2 for n in vol.shape)
    return labels[centre] == labels[0, 0, 0]


def test_damage_opens_a_hole_in_the_shell(damage):
    assert not _cavity_open(damage[0])
    assert _cavity_open(damage[len(damage) - 1])


def test_damage_strengths_switch_the_processes():
    still = nanoshell_damage(24, steps=4, knock_on=0.0, elastic=0.0).to_numpy()
    assert np.array_equal(still[0], still[-1])
    moved = nanoshell_damage(24, steps=4, knock_on=0.0, elastic=2.0)
    assert not np.array_equal(moved[0], moved[3])
    totals = _totals(moved)
    assert (np.diff(totals) <= 0).all() and totals[-1] > 0.97 * totals[0], "deformation alone keeps the material"
    strong = _totals(nanoshell_damage(24, steps=4, knock_on=3.0, elastic=0.0))
    weak = _totals(nanoshell_damage(24, steps=4, knock_on=0.5, elastic=0.0))
    assert strong[-1] < weak[-1] < weak[0]


def test_reshaping_starts_from_the_nanostar_and_conserves_volume(reshaping):
    np.testing.assert_allclose(reshaping[0], nanostar(32, n_branches=6, seed=0), atol=1e-6)
    totals = _totals(reshaping)
    assert (totals.max() - totals.min()) / totals.mean() < 0.04, totals


def test_reshaping_branches_retract_fast_then_slowly(reshaping):
    centre = (np.array(reshaping[0].shape) - 1) / 2
    extent = []
    for vol in reshaping:
        idx = np.argwhere(vol > 0.5)
        extent.append(np.sqrt(((idx - centre) ** 2).sum(axis=1)).max())
    extent = np.array(extent)
    assert (np.diff(extent) <= 1e-9).all(), extent
    assert extent[-1] < 0.6 * extent[0]
    assert extent[0] - extent[5] > extent[10] - extent[15], "slows down over time"
    core = reshaping[len(reshaping) - 1]
    assert core.max() == 1.0 and core[16, 16, 16] == 1.0


def test_star_volume_matches_the_rendered_star():
    n = 64
    star = nanostar(n, n_branches=6, seed=0)
    assert star.sum(dtype=np.float64) == pytest.approx(star_volume(0.3, 0.55, 0.14, 6) * (n / 2) ** 3, rel=0.02)
    assert star_volume(0.3, 0.0, 0.14, 6) == pytest.approx(4 / 3 * np.pi * 0.3**3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_scenario("melting", 32, 10), "nanorod-alloying, nanoshell-damage"),
        (lambda: make_scenario("nanorod-alloying", 8, 10), "at least 16"),
        (lambda: make_scenario("nanorod-alloying", 32, 1), "steps"),
        (lambda: make_scenario("nanorod-alloying", 32, 2.5), "steps"),
        (lambda: make_scenario("nanoshell-damage", 32, 10, knock_on=-1), "knock_on"),
        (lambda: make_scenario("nanoshell-damage", 32, 10, elastic=float("nan")), "elastic"),
        (lambda: make_scenario("nanostar-reshaping", 32, 10, tau=0), "tau"),
        (lambda: make_scenario("nanostar-reshaping", 32, 10, speed=2), "speed"),
        (lambda: iter_scenario("nanorod-alloying", 12, 10), "at least 16"),
        (lambda: nanorod_alloying(32, steps=0), "steps"),
        (lambda: nanorod_alloying(32, steps=4, convolutions=-1), "convolutions"),
    ],
)
def test_bad_input_is_refused_before_any_work(call, match):
    with pytest.raises(InputError, match=match):
        call()
