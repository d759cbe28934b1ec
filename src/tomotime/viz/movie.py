"""Movies of a volume series over time: MP4 (H.264), animated GIF or animated WebP, via imageio.

Every frame shows one section (or the three orthoslices) of the volume at one
time point, magnified, with the time stamp and a scale bar in nm. The display
range is fixed over the whole movie, so brightness changes are real.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from tomotime.data import VolumeSeries
from tomotime.errors import InputError
from tomotime.io.atomic import atomic_path, check_output
from tomotime.viz.annotate import annotate_frame
from tomotime.viz.slices import PLANES, intensity_range, orthoslices, plane_axis, section, to_uint8

__all__ = ["MOVIE_FORMATS", "SLICES", "movie_frames", "write_movie", "movie_bytes", "default_scale"]

MOVIE_FORMATS = (".mp4", ".gif", ".webp")
SLICES = (*PLANES, "ortho")
_MIME = {".mp4": "video/mp4", ".gif": "image/gif", ".webp": "image/webp"}


def default_scale(shape: tuple[int, ...], *, target: int = 256) -> int:
    """Integer magnification that brings the largest edge near ``target`` pixels (1 to 8)."""
    return int(min(8, max(1, round(target / max(shape)))))


def _check(series: VolumeSeries, plane: str, index: int | None, fps: float) -> None:
    if plane not in SLICES:
        raise InputError(f"--slice {plane!r}: expected one of {', '.join(SLICES)}")
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps={fps}: expected a positive frame rate")
    if plane == "ortho":
        if index is not None:
            raise InputError("--index applies to a single plane (xy, xz or yz), not to 'ortho'")
        return
    size = series.shape[1 + plane_axis(plane)]
    if index is not None and not (0 <= index < size):
        raise InputError(f"--index {index}: out of range for the {plane} plane, which has indices 0..{size - 1} "
                         f"(series shape T, Z, Y, X = {series.shape})")


def movie_frames(series: VolumeSeries, *, plane: str = "xy", index: int | None = None, scale: int | None = None,
                 stride: int = 1) -> Iterator[np.ndarray]:
    """RGB uint8 frames, one per time point (every ``stride``-th), annotated.

    Raises
    ------
    InputError
        For an unknown plane or an index outside the volume.
    """
    _check(series, plane, index, 1.0)
    picks = range(0, len(series), max(1, int(stride)))
    lo, hi = intensity_range(series[t] for t in np.unique(np.linspace(0, len(series) - 1, 5).astype(int)))
    scale = scale or default_scale(series.shape[1:])
    for t in picks:
        volume = series[t]
        if plane == "ortho":
            image, panel = orthoslices(volume, lo, hi), volume.shape[2]
        else:
            image = to_uint8(section(volume, plane, index), lo, hi)
            panel = image.shape[1]
        yield annotate_frame(image, scale=scale, time_s=float(series.times[t]), pixel_nm=series.voxel_size,
                             panel_width_px=panel)


def _write_frames(frames: Iterator[np.ndarray], tmp: Path, suffix: str, fps: float) -> int:
    import imageio.v2 as iio

    count = 0
    if suffix == ".mp4":
        writer = iio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                macro_block_size=2, quality=8, ffmpeg_log_level="error",
                                output_params=["-movflags", "+faststart"])
        try:
            for frame in frames:
                writer.append_data(frame)
                count += 1
        finally:
            writer.close()
        return count
    stack = list(frames)
    count = len(stack)
    duration_ms = 1000.0 / fps
    if suffix == ".gif":
        iio.mimwrite(tmp, stack, format="GIF-PIL", duration=duration_ms, loop=0)
    else:
        from PIL import Image

        images = [Image.fromarray(f) for f in stack]
        images[0].save(tmp, format="WEBP", save_all=True, append_images=images[1:], duration=int(duration_ms),
                       loop=0, lossless=False, quality=80)
    return count


def write_movie(series: VolumeSeries, path: str | Path, *, plane: str = "xy", index: int | None = None,
                fps: float = 10.0, scale: int | None = None, stride: int = 1, overwrite: bool = False) -> Path:
    """Write a movie of ``series`` (format from the suffix: .mp4, .gif or .webp), atomically.

    Parameters
    ----------
    series : VolumeSeries
        The volumes ``(T, Z, Y, X)``, times in seconds, voxel size in nm.
    path : path
        Output file.
    plane : {"xy", "xz", "yz", "ortho"}
        Section shown; ``ortho`` puts the three central sections side by side.
    index : int, optional
        Slice index along the plane's normal (default: the centre).
    fps : float
        Frames per second.
    scale : int, optional
        Magnification (default: about 256 pixels across).
    stride : int
        Use every ``stride``-th time point.
    overwrite : bool
        Replace an existing file.

    Raises
    ------
    InputError
        For an unknown format or plane, or an index outside the volume.
    OutputExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MOVIE_FORMATS:
        raise InputError(f"{path}: unknown movie format {suffix or '(none)'!r}; expected one of "
                         f"{', '.join(MOVIE_FORMATS)}")
    _check(series, plane, index, fps)
    check_output(path, overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        _write_frames(movie_frames(series, plane=plane, index=index, scale=scale, stride=stride), tmp, suffix, fps)
    return path


def movie_bytes(series: VolumeSeries, *, fmt: str = ".mp4", **kwargs) -> tuple[bytes, str]:
    """The movie as bytes and its MIME type (for embedding), see :func:`write_movie`."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_movie(series, Path(folder) / f"movie{fmt}", **kwargs)
        return path.read_bytes(), _MIME[fmt]
