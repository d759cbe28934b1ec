"""Blind-spot networks: the blind spot by autograd, sizes, padding and seamless tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomotime.denoise import Normalisation, apply_denoiser, denoise_normalised, tile_starts
from tomotime.models.blindspot import BlindSpotNet

NETWORKS = [
    pytest.param({"frames": 5, "stages": 2, "width": 6}, id="paper-two-stage"),
    pytest.param({"frames": 5, "stages": 1, "width": 6}, id="fast-one-stage"),
    pytest.param({"frames": 1, "stages": 1, "width": 6}, id="single-frame"),
]


def _gradient(model: BlindSpotNet, shape: tuple[int, int], pixel: tuple[int, int]) -> torch.Tensor:
    """|d output[pixel] / d input| per frame, (F, H, W), in float64."""
    torch.manual_seed(1)
    x = torch.randn(1, model.frames, *shape, dtype=torch.float64, requires_grad=True)
    model(x)[0, 0, pixel[0], pixel[1]].backward()
    return x.grad[0].abs()


@pytest.mark.parametrize("kwargs", NETWORKS)
@pytest.mark.parametrize("blind_spot,radius", [("pixel", 0), ("3x3", 1)])
@pytest.mark.parametrize("pixel", [(13, 9), (0, 0), (31, 27)])
def test_output_never_sees_its_own_pixel_in_any_frame(kwargs, blind_spot, radius, pixel):
    torch.manual_seed(0)
    model = BlindSpotNet(**kwargs, blind_spot=blind_spot).double()
    grad = _gradient(model, (32, 28), pixel)
    i, j = pixel
    blind = grad[:, max(i - radius, 0):i + radius + 1, max(j - radius, 0):j + radius + 1]
    assert torch.all(blind == 0), "the output depends on its blind spot"
    # ... but it does see the ring just outside the blind spot, in every frame (the test can fail)
    ring = grad[:, max(i - radius - 1, 0):i + radius + 2, max(j - radius - 1, 0):j + radius + 2]
    assert bool((ring.flatten(1).amax(dim=1) > 0).all())


def test_paper_network_has_the_papers_size():
    assert sum(p.numel() for p in BlindSpotNet(frames=5, width=48, stages=2).parameters()) == pytest.approx(2.1e6,
                                                                                                           rel=0.02)


def test_sides_must_be_multiples_of_four_and_frames_must_match():
    model = BlindSpotNet(frames=5, stages=1, width=4)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.zeros(1, 5, 30, 32))
    with pytest.raises(ValueError, match=r"\(B, 5, H, W\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_any_frame_size_is_padded_and_cropped_back():
    torch.manual_seed(0)
    model = BlindSpotNet(frames=5, stages=1, width=4)
    movie = np.random.default_rng(0).poisson(2.0, (6, 30, 22)).astype(np.uint16)
    out = apply_denoiser(model, Normalisation.of(movie.astype(np.float32)), movie)
    assert out.shape == movie.shape and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("size,tile,overlap", [(200, 160, 76), (37, 16, 4), (64, 64, 8)])
def test_tiles_partition_the_frame_on_the_pooling_grid(size, tile, overlap):
    padded = -(-size // 4) * 4
    tiles = tile_starts(padded, tile, overlap)
    assert tiles[0][1] == 0 and tiles[-1][2] == padded
    for (s, lo, hi), (_, lo2, _) in zip(tiles, tiles[1:]):
        assert hi == lo2 and s % 4 == 0 and s <= lo and hi <= s + tile
    assert all(s + min(tile, padded) <= padded for s, _, _ in tiles)


def test_tiled_inference_equals_whole_frame_inference():
    """With a margin covering the network's reach (73 px for this network) the tiles leave no seam."""
    torch.manual_seed(0)
    model = BlindSpotNet(frames=5, stages=1, width=4)
    movie = torch.randn(5, 174, 166)
    whole = denoise_normalised(model, movie, frames=[2], tile=400, overlap=8)
    tiled = denoise_normalised(model, movie, frames=[2], tile=160, overlap=76)
    assert torch.allclose(tiled, whole, atol=1e-5, rtol=0)
    # a margin smaller than the reach does change pixels near the seams (so the check above can fail)
    seamy = denoise_normalised(model, movie, frames=[2], tile=64, overlap=8)
    assert not torch.allclose(seamy, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs", NETWORKS[1:])
@pytest.mark.parametrize("pixel", [(13, 9), (0, 0), (31, 27)])
def test_row_blind_spot_never_sees_its_own_row_but_sees_the_rows_next_to_it(kwargs, pixel):
    torch.manual_seed(0)
    model = BlindSpotNet(**kwargs, blind_spot="row").double()
    grad = _gradient(model, (32, 28), pixel)
    i = pixel[0]
    assert torch.all(grad[:, i] == 0), "the output depends on its own scan line"
    near = [r for r in (i - 1, i + 1) if 0 <= r < 32]
    assert all(bool((grad[:, r].amax(dim=-1) > 0).all()) for r in near)
