"""Blind-spot networks: no output pixel depends on the same pixel of any input frame.

The construction follows UDVD (Sheth, Mohan et al., ICCV 2021): every
convolution and pooling of a "blind" U-Net first shifts its input down by one
row, so the output at row ``i`` only sees input rows ``<= i``; a final shift
by ``s`` rows makes that ``<= i - s``. The input is processed at four
rotations (0/90/180/270 degrees), un-rotated and fused by 1x1 convolutions, so
each output pixel sees the four half-planes around it but never the pixel
itself (``s = 1``) or its 3x3 neighbourhood (``s = 2``, the electron variant
for spatially correlated detector noise). ``blind_spot="row"`` keeps only the
two vertical half-planes (0 and 180 degrees, ``s = 1``), so each output pixel
never sees its own scan line, for noise correlated along the fast-scan
direction (line offsets, x-correlated noise). The blind spot is the same
pixel (row) in every input frame.

Shapes: frames in ``(B, F, H, W)`` (``F`` = 5 for the video network, 1 for the
single-frame one), denoised centre frame out ``(B, 1, H, W)``. ``H`` and ``W``
must be multiples of 4 (two poolings); :mod:`tomotime.denoise.inference` pads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BlindUNet", "BlindSpotNet", "blind_shift", "BLIND_SHIFTS", "ORIENTATIONS"]

#: Final shift (rows) for each blind-spot shape: 1 pixel, its 3x3 neighbourhood, or its whole row.
BLIND_SHIFTS = {"pixel": 1, "3x3": 2, "row": 1}
#: Rotations (multiples of 90 degrees) whose half-planes each blind-spot shape uses.
ORIENTATIONS = {"pixel": (0, 1, 2, 3), "3x3": (0, 1, 2, 3), "row": (0, 2)}


def blind_shift(x: torch.Tensor, rows: int = 1) -> torch.Tensor:
    """Shift ``(B, C, H, W)`` down by ``rows`` (zeros enter at the top, the last rows drop)."""
    return F.pad(x, (0, 0, rows, 0))[:, :, : x.shape[2]]


class BlindConv(nn.Module):
    """Shift down one row, replicate-pad, 3x3 convolution without bias, LeakyReLU(0.1), drop the last row."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(F.pad(x, (0, 0, 1, 0)), (1, 1, 1, 1), mode="replicate")
        return F.leaky_relu(self.conv(x), 0.1)[:, :, :-1]


def _blind_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(blind_shift(x), 2)


class _Stack(nn.Sequential):
    def __init__(self, c_in: int, c_mid: int, c_out: int, n: int) -> None:
        widths = [c_in] + [c_mid] * (n - 1) + [c_out]
        super().__init__(*[BlindConv(a, b) for a, b in zip(widths[:-1], widths[1:])])


class BlindUNet(nn.Module):
    """The blind U-Net of UDVD: output row ``i`` sees input rows ``<= i`` only.

    Three encoder stages (3 blind convolutions each, blind max-pooling after
    the first two) and two decoder stages (nearest up-sampling, skip
    connection, 4 blind convolutions). ``width=48`` is the paper's network.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    width : int
        Encoder channels; decoders use twice as many.
    """

    def __init__(self, c_in: int, c_out: int, *, width: int = 48) -> None:
        super().__init__()
        w = width
        self.enc1 = _Stack(c_in, w, w, 3)
        self.enc2 = _Stack(w, w, w, 3)
        self.enc3 = _Stack(w, 2 * w, w, 3)
        self.dec2 = _Stack(2 * w, 2 * w, 2 * w, 4)
        self.dec1 = _Stack(2 * w + c_in, 2 * w, c_out, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = _blind_pool(self.enc1(x))
        y = self.enc3(_blind_pool(self.enc2(x1)))
        y = self.dec2(torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), x1], dim=1))
        return self.dec1(torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), x], dim=1))


class BlindSpotNet(nn.Module):
    """UDVD's blind-spot denoiser: the centre frame of ``frames`` consecutive frames, without its own pixel.

    ``stages=2`` with ``frames=5`` is the paper's network: the triplets of
    frames 0-2, 1-3 and 2-4 pass a shared blind U-Net (``2w/3`` outputs each),
    their outputs a second blind U-Net (``2w`` outputs). ``stages=1`` feeds all
    frames to one blind U-Net (``2w`` outputs), much cheaper. After the final
    shift the four rotations are un-rotated, concatenated (``8w`` channels)
    and fused by 1x1 convolutions ``8w -> 8w -> 2w -> 1`` with LeakyReLU(0.1)
    (two rotations and ``4w`` channels for ``blind_spot="row"``).

    Parameters
    ----------
    frames : int
        Input frames (odd; 5 for video, 1 for single frames).
    width : int
        U-Net width ``w`` (paper: 48, about 2.1 M parameters with two stages).
    stages : {1, 2}
        Two-stage (paper) or one-stage network; two stages need 5 frames.
    blind_spot : {"pixel", "3x3", "row"}
        What each output pixel must not see, in every frame.
    """

    def __init__(self, *, frames: int = 5, width: int = 48, stages: int = 2, blind_spot: str = "pixel") -> None:
        super().__init__()
        if stages == 2 and frames != 5:
            raise ValueError("the two-stage network takes 5 frames")
        self.frames, self.width, self.stages, self.blind_spot = frames, width, stages, blind_spot
        self.shift, self.orientations = BLIND_SHIFTS[blind_spot], ORIENTATIONS[blind_spot]
        fused = 2 * width
        n = len(self.orientations)
        if stages == 2:
            self.stage1 = BlindUNet(3, round(2 * width / 3), width=width)
            self.stage2 = BlindUNet(3 * round(2 * width / 3), fused, width=width)
        else:
            self.stage1 = BlindUNet(frames, fused, width=width)
            self.stage2 = None
        self.fuse = nn.Sequential(
            nn.Conv2d(n * fused, n * fused, 1, bias=False), nn.LeakyReLU(0.1),
            nn.Conv2d(n * fused, fused, 1, bias=False), nn.LeakyReLU(0.1),
            nn.Conv2d(fused, 1, 1, bias=False))

    def _half_plane(self, x: torch.Tensor) -> torch.Tensor:
        """The blind features of one orientation: row ``i`` sees rows ``<= i - shift``."""
        if self.stage2 is None:
            y = self.stage1(x)
        else:
            y = self.stage2(torch.cat([self.stage1(x[:, k:k + 3]) for k in range(3)], dim=1))
        return blind_shift(y, self.shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``(B, F, H, W)`` (H, W multiples of 4) into the centre frame ``(B, 1, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.frames:
            raise ValueError(f"expected (B, {self.frames}, H, W), got {tuple(x.shape)}")
        if x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"frame sides must be multiples of 4, got {tuple(x.shape[2:])}")
        b, ks = x.shape[0], self.orientations
        turned = [torch.rot90(x, k, dims=(2, 3)) for k in ks]
        if all(t.shape == turned[0].shape for t in turned):  # one batched pass over the orientations
            parts = list(self._half_plane(torch.cat(turned, dim=0)).split(b, dim=0))
        else:
            parts = [self._half_plane(t) for t in turned]
        return self.fuse(torch.cat([torch.rot90(p, -k, dims=(2, 3)) for k, p in zip(ks, parts)], dim=1))
