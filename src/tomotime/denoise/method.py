"""UDVD as a method of the training engine: samples are random crops of training frames.

Training sample ``i`` of step ``s`` is a crop of the window of frames around
training frame ``i mod n`` at a random position, flip and 90-degree rotation
drawn from a generator seeded by ``(seed, s, i)``, so that a resumed run
draws exactly the same crops. The loss is the mean squared difference
between the network's output and the noisy centre frame (the blind spot makes
that an unbiased stand-in for the error against the clean frame, up to the
noise variance). Held-out units are whole frames, never used as targets;
their loss is evaluated on a fixed centred region.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tomotime.denoise.config import UdvdConfig
from tomotime.denoise.movie import Normalisation, check_movie, frame_windows, pad_to_multiple
from tomotime.denoise.store import save_denoiser
from tomotime.models.blindspot import BlindSpotNet
from tomotime.training import fingerprint

__all__ = ["UdvdMethod", "holdout_frames", "degenerate_output", "DIVERGED"]

#: An output this many times further from the noisy frame than the frame's mean (mean square) has diverged.
DIVERGED = 4.0


def holdout_frames(n_frames: int, fraction: float) -> list[int]:
    """Evenly spaced held-out frames (none when ``fraction`` is 0; at least one otherwise), never the ends."""
    if fraction <= 0:
        return []
    count = max(1, round(fraction * n_frames))
    if n_frames - count < 1:
        return []
    return sorted({int(v) for v in np.linspace(0, n_frames - 1, count + 2)[1:-1].round()})


def degenerate_output(output: torch.Tensor, noisy: torch.Tensor, valid: torch.Tensor) -> str | None:
    """Why a denoiser's output is useless, or None.

    Only two things count: an output that is constant over the frame, and a
    diverged one, further from the noisy frame (in mean square over the
    ``valid`` pixels) than ``DIVERGED`` times the frame's own variance, i.e.
    much worse than predicting the frame's mean. A holdout loss that never
    improves does not: on pure noise the initial, nearly constant output is
    already as good as a blind-spot or sub-sampling denoiser can be.

    Parameters
    ----------
    output, noisy : torch.Tensor, shape (1, 1, H, W)
        The denoised frame and the noisy frame it was computed from (normalised units).
    valid : torch.Tensor of bool, shape (H, W)
        Pixels inside the movie (not padding).
    """
    out, target = output.float()[0, 0][valid], noisy.float()[0, 0][valid]
    if float(out.max() - out.min()) <= 1e-6:
        return f"the denoised frame is constant ({float(out.mean()):.3g} everywhere)"
    error, spread = float(((out - target) ** 2).mean()), float(target.var(unbiased=False))
    if not error <= DIVERGED * max(spread, 1e-12):
        return (f"the denoised frame diverged: its mean squared distance to the noisy frame ({error:.3g}) exceeds "
                f"{DIVERGED:g} times the frame's variance ({spread:.3g})")
    return None


def _sample_generator(seed: int, step: int, index: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(step), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class UdvdMethod:
    """The engine's view of a UDVD run on one movie (see :class:`tomotime.training.Method`).

    Parameters
    ----------
    movie : numpy.ndarray, shape (T, H, W)
        The noisy frames, any real dtype.
    config : UdvdConfig
    device : torch.device
    """

    name = "udvd"
    #: On pure noise the holdout loss rightly never improves; only :meth:`collapsed` judges a collapse.
    stall_is_collapse = False

    def __init__(self, movie: np.ndarray, config: UdvdConfig, device: torch.device) -> None:
        movie = check_movie(movie, min_frames=config.frames)
        self.config, self.device, self.shape = config, device, movie.shape
        self.normalisation = Normalisation.of(movie)
        data = torch.from_numpy(self.normalisation.apply(movie)).to(device)
        self.data = data
        self.padded, _ = pad_to_multiple(data, min_size=config.crop)
        self.valid = torch.zeros(self.padded.shape[1:], dtype=torch.bool, device=device)
        self.valid[: movie.shape[1], : movie.shape[2]] = True
        self.held = holdout_frames(movie.shape[0], config.holdout_fraction)
        held = set(self.held)
        self.train_frames = [t for t in range(movie.shape[0]) if t not in held]
        self.n_train = len(self.train_frames) * config.crops_per_frame
        self.n_holdout = len(self.held)
        self.region = self._holdout_region()

    def _holdout_region(self) -> tuple[slice, slice]:
        side = self.config.holdout_crop
        out = []
        for size in self.padded.shape[1:]:
            n = min(side, size)
            start = (size - n) // 2 // 4 * 4
            out.append(slice(start, start + n))
        return out[0], out[1]

    def build_model(self) -> BlindSpotNet:
        torch.manual_seed(self.config.seed)
        return BlindSpotNet(**self.config.network).to(self.device)

    def _autocast(self):
        if self.config.mixed_precision and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _crops(self, indices: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, f = self.config, self.config.frames
        side = cfg.crop
        h, w = self.padded.shape[1:]
        windows, masks = [], []
        for i in indices.tolist():
            gen = _sample_generator(cfg.seed, step, i)
            t = self.train_frames[i % len(self.train_frames)]
            y, x = (int(torch.randint(0, n - side + 1, (1,), generator=gen)) for n in (h, w))
            flip, k = torch.randint(0, 2, (2,), generator=gen).tolist(), int(torch.randint(0, 4, (1,), generator=gen))
            win = frame_windows(self.padded, [t], f)[0, :, y:y + side, x:x + side]
            mask = self.valid[y:y + side, x:x + side][None]
            for axis, do in zip((1, 2), flip):
                if do:
                    win, mask = win.flip(axis), mask.flip(axis)
            windows.append(torch.rot90(win, k, dims=(1, 2)))
            masks.append(torch.rot90(mask, k, dims=(1, 2)))
        return torch.stack(windows), torch.stack(masks)

    @staticmethod
    def _masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over valid pixels, one value per sample ``(B,)``."""
        err = (output.float() - target) ** 2 * mask
        return err.sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp_min(1)

    def batch_loss(self, net: nn.Module, indices: torch.Tensor, step: int) -> torch.Tensor:
        windows, masks = self._crops(indices, step)
        centre = self.config.frames // 2
        with self._autocast():
            output = net(windows)
        return self._masked_mse(output, windows[:, centre:centre + 1], masks).mean()

    def holdout_losses(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        ys, xs = self.region
        frames = [self.held[i] for i in indices.tolist()]
        windows = frame_windows(self.padded, frames, self.config.frames)[:, :, ys, xs]
        mask = self.valid[ys, xs][None, None].expand(len(frames), 1, -1, -1)
        centre = self.config.frames // 2
        losses = [self._masked_mse(model(windows[k:k + 1]), windows[k:k + 1, centre:centre + 1], mask[k:k + 1])
                  for k in range(len(frames))]
        return torch.cat(losses)

    @torch.no_grad()
    def collapsed(self, model: nn.Module) -> str | None:
        """A constant or diverged output on a frame (see :func:`degenerate_output`)."""
        ys, xs = self.region
        t = (self.held or self.train_frames)[0]
        windows = frame_windows(self.padded, [t], self.config.frames)[:, :, ys, xs]
        centre = self.config.frames // 2
        return degenerate_output(model(windows), windows[:, centre:centre + 1], self.valid[ys, xs])

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "config": {**cfg.to_dict(), "device": str(self.device)},
            "derived": {"network": cfg.network, "holdout_frames": self.held, "train_frames": len(self.train_frames),
                        "normalisation": {"offset": self.normalisation.offset, "scale": self.normalisation.scale}},
            "data": {"shape": list(self.shape), "fingerprint": fingerprint(self.data.cpu().numpy())},
        }

    def save(self, path: Path, model: nn.Module, extra: dict[str, Any]) -> None:
        save_denoiser(path, model, self.normalisation, overwrite=True, extra=extra)
