"""``tomotime movie``: a movie of a volume series over time, with time stamp and scale bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tomotime.cli.common import OverwriteOption, handle_errors
from tomotime.errors import InputError
from tomotime.io import read_volume_series
from tomotime.viz.movie import MOVIE_FORMATS, SLICES, write_movie

__all__ = ["movie"]


@handle_errors
def movie(
    volumes: Annotated[Path, typer.Argument(help="Volume series (volumes.h5 written by reconstruct).")],
    out: Annotated[Path, typer.Option("--out", "-o", help=f"Movie file: {', '.join(MOVIE_FORMATS)}.")],
    plane: Annotated[str, typer.Option("--slice", help=f"Section shown: {', '.join(SLICES)} (ortho: all three).")]
    = "xy",
    index: Annotated[Optional[int], typer.Option("--index", help="Slice index along the plane's normal "
                                                                 "(default: the centre).")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 10.0,
    scale: Annotated[Optional[int], typer.Option("--scale", min=1, max=16,
                                                 help="Magnification (default: about 256 px across).")] = None,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Use every n-th time point.")] = 1,
    overwrite: OverwriteOption = False,
) -> None:
    """Write a movie (MP4, GIF or WebP) of one section of a volume series over time."""
    if plane not in SLICES:
        raise InputError(f"--slice {plane!r}: expected one of {', '.join(SLICES)}")
    series = read_volume_series(volumes)
    try:
        path = write_movie(series, out, plane=plane, index=index, fps=fps, scale=scale, stride=stride,
                           overwrite=overwrite)
    finally:
        series.data.file.close()
    typer.echo(f"wrote {path} ({len(range(0, len(series), stride))} frames, {plane}, {path.stat().st_size / 1e6:.2f} MB)")
