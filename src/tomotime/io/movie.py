"""Frame series (movies) ``(T, H, W)``: read any supported stack, write the same format back.

A movie needs no tilt angles. Readers are those of tilt series (TIFF, NPY,
MRC, HDF5, Velox EMD, DigitalMicrograph, TIA SER); values keep their dtype
until :func:`tomotime.denoise.check_movie` makes them float32. Writers exist
for TIFF, NPY, MRC and HDF5; a movie read from a microscope vendor format is
written as TIFF.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import mrcfile
import numpy as np
import tifffile

from tomotime.errors import FormatError
from tomotime.io._common import RawStack, existing_file
from tomotime.io.atomic import atomic_path
from tomotime.io.emformats import EM_FORMATS, read_em
from tomotime.io.hdf5 import read_hdf5
from tomotime.io.mrc import read_mrc
from tomotime.io.tiff import read_tiff

__all__ = ["read_movie", "write_movie", "movie_output_suffix", "MOVIE_SUFFIXES"]

_READERS = {".tif": read_tiff, ".tiff": read_tiff, ".mrc": read_mrc, ".mrcs": read_mrc, ".st": read_mrc,
            ".h5": read_hdf5, ".hdf5": read_hdf5, **{s: read_em for s in EM_FORMATS}}
MOVIE_SUFFIXES = tuple(sorted([*_READERS, ".npy"]))
_WRITABLE = {".tif", ".tiff", ".npy", ".mrc", ".mrcs", ".st", ".h5", ".hdf5"}


def _tiff_is_rgb(path: Path) -> bool:
    with tifffile.TiffFile(path) as tif:
        return "S" in tif.series[0].axes


def read_movie(path: str | Path) -> tuple[np.ndarray, RawStack]:
    """The frames ``(T, H, W)`` of ``path`` in the file's dtype, and what the reader found.

    Raises
    ------
    FormatError
        Missing, empty or unreadable file, unknown extension, or an RGB TIFF.
    """
    p = existing_file(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            raw = RawStack(images=np.load(p, allow_pickle=False), format="npy")
        except (ValueError, OSError, EOFError) as exc:
            raise FormatError(f"{p}: not a readable .npy file, or truncated ({exc})") from exc
    elif suffix in _READERS:
        raw = _READERS[suffix](p)
        if raw.format == "tiff" and _tiff_is_rgb(p):
            raise FormatError(f"{p}: an RGB(A) TIFF {np.shape(raw.images)}; expected grey-level frames "
                              "(convert to greyscale first)")
    else:
        raise FormatError(f"{p}: unknown movie format {p.suffix!r}; expected one of {', '.join(MOVIE_SUFFIXES)}")
    return np.asarray(raw.images), raw


def movie_output_suffix(source: str | Path) -> str:
    """The suffix a denoised copy of ``source`` is written with (TIFF for vendor formats)."""
    suffix = Path(source).suffix.lower()
    return suffix if suffix in _WRITABLE else ".tif"


def write_movie(path: str | Path, movie: np.ndarray, *, pixel_size: float | None = None,
                overwrite: bool = False) -> Path:
    """Write float32 frames ``(T, H, W)`` atomically in the format of ``path``'s suffix.

    ``pixel_size`` (nm) goes into MRC and HDF5 headers when given.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    data = np.ascontiguousarray(movie, dtype=np.float32)
    if suffix not in _WRITABLE:
        raise FormatError(f"{p}: cannot write movies as {p.suffix!r}; use .tif, .npy, .mrc or .h5")
    with atomic_path(p, overwrite=overwrite) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, data)
        elif suffix in (".tif", ".tiff"):
            tifffile.imwrite(tmp, data, imagej=True, metadata={"axes": "TYX"})
        elif suffix in (".h5", ".hdf5"):
            with h5py.File(tmp, "w") as f:
                f.create_dataset("images", data=data, chunks=(1, *data.shape[1:]))
                if pixel_size:
                    f.attrs["pixel_size"] = float(pixel_size)
        else:
            with mrcfile.new(tmp, overwrite=True) as mrc:
                mrc.set_data(data)
                mrc.set_image_stack()
                if pixel_size:
                    mrc.voxel_size = float(pixel_size) * 10.0  # header in angstrom
    return p
