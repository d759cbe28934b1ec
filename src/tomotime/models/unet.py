"""A standard U-Net (Ronneberger et al., 2015) for image-to-image filtering.

Each level: two 3x3 convolutions with ReLU (zero padding, so the output has
the input's size); 2x2 max pooling down, 2x2 transposed convolution up, skip
connections by concatenation; a final 1x1 convolution. Input ``(B, 1, H, W)``
with ``H`` and ``W`` multiples of ``2 ** depth``; output ``(B, 1, H, W)``.
The paper's network has width 64 and depth 4; smaller settings train on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net with ``depth`` poolings and ``width * 2**level`` channels per level.

    Parameters
    ----------
    width : int
        Channels of the first level.
    depth : int
        Number of poolings (the input size must be a multiple of ``2 ** depth``).
    channels : int
        Input and output channels.
    """

    def __init__(self, width: int = 16, depth: int = 3, channels: int = 1) -> None:
        super().__init__()
        self.width, self.depth, self.channels = int(width), int(depth), int(channels)
        widths = [width * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList([_block(channels if k == 0 else widths[k - 1], widths[k]) for k in range(depth)])
        self.bottom = _block(widths[depth - 1] if depth else channels, widths[depth])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2)
                                 for k in reversed(range(depth))])
        self.merge = nn.ModuleList([_block(2 * widths[k], widths[k]) for k in reversed(range(depth))])
        self.out = nn.Conv2d(widths[0], channels, 1)
        self.pool = nn.MaxPool2d(2)

    @property
    def multiple(self) -> int:
        """Input sizes must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"U-Net input {tuple(x.shape[-2:])}: expected multiples of {self.multiple}")
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.out(x)
