"""Images, figures and videos as ``data:`` URIs, so that one HTML file holds everything."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

__all__ = ["data_uri", "png_data_uri", "figure_data_uri"]


def data_uri(payload: bytes, mime: str) -> str:
    """``data:<mime>;base64,<payload>``."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 image ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB) as a PNG ``data:`` URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=False, compress_level=6)
    return data_uri(buffer.getvalue(), "image/png")


def figure_data_uri(fig, *, dpi: int = 100) -> str:
    """A matplotlib figure as a PNG ``data:`` URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return data_uri(buffer.getvalue(), "image/png")
