"""The ``tomotime`` command: global options and the registry of subcommands.

To add a command, write ``cli/<name>.py`` holding one function decorated with
:func:`tomotime.cli.common.handle_errors` that calls one library function, then
add its import and one ``app.command(...)`` line below.
"""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import typer

from tomotime import __version__
from tomotime.cli.align import align
from tomotime.cli.check import check
from tomotime.cli.demo import demo
from tomotime.cli.denoise import denoise
from tomotime.cli.evaluate import evaluate
from tomotime.cli.export import export
from tomotime.cli.info import info
from tomotime.cli.movie import movie
from tomotime.cli.order import order
from tomotime.cli.plan import plan
from tomotime.cli.preprocess import preprocess
from tomotime.cli.query import query
from tomotime.cli.rapid import calibrate_distortion, correct, dislocations, train_filter_command
from tomotime.cli.reconstruct import reconstruct
from tomotime.cli.report import report
from tomotime.cli.simulate import simulate
from tomotime.cli.view import view

app = typer.Typer(
    name="tomotime",
    help="Self-supervised and dynamic electron tomography: inspect, plan, simulate, reconstruct, evaluate and report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tomotime {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="Log progress: -v for INFO, -vv for DEBUG.")] = 0,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_print_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Self-supervised and dynamic electron tomography."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


app.command("info")(info)
app.command("plan")(plan)
app.command("reconstruct")(reconstruct)
app.command("query")(query)
app.command("simulate")(simulate)
app.command("evaluate")(evaluate)
app.command("report")(report)
app.command("movie")(movie)
app.command("view")(view)
app.command("export")(export)
app.command("denoise")(denoise)
app.command("order")(order)
app.command("demo")(demo)
app.command("preprocess")(preprocess)
app.command("align")(align)
app.command("check")(check)
app.command("train-filter")(train_filter_command)
app.command("calibrate-distortion")(calibrate_distortion)
app.command("correct")(correct)
app.command("dislocations")(dislocations)


if __name__ == "__main__":
    app()
