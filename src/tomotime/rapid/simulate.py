"""The simulated rapid STEM tomography experiment.

Acquisition model (after Zhao et al., "Five-second STEM dislocation tomography"):

* the goniometer turns from ``start`` to ``end`` degrees with a trapezoidal
  speed profile (constant acceleration for ``accel_time`` s, cruise at
  ``rate`` deg/s, deceleration) and a slow speed ripple, so the angle is not
  a linear function of time (:func:`goniometer_angle`);
* frames are scanned row by row (the slow-scan direction is the image Y axis,
  which is also the tilt axis) in ``scan_time`` s and stored in ``store_time``
  s; row ``k`` of frame ``i`` is recorded at the angle the goniometer has at
  that moment (the time-lag artefact);
* the fast scan shrinks the image non-uniformly along x (:class:`ScanDistortion`);
* fast-scan noise is not white: Poisson counting noise plus a random offset
  per scan line and noise correlated along the fast-scan direction
  (:func:`fast_scan_noise`).

References: the conventional series (goniometer stopped, every 2 degrees, long
frames: the dose of ``conventional_dose_factor`` fast frames, no lag or
distortion), and, for filter training, pairs of one fast frame and the average
of ``n_average`` fast frames of the same field at a fixed tilt
(:func:`filter_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from tomotime.errors import InputError
from tomotime.rapid.specimen import Specimen, bright_field, dislocation_specimen
from tomotime.sim.acquisition import project_rows

__all__ = ["Timing", "ScanDistortion", "NoiseModel", "RapidSeries", "goniometer_angle", "fast_scan_noise",
           "frame_schedule",
           "simulate_rapid", "simulate_conventional", "filter_pairs", "calibration_pair"]


@dataclass(frozen=True)
class Timing:
    """Continuous-tilt acquisition timing (angles in degrees, times in seconds).

    The paper's values: 28 deg/s, 30 ms scan + 40 ms storage per frame, -70 to +70 degrees.
    """

    start: float = -70.0
    end: float = 70.0
    rate: float = 28.0
    accel_time: float = 0.5
    ripple: float = 0.04
    scan_time: float = 0.030
    store_time: float = 0.040

    @property
    def duration(self) -> float:
        """Seconds from rest at ``start`` to rest at ``end``."""
        return abs(self.end - self.start) / self.rate + self.accel_time

    @property
    def lag_per_frame(self) -> float:
        """Degrees turned during one frame's scan at cruising speed."""
        return self.rate * self.scan_time

    @property
    def scan_fraction(self) -> float:
        """Scan time over the frame period (what the tracker and the per-row angles call ``scan_fraction``)."""
        return self.scan_time / (self.scan_time + self.store_time)


def goniometer_angle(t, timing: Timing = Timing()) -> np.ndarray:
    """Goniometer angle (degrees) at times ``t`` (seconds since the start of the motion).

    Speed: linear ramps of ``accel_time`` at both ends and a plateau, times
    ``1 + ripple * sin(3 * 2 pi t / duration)``; rescaled so that the stage
    ends exactly at ``end``. Constant before 0 and after ``duration``.
    """
    total, ta = timing.duration, timing.accel_time
    grid = np.linspace(0.0, total, 4001)
    speed = np.clip(np.minimum(grid, total - grid) / max(ta, 1e-9), 0, 1)
    speed = speed * (1 + timing.ripple * np.sin(3 * 2 * np.pi * grid / total))
    travelled = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(grid))])
    angle = timing.start + (timing.end - timing.start) * travelled / travelled[-1]
    return np.interp(np.asarray(t, dtype=np.float64), grid, angle)


@dataclass(frozen=True)
class ScanDistortion:
    """Non-uniform fast-scan shrink along x.

    Fast-scan pixel ``j`` of a row of ``W`` pixels images the specimen at
    ``p(j) = j + a (1 - exp(-j / (tau W))) + b (j / W)^2`` (pixels), so features
    appear closer together, most near the start of each line (a settling scan
    coil) and again towards its end.
    """

    a: float = 2.5
    tau: float = 0.12
    b: float = 1.0

    def positions(self, width: int) -> np.ndarray:
        """``p(j)`` for ``j = 0 .. width - 1``."""
        j = np.arange(width, dtype=np.float64)
        return j + self.a * (1 - np.exp(-j / (self.tau * width))) + self.b * (j / width) ** 2

    def correction_field(self, shape: tuple[int, int]) -> np.ndarray:
        """The true correction ``v(y, x)``: specimen position ``x`` lies at fast-image column ``x + v`` (pixels)."""
        h, w = shape
        x = np.arange(w, dtype=np.float64)
        v = np.interp(x, self.positions(w), x, left=np.nan, right=np.nan) - x
        return np.broadcast_to(v, (h, w)).copy()

    def apply(self, images: np.ndarray, width: int | None = None) -> np.ndarray:
        """Distort undistorted images ``(..., Y, X)`` as the fast scan does (cubic interpolation along x).

        ``width`` (default ``X``) is the fast frame's width; the input may extend beyond it.
        """
        images = np.asarray(images, np.float32)
        width = images.shape[-1] if width is None else int(width)
        p = self.positions(width)
        flat = images.reshape(-1, images.shape[-1])
        out = np.empty((flat.shape[0], width), np.float32)
        for r, row in enumerate(flat):
            out[r] = ndimage.map_coordinates(row, [p], order=3, mode="nearest")
        return out.reshape(images.shape[:-1] + (width,))


@dataclass(frozen=True)
class NoiseModel:
    """Fast-scan noise: Poisson counts at ``dose`` per unit intensity, plus non-white components.

    ``line_offset``: standard deviation of a random offset per scan line;
    ``correlated``: standard deviation of noise smoothed along x with a
    Gaussian of ``correlation_length`` pixels (both in intensity units).
    """

    dose: float = 40.0
    line_offset: float = 0.02
    correlated: float = 0.04
    correlation_length: float = 1.5

    def scaled(self, factor: float) -> NoiseModel:
        """The same detector with ``factor`` times the dose (components shrink as ``1/sqrt(factor)``)."""
        return NoiseModel(self.dose * factor, self.line_offset / np.sqrt(factor), self.correlated / np.sqrt(factor),
                          self.correlation_length)


def fast_scan_noise(clean: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> np.ndarray:
    """One noisy fast-scan frame (or stack ``(..., Y, X)``) of the ``clean`` intensity."""
    clean = np.asarray(clean, np.float64)
    out = rng.poisson(np.clip(clean, 0, None) * noise.dose) / noise.dose
    if noise.line_offset > 0:
        out = out + rng.normal(0, noise.line_offset, clean.shape[:-1] + (1,))
    if noise.correlated > 0:
        white = rng.normal(0, 1, clean.shape)
        smooth = ndimage.gaussian_filter1d(white, noise.correlation_length, axis=-1)
        out = out + smooth / max(smooth.std(), 1e-12) * noise.correlated
    return out.astype(np.float32)


@dataclass
class RapidSeries:
    """A simulated tilt series and the truth behind it.

    Attributes
    ----------
    images : numpy.ndarray, shape (N, Y, X)
        Recorded frames (noisy, distorted for a rapid series).
    clean : numpy.ndarray, shape (N, Y, X)
        The same frames without noise (with distortion and time lag).
    nominal_angles : numpy.ndarray, shape (N,)
        What the acquisition software records: a uniform ramp (degrees).
    frame_angles : numpy.ndarray, shape (N,)
        True angle at the middle of each frame's scan (degrees).
    row_angles : numpy.ndarray, shape (N, Y)
        True angle of every scan line (degrees).
    times : numpy.ndarray, shape (N,)
        Start time of each frame (seconds).
    """

    images: np.ndarray
    clean: np.ndarray
    nominal_angles: np.ndarray
    frame_angles: np.ndarray
    row_angles: np.ndarray
    times: np.ndarray
    metadata: dict = field(default_factory=dict)


def _frames(specimen: Specimen, row_angles: np.ndarray) -> np.ndarray:
    """Clean bright-field frames ``(N, Y, X)`` with one angle per row ``(N, Y)``."""
    out = []
    for angles in row_angles:
        lines = project_rows(specimen.lines, angles)
        particles = project_rows(specimen.particles, angles)
        out.append(bright_field(lines, particles, angles[:, None], thickness=specimen.thickness))
    return np.stack(out)


def frame_schedule(timing: Timing, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame start times ``(N,)`` and row times ``(N, rows)`` covering the motion from rest to rest.

    The frame period ``scan_time + store_time`` is stretched slightly so that
    the first frame starts at 0 and the last one ends with the motion.
    """
    period = timing.scan_time + timing.store_time
    n = int(round((timing.duration - timing.scan_time) / period)) + 1
    if n < 3:
        raise InputError(f"timing: only {n} frames fit in {timing.duration:.2f} s; expected at least 3")
    period = (timing.duration - timing.scan_time) / (n - 1)
    starts = np.arange(n) * period
    rows_t = starts[:, None] + (np.arange(rows) + 0.5) / rows * timing.scan_time
    return starts, rows_t


def simulate_rapid(specimen: Specimen, *, timing: Timing = Timing(), noise: NoiseModel | None = NoiseModel(),
                   distortion: ScanDistortion | None = ScanDistortion(), seed: int = 0) -> RapidSeries:
    """The rapid continuous-tilt series of ``specimen`` (see the module description)."""
    ny = specimen.lines.shape[1]
    starts, rows_t = frame_schedule(timing, ny)
    row_angles = goniometer_angle(rows_t, timing)
    frame_angles = goniometer_angle(starts + timing.scan_time / 2, timing)
    clean = _frames(specimen, row_angles)
    if distortion is not None:
        clean = distortion.apply(clean)
    rng = np.random.default_rng(seed)
    images = clean.copy() if noise is None else fast_scan_noise(clean, noise, rng)
    nominal = np.linspace(timing.start, timing.end, starts.size)
    meta = {"timing": timing.__dict__, "noise": None if noise is None else noise.__dict__,
            "distortion": None if distortion is None else distortion.__dict__, "seed": seed}
    return RapidSeries(images, clean, nominal, frame_angles, row_angles, starts, meta)


def simulate_conventional(specimen: Specimen, *, angles=None, noise: NoiseModel | None = NoiseModel(),
                          dose_factor: float = 53.0, seed: int = 1) -> RapidSeries:
    """The conventional reference: goniometer stopped at each angle (default every 2 deg over +-70), long frames.

    ``dose_factor`` is the frame time over the fast frame's (1.6 s / 30 ms in the paper).
    """
    angles = np.arange(-70.0, 70.0 + 1e-9, 2.0) if angles is None else np.asarray(angles, np.float64)
    ny = specimen.lines.shape[1]
    row_angles = np.repeat(angles[:, None], ny, axis=1)
    clean = _frames(specimen, row_angles)
    rng = np.random.default_rng(seed)
    images = clean.copy() if noise is None else fast_scan_noise(clean, noise.scaled(dose_factor), rng)
    return RapidSeries(images, clean, angles.copy(), angles.copy(), row_angles, np.arange(angles.size, dtype=float),
                       {"dose_factor": dose_factor, "seed": seed})


def filter_pairs(n_fields: int, tilts=(0.0, 20.0, 40.0, 60.0, 70.0), *, shape=(24, 128, 128),
                 noise: NoiseModel = NoiseModel(), n_average: int = 50, seed: int = 0, repeats: int = 0,
                 **specimen_options) -> dict[str, np.ndarray]:
    """Training/test pairs of the U-Net filter: one fast frame and the average of ``n_average`` frames.

    Each field is a new random specimen imaged at every tilt of ``tilts``
    (goniometer stopped, no time lag; distortion cancels between the two).
    The average of ``n_average`` frames is drawn directly: its Poisson part is
    exactly ``Poisson(n * dose * I) / (n * dose)`` and its Gaussian parts shrink
    by ``sqrt(n)``. ``repeats > 0`` adds that many further independent fast
    frames of each image (for Noise2Noise training without averages), drawn
    from a separate random stream so that the other arrays do not change.

    Returns
    -------
    dict
        ``noisy``, ``reference``, ``clean``: ``(n_fields * len(tilts), Y, X)`` float32;
        ``tilts``: ``(M,)`` degrees; ``field``: ``(M,)`` field index; with
        ``repeats``: ``repeats`` ``(M, repeats, Y, X)`` float32.
    """
    rng = np.random.default_rng(seed)
    repeat_rng = np.random.default_rng([seed, 1])
    noisy, reference, clean, tilt_of, field_of, more = [], [], [], [], [], []
    for f in range(n_fields):
        specimen = dislocation_specimen(shape, seed=int(rng.integers(2**31)), **specimen_options)
        for tilt in tilts:
            image = _frames(specimen, np.full((1, shape[1]), float(tilt)))[0]
            noisy.append(fast_scan_noise(image, noise, rng))
            if repeats > 0:
                more.append(fast_scan_noise(np.broadcast_to(image, (repeats,) + image.shape), noise, repeat_rng))
            reference.append(fast_scan_noise(image, noise.scaled(n_average), rng))  # = the mean of n frames
            clean.append(image)
            tilt_of.append(float(tilt))
            field_of.append(f)
    out = {"noisy": np.stack(noisy), "reference": np.stack(reference).astype(np.float32), "clean": np.stack(clean),
           "tilts": np.array(tilt_of), "field": np.array(field_of)}
    if repeats > 0:
        out["repeats"] = np.stack(more)
    return out


def calibration_pair(shape=(128, 128), *, distortion: ScanDistortion = ScanDistortion(), period: float = 9.0,
                     noise: NoiseModel | None = NoiseModel(), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fast and a slow scan ``(Y, X)`` of the same cross-grating area (the distortion calibration specimen).

    The grating (bright lines every ``period`` px with random jitter, on a
    faint random texture) is sampled 8 px beyond the right edge so the
    distorted fast scan has real content everywhere. The slow scan has 50x the dose.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    pad = 8
    yy, xx = np.mgrid[0:h, 0:w + pad].astype(np.float64)
    jitter = ndimage.gaussian_filter(rng.normal(0, 1, (h, w + pad)), 6) * 20
    grating = np.cos(2 * np.pi * (xx + jitter) / period) ** 8 + np.cos(2 * np.pi * (yy + jitter) / period) ** 8
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (h, w + pad)), 2)
    specimen = 0.4 + 0.35 * np.clip(grating, 0, 1) + 0.1 * texture / texture.std()
    slow = specimen[:, :w]
    fast = distortion.apply(specimen, width=w)
    if noise is not None:
        fast = fast_scan_noise(fast, noise, rng)
        slow = fast_scan_noise(slow, noise.scaled(50), rng)
    return fast.astype(np.float32), slow.astype(np.float32)
