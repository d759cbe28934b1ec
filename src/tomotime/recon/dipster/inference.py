"""Volumes from a trained DIP-STER model, at any time (also between acquisitions).

Every detector row ``k`` of the volume at time ``t`` is the slice generated at
``(t, y_k, angle)``; stacking the rows gives ``(Z, Y, X)``, in the input's
intensity units (network output times the stored normalisation scale). The
angle is a fixed query angle (``config.query_angle``, 0 degrees by default) or
``"own"``: the acquisition angle at ``t``, linearly interpolated between the
training projections.

Under ``torchrun`` :func:`volume_series` shares the time points out over the
processes and rank 0 writes them all, see :mod:`.distributed`.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tomotime.data import VolumeSeries
from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.training.distributed import DistributedContext, init_distributed
from tomotime.recon.dipster.model import SpaceTimeDIP

__all__ = ["ExtrapolationWarning", "volume_at", "volume_series"]


class ExtrapolationWarning(UserWarning):
    """A volume was requested outside the time range the model was trained on."""


def _check_model(model: Any) -> SpaceTimeDIP:
    if not isinstance(model, SpaceTimeDIP):
        raise InputError(f"model: expected a trained SpaceTimeDIP (see train_dipster / load_model), "
                         f"got {type(model).__name__}")
    return model


def _warn_outside(model: SpaceTimeDIP, times: np.ndarray) -> None:
    lo, hi = model.time_range
    span = max(hi - lo, 1e-12)
    outside = times[(times < lo - 1e-9 * span) | (times > hi + 1e-9 * span)]
    if outside.size:
        warnings.warn(f"times {outside[:3].tolist()}{' ...' if outside.size > 3 else ''} s lie outside the "
                      f"trained range [{lo:g}, {hi:g}] s; DIP-STER extrapolates poorly there",
                      ExtrapolationWarning, stacklevel=3)


def _angle_at(model: SpaceTimeDIP, t: float, angle: float | str | None) -> float:
    if angle is None:
        return float(model.config.query_angle)
    if isinstance(angle, str):
        if angle != "own":
            raise InputError(f"angle={angle!r}: expected a number of degrees, None or 'own'")
        acq = model.acquisition
        return float(np.interp(t, acq["times"], acq["angles"]))
    value = float(angle)
    if not (np.isfinite(value) and abs(value) <= 90):
        raise InputError(f"angle={angle!r}: expected an angle in degrees within [-90, 90]")
    return value


def _check_times(times: Any) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if t.size == 0 or not np.isfinite(t).all():
        raise InputError("times: expected a non-empty list of finite times in seconds")
    return t


def _check_batch_rows(batch_rows: Any) -> int:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
        raise InputError(f"batch_rows={batch_rows!r}: expected a positive integer")
    return int(batch_rows)


@torch.no_grad()
def _generate(model: SpaceTimeDIP, t: float, theta: float, batch_rows: int) -> np.ndarray:
    ny = model.n_rows
    rows = []
    for start in range(0, ny, batch_rows):
        y = torch.arange(start, min(start + batch_rows, ny), dtype=torch.float64)
        rows.append(model.slices(t, y, theta).cpu())
    volume = torch.cat(rows).permute(1, 0, 2) * model.normalisation.scale  # (Y, Z, X) -> (Z, Y, X)
    return volume.numpy().astype(np.float32, copy=False)


def volume_at(model: SpaceTimeDIP, t: float, *, angle: float | str | None = None, batch_rows: int = 64,
              device: str | torch.device | None = None) -> np.ndarray:
    """The volume at time ``t``.

    Parameters
    ----------
    model : SpaceTimeDIP
        A trained model (:func:`train_dipster` or :func:`load_model`).
    t : float
        Time in seconds; outside the trained range an :class:`ExtrapolationWarning` is issued.
    angle : float or "own", optional
        Query angle in degrees (default ``model.config.query_angle``), or
        ``"own"`` for the acquisition angle at ``t``.
    batch_rows : int
        Rows generated per network call (memory vs speed).
    device : str or torch.device, optional
        Move the model there first (default: where it is).

    Returns
    -------
    numpy.ndarray, shape (Z, Y, X), float32
        In the input's intensity units per pixel of path length.
    """
    model = _check_model(model)
    t_arr = _check_times(t)
    if t_arr.size != 1:
        raise InputError(f"t: expected one time in seconds, got {t_arr.size}")
    batch_rows = _check_batch_rows(batch_rows)
    if device is not None:
        model.to(resolve_device(device))
    _warn_outside(model, t_arr)
    model.eval()
    return _generate(model, float(t_arr[0]), _angle_at(model, float(t_arr[0]), angle), batch_rows)


def volume_series(model: SpaceTimeDIP, times: Any = None, *, angle: float | str | None = None,
                  out: str | Path | None = None, overwrite: bool = False, batch_rows: int = 64,
                  device: str | torch.device | None = None, progress: bool | None = None) -> VolumeSeries:
    """Volumes at several times, streamed to HDF5 when ``out`` is given.

    Parameters
    ----------
    model : SpaceTimeDIP
        A trained model.
    times : array_like, shape (T,), optional
        Strictly increasing times in seconds (default: the acquisition times of training).
    angle, batch_rows, device
        As in :func:`volume_at`.
    out : path, optional
        Chunked HDF5 file written one time point at a time (see
        :class:`tomotime.io.VolumeSeriesWriter`); the returned series reads lazily from it.
    overwrite : bool
        Replace an existing ``out``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    VolumeSeries
        ``(T, Z, Y, X)`` in the input's intensity units.

    Notes
    -----
    Under ``torchrun`` every process calls this with the same arguments: time
    point ``i`` is generated by rank ``i % WORLD_SIZE``, rank 0 gathers one
    round of ``WORLD_SIZE`` volumes at a time and writes its ``out`` (the other
    ranks' ``out`` is ignored); every rank returns the series read from rank
    0's file, which must be on a filesystem they see (always so on one
    machine). Without ``out`` every rank returns the whole series.
    """
    model = _check_model(model)
    times = model.acquisition["times"] if times is None else _check_times(times)
    if (np.diff(times) <= 0).any():
        raise InputError("times: must strictly increase")
    batch_rows = _check_batch_rows(batch_rows)
    target = model.device if device is None else resolve_device(device)
    ctx = init_distributed(target)
    if device is not None or ctx.active:
        model.to(ctx.place(target))
    angles = [_angle_at(model, float(t), angle) for t in times]
    _warn_outside(model, times)
    model.eval()
    nz, nx = model.slice_shape
    shape = (times.size, nz, model.n_rows, nx)
    to_file = ctx.broadcast_flag(out is not None)
    with contextlib.ExitStack() as stack:
        writer = None
        with ctx.together(f"opening out={out}"):
            if to_file and ctx.is_main:
                from tomotime.io import VolumeSeriesWriter

                writer = stack.enter_context(VolumeSeriesWriter(out, shape=shape, times=times,
                                                                voxel_size=model.pixel_size, overwrite=overwrite))
        volumes = None if to_file else np.empty(shape, np.float32)
        show = ctx.is_main and (None if progress is None else progress)
        bar = tqdm(total=times.size, desc="DIP-STER volumes", disable=None if show is None else not show,
                   dynamic_ncols=True, leave=False)
        with bar:
            for first in range(0, times.size, ctx.world_size):
                for i, volume in _round(model, times, angles, first, ctx, batch_rows, gather_all=not to_file):
                    if writer:
                        writer.write(i, volume)
                    else:
                        volumes[i] = volume
                bar.update(min(ctx.world_size, times.size - first))
    if to_file:
        from tomotime.io import read_volume_series

        if not ctx.active:
            return read_volume_series(out)
        # Sent once rank 0's file is in place; the other ranks' ``out`` may differ.
        result = read_volume_series(ctx.broadcast_object(str(Path(out).resolve()) if ctx.is_main else None))
        ctx.barrier()  # every rank holds the file open before rank 0 may move it (e.g. publish a staged output)
        return result
    return VolumeSeries(volumes, times, model.pixel_size)


def _round(model: SpaceTimeDIP, times: np.ndarray, angles: list[float], first: int, ctx: DistributedContext,
           batch_rows: int, *, gather_all: bool) -> list[tuple[int, np.ndarray]]:
    """Time points ``first ..`` of one round, one per rank: ``(index, volume)`` where they are collected."""
    i = first + ctx.rank
    if not ctx.active:
        return [(i, _generate(model, float(times[i]), angles[i], batch_rows))]
    if i < times.size:
        volume = torch.from_numpy(_generate(model, float(times[i]), angles[i], batch_rows))
    else:  # the last round can have fewer time points than ranks
        nz, nx = model.slice_shape
        volume = torch.zeros((nz, model.n_rows, nx), dtype=torch.float32)
    parts = ctx.gather(volume, everywhere=gather_all) or []
    return [(first + r, part.cpu().numpy()) for r, part in enumerate(parts) if first + r < times.size]
