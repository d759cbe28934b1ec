"""Progress reporting shared by the iterative solvers."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(total: int, *, desc: str, progress: bool | None = None, **kwargs):
    """A tqdm bar over ``range(total)``.

    ``progress=None`` shows the bar only when stderr is a terminal; ``True``
    always shows it; ``False`` never does.
    """
    disable = None if progress is None else not progress
    return tqdm(range(total), desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kwargs)
