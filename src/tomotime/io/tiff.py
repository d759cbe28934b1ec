"""Multi-page TIFF stacks via tifffile.

Volumes are written as ImageJ hyperstacks (axes ``ZYX``, unit nm) so Fiji and
napari show the right voxel size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from tomotime.errors import FormatError
from tomotime.io._common import RawStack, checked_volume, existing_file, length_to_nm
from tomotime.io.atomic import atomic_path, check_output

__all__ = ["read_tiff", "write_volume_tiff"]


def _pixel_size_nm(tif: tifffile.TiffFile) -> float | None:
    page = tif.pages.first
    x_per_unit = float(page.resolution[0])
    if x_per_unit <= 0:
        return None
    imagej = tif.imagej_metadata or {}
    if imagej.get("unit"):
        return length_to_nm(1.0 / x_per_unit, imagej["unit"])
    if page.resolutionunit == tifffile.RESUNIT.CENTIMETER:
        return length_to_nm(1.0 / x_per_unit, "cm")
    return None


def read_tiff(path: str | Path) -> RawStack:
    """Read a (multi-page) TIFF: data in the file's dtype, pixel size in nm if recorded.

    The pixel size comes from ImageJ metadata (``unit`` with the X
    resolution) or from a centimetre resolution unit; otherwise it is ``None``.
    Pages stored one by one are stacked.

    Raises
    ------
    FormatError
        If the file is missing, empty, truncated or not a TIFF, holds colour
        images, or pages of different sizes.
    """
    p = existing_file(path)
    try:
        with tifffile.TiffFile(p) as tif:
            _check_pages(tif, p)
            data = tif.asarray() if len(tif.series) == 1 else np.stack([s.asarray() for s in tif.series])
            pixel = _pixel_size_nm(tif)
            spacing = (tif.imagej_metadata or {}).get("spacing")
    except FormatError:
        raise
    except Exception as exc:  # tifffile raises many types on corrupt files
        raise FormatError(f"{p}: not a readable TIFF file ({type(exc).__name__}: {exc})") from exc
    return RawStack(images=data, format="tiff", pixel_size=pixel, extra={"z_spacing": spacing})


def _check_pages(tif: tifffile.TiffFile, p: Path) -> None:
    """Refuse colour pages and pages of different sizes, saying what the file holds.

    Pages written one by one (several series of one shape) are stacked by the caller.
    """
    page = tif.pages.first
    if page.photometric in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.PALETTE) or page.samplesperpixel > 1:
        raise FormatError(f"{p}: holds colour images ({page.photometric.name}, {page.samplesperpixel} samples per "
                          f"pixel, page shape {page.shape}); expected grayscale: convert the images to grayscale "
                          "(e.g. Fiji: Image > Type > 32-bit) and save them as one stack")
    if len({tuple(series.shape) for series in tif.series}) > 1:
        counts: dict[tuple, int] = {}
        for series in tif.series:
            counts[tuple(series.shape)] = counts.get(tuple(series.shape), 0) + 1
        found = ", ".join(f"{n} x {'x'.join(map(str, shape))}" for shape, n in counts.items())
        raise FormatError(f"{p}: holds {len(tif.pages)} pages in {len(tif.series)} series of different shapes "
                          f"({found}); expected pages of one size forming a stack")


def write_volume_tiff(path: str | Path, volume: Any, *, voxel_size: float = 1.0, overwrite: bool = False) -> Path:
    """Write a volume as a float32 ImageJ TIFF stack atomically.

    Parameters
    ----------
    path : str or Path
        Output file (``.tif`` / ``.tiff``).
    volume : array_like, shape (Z, Y, X)
        One page per Z slice.
    voxel_size : float
        Voxel size in nm, stored as the X/Y resolution and the Z spacing.
    overwrite : bool
        Replace an existing file; otherwise raise ``OutputExistsError``.

    Returns
    -------
    Path
        ``path``.
    """
    check_output(path, overwrite=overwrite)
    vol, voxel_size = checked_volume(volume, voxel_size)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(
            tmp,
            vol,
            imagej=True,
            resolution=(1.0 / voxel_size, 1.0 / voxel_size),
            metadata={"axes": "ZYX", "unit": "nm", "spacing": float(voxel_size)},
        )
    return Path(path)
