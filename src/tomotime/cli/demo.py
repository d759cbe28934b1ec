"""``tomotime demo``: the main job on an embedded, simulated experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tomotime.cli.common import DeviceOption, OverwriteOption, command_line, handle_errors
from tomotime.cli.report import NoReportOption
from tomotime.demo import DEFAULT_ENSEMBLE, run_demo

__all__ = ["demo"]


@handle_errors
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo_output"),
    size: Annotated[int, typer.Option("--size", help="Volume edge in voxels.")] = 32,
    steps: Annotated[int, typer.Option("--steps", help="Time steps (= projections).")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulation.")] = 0,
    dipster_steps: Annotated[int, typer.Option("--dipster-steps", min=0,
                                               help="DIP-STER training steps (0: SIRT only).")] = 6000,
    ensemble: Annotated[int, typer.Option(
        "--ensemble", min=1, help="DIP-STER members (seeds); 2 or more shade the band of the alloying curve.")
    ] = DEFAULT_ENSEMBLE,
    device: DeviceOption = "auto",
    overwrite: OverwriteOption = False,
    no_report: NoReportOption = False,
) -> None:
    """Simulate an alloying nanorod, reconstruct it (sliding-window SIRT, DIP-STER), compare with truth, report."""
    run_demo(out, size=size, steps=steps, seed=seed, dipster_steps=dipster_steps or None, ensemble=ensemble,
             device=device,
             overwrite=overwrite, report=not no_report, command=command_line(ctx), echo=typer.echo)
