"""``tomotime plan``: the tilt angles of a scheme as a step-by-step acquisition plan."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from tomotime.cli.common import OverwriteOption, handle_errors
from tomotime.geometry import acquisition_plan, tilt_scheme
from tomotime.io import atomic_path, check_output

__all__ = ["plan", "write_plan_csv", "format_plan"]

_COLUMNS = ("index", "angle_deg", "move_deg", "pre_angle_deg")


def format_plan(steps: list[dict]) -> str:
    """The plan as an aligned text table (angles in degrees, ``-`` for no pre-angle)."""
    lines = [f"{'index':>5}  {'angle':>9}  {'move':>9}  {'pre-angle':>9}"]
    for step in steps:
        pre = "-" if step["pre_angle_deg"] is None else f"{step['pre_angle_deg']:9.3f}"
        lines.append(f"{step['index']:>5}  {step['angle_deg']:9.3f}  {step['move_deg']:9.3f}  {pre:>9}")
    return "\n".join(lines)


def write_plan_csv(path: Path, steps: list[dict], *, overwrite: bool = False) -> Path:
    """Write the plan as CSV with columns ``index,angle_deg,move_deg,pre_angle_deg``, atomically.

    A missing pre-angle is an empty field.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=_COLUMNS)
            writer.writeheader()
            for step in steps:
                writer.writerow({k: ("" if step[k] is None else step[k]) for k in _COLUMNS})
    return Path(path)


@handle_errors
def plan(
    scheme: Annotated[Literal["grs", "incremental", "dose-symmetric"],
                      typer.Option("--scheme", help="Tilt scheme.")] = "grs",
    n_views: Annotated[int, typer.Option("-n", "--n-views", min=1, help="Number of projections.")] = 60,
    start: Annotated[float, typer.Option("--start", help="First end of the tilt range, degrees.")] = -70.0,
    stop: Annotated[float, typer.Option("--stop", help="Other end of the tilt range, degrees.")] = 70.0,
    backlash: Annotated[float, typer.Option("--backlash", help="Overshoot (degrees) so that every angle is "
                                                               "approached from the same side; 0 = none.")] = 0.0,
    approach: Annotated[Literal["+", "-"], typer.Option("--approach", help="Direction of the final move.")] = "+",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the plan to this CSV file.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Print the acquisition plan of a tilt scheme: index, angle, move and pre-angle (degrees)."""
    if out is not None:
        check_output(out, overwrite=overwrite)
    steps = acquisition_plan(tilt_scheme(scheme, n_views, start, stop), backlash=backlash, approach=approach)
    typer.echo(format_plan(steps))
    if out is not None:
        write_plan_csv(out, steps, overwrite=overwrite)
        typer.echo(f"wrote {out}", err=True)
