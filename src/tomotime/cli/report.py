"""``tomotime report``: the self-contained HTML report of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tomotime.cli.common import OverwriteOption, handle_errors, parse_times
from tomotime.viz.report import REPORT_NAME, write_report

__all__ = ["report", "write_run_report", "NoReportOption"]

NoReportOption = Annotated[bool, typer.Option("--no-report", help=f"Do not write {REPORT_NAME}, the HTML report "
                                                                    "of the run, at the end.")]


@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder: the --out of reconstruct or demo.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=f"HTML file (default RUN_DIR/{REPORT_NAME}).")]
    = None,
    times: Annotated[Optional[str], typer.Option("--times", help="Times (s) shown as orthoslices and isosurfaces, "
                                                                 "'0,50,99' or 'start:stop:step'.")] = None,
    movie: Annotated[bool, typer.Option("--movie/--no-movie", help="Embed an MP4 movie of the result.")] = True,
    overwrite: OverwriteOption = False,
) -> None:
    """Write one self-contained HTML report of a run: input, training, result, quality, provenance."""
    result = write_report(run_dir, out, times=None if times is None else list(parse_times(times)), movie=movie,
                          overwrite=overwrite)
    typer.echo(f"wrote {result.path} ({result.bytes / 1e6:.2f} MB, sections: {', '.join(result.sections)}) "
               f"in {result.seconds:.1f} s")
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)


def write_run_report(run_dir: Path) -> None:
    """Write ``RUN_DIR/report.html`` at the end of a run, replacing an older one.

    A report that cannot be written does not fail the run (its results are in
    place already): the reason is printed as a warning instead.
    """
    from tomotime.errors import TomotimeError

    try:
        result = write_report(run_dir, overwrite=True)
    except (TomotimeError, OSError) as exc:
        typer.echo(f"warning: the run report was not written: {exc}", err=True)
        return
    typer.echo(f"report: {result.path} ({result.bytes / 1e6:.2f} MB)")
