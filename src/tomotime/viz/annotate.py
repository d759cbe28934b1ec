"""Time stamps and scale bars drawn onto movie frames (Pillow, no screen needed)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["nice_length", "annotate_frame"]


def nice_length(width_nm: float, *, fraction: float = 0.25) -> float:
    """A round length (1, 2 or 5 times a power of ten) close to ``fraction`` of ``width_nm``, at most that."""
    target = max(width_nm * fraction, 1e-12)
    power = 10.0 ** math.floor(math.log10(target))
    for mantissa in (5, 2, 1):
        if mantissa * power <= target:
            return mantissa * power
    return power


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single bitmap size
        return ImageFont.load_default()


def _format_length(nm: float) -> str:
    if nm >= 1000:
        return f"{nm / 1000:g} µm"
    return f"{nm:g} nm"


def annotate_frame(image: np.ndarray, *, scale: int, time_s: float | None, pixel_nm: float | None,
                   panel_width_px: int | None = None) -> np.ndarray:
    """Upscale a grey uint8 image by ``scale`` and draw the time stamp and a scale bar.

    Parameters
    ----------
    image : ndarray, uint8, (H, W)
        The frame, one pixel per voxel.
    scale : int
        Integer magnification (nearest neighbour), so that text stays legible.
    time_s : float or None
        Time stamp in seconds, written top left.
    pixel_nm : float or None
        Voxel size in nm; the scale bar is drawn bottom right, below the image.
    panel_width_px : int, optional
        Width (input pixels) of the first panel, to size the bar to it (default the whole width).

    Returns
    -------
    ndarray, uint8, (H * scale + band, W * scale, 3)
        The RGB frame with a text band below the image.
    """
    h, w = image.shape
    big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    font_size = max(10, min(18, 4 * scale + 4))
    band = font_size + 8
    canvas = Image.new("RGB", (w * scale, h * scale + band), (0, 0, 0))
    canvas.paste(Image.fromarray(big).convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(font_size)
    if time_s is not None:
        draw.text((4, h * scale + 3), f"t = {time_s:.4g} s", fill=(255, 255, 255), font=font)
    if pixel_nm is not None and pixel_nm > 0:
        panel = panel_width_px or w
        length_nm = nice_length(panel * pixel_nm)
        bar_px = max(2, int(round(length_nm / pixel_nm * scale)))
        x1 = w * scale - 6
        x0 = x1 - bar_px
        y_mid = h * scale + band // 2
        draw.rectangle([x0, y_mid - 1, x1, y_mid + 2], fill=(255, 255, 255))
        label = _format_length(length_nm)
        left, _, right, _ = draw.textbbox((0, 0), label, font=font)
        draw.text((x0 - (right - left) - 6, h * scale + 3), label, fill=(255, 255, 255), font=font)
    out = np.asarray(canvas)
    pad_h, pad_w = out.shape[0] % 2, out.shape[1] % 2  # H.264 wants even sizes
    if pad_h or pad_w:
        out = np.pad(out, ((0, pad_h), (0, pad_w), (0, 0)))
    return out
