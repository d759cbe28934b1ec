"""``tomotime export``: a volume series in the formats of other viewers (Tomviz EMD, one MRC per time)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from tomotime.cli.common import OverwriteOption, handle_errors
from tomotime.io import read_volume_series, write_volume_series_mrcs
from tomotime.io.emd_series import write_emd_series, write_tomviz_series

__all__ = ["export"]


@handle_errors
def export(
    volumes: Annotated[Path, typer.Argument(help="Volume series (volumes.h5 written by reconstruct).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="EMD file (emd), or folder (tomviz, mrc).")],
    fmt: Annotated[Literal["emd", "tomviz", "mrc"], typer.Option(
        "--format", help="emd: one EMD 0.2 file (t, z, y, x) with its time axis; tomviz: t0000.emd ... (Tomviz's "
                         "3-D layout, File > Load Time Series) and times.txt; mrc: t0000.mrc ... and times.txt "
                         "(IMOD, Fiji).")] = "emd",
    overwrite: OverwriteOption = False,
) -> None:
    """Export a volume series (T, Z, Y, X): EMD with its time axis, EMD files for Tomviz, or MRC files for IMOD/Fiji."""
    series = read_volume_series(volumes)
    try:
        if fmt == "emd":
            write_emd_series(out, series, overwrite=overwrite)
        elif fmt == "tomviz":
            write_tomviz_series(out, series, overwrite=overwrite)
        else:
            write_volume_series_mrcs(out, series, overwrite=overwrite)
    finally:
        series.data.file.close()
    typer.echo(f"wrote {out} ({fmt}, {series.shape[0]} time points of {tuple(series.shape[1:])})")
