"""The alloying curve's shape, scenario parameters and their validation, ``simulate --param``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_input_error, invoke
from tomotime.errors import InputError
from tomotime.io import read_volume_series
from tomotime.metrics import paper_alloying_curve
from tomotime.sim import make_scenario, nanorod_alloying
from tomotime.sim.parameters import SCENARIO_PARAMETERS, describe_parameters, scenario_parameters
from tomotime.sim.scenarios import SCENARIOS


@pytest.fixture(scope="module")
def rod_curve() -> np.ndarray:
    truth = nanorod_alloying(32, steps=40, seed=0)
    return paper_alloying_curve(truth, truth=truth, fixed_mask=True)


def test_default_alloying_rises_slowly_over_the_whole_run_on_a_small_grid(rod_curve):
    """Shape of the paper's curve: ~10 % after one step, still rising late.

    Measured at 32^3: 6.1 % after step 1, 21.3 % at step 10, 38.0 % at step 39.
    """
    c = rod_curve
    assert c[0] == pytest.approx(0.0, abs=1e-6)
    assert 3.0 < c[1] < 14.0
    assert np.all(np.diff(c) > 0), c
    assert 15.0 < c[10] < 30.0
    assert c[39] - c[20] > 4.0  # no plateau: the curve still rises in the second half
    assert c[39] < 50.0  # far from mixed after 40 of 100 steps


def test_literal_recipe_collapses_to_a_uniform_rod_as_measured():
    truth = nanorod_alloying(32, steps=4, seed=0, recipe="paper-literal")
    curve = paper_alloying_curve(truth, truth=truth, fixed_mask=True)
    assert curve[2] == pytest.approx(100.0, abs=0.5), curve
    inside = truth[3][truth[0] > 0]
    assert np.ptp(inside) < 1e-5  # the rod is uniform


def test_alloying_scales_with_the_grid():
    """The mixing length is relative to the particle: 24^3 and 48^3 give nearly the same curve.

    Measured: at most 4.4 points apart (the coarse shell of the small grid differs).
    """
    curves = []
    for n in (24, 48):
        truth = nanorod_alloying(n, steps=12, seed=0)
        curves.append(paper_alloying_curve(truth, truth=truth, fixed_mask=True))
    assert np.abs(curves[0][3:] - curves[1][3:]).max() < 6.0, curves


def test_every_registered_scenario_has_a_parameter_model():
    assert set(SCENARIO_PARAMETERS) == set(SCENARIOS)
    for name in SCENARIOS:
        assert describe_parameters(name)


def test_out_of_range_parameter_names_it_and_its_range():
    with pytest.raises(InputError, match=r"knock_on=-1.*range: >= 0.0 and <= 5.0"):
        scenario_parameters("nanoshell-damage", {"knock_on": -1})
    with pytest.raises(InputError, match=r"exponent=.*range: > 0.0 and <= 1.0"):
        scenario_parameters("nanorod-alloying", {"exponent": "1.5"})
    with pytest.raises(InputError, match="did you mean 'sigma'"):
        scenario_parameters("nanorod-alloying", {"sigm": 1})
    with pytest.raises(InputError, match="recipe"):
        scenario_parameters("nanorod-alloying", {"recipe": "other"})
    assert scenario_parameters("nanorod-alloying", {"sigma": "0.05"}) == {"sigma": 0.05}


def test_simulate_param_reaches_the_scenario(tmp_path):
    out = tmp_path / "sim"
    result = invoke("simulate", "nanorod-alloying", "--out", out, "--size", 16, "--steps", 3,
                    "--param", "recipe=paper-literal", "--param", "sigma=2.5")
    assert result.exit_code == 0, result.output
    truth = read_volume_series(out / "truth.h5").to_numpy()
    expected = make_scenario("nanorod-alloying", 16, steps=3, recipe="paper-literal", sigma=2.5).to_numpy()
    assert np.array_equal(truth, expected)
    record = json.loads((out / "scenario.json").read_text())
    assert record["parameters"] == {"recipe": "paper-literal", "sigma": 2.5}


def test_simulate_scenario_file_and_param_override(tmp_path):
    spec = tmp_path / "shell.yaml"
    spec.write_text("scenario: nanoshell-damage\nparameters:\n  knock_on: 1.0\n  elastic: 0.0\n")
    out = tmp_path / "sim"
    result = invoke("simulate", "nanoshell-damage", "--out", out, "--size", 16, "--steps", 3,
                    "--scenario-file", spec, "--param", "elastic=0.2")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "scenario.json").read_text())["parameters"] == {"knock_on": 1.0, "elastic": 0.2}


@pytest.mark.parametrize("args, fragments", [
    (("--param", "sigma=20"), ("sigma='20'", "range: >= 0.0 and <= 10.0")),
    (("--param", "sigma"), ("expected name=value",)),
    (("--param", "knock_on=1"), ("not a parameter of nanorod-alloying",)),
])
def test_simulate_refuses_bad_parameters(tmp_path, args, fragments):
    result = invoke("simulate", "nanorod-alloying", "--out", tmp_path / "x", "--size", 16, "--steps", 3, *args)
    assert_input_error(result, *fragments)
    assert not (tmp_path / "x").exists()


def test_simulate_refuses_a_scenario_file_for_another_scenario(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("scenario: nanoshell-damage\n")
    result = invoke("simulate", "nanorod-alloying", "--out", tmp_path / "x", "--size", 16, "--steps", 3,
                    "--scenario-file", spec)
    assert_input_error(result, "is for scenario 'nanoshell-damage'")


def test_nanostar_retracts_fast_then_levels_off():
    series = make_scenario("nanostar-retraction", 32, steps=40, seed=0)
    change = np.array([np.abs(series[t] - series[t - 1]).sum() for t in range(1, 40)])
    assert change[:8].sum() > 5 * change[20:].sum(), change  # most of the motion in the first fifth
    totals = np.array([v.sum(dtype=np.float64) for v in series])
    assert np.abs(totals / totals[0] - 1).max() < 0.03  # constant volume (partial-volume edges)


def test_nanocube_alloys_under_a_fixed_silica_shell_with_an_inflection():
    series = make_scenario("nanocube-silica-alloying", 32, steps=40, seed=0)
    first = series[0]
    metal = first >= 0.29
    assert np.array_equal(series[-1] > 0, first > 0)  # the silica's outer shape never changes
    assert np.array_equal(series[-1] >= 0.29, metal)
    totals = np.array([v[metal].sum(dtype=np.float64) for v in series])
    assert np.abs(totals / totals[0] - 1).max() < 1e-4
    spread = np.array([v[metal].std() for v in series])
    rate = -np.diff(spread)
    assert (rate > -1e-7).all()
    peak = int(np.argmax(rate))
    assert 5 <= peak <= 20, rate  # slow start, fastest after about a third of the run, then levelling off
    assert rate[-5:].max() < 0.2 * rate[peak]


def test_nanoshell_thins_and_opens_gaps_without_crumbling():
    """The default damage thins the wall smoothly; the earlier voxel model breaks it into fragments.

    Measured at 48^3, 60 steps: 2 pieces at the end (6 for ``model="sputter"``); S/V 0.45 -> 0.74 per voxel.
    """
    from tomotime.metrics import surface_to_volume

    series = make_scenario("nanoshell-damage", 48, steps=60, seed=0)
    pieces = ndi_label_count(series[59] > 0.5)
    assert pieces <= 3
    sv = [surface_to_volume(series[t]) for t in (0, 30, 59)]
    assert sv[0] < sv[1] < sv[2]  # thinner walls and gap rims: more surface per volume
    crumbled = make_scenario("nanoshell-damage", 48, steps=60, seed=0, model="sputter")
    assert ndi_label_count(crumbled[59] > 0.5) > pieces


def ndi_label_count(mask: np.ndarray) -> int:
    from scipy import ndimage

    return int(ndimage.label(mask)[1])
