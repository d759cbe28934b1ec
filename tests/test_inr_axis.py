"""INR tilt-axis start and hold: the common-line start recovers a known axis, the hold keeps the axis still."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.preprocess.alignment import AlignmentWarning
from tomotime.recon.inr import InrConfig, train_inr
from tomotime.recon.inr.pose_start import common_line_axis, xcorr_start
from tomotime.recon.inr.method import InrMethod
from tomotime.sim import simulate_acquisition

TINY = dict(device="cpu", batch_size=256, lr=2e-2, grid_levels=2, grid_width=16, samples=16, samples_start=8,
            holdout_fraction=0.05, patience=None, tv_weight=0.0, align=True, align_angles=False)


def particles_series(rotation: float, *, size: int = 24, n_views: int = 25, seed: int = 0) -> TiltSeries:
    """Scattered balls off the centre, tilted over +-60 deg with the axis turned by ``rotation`` and shifts of 1 px."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:size, :size, :size] - (size - 1) / 2
    volume = np.zeros((size,) * 3, np.float32)
    for cz, cy, cx in rng.uniform(-6, 6, (5, 3)):
        volume += np.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / 3).astype(np.float32)
    angles = np.linspace(-60, 60, n_views)
    series = simulate_acquisition(VolumeSeries(np.repeat(volume[None], n_views, 0)), angles=angles,
                                  axis_rotation=rotation, shift_std=1.0, seed=seed)
    return TiltSeries(series.images, angles)


@pytest.mark.parametrize("rotation", [6.0, -4.0])
def test_the_common_line_start_recovers_a_known_axis(rotation):
    series = particles_series(rotation)
    assert common_line_axis(series) == pytest.approx(rotation, abs=0.5)
    # after the shifts' cross-correlation start only the axis search runs, to the same estimate
    assert common_line_axis(xcorr_start(series), shifts_aligned=True) == pytest.approx(common_line_axis(series),
                                                                                       abs=1e-6)
    method = InrMethod(series, InrConfig(**TINY, steps=10), torch.device("cpu"))
    assert float(method.build_model().axis_delta.detach()) == pytest.approx(method.axis_start)
    zero = InrMethod(series, InrConfig(**TINY, steps=10, axis_start="zero"), torch.device("cpu"))
    assert float(zero.build_model().axis_delta.detach()) == 0.0  # the check can fail


def test_no_common_line_start_from_two_views():
    series = particles_series(5.0)
    narrow = TiltSeries(series.images[11:13], series.angles[11:13])  # two views cannot tell the axis
    with pytest.warns(AlignmentWarning, match="starts at 0"):
        assert common_line_axis(narrow) == 0.0


def test_the_axis_hold_keeps_the_shared_axis_at_its_start():
    series = particles_series(6.0, size=16, n_views=15)
    seen: dict[int, float] = {}

    def record(step, info):
        if info["model"] is not None:
            seen[step] = float(info["model"].axis_delta.detach())

    cfg = InrConfig(**TINY, steps=40, eval_every=1, axis_hold=0.5, pose_lr=0.1)
    start = InrMethod(series, cfg, torch.device("cpu")).axis_start
    train_inr(series, cfg, progress=False, callback=record)
    assert all(seen[s] == pytest.approx(start, abs=1e-6) for s in range(1, 20))  # steps 0-19 held
    assert abs(seen[40] - start) > 0.05  # then learned


def test_the_paper_preset_has_no_shared_axis_to_start():
    cfg = InrConfig.paper(align=True)
    assert not cfg.shared_axis and cfg.axis_start == "zero"
    assert InrConfig().axis_start == "common-lines" and InrConfig().axis_hold == 0.2
    assert InrConfig(axis_hold=1.0).axis_hold == 1.0  # held throughout: the common-line estimate is kept
    with pytest.raises(ValueError):
        InrConfig(axis_hold=1.5)


def test_an_estimate_at_the_edge_of_the_search_is_not_trusted():
    series = particles_series(6.0)
    with pytest.warns(AlignmentWarning, match="edge"):
        assert common_line_axis(series, max_rotation=3.0) == 0.0  # the minimum (6 deg) lies outside +-3 deg


def test_the_shifts_start_at_the_cross_correlation_alignment():
    size, n_views = 24, 25
    rng = np.random.default_rng(3)
    z, y, x = np.mgrid[:size, :size, :size] - (size - 1) / 2
    volume = sum(np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / 3) for c in rng.uniform(-6, 6, (5, 3)))
    angles = np.linspace(-60, 60, n_views)
    sim = simulate_acquisition(VolumeSeries(np.repeat(volume[None].astype(np.float32), n_views, 0)), angles=angles,
                               shift_std=2.0, seed=3)
    truth = np.asarray(sim.metadata["true_poses"], np.float64)[:, 2:]
    series = TiltSeries(sim.images, angles)
    cfg = dict(TINY, steps=10, shared_axis=False)
    start = InrMethod(series, InrConfig(**cfg, shift_start="xcorr"), torch.device("cpu")).build_model()
    start = start.pose_init[:, 2:].numpy()
    theta = np.deg2rad(angles)
    # up to a translation of the whole object: a constant along the axis, a cos + b sin + c across it
    basis = [np.ones((n_views, 1)), np.stack([np.cos(theta), np.sin(theta), np.ones(n_views)], 1)]
    def rms_beyond_translation(shifts):
        residual = [d - b @ np.linalg.lstsq(b, d, rcond=None)[0] for d, b in zip((shifts - truth).T, basis)]
        return float(np.sqrt(np.mean(np.square(residual))))

    assert rms_beyond_translation(start) < 0.5 < rms_beyond_translation(np.zeros_like(truth))
    zero = InrMethod(series, InrConfig(**cfg), torch.device("cpu")).build_model()
    assert float(zero.pose_init.abs().max()) == 0.0
    assert InrConfig.paper().shift_start == "zero" and InrConfig().shift_start == "zero"
