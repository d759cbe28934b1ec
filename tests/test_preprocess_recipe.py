"""Recipes: validation with suggestions, YAML round trip, re-application, the registry, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from cli_helpers import assert_input_error, invoke

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.io import read_tilt_series, write_tilt_series
from tomotime.preprocess import STEPS, apply_recipe, load_recipe, parse_recipe, parse_step_option, save_recipe
from tomotime.preprocess.recipe import StepParams, recipe_to_dict, register_step

RECIPE = {"steps": [{"bin": {"factor": 2}}, "subtract_background", {"mask_background": {"k": 0.9}},
                    {"normalise": {"mode": "mean_std"}}]}


def series(seed=0, n=4, size=24):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    images = [np.where(y**2 + x**2 < 30, 3.0, 0.0) + 1 + 0.1 * rng.standard_normal((size, size)) for _ in range(n)]
    return TiltSeries(np.stack(images), np.linspace(-30, 30, n), pixel_size=0.7)


def test_unknown_step_or_parameter_is_refused_with_a_suggestion():
    with pytest.raises(InputError, match=r"unknown preprocessing step 'normalize'; did you mean 'normalise'\?"):
        parse_recipe({"steps": [{"normalize": {}}]})
    with pytest.raises(InputError, match=r"step 1: step 'bin' has no parameter 'factr'; did you mean 'factor'\?"):
        parse_recipe({"steps": [{"bin": {"factr": 2}}]})
    with pytest.raises(InputError, match="step 'bin': factor"):
        parse_recipe({"steps": [{"bin": {"factor": "two"}}]})
    with pytest.raises(InputError, match="non-empty list"):
        parse_recipe({"steps": []})
    with pytest.raises(InputError, match="unknown key"):
        parse_recipe({"stpes": []})


def test_recipe_round_trip_and_reapplication(tmp_path):
    recipe = parse_recipe(RECIPE)
    path = save_recipe(recipe, tmp_path / "recipe.yaml")
    again = load_recipe(path)
    assert recipe_to_dict(again) == recipe_to_dict(recipe)
    assert yaml.safe_load(path.read_text())["steps"][0] == {"bin": {"factor": 2, "method": "mean"}}
    first, second = series(0), series(1)
    a = apply_recipe(first, recipe)
    b = apply_recipe(first, again)
    np.testing.assert_array_equal(a.images, b.images)
    c = apply_recipe(second, again)
    assert c.shape == (4, 12, 12) and c.pixel_size == pytest.approx(1.4)
    assert [r["step"] for r in c.metadata["preprocessing"]] == ["bin", "subtract_background", "mask_background",
                                                                "normalise"]


def test_step_option_parsing():
    step = parse_step_option("crop:box=[0,8,2,10]")
    assert step.name == "crop" and tuple(step.params.box) == (0, 8, 2, 10)
    assert parse_step_option("normalise").params.mode == "mean_std"
    with pytest.raises(InputError, match="expected name:key=value"):
        parse_step_option("bin:2")


def test_a_step_with_the_same_signature_registers_and_runs():
    class ShiftParams(StepParams):
        dx: int = 1

    def roll(s, dx=1):
        """Roll the images along X (a stand-in for an alignment step)."""
        return TiltSeries(np.roll(s.images, dx, axis=2), s.angles)

    register_step("test_roll", ShiftParams)(roll)
    try:
        recipe = parse_recipe({"steps": [{"test_roll": {"dx": 3}}]})
        s = series()
        np.testing.assert_array_equal(apply_recipe(s, recipe).images, np.roll(s.images, 3, axis=2))
        with pytest.raises(ValueError, match="registered already"):
            register_step("test_roll", ShiftParams)(lambda s: s)
    finally:
        STEPS.pop("test_roll")


def test_preprocess_command_writes_series_and_recipe_and_reapplies(tmp_path):
    src = write_tilt_series(tmp_path / "in.mrc", series(n=7))
    out = tmp_path / "out"
    result = invoke("preprocess", src, "--out", out, "--step", "calibrate_haadf:max_angle=25,method=gain,region=all",
                    "--step", "bin:factor=2", "--step", "subtract_background")
    assert result.exit_code == 0, result.output
    for name in ("series.mrc", "series.rawtlt", "series.times", "recipe.yaml", "preprocess.json",
                 "haadf_calibration.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "preprocess.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["calibrate_haadf", "bin", "subtract_background"]
    again = invoke("preprocess", src, "--out", tmp_path / "again", "--recipe", out / "recipe.yaml")
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(read_tilt_series(out / "series.mrc").images,
                                  read_tilt_series(tmp_path / "again" / "series.mrc").images)


def test_preprocess_command_bad_input(tmp_path):
    src = write_tilt_series(tmp_path / "in.mrc", series())
    assert_input_error(invoke("preprocess", src, "--out", tmp_path / "o", "--step", "bni"), "did you mean 'bin'")
    assert_input_error(invoke("preprocess", src, "--out", tmp_path / "o", "--step", "mask_background:k=50"),
                       "removes every pixel")
    assert_input_error(invoke("preprocess", src, "--out", tmp_path / "o"), "no steps given")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - bin: {factor: 2, methd: mean}\n")
    assert_input_error(invoke("preprocess", src, "--out", tmp_path / "o", "--recipe", bad),
                       "no parameter 'methd'; did you mean 'method'?")
    assert not (tmp_path / "o").exists()


def test_info_warns_about_an_unconverted_bright_field_series(tmp_path):
    s = series()
    bright = TiltSeries(1000 * np.exp(-(s.images - 1).clip(0, None)), s.angles)
    path = write_tilt_series(tmp_path / "bf.mrc", bright)
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    assert "looks like bright field" in result.output and "convert_contrast:mode=log" in result.output
    converted = tmp_path / "conv"
    assert invoke("preprocess", path, "--out", converted, "--step", "convert_contrast").exit_code == 0
    assert "bright field" not in invoke("info", converted / "series.mrc").output
    assert "bright field" not in invoke("info", write_tilt_series(tmp_path / "haadf.mrc", s)).output
