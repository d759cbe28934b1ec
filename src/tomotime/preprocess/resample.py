"""Binning (block mean/sum or Fourier) and cropping of tilt-series images."""

from __future__ import annotations

from typing import Literal

import numpy as np

from tomotime.data import TiltSeries
from tomotime.errors import InputError
from tomotime.preprocess._record import derived
from tomotime.preprocess.recipe import StepParams, register_step

__all__ = ["bin_series", "crop", "resize", "fourier_resample", "BinParams", "CropParams", "ResizeParams"]


class BinParams(StepParams):
    factor: int = 2
    method: Literal["mean", "sum", "fourier"] = "mean"


class CropParams(StepParams):
    box: tuple[int, int, int, int] | None = None
    size: tuple[int, int] | None = None


class ResizeParams(StepParams):
    shape: tuple[int, int]


def fourier_resample(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample images ``(N, Y, X)`` to ``shape`` by cropping (or zero-padding) their spectra.

    The mean of each image is kept. Down-sampling by an integer factor ``f``
    returns a band-limited image exactly at the samples ``0, f, 2f, ...``.
    The Nyquist row/column of an even-sized spectrum is dropped, not split.
    """
    ny, nx = images.shape[1:]
    my, mx = shape
    spec = np.fft.fftshift(np.fft.fft2(images.astype(np.float64)), axes=(-2, -1))
    out = np.zeros((images.shape[0], my, mx), dtype=np.complex128)
    cy, cx = min(ny, my), min(nx, mx)
    # keep frequencies -(c-1)//2 .. (c-1)//2 so the result is real (no unpaired Nyquist term)
    ky, kx = (cy - 1) // 2, (cx - 1) // 2
    sy, sx = ny // 2, nx // 2
    ty, tx = my // 2, mx // 2
    out[:, ty - ky:ty + ky + 1, tx - kx:tx + kx + 1] = spec[:, sy - ky:sy + ky + 1, sx - kx:sx + kx + 1]
    result = np.fft.ifft2(np.fft.ifftshift(out, axes=(-2, -1))).real * (my * mx) / (ny * nx)
    return result.astype(np.float32)


@register_step("bin", BinParams)
def bin_series(series: TiltSeries, factor: int = 2, method: str = "mean") -> TiltSeries:
    """Bin the images by an integer ``factor`` (block mean, block sum, or Fourier cropping).

    Block methods drop the last rows/columns that do not fill a block. The
    pixel size grows by ``factor``; pose shifts shrink by it.
    """
    if factor < 1:
        raise InputError(f"bin: factor={factor}: expected an integer >= 1")
    n, ny, nx = series.shape
    my, mx = ny // factor, nx // factor
    if min(my, mx) < 1:
        raise InputError(f"bin: factor={factor} is larger than the images ({ny} x {nx})")
    if method == "fourier":
        out = fourier_resample(series.images, (my, mx))
    else:
        blocks = series.images[:, :my * factor, :mx * factor].reshape(n, my, factor, mx, factor)
        out = blocks.sum(axis=(2, 4), dtype=np.float64)
        out = (out if method == "sum" else out / factor**2).astype(np.float32)
    poses = None
    if series.poses is not None:
        poses = series.poses.copy()
        poses[:, 2:] /= factor
    return derived(series, out, "bin", factor=factor, method=method, pixel_size=series.pixel_size * factor,
                   poses=poses)


@register_step("resize", ResizeParams)
def resize(series: TiltSeries, shape: tuple[int, int]) -> TiltSeries:
    """Resample the images to ``shape = (Y, X)`` by Fourier cropping or padding (keeps the mean).

    The pixel size follows the X axis: ``pixel_size * X_old / X_new``.
    """
    my, mx = (int(s) for s in shape)
    if min(my, mx) < 1:
        raise InputError(f"resize: shape={shape}: expected positive sizes")
    ny, nx = series.shape[1:]
    if abs(my / ny - mx / nx) > 1e-6 * max(my / ny, mx / nx):
        raise InputError(f"resize: shape={shape} changes the aspect ratio of {ny} x {nx} images; crop first")
    poses = None
    if series.poses is not None:
        poses = series.poses.copy()
        poses[:, 2] *= my / ny
        poses[:, 3] *= mx / nx
    return derived(series, fourier_resample(series.images, (my, mx)), "resize", shape=[my, mx],
                   pixel_size=series.pixel_size * nx / mx, poses=poses)


@register_step("crop", CropParams)
def crop(series: TiltSeries, box: tuple[int, int, int, int] | None = None,
         size: tuple[int, int] | None = None) -> TiltSeries:
    """Crop the images to ``box = (y0, y1, x0, x1)`` (pixels, end exclusive) or a centred ``size = (Y, X)``.

    Pose shifts are re-expressed about the new image centre.
    """
    n, ny, nx = series.shape
    if (box is None) == (size is None):
        raise InputError("crop: give exactly one of box=(y0, y1, x0, x1) or size=(Y, X)")
    if size is not None:
        h, w = size
        if not (1 <= h <= ny and 1 <= w <= nx):
            raise InputError(f"crop: size={tuple(size)} must fit in the images ({ny} x {nx})")
        y0, x0 = (ny - h) // 2, (nx - w) // 2
        box = (y0, y0 + h, x0, x0 + w)
    y0, y1, x0, x1 = box
    if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
        raise InputError(f"crop: box={tuple(box)} (y0, y1, x0, x1) must lie within the images ({ny} x {nx}) "
                         "with y0 < y1 and x0 < x1")
    poses = None
    if series.poses is not None:
        poses = series.poses.copy()
        poses[:, 2] -= (y0 + y1 - 1) / 2 - (ny - 1) / 2
        poses[:, 3] -= (x0 + x1 - 1) / 2 - (nx - 1) / 2
    return derived(series, np.ascontiguousarray(series.images[:, y0:y1, x0:x1]), "crop",
                   box=[int(y0), int(y1), int(x0), int(x1)], poses=poses)
