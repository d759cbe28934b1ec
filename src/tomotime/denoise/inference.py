"""Applying a trained blind-spot denoiser to a whole movie: padding and tiling without seams.

Frames of any size are padded (zeros at the bottom and right) to multiples
of 4. Frames larger than ``tile`` are cut into overlapping square tiles whose
origins lie on the 4-pixel pooling grid of the whole frame; each tile keeps
only its centre (``overlap`` pixels from inner edges are dropped), so where
``overlap`` covers the network's reach the result equals whole-frame inference.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from tomotime.denoise.movie import frame_windows, pad_to_multiple
from tomotime.errors import InputError

__all__ = ["denoise_normalised", "tile_starts", "DEFAULT_TILE", "DEFAULT_OVERLAP"]

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 96


def tile_starts(size: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """``(start, keep_from, keep_to)`` of the tiles covering ``size`` pixels (all multiples of 4).

    Tile ``k`` covers ``[start, start + tile)`` and supplies the result on
    ``[keep_from, keep_to)``; the kept ranges partition ``[0, size)``.
    """
    if size <= tile:
        return [(0, 0, size)]
    step = tile - 2 * overlap
    starts = list(range(0, size - tile, step)) + [size - tile]
    out = []
    for k, s in enumerate(starts):
        lo = 0 if k == 0 else out[-1][2]
        hi = size if k == len(starts) - 1 else s + tile - overlap
        out.append((s, lo, hi))
    return out


def denoise_normalised(model: nn.Module, movie: torch.Tensor, *, frames: list[int] | None = None,
                       tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, batch: int = 4,
                       mixed_precision: bool = False) -> torch.Tensor:
    """Denoise frames of a normalised movie with a blind-spot network.

    Parameters
    ----------
    model : nn.Module
        A :class:`~tomotime.models.blindspot.BlindSpotNet` (its ``frames`` attribute is used).
    movie : torch.Tensor, shape (T, H, W), float32
        Normalised frames on the model's device.
    frames : list of int, optional
        Frames to denoise (default: all).
    tile, overlap : int
        Tile side and dropped margin (px, multiples of 4; ``tile > 2 * overlap``).
    batch : int
        Windows per forward pass.
    mixed_precision : bool
        bfloat16 autocast on CUDA.

    Returns
    -------
    torch.Tensor, shape (len(frames), H, W), float32
    """
    if tile % 4 or overlap % 4 or tile <= 2 * overlap:
        raise InputError(f"tile={tile}, overlap={overlap}: expected multiples of 4 with tile > 2 * overlap")
    frames = list(range(movie.shape[0])) if frames is None else list(frames)
    padded, (h, w) = pad_to_multiple(movie)
    hp, wp = padded.shape[-2:]
    out = torch.empty((len(frames), h, w), dtype=torch.float32, device=movie.device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if mixed_precision and movie.device.type == "cuda"
                else contextlib.nullcontext())
    model.eval()
    with torch.no_grad(), autocast:
        for i in range(0, len(frames), batch):
            windows = frame_windows(padded, frames[i:i + batch], model.frames)
            result = torch.empty(windows.shape[0], hp, wp, device=movie.device)
            for ys, ylo, yhi in tile_starts(hp, tile, overlap):
                for xs, xlo, xhi in tile_starts(wp, tile, overlap):
                    part = model(windows[:, :, ys:ys + tile, xs:xs + tile])[:, 0].float()
                    result[:, ylo:yhi, xlo:xhi] = part[:, ylo - ys:yhi - ys, xlo - xs:xhi - xs]
            out[i:i + batch] = result[:, :h, :w]
    return out
