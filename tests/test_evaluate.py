"""Evaluation against ground truth: metric values, the CSV/JSON files, and the printed tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import ndimage

from tomotime.data import VolumeSeries
from tomotime.errors import InputError, OutputExistsError
from tomotime.metrics.evaluate import evaluate_against_truth, format_summary_table, format_time_table, write_metrics
from tomotime.sim import make_scenario, mixed_intensity_spread

STEPS = 8


@pytest.fixture(scope="module")
def truth() -> VolumeSeries:
    return make_scenario("nanorod-alloying", 16, steps=STEPS, seed=0)


@pytest.fixture(scope="module")
def sigma_mixed(truth) -> float:
    return mixed_intensity_spread(truth[0])


def noisy(truth: VolumeSeries, std: float, seed: int = 0) -> VolumeSeries:
    rng = np.random.default_rng(seed)
    return VolumeSeries(truth.to_numpy() + rng.normal(0.0, std, truth.shape).astype(np.float32), truth.times)


def blurred(truth: VolumeSeries, sigma: float) -> VolumeSeries:
    return VolumeSeries(np.stack([ndimage.gaussian_filter(v, sigma) for v in truth]), truth.times)


@pytest.fixture(scope="module")
def results(truth, sigma_mixed) -> dict:
    """Two degraded reconstructions, evaluated with the alloying curves."""
    return {"noisy": evaluate_against_truth(noisy(truth, 0.05), truth, alloying_sigma_mixed=sigma_mixed),
            "blurred": evaluate_against_truth(blurred(truth, 1.0), truth, alloying_sigma_mixed=sigma_mixed)}


def test_a_perfect_reconstruction_scores_perfectly(truth, sigma_mixed):
    result = evaluate_against_truth(VolumeSeries(truth.to_numpy().copy()), truth, alloying_sigma_mixed=sigma_mixed)
    np.testing.assert_array_equal(result["times"], np.arange(STEPS))
    for key in ("ssim", "ssim_unmasked"):
        np.testing.assert_allclose(result[key], 1.0, atol=1e-9)
    for key in ("rmse", "rmse_unmasked"):
        np.testing.assert_array_equal(result[key], 0.0)
    assert np.all(np.isinf(result["psnr"]))
    assert result["ssim_mean"] == pytest.approx(1.0) and result["ssim_worst"] == pytest.approx(1.0)
    assert result["rmse_mean"] == 0.0 and result["rmse_worst"] == 0.0
    np.testing.assert_array_equal(result["alloying"], result["alloying_truth"])
    assert result["alloying_error_mean"] == 0.0 and result["alloying_error_worst"] == 0.0
    assert result["alloying_truth"][0] == pytest.approx(0.0, abs=1e-4)
    assert np.all(np.diff(result["alloying_truth"]) > 0)


@pytest.mark.parametrize("degrade, strengths", [(noisy, (0.02, 0.05, 0.1)), (blurred, (0.5, 1.0, 1.5))])
def test_worse_reconstructions_score_worse(truth, sigma_mixed, degrade, strengths):
    runs = [evaluate_against_truth(degrade(truth, s), truth, alloying_sigma_mixed=sigma_mixed) for s in strengths]
    ssim = [r["ssim_mean"] for r in runs]
    rmse = [r["rmse_mean"] for r in runs]
    psnr = [r["psnr_mean"] for r in runs]
    alloying = [r["alloying_error_mean"] for r in runs]
    assert 1.0 > ssim[0] > ssim[1] > ssim[2]
    assert 0.0 < rmse[0] < rmse[1] < rmse[2]
    assert psnr[0] > psnr[1] > psnr[2]
    assert 0.0 < alloying[0] < alloying[1] < alloying[2]
    for r in runs:
        assert r["ssim_worst"] <= r["ssim_mean"] and r["rmse_worst"] >= r["rmse_mean"]
        # the error is reported from step 5 on
        assert r["alloying_error_worst"] == pytest.approx(np.abs(r["alloying"] - r["alloying_truth"])[5:].max())


def test_alloying_is_left_out_without_the_mixed_spread(truth):
    result = evaluate_against_truth(noisy(truth, 0.05), truth)
    assert not any(key.startswith("alloying") for key in result)
    assert {"ssim_mean", "rmse_mean", "psnr_mean"} <= set(result)


def test_mismatched_series_are_refused(truth):
    data = truth.to_numpy()
    with pytest.raises(InputError, match="time points"):
        evaluate_against_truth(VolumeSeries(data[:-1]), truth)
    with pytest.raises(InputError, match="shape"):
        evaluate_against_truth(VolumeSeries(data[:, :, :-1]), truth)
    with pytest.raises(InputError, match="times differ"):
        evaluate_against_truth(VolumeSeries(data, times=2.0 * np.arange(STEPS)), truth)


def test_write_metrics_writes_one_csv_row_per_method_and_time_and_a_json(tmp_path, results):
    csv_path, json_path = write_metrics(tmp_path, results)
    assert (csv_path, json_path) == (tmp_path / "metrics.csv", tmp_path / "metrics.json")
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(results) * STEPS
    assert [row["method"] for row in rows] == [m for m in results for _ in range(STEPS)]
    assert {"time_s", "ssim", "rmse", "psnr", "alloying", "alloying_truth"} <= set(rows[0])
    for method, result in results.items():
        mine = [row for row in rows if row["method"] == method]
        np.testing.assert_allclose([float(r["time_s"]) for r in mine], result["times"])
        for key in ("ssim", "rmse", "psnr", "alloying", "alloying_truth"):
            np.testing.assert_allclose([float(r[key]) for r in mine], result[key], rtol=1e-5, atol=1e-9)
    loaded = json.loads(json_path.read_text(encoding="utf-8"))
    assert set(loaded) == set(results)
    for method, result in results.items():
        for key, value in result.items():
            np.testing.assert_allclose(loaded[method][key], value, rtol=1e-12)


def test_write_metrics_refuses_to_overwrite(tmp_path, results):
    write_metrics(tmp_path, results)
    before = (tmp_path / "metrics.csv").read_text()
    with pytest.raises(OutputExistsError, match="metrics"):
        write_metrics(tmp_path, {"other": results["noisy"]})
    assert (tmp_path / "metrics.csv").read_text() == before
    write_metrics(tmp_path, {"other": results["noisy"]}, overwrite=True)
    assert "other" in (tmp_path / "metrics.csv").read_text()
    assert list(json.loads((tmp_path / "metrics.json").read_text())) == ["other"]


def test_write_metrics_writes_nothing_when_either_file_exists(tmp_path, results):
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="metrics.json"):
        write_metrics(tmp_path, results)
    assert not (tmp_path / "metrics.csv").exists()
    assert (tmp_path / "metrics.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_summary_table_shows_every_method_and_its_numbers(results):
    summary = {name: {k: r[k] for k in ("ssim_mean", "ssim_worst", "rmse_mean", "rmse_worst",
                                        "alloying_error_mean")} for name, r in results.items()}
    summary["noisy"]["seconds"] = 12.34
    lines = format_summary_table(summary).splitlines()
    assert len(lines) == 1 + len(summary)
    assert lines[0].split()[0] == "method" and "SSIM mean" in lines[0] and "time (s)" in lines[0]
    for line, (name, values) in zip(lines[1:], summary.items()):
        cells = line.split()
        assert cells[0] == name
        assert cells[1:6] == [f"{values['ssim_mean']:.3f}", f"{values['ssim_worst']:.3f}",
                              f"{values['rmse_mean']:.2f}", f"{values['rmse_worst']:.2f}",
                              f"{values['alloying_error_mean']:.2f}"]
    assert lines[1].split()[-1] == "12.3"
    assert lines[2].split()[-1] == "-"  # "blurred" has no time


def test_summary_table_shows_only_the_columns_present():
    table = format_summary_table({"FBP": {"ssim_mean": 0.5, "rmse_mean": 7.0}})
    assert "SSIM worst" not in table and "alloy" not in table
    assert table.splitlines()[1].split() == ["FBP", "0.500", "7.00"]


def test_time_table_lists_every_time_or_every_kth(results):
    result = results["blurred"]
    lines = format_time_table(result).splitlines()
    assert len(lines) == 1 + STEPS and "SSIM" in lines[0] and "PSNR" in lines[0]
    for t, line in enumerate(lines[1:]):
        assert line.split() == [f"{result['times'][t]:g}", f"{result['ssim'][t]:.3f}", f"{result['rmse'][t]:.2f}",
                                f"{result['psnr'][t]:.2f}"]
    short = format_time_table(result, max_rows=3).splitlines()
    assert [float(line.split()[0]) for line in short[1:]] == [0.0, 3.0, 6.0]
