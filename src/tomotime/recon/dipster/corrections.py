"""Per-view acquisition corrections learned jointly with DIP-STER (beyond the paper).

A projection ``i`` may differ from the projection of the specimen by effects
of the acquisition that a dynamic reconstruction would otherwise explain as
change of the specimen (the "fake dynamics" of a drifting beam current,
shadowing at high tilt, or stage drift):

``measured_i(y, x) = g_i * P_i(y - dy_i, x - dx_i) + o_i``

with a gain ``g_i``, an offset ``o_i`` and a shift ``(dy_i, dx_i)`` pixels
(the sign convention of the poses of :mod:`tomotime.physics.parallel3d` and
:func:`tomotime.sim.misalign_image`). DIP-STER generates the slice of row
``y - dy_i`` directly (its rows are continuous) and shifts the projected row
along X by linear interpolation, so the model stays exact and differentiable.

What keeps the corrections from absorbing real dynamics:

* they are per view and global (one gain, one offset, one shift per
  projection), while the network is the only source of change *within* the
  specimen; a global gain can only mimic a change of the specimen's total
  projected intensity, which mass conservation rules out in HAADF;
* gauge fixing: log-gains, offsets and shifts have zero mean over the series,
  so the corrections cannot rescale or move the specimen as a whole (the
  network owns that);
* a quadratic penalty (``correction_weight``) pins directions the data leave
  open;
* a warning when a time window holds too few views to tell a per-view
  correction from real change (:func:`check_identifiable`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from tomotime.errors import InputError

__all__ = ["ViewCorrections", "CorrectionWarning", "check_identifiable", "shift_rows", "MIN_VIEWS_PER_WINDOW"]

#: Fewer views than this within one ``correction_window`` leave per-view corrections unidentifiable.
MIN_VIEWS_PER_WINDOW = 5


class CorrectionWarning(UserWarning):
    """Corrections were requested where the data cannot identify them."""


def check_identifiable(times: np.ndarray, window: float | None, *, min_views: int = MIN_VIEWS_PER_WINDOW) -> str | None:
    """Why per-view corrections cannot be identified on acquisition ``times`` (s), or None.

    A per-view correction is told from real change only by the other views
    recorded while the specimen was (nearly) the same: the median number of
    views within ``window`` seconds of each view (None: a tenth of the
    acquisition time) must reach ``min_views``.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    span = float(t[-1] - t[0]) if t.size > 1 else 0.0
    w = span / 10 if window is None else float(window)
    counts = np.searchsorted(t, t + w / 2, side="right") - np.searchsorted(t, t - w / 2, side="left")
    median = float(np.median(counts)) if counts.size else 0.0
    if median < min_views:
        return (f"corrections: a median of {median:g} views per time window of {w:.3g} s (correction_window); "
                f"at least {min_views} are needed to tell per-view corrections from real change")
    return None


def warn_if_unidentifiable(times: np.ndarray, window: float | None) -> None:
    """Emit a :class:`CorrectionWarning` when :func:`check_identifiable` finds a problem."""
    reason = check_identifiable(times, window)
    if reason is not None:
        warnings.warn(reason, CorrectionWarning, stacklevel=3)


def shift_rows(rows: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Rows ``(B, X)`` shifted by ``dx`` ``(B,)`` pixels: ``out[b, x] = rows[b, x - dx[b]]``.

    Linear interpolation, zero outside the detector; differentiable in both arguments.
    """
    b, nx = rows.shape
    source = torch.arange(nx, device=rows.device, dtype=rows.dtype) - dx.to(rows.dtype)[:, None]
    left = torch.floor(source)
    frac = source - left
    left = left.long()
    out = rows.new_zeros(b, nx)
    for index, weight in ((left, 1 - frac), (left + 1, frac)):
        inside = (index >= 0) & (index < nx)
        values = torch.gather(rows, 1, index.clamp(0, nx - 1))
        out = out + torch.where(inside, values * weight, torch.zeros_like(values))
    return out


class ViewCorrections(nn.Module):
    """Learned gain, offset and shift of each of ``n_views`` projections (gauge-fixed, see the module).

    Parameters
    ----------
    n_views : int
        Projections of the training series.
    kinds : tuple of {"gain", "offset", "shift"}
        Which corrections are learned; the others stay at identity.
    """

    def __init__(self, n_views: int, kinds: tuple[str, ...]) -> None:
        super().__init__()
        unknown = set(kinds) - {"gain", "offset", "shift"}
        if unknown or n_views < 1:
            raise InputError(f"corrections {kinds} for {n_views} views: expected gain, offset or shift")
        self.kinds = tuple(kinds)
        self.log_gain = nn.Parameter(torch.zeros(n_views), requires_grad="gain" in kinds)
        self.offset = nn.Parameter(torch.zeros(n_views), requires_grad="offset" in kinds)
        self.shift = nn.Parameter(torch.zeros(n_views, 2), requires_grad="shift" in kinds)

    def gains(self) -> torch.Tensor:
        """Gains ``(N,)`` with geometric mean 1."""
        return torch.exp(self.log_gain - self.log_gain.mean())

    def offsets(self) -> torch.Tensor:
        """Offsets ``(N,)`` (normalised intensity units) with mean 0."""
        return self.offset - self.offset.mean()

    def shifts(self) -> torch.Tensor:
        """Shifts ``(N, 2)`` = ``(dy, dx)`` pixels with mean 0."""
        return self.shift - self.shift.mean(dim=0)

    def source_rows(self, views: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Rows of the specimen seen by detector ``rows`` ``(B,)`` of projections ``views`` (float64)."""
        if "shift" not in self.kinds:
            return rows.to(torch.float64)
        return rows.to(torch.float64) - self.shifts()[views, 0].to(torch.float64)

    def apply(self, projected: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        """Measured rows ``(B, X)`` predicted from the projected rows ``(B, X)`` of projections ``views``."""
        out = projected
        if "shift" in self.kinds:
            out = shift_rows(out, self.shifts()[views, 1])
        if "gain" in self.kinds:
            out = out * self.gains()[views, None].to(out.dtype)
        if "offset" in self.kinds:
            out = out + self.offsets()[views, None].to(out.dtype)
        return out

    def penalty(self, offset_scale: float) -> torch.Tensor:
        """Mean squared log-gain + (offset / ``offset_scale``)^2 + shift^2 (pixels) over the learned kinds."""
        total = self.log_gain.new_zeros(())
        if "gain" in self.kinds:
            total = total + (self.log_gain - self.log_gain.mean()).pow(2).mean()
        if "offset" in self.kinds:
            total = total + (self.offsets() / max(offset_scale, 1e-12)).pow(2).mean()
        if "shift" in self.kinds:
            total = total + self.shifts().pow(2).sum(dim=1).mean()
        return total

    def to_dict(self) -> dict[str, list]:
        """The gauge-fixed corrections as plain lists: ``gain``, ``offset``, ``shift_y``, ``shift_x``."""
        with torch.no_grad():
            s = self.shifts().cpu()
            return {"gain": self.gains().cpu().tolist(), "offset": self.offsets().cpu().tolist(),
                    "shift_y": s[:, 0].tolist(), "shift_x": s[:, 1].tolist()}
