"""``tomotime view``: a 4D result in napari, time as a slider."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tomotime.cli.common import handle_errors
from tomotime.viz.napari_view import view_in_napari

__all__ = ["view"]


@handle_errors
def view(
    result: Annotated[Path, typer.Argument(help="volumes.h5, or a run folder holding one.")],
) -> None:
    """Open a volume series in napari (the optional extra tomotime[napari]), with sliders for time and depth."""
    view_in_napari(result)
