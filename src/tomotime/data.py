"""Containers for tilt series and volume series, validated at construction.

Conventions: a tilt series is ``(N, Y, X)`` with the tilt axis along image Y, so
the sinogram of detector row ``k`` is ``images[:, k, :]``. Angles are degrees,
times seconds, pixel sizes nanometres. A volume series is ``(T, Z, Y, X)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tomotime.errors import InputError
from tomotime.geometry import poses_to_array

__all__ = ["TiltSeries", "VolumeSeries", "check_stack", "check_times"]


def check_stack(array: Any, *, name: str = "images", ndim: int = 3, finite: bool = True) -> np.ndarray:
    """Return ``array`` as float32 after checking its dimensionality and values.

    Raises
    ------
    InputError
        If the array has the wrong number of dimensions, is empty, or (with
        ``finite=True``) holds NaN or Inf.
    """
    arr = np.asarray(array)
    if arr.ndim != ndim:
        expected = {3: "a stack (N, Y, X)", 4: "a series (T, Z, Y, X)", 2: "an image (Y, X)"}.get(ndim, f"{ndim}-D")
        raise InputError(f"{name}: expected {expected}, got a {arr.ndim}-D array of shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: the array is empty (shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if finite and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{name}: holds NaN or Inf values (first at index {tuple(int(i) for i in bad)})")
    return arr


def check_times(times: Any, n: int, *, name: str = "times") -> np.ndarray:
    """Return ``times`` as float64 ``(n,)`` after checking they strictly increase."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if t.shape[0] != n:
        raise InputError(f"{name}: expected {n} values, got {t.shape[0]}")
    if not np.isfinite(t).all():
        raise InputError(f"{name}: holds NaN or Inf values")
    steps = np.diff(t)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0))
        what = "duplicated" if steps[i] == 0 else "decreasing"
        raise InputError(f"{name}: must strictly increase; {what} at index {i + 1} ({t[i]} then {t[i + 1]} s)")
    return t


@dataclass(frozen=True, eq=False)
class TiltSeries:
    """A tilt series: projection images with their angles and acquisition times.

    Parameters
    ----------
    images : array_like, shape (N, Y, X)
        Projections, stored as float32. The tilt axis is image Y.
    angles : array_like, shape (N,)
        Tilt angles in degrees, in acquisition order (repeats are allowed).
    times : array_like, shape (N,), optional
        Acquisition times in seconds, strictly increasing. Default: ``0, 1, ... N-1``.
    pixel_size : float
        Pixel size in nm (default 1).
    poses : array_like, shape (N, 4), optional
        Per-view ``[axis_rotation_deg, axis_tilt_deg, shift_y_px, shift_x_px]``.
    metadata : dict
        Free-form provenance (source file, instrument, ...).
    allow_wide_angles : bool
        Accept angles outside the closed interval [-90, 90] degrees (both
        ends are the same projection, mirrored).
    """

    images: np.ndarray
    angles: np.ndarray
    times: np.ndarray | None = None
    pixel_size: float = 1.0
    poses: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    allow_wide_angles: bool = False

    def __post_init__(self) -> None:
        images = check_stack(self.images, name="images")
        n = images.shape[0]
        angles = np.asarray(self.angles, dtype=np.float64).reshape(-1)
        if angles.shape[0] != n:
            raise InputError(f"angles: {angles.shape[0]} angles given for {n} images; expected one angle per image")
        if not np.isfinite(angles).all():
            raise InputError("angles: holds NaN or Inf values")
        if not self.allow_wide_angles and (np.abs(angles) > 90).any():
            worst = float(angles[np.argmax(np.abs(angles))])
            raise InputError(
                f"angles: {worst} deg lies outside [-90, 90] degrees; pass allow_wide_angles=True "
                "(CLI: --allow-wide-angles) if this is intended"
            )
        times = np.arange(n, dtype=np.float64) if self.times is None else check_times(self.times, n)
        if not (np.isfinite(self.pixel_size) and self.pixel_size > 0):
            raise InputError(f"pixel_size={self.pixel_size}: expected a positive size in nm")
        poses = None
        if self.poses is not None:
            poses = poses_to_array(self.poses)
            if poses.shape[0] != n:
                raise InputError(f"poses: {poses.shape[0]} poses given for {n} images")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "angles", angles)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "pixel_size", float(self.pixel_size))
        object.__setattr__(self, "poses", poses)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        n, y, x = self.images.shape
        return (
            f"TiltSeries(n={n}, shape=({y}, {x}), angles=[{self.angles.min():.1f}, {self.angles.max():.1f}] deg, "
            f"times=[{self.times[0]:g}, {self.times[-1]:g}] s, pixel_size={self.pixel_size:g} nm)"
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, Y, X)``."""
        return tuple(self.images.shape)

    def select(self, indices) -> TiltSeries:
        """The views at ``indices`` (ints, a slice or a boolean mask), in that order."""
        idx = np.arange(len(self))[indices]
        idx = np.atleast_1d(idx)
        if idx.size == 0:
            raise InputError("select: no views selected")
        order = np.argsort(self.times[idx], kind="stable")
        idx = idx[order]
        return replace(
            self,
            images=self.images[idx],
            angles=self.angles[idx],
            times=self.times[idx],
            poses=None if self.poses is None else self.poses[idx],
        )

    def time_window(self, start: float, stop: float) -> TiltSeries:
        """The views acquired at times ``start <= t <= stop`` (seconds)."""
        mask = (self.times >= start) & (self.times <= stop)
        if not mask.any():
            raise InputError(f"time_window: no views between {start} and {stop} s (series covers "
                             f"{self.times[0]:g}..{self.times[-1]:g} s)")
        return self.select(mask)

    def sinogram(self, row: int) -> np.ndarray:
        """Sinogram of detector row ``row``: ``images[:, row, :]``, shape ``(N, X)``."""
        if not -self.shape[1] <= row < self.shape[1]:
            raise InputError(f"row={row}: expected 0 <= row < {self.shape[1]}")
        return self.images[:, row, :]

    def sorted_by_angle(self) -> TiltSeries:
        """The same views ordered by angle (times follow; not valid for dynamic use)."""
        order = np.argsort(self.angles, kind="stable")
        return replace(
            self,
            images=self.images[order],
            angles=self.angles[order],
            times=np.arange(len(self), dtype=np.float64),
            poses=None if self.poses is None else self.poses[order],
        )


class VolumeSeries:
    """A series of volumes ``(T, Z, Y, X)`` at increasing times.

    The data may be a numpy array or any array-like indexable by time point (an
    ``h5py.Dataset``, say), so the series never has to fit in memory: indexing
    ``series[t]`` reads one volume.

    Parameters
    ----------
    data : array_like, shape (T, Z, Y, X)
        Volumes; read lazily when ``data`` is not a numpy array.
    times : array_like, shape (T,), optional
        Times in seconds, strictly increasing (default ``0 .. T-1``).
    voxel_size : float
        Voxel size in nm.
    """

    def __init__(self, data: Any, times: Any = None, voxel_size: float = 1.0) -> None:
        shape = tuple(getattr(data, "shape", np.shape(data)))
        if len(shape) != 4:
            raise InputError(f"data: expected a series (T, Z, Y, X), got shape {shape}")
        if 0 in shape:
            raise InputError(f"data: the series is empty (shape {shape})")
        if isinstance(data, np.ndarray) or not hasattr(data, "shape"):
            data = check_stack(data, name="data", ndim=4)
        self.data = data
        self.times = np.arange(shape[0], dtype=np.float64) if times is None else check_times(times, shape[0])
        if not (np.isfinite(voxel_size) and voxel_size > 0):
            raise InputError(f"voxel_size={voxel_size}: expected a positive size in nm")
        self.voxel_size = float(voxel_size)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, Z, Y, X)``."""
        return tuple(self.data.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> np.ndarray:
        """Volume at time index ``t``, float32 ``(Z, Y, X)``."""
        return np.asarray(self.data[t], dtype=np.float32)

    def __iter__(self):
        for t in range(len(self)):
            yield self[t]

    def __repr__(self) -> str:
        return (f"VolumeSeries(shape={self.shape}, times=[{self.times[0]:g}, {self.times[-1]:g}] s, "
                f"voxel_size={self.voxel_size:g} nm)")

    def index_at(self, time: float) -> int:
        """Index of the time point nearest to ``time`` (seconds)."""
        return int(np.argmin(np.abs(self.times - time)))

    def select_times(self, indices) -> VolumeSeries:
        """A new in-memory series holding the time points at ``indices``."""
        idx = np.atleast_1d(np.arange(len(self))[indices])
        return VolumeSeries(np.stack([self[int(i)] for i in idx]), self.times[idx], self.voxel_size)

    def to_numpy(self) -> np.ndarray:
        """All volumes as one float32 array ``(T, Z, Y, X)`` (loads everything)."""
        return np.stack(list(self))
