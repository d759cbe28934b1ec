"""A frame series prepared for a blind-spot denoiser: checks, normalisation, frame windows, padding.

Movies are ``(T, H, W)``; any real dtype is accepted and worked on as float32
normalised to zero mean and unit standard deviation (the scale is kept to
undo it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tomotime.errors import InputError

__all__ = ["check_movie", "Normalisation", "window_indices", "frame_windows", "pad_to_multiple"]


def check_movie(movie: np.ndarray, *, name: str = "movie", min_frames: int = 1) -> np.ndarray:
    """Return ``movie`` as float32 ``(T, H, W)`` after checking it.

    Raises
    ------
    InputError
        Not 3-D (an RGB stack is named as such), complex or non-numeric, NaN
        or Inf (the first bad frame is named), fewer than ``min_frames`` frames,
        or frames smaller than 4 x 4.
    """
    arr = np.asarray(movie)
    if arr.ndim == 4 and arr.shape[-1] in (3, 4):
        raise InputError(f"{name}: looks like an RGB(A) stack {arr.shape}; expected grey-level frames (T, H, W)")
    if arr.ndim == 2:
        raise InputError(f"{name}: a single image {arr.shape}; expected a frame series (T, H, W)")
    if arr.ndim != 3:
        raise InputError(f"{name}: expected a frame series (T, H, W), got a {arr.ndim}-D array {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
    if bad.any():
        frames = np.flatnonzero(bad)
        raise InputError(f"{name}: frames {', '.join(map(str, frames[:5]))}{' ...' if frames.size > 5 else ''} "
                         "hold NaN or Inf; remove or repair them")
    if arr.shape[0] < min_frames:
        raise InputError(f"{name}: {arr.shape[0]} frames; the video denoiser needs at least {min_frames} "
                         "(use the single-frame variant, --method single, for fewer)")
    if min(arr.shape[1:]) < 4:
        raise InputError(f"{name}: frames of {arr.shape[1]} x {arr.shape[2]} px; expected at least 4 x 4")
    return arr


@dataclass(frozen=True)
class Normalisation:
    """``normalised = (value - offset) / scale``."""

    offset: float
    scale: float

    @classmethod
    def of(cls, movie: np.ndarray) -> Normalisation:
        """Mean and standard deviation of ``movie`` (scale 1 for a constant movie)."""
        std = float(np.std(movie, dtype=np.float64))
        return cls(float(np.mean(movie, dtype=np.float64)), std if std > 0 else 1.0)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.offset) / self.scale).astype(np.float32)

    def undo(self, x: np.ndarray) -> np.ndarray:
        return (x * self.scale + self.offset).astype(np.float32)


def window_indices(t: int, n_frames: int, frames: int) -> list[int]:
    """Indices of the ``frames`` frames centred on ``t``, mirrored at the ends of a movie of ``n_frames``."""
    half = frames // 2
    out = []
    for k in range(t - half, t + half + 1):
        if n_frames == 1:
            out.append(0)
            continue
        period = 2 * (n_frames - 1)
        k = k % period
        out.append(k if k < n_frames else period - k)
    return out


def frame_windows(movie: torch.Tensor, centres: torch.Tensor | list[int], frames: int) -> torch.Tensor:
    """Stack the windows of ``frames`` frames around each centre: ``(T, H, W) -> (len(centres), frames, H, W)``."""
    idx = torch.tensor([window_indices(int(t), movie.shape[0], frames) for t in centres], dtype=torch.long)
    return movie[idx.to(movie.device)]


def pad_to_multiple(x: torch.Tensor, multiple: int = 4, *, min_size: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(..., H, W)`` at the bottom and right with zeros to multiples of ``multiple`` (at least ``min_size``).

    Zeros (the mean of normalised data) rather than mirrored values: a
    mirrored copy of a pixel would let a blind-spot network see that pixel.

    Returns
    -------
    padded : torch.Tensor
    size : (int, int)
        The original ``(H, W)``, to crop the result back.
    """
    h, w = x.shape[-2:]
    ph = max(-(-h // multiple) * multiple, min_size) - h
    pw = max(-(-w // multiple) * multiple, min_size) - w
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)
