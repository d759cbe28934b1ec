"""Uncertainty of DIP-STER results from an ensemble of trainings (beyond the paper).

Each member trains on the same tilt series with its own seed, which draws its
own network initialisation, its own held-out rows and its own sampling order
(``config.seed + k`` for member ``k``). Any quantity computed from the
volumes (an alloying curve, surface-to-volume ratios, redistributed volume,
or a metric added later) is computed on every member; the band is the
spread of the members at each time: ``mean``, ``lower`` (the smallest) and
``upper`` (the largest member value).

The spread measures how much the result depends on choices the data do not
fix (initialisation, holdout, order). It is not a confidence interval for the
truth: a bias shared by all members (e.g. the paper's underestimated
alloying, whose ``sigma_inf`` cannot be measured on experimental data) lies
outside it.

Typical use::

    members = train_ensemble(series, config, 5, run_dir="ensemble")
    band = ensemble_band([m.model for m in members], QUANTITIES["alloying"])
    lower, upper = band.lower, band.upper
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError
from tomotime.metrics import alloying_curve, surface_to_volume, volume_redistribution
from tomotime.recon.dipster.config import DipsterConfig
from tomotime.recon.dipster.inference import ExtrapolationWarning, volume_series
from tomotime.recon.dipster.model import SpaceTimeDIP
from tomotime.recon.dipster.train import train_dipster
from tomotime.training import TrainResult

__all__ = ["Band", "band_of", "train_ensemble", "ensemble_band", "ensemble_curves", "member_seeds",
           "check_ensemble_size", "QUANTITIES", "MEMBER_FOLDER"]

#: Sub-folder of a run folder that holds member ``k``'s run (``member_k``).
MEMBER_FOLDER = "member_{k}"

Quantity = Callable[[VolumeSeries], Any]


def alloying_truth_free(volumes: VolumeSeries) -> np.ndarray:
    """Alloying % of each volume with ``sigma_0`` of the first volume and ``sigma_inf = 0`` (no truth needed).

    The mask is Otsu's of the first volume; with ``sigma_inf = 0`` the
    percentage is a lower bound of the paper's (which measures ``sigma_inf``
    on the fully mixed truth).
    """
    return alloying_curve(volumes, sigma_mixed=0.0)


def surface_to_volume_curve(volumes: VolumeSeries) -> np.ndarray:
    """Surface-to-volume ratio (surface voxels per object voxel) of each volume, Otsu threshold of each.

    See :func:`~tomotime.metrics.surface_to_volume`.
    """
    return np.asarray([surface_to_volume(v) for v in volumes])


def redistribution_curve(volumes: VolumeSeries) -> np.ndarray:
    """Volume (nm^3) redistributed between the first volume and each volume, Otsu threshold of the first."""
    first = np.asarray(volumes[0])
    return np.asarray([volume_redistribution(first, v, voxel_size=volumes.voxel_size).total_nm3 for v in volumes])


#: Built-in quantities by name; any callable ``VolumeSeries -> array`` plugs in the same way.
QUANTITIES: dict[str, Quantity] = {
    "alloying": alloying_truth_free,
    "surface-to-volume": surface_to_volume_curve,
    "redistribution": redistribution_curve,
}


@dataclass(frozen=True)
class Band:
    """A quantity over an ensemble.

    Attributes
    ----------
    members : numpy.ndarray, shape (K, ...)
        The quantity of each of the K members (e.g. ``(K, T)`` for a curve over time).
    mean, lower, upper : numpy.ndarray, shape (...)
        Member mean, smallest and largest value.
    """

    members: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def width(self) -> np.ndarray:
        """``upper - lower``."""
        return self.upper - self.lower

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON), with the mean and largest width."""
        w = self.width
        return {"mean": self.mean.tolist(), "lower": self.lower.tolist(), "upper": self.upper.tolist(),
                "members": self.members.tolist(), "width_mean": float(np.mean(w)), "width_max": float(np.max(w))}


def check_ensemble_size(n: int) -> int:
    """``n`` if an ensemble of that many members can give a band.

    Raises
    ------
    InputError
        For fewer than two members (one member has no spread).
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise InputError(f"ensemble of {n}: a band needs at least 2 members (one member has no spread); "
                         "omit the ensemble for a single run")
    return int(n)


def band_of(values: Sequence[Any]) -> Band:
    """The band of member values ``(K, ...)``, ``K >= 2``, finite."""
    arr = np.asarray(values, dtype=np.float64)
    check_ensemble_size(arr.shape[0] if arr.ndim else 0)
    if not np.isfinite(arr).all():
        raise InputError("ensemble values: hold NaN or Inf")
    return Band(members=arr, mean=arr.mean(axis=0), lower=arr.min(axis=0), upper=arr.max(axis=0))


def member_seeds(config: DipsterConfig, n: int) -> list[int]:
    """Seeds of the ``n`` members: ``config.seed + k``."""
    return [config.seed + k for k in range(check_ensemble_size(n))]


def train_ensemble(series: TiltSeries, config: DipsterConfig, n: int, *, run_dir: str | Path | None = None,
                   overwrite: bool = False, progress: bool | None = None) -> list[TrainResult]:
    """Train ``n`` DIP-STER members (seeds ``config.seed + k``) on ``series``.

    Parameters
    ----------
    series : TiltSeries
    config : DipsterConfig
        Options of every member; only the seed differs.
    n : int
        Members, at least 2.
    run_dir : path, optional
        Member ``k`` trains in ``run_dir / "member_k"``.
    overwrite, progress
        See :func:`train_dipster`.

    Raises
    ------
    InputError
        For fewer than two members (before any training).
    """
    seeds = member_seeds(config, n)
    results = []
    for k, seed in enumerate(seeds):
        member_dir = None if run_dir is None else Path(run_dir) / MEMBER_FOLDER.format(k=k)
        results.append(train_dipster(series, config.replace(seed=seed), run_dir=member_dir, overwrite=overwrite,
                                     progress=progress))
    return results


def _quantity(quantity: str | Quantity) -> Quantity:
    if isinstance(quantity, str):
        if quantity not in QUANTITIES:
            raise InputError(f"quantity {quantity!r}: expected one of {', '.join(QUANTITIES)} or a callable")
        return QUANTITIES[quantity]
    if not callable(quantity):
        raise InputError(f"quantity: expected a name or a callable, got {type(quantity).__name__}")
    return quantity


def ensemble_curves(members: Sequence[SpaceTimeDIP | VolumeSeries], quantities: dict[str, str | Quantity], *,
                    times: Any = None, angle: float | str | None = None) -> dict[str, Band]:
    """Bands of several quantities, generating each member's volumes once.

    Parameters
    ----------
    members : sequence of SpaceTimeDIP or VolumeSeries
        Trained models (volumes are generated at ``times`` and ``angle``, see
        :func:`volume_series`) or their volume series.
    quantities : dict
        Name -> a name of :data:`QUANTITIES` or a callable ``VolumeSeries -> array``.

    Returns
    -------
    dict of Band
    """
    check_ensemble_size(len(members))
    funcs = {name: _quantity(q) for name, q in quantities.items()}
    values: dict[str, list] = {name: [] for name in funcs}
    for member in members:
        if isinstance(member, VolumeSeries):
            vols = member
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExtrapolationWarning)
                vols = volume_series(member, times, angle=angle, progress=False)
        for name, func in funcs.items():
            values[name].append(func(vols))
    return {name: band_of(v) for name, v in values.items()}


def ensemble_band(members: Sequence[SpaceTimeDIP | VolumeSeries], quantity: str | Quantity, *, times: Any = None,
                  angle: float | str | None = None) -> Band:
    """The band of one ``quantity`` over ``members`` (see :func:`ensemble_curves`).

    For a figure: ``band = ensemble_band(models, "alloying")``, then
    ``plt.fill_between(times, band.lower, band.upper)``.
    """
    return ensemble_curves(members, {"quantity": quantity}, times=times, angle=angle)["quantity"]
