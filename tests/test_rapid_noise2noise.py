"""Noise2Noise training of the rapid U-Net filter: pair sampler, normalisation, a tiny run, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cli_helpers import assert_input_error, invoke
from tomotime.errors import InputError
from tomotime.rapid.noise2noise import NoisyPairFilterMethod, check_repeats, draw_pair, train_filter_noise2noise
from tomotime.rapid.simulate import filter_pairs
from tomotime.rapid.unet_filter import UnetFilterConfig, apply_filter, load_filter, robust_normalise, train_filter

TINY = {"target": "noisy-pair", "width": 8, "depth": 2, "patch": 16, "batch_size": 8, "device": "cpu"}


def _lines(n_areas: int = 5, k: int = 4, sigma: float = 0.15, size: int = 32, seed: int = 0):
    """Clean images ``(A, H, W)`` of one dark Gaussian line each, and ``k`` noisy frames of each ``(A, k, H, W)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] - size / 2
    clean = []
    for a in range(n_areas):
        t, off = np.radians(rng.uniform(0, 180)), rng.uniform(-5, 5)
        d = xx * np.cos(t) + yy * np.sin(t) - off
        clean.append(1 - 0.6 * np.exp(-d**2 / (2 * 1.5**2)))
    clean = np.stack(clean).astype(np.float32)
    return clean, clean[:, None] + sigma * rng.normal(size=(n_areas, k, size, size)).astype(np.float32)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_the_pair_sampler_never_pairs_a_frame_with_itself_and_covers_every_pair(k):
    gen = torch.Generator().manual_seed(0)
    pairs = [draw_pair(k, gen) for _ in range(60 * k * k)]
    assert all(i != j and 0 <= i < k and 0 <= j < k for i, j in pairs)
    counts = {p: pairs.count(p) for p in set(pairs)}
    assert len(counts) == k * (k - 1)  # every ordered pair occurs ...
    assert max(counts.values()) < 2 * min(counts.values())  # ... about equally often


def test_robust_normalisation_is_affine_invariant_and_the_target_takes_the_inputs_transform():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 16, 16)).astype(np.float32)
    a, _, _ = robust_normalise(x)
    b, _, _ = robust_normalise(3 * x + 7)
    assert np.allclose(a, b, atol=1e-4)
    _, frames = _lines(n_areas=3, k=3)
    method = NoisyPairFilterMethod(frames, UnetFilterConfig(**TINY, steps=1), torch.device("cpu"))
    _, lo, scale = robust_normalise(frames)
    gen = torch.Generator().manual_seed(3)
    i, j = draw_pair(3, torch.Generator().manual_seed(3))
    x_in, y_in = method._pair(1, gen)
    assert np.allclose(x_in[0].numpy(), (frames[1, i] - lo[1, i]) / scale[1, i], atol=1e-5)
    assert np.allclose(y_in[0].numpy(), (frames[1, j] - lo[1, i]) / scale[1, i], atol=1e-5)  # input's transform
    paper = NoisyPairFilterMethod(frames, UnetFilterConfig(**TINY, steps=1, normalisation="paper"),
                                  torch.device("cpu"))
    y_paper = paper._pair(1, torch.Generator().manual_seed(3))[1][0].numpy()
    assert y_paper.min() == pytest.approx(0, abs=1e-6) and y_paper.max() == pytest.approx(1, abs=1e-6)  # its own


def test_repeats_are_checked():
    with pytest.raises(InputError, match="1 frame.s. per area; Noise2Noise needs at least 2"):
        check_repeats(np.ones((3, 1, 16, 16)))
    with pytest.raises(InputError, match="expected repeated frames"):
        check_repeats(np.ones((3, 16, 16)))
    with pytest.raises(InputError, match="target='noisy-pair'"):
        NoisyPairFilterMethod(np.ones((2, 2, 16, 16)), UnetFilterConfig(), torch.device("cpu"))
    with pytest.raises(InputError, match="train_filter_noise2noise"):
        train_filter(np.ones((2, 16, 16)), np.ones((2, 16, 16)), UnetFilterConfig(target="noisy-pair"))


def test_noise2noise_training_on_noisy_frames_alone_denoises(tmp_path):
    torch.set_num_threads(1)
    clean, frames = _lines()
    config = UnetFilterConfig(**TINY, steps=150, eval_every=50, holdout_fraction=0.2, lr=3e-3)
    result = train_filter_noise2noise(frames, config, run_dir=tmp_path / "run", progress=False)
    model = load_filter(tmp_path / "run" / "model.pt")
    assert (model.normalisation, model.target) == ("robust", "noisy-pair")
    out = apply_filter(model, frames[:, 0])
    assert np.allclose(out, apply_filter(result.model, frames[:, 0]), atol=1e-5)
    assert out.min() == pytest.approx(0, abs=1e-6) and out.max() == pytest.approx(1, abs=1e-6)
    corr = lambda a, b: np.mean([np.corrcoef(u.ravel(), v.ravel())[0, 1] for u, v in zip(a, b)])  # noqa: E731
    assert corr(frames[:, 0], clean) < 0.8 and corr(out, clean) > corr(frames[:, 0], clean) + 0.1


def test_filter_pairs_repeats_leave_the_other_arrays_unchanged():
    kw = {"shape": (8, 32, 32), "seed": 4}
    plain, more = filter_pairs(1, (0.0, 40.0), **kw), filter_pairs(1, (0.0, 40.0), repeats=3, **kw)
    assert more["repeats"].shape == (2, 3, 32, 32) and "repeats" not in plain
    for key in ("noisy", "reference", "clean"):
        assert np.array_equal(plain[key], more[key])
    r = more["repeats"]
    assert not np.array_equal(r[0, 0], r[0, 1]) and not np.array_equal(r[0, 0], more["noisy"][0])
    assert abs(float(r[0].mean() - more["clean"][0].mean())) < 0.02  # unbiased frames of the same image


def test_cli_trains_noise2noise_from_a_stack_and_refuses_bad_input(tmp_path):
    _, frames = _lines(n_areas=3, k=2)
    stack = tmp_path / "frames.npy"
    np.save(stack, frames.reshape(6, 32, 32))
    model = tmp_path / "n2n.pt"
    common = ["--steps", 3, "--width", 4, "--depth", 2, "--patch", 16, "--device", "cpu"]
    result = invoke("train-filter", stack, "--self-supervised", "noise2noise", "--frames-per-area", 2, "--out", model,
                    *common)
    assert result.exit_code == 0, result.output
    assert "3 areas x 2 noisy frames, Noise2Noise" in result.output
    assert load_filter(model).target == "noisy-pair"
    out = tmp_path / "out"
    assert invoke("denoise", stack, "--method", "unet", "--model", model, "--out", out, "--device", "cpu"
                  ).exit_code == 0
    assert json.loads((out / "summary.json").read_text())["input"]["shape"] == [6, 32, 32]
    bad = ("train-filter", stack, "--self-supervised", "noise2noise", "--out", tmp_path / "m.pt")
    assert_input_error(invoke(*bad, "--frames-per-area", 1), "at least 2 independent noisy frames")
    assert_input_error(invoke(*bad, "--frames-per-area", 4), "6 frames are not a whole number of areas of 4")
    assert_input_error(invoke(*bad), "--frames-per-area K")
    assert_input_error(invoke(*bad, "--frames-per-area", 2, "--reference", stack), "takes no averaged references")
    npz = tmp_path / "one.npz"
    np.savez(npz, frames=frames[:, :1])
    assert_input_error(invoke("train-filter", npz, "--self-supervised", "noise2noise", "--out", tmp_path / "m.pt"),
                       "1 frame(s) per area; Noise2Noise needs at least 2")
    assert_input_error(invoke("train-filter", stack, "--self-supervised", "noise2void", "--out", tmp_path / "m.pt"),
                       "expected 'noise2noise'")
