"""Training data of DIP-STER: intensity normalisation and the choice of held-out samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tomotime.errors import InputError

__all__ = ["Normalisation", "fit_normalisation", "spread_choice"]


@dataclass(frozen=True)
class Normalisation:
    """Map between input intensities and network units.

    The network fits ``(projection - offset) / scale`` with slices ``g``, and
    a volume voxel in input units is ``scale * g``: since the projector
    integrates in pixel units, a voxel value ``v`` contributes ``v`` per pixel
    of path length to the input intensities, offset excluded.

    Attributes
    ----------
    offset : float
        Subtracted from the projections (intensity units; a flat background).
    scale : float
        Intensity per pixel of path length of one network unit.
    """

    offset: float
    scale: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def fit_normalisation(images: np.ndarray, *, thickness: int, offset: float | None = 0.0) -> Normalisation:
    """Normalisation putting the fitted slices at values of order one.

    ``scale`` is the 99.9th percentile of ``images - offset`` divided by the
    slice thickness ``Z``: the value of a uniform slab that would give that
    projection. ``offset=None`` uses the 1st percentile of the images.

    Raises
    ------
    InputError
        If no intensity lies above the offset.
    """
    off = float(np.percentile(images, 1.0)) if offset is None else float(offset)
    top = float(np.percentile(images - off, 99.9))
    if not top > 0:
        raise InputError(f"images: no intensity above the offset {off:g} (99.9th percentile {top + off:g}); "
                         "expected projections of a positive density (check data_offset)")
    return Normalisation(offset=off, scale=top / thickness)


def spread_choice(n: int, fraction: float, *, seed: int) -> np.ndarray:
    """Sorted indices of ``max(1, round(fraction * n))`` of ``n`` time-ordered units, spread over time.

    The units are cut into that many equal blocks and one index is drawn at
    random in each, so every stretch of the acquisition is represented.
    ``fraction=0`` gives none.

    Raises
    ------
    InputError
        If fewer than two units would remain for training.
    """
    if fraction <= 0:
        return np.zeros(0, dtype=np.int64)
    count = max(1, int(round(fraction * n)))
    if n - count < 2:
        raise InputError(f"{n} units (projections or rows): too few to keep {count} out for the holdout and train "
                         "on the rest; use more projections or holdout_fraction=0")
    edges = np.linspace(0, n, count + 1).round().astype(np.int64)
    rng = np.random.default_rng(seed)
    return np.array([rng.integers(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])], dtype=np.int64)
