"""``tomotime check``: how well a reconstruction reproduces its own data, view by view (no ground truth needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tomotime.cli.common import DeviceOption, OverwriteOption, handle_errors, staged_output
from tomotime.errors import InputError, TomotimeError
from tomotime.io import write_json
from tomotime.metrics.consistency import fake_dynamics, view_consistency
from tomotime.viz.rundata import load_run

__all__ = ["check", "check_run", "CHECK_FILES"]

CHECK_FILES = ("check.png", "check.json")


def check_run(run_dir: Path, *, device: Any = "cpu") -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per method of the run: ``{"views": view_consistency, "dynamics": fake_dynamics}``, and notes.

    Raises
    ------
    InputError
        If the run folder holds no readable input tilt series or no result.
    """
    with load_run(run_dir) as run:
        if run.series is None:
            raise InputError(f"{run_dir}: the input tilt series of the run could not be read "
                             f"({'; '.join(run.notes) or 'summary.json names none'}); the check compares with it")
        if not run.volumes:
            raise InputError(f"{run_dir}: no readable result ({'; '.join(run.notes)})")
        results, notes = {}, list(run.notes)
        for name, volumes in run.volumes.items():
            try:
                results[name] = {"views": view_consistency(volumes, run.series, device=device),
                                 "dynamics": fake_dynamics(volumes)}
            except TomotimeError as exc:
                notes.append(f"{name}: check omitted ({exc})")
    if not results:
        raise InputError(f"{run_dir}: no result could be checked ({'; '.join(notes)})")
    return results, notes


@handle_errors
def check(
    run_dir: Annotated[Path, typer.Argument(help="Run folder: the --out of reconstruct, dipster, inr or demo.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for check.png and check.json "
                                                "(default RUN_DIR).")] = None,
    device: DeviceOption = "cpu",
    overwrite: OverwriteOption = False,
) -> None:
    """Reprojection check: per-view RMSE and SSIM against time and angle, worst views, fake dynamics."""
    from tomotime.viz.check_figures import plot_check
    from tomotime.viz.figures import save_png

    results, notes = check_run(run_dir, device=device)
    out = Path(out) if out is not None else Path(run_dir)
    with staged_output(out, CHECK_FILES, overwrite=overwrite) as stage:
        save_png(plot_check(results), stage / "check.png")
        write_json(stage / "check.json", {"run": str(run_dir), "methods": results, "notes": notes})
    for name, result in results.items():
        views = result["views"]
        worst = ", ".join(f"{i} ({views['angle_deg'][i]:.1f} deg, {views['rmse_percent'][i]:.2f} %)"
                          for i in views["worst_views"])
        typer.echo(f"{name}: reprojection RMSE {views['rmse_percent_mean']:.2f} % of range, "
                   f"SSIM {views['ssim_mean']:.3f}; worst views: {worst}")
        if result["dynamics"]:
            d = result["dynamics"]
            typer.echo(f"{name}: change over time inside the object: mean {d['change_percent_mean']:.2f} %, "
                       f"max {d['change_percent_max']:.2f} % of the time-mean (largest step "
                       f"{d['step_percent_max']:.2f} %)")
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {out / 'check.png'} and {out / 'check.json'}")
