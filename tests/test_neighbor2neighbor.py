"""Neighbor2Neighbor: the neighbour sub-sampler, the loss's pair independence, a tiny run on the shared engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomotime.denoise import (
    Neighbor2NeighborConfig,
    apply_denoiser,
    load_neighbor2neighbor,
    train_neighbor2neighbor,
)
from tomotime.denoise.neighbor2neighbor import neighbour_subsample
from tomotime.errors import InputError
from tomotime.models.plain_unet import PlainUNet
from tomotime.sim.insitu_movie import insitu_movie

TINY = {"width": 4, "crop": 16, "batch_size": 2, "holdout_crop": 16, "device": "cpu"}


def test_each_cell_gives_two_different_edge_neighbours_and_the_choice_is_shared():
    h, w = 6, 8
    index = torch.arange(2 * h * w, dtype=torch.float32).reshape(2, 1, h, w)
    sub = neighbour_subsample(index, torch.Generator().manual_seed(0))
    g1, g2 = sub(index)
    assert g1.shape == g2.shape == (2, 1, h // 2, w // 2)
    for b in range(2):
        for i in range(h // 2):
            for j in range(w // 2):
                p, q = (divmod(int(v[b, 0, i, j]) - b * h * w, w) for v in (g1, g2))
                assert p[0] // 2 == q[0] // 2 == i and p[1] // 2 == q[1] // 2 == j  # inside cell (i, j)
                assert abs(p[0] - q[0]) + abs(p[1] - q[1]) == 1  # edge neighbours, never diagonal or equal
    d1, d2 = sub(2 * index + 1)  # the same cells and choices on another tensor (the network's output)
    assert torch.equal(d1, 2 * g1 + 1) and torch.equal(d2, 2 * g2 + 1)
    firsts = torch.stack([neighbour_subsample(index, torch.Generator().manual_seed(s))(index)[0] for s in range(40)])
    assert len(torch.unique(firsts[:, 0, 0, 0, 0])) == 4  # every position of a cell is drawn


def test_subsampled_pairs_of_independent_noise_are_uncorrelated():
    noise = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    g1, g2 = neighbour_subsample(noise, torch.Generator().manual_seed(2))(noise)
    assert abs(float(torch.corrcoef(torch.stack([g1.flatten(), g2.flatten()]))[0, 1])) < 0.03


@pytest.mark.parametrize("options,fragment", [({"crop": 20}, "multiple of 8"), ({"holdout_crop": 12}, "multiple of 8"),
                                              ({"gamma": -1}, "gamma"), ({"blind_spot": "3x3"}, "blind_spot")])
def test_bad_options_are_refused_by_name(options, fragment):
    with pytest.raises(InputError, match=fragment):
        Neighbor2NeighborConfig.from_dict(options)


def test_tiny_run_on_the_engine_writes_a_model_that_reloads_identically(tmp_path):
    movie = insitu_movie(frames=6, size=20, dose=2.0, spacing=5.0, seed=0).noisy  # 20 px: padded
    cfg = Neighbor2NeighborConfig(**TINY, steps=4, eval_every=2, holdout_fraction=0.2)
    result, norm = train_neighbor2neighbor(movie, cfg, run_dir=tmp_path / "run", progress=False)
    assert isinstance(result.model, PlainUNet) and result.steps == 4
    assert all(np.isfinite(row["holdout_loss"]) for row in result.history)
    denoised = apply_denoiser(result.model, norm, movie)
    assert denoised.shape == movie.shape and np.isfinite(denoised).all()
    model, norm2 = load_neighbor2neighbor(tmp_path / "run" / "model.pt")
    assert norm2 == norm and np.array_equal(apply_denoiser(model, norm2, movie), denoised)


def test_an_interrupted_run_resumes_bit_for_bit(tmp_path):
    movie = insitu_movie(frames=6, size=16, dose=2.0, spacing=5.0, seed=0).noisy
    cfg = Neighbor2NeighborConfig(**TINY, steps=4, eval_every=2, holdout_fraction=0.0)
    whole, _ = train_neighbor2neighbor(movie, cfg, progress=False)

    def stop(step, info):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_neighbor2neighbor(movie, cfg, run_dir=tmp_path / "run", progress=False, callback=stop)
    resumed, _ = train_neighbor2neighbor(movie, cfg, run_dir=tmp_path / "run", resume=True, progress=False)
    assert resumed.steps == 4
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
