"""The holdout stopping rule: smoothed curve, best state, patience after a minimum share of the run.

A single holdout evaluation is a noisy estimate, and early in training the
loss can jump by several times between evaluations. The rule therefore
judges an exponential moving average of the holdout curve, counts patience
only after the learning-rate warm-up, and never stops a run before
``min_fraction`` of its planned steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["StoppingRule", "HoldoutEstimate"]


@dataclass(frozen=True)
class HoldoutEstimate:
    """Mean holdout loss over ``count`` held-out units and its standard error."""

    mean: float
    se: float
    count: int

    @classmethod
    def from_sums(cls, total: float, squares: float, count: int) -> HoldoutEstimate:
        """From the sum and the sum of squares of ``count`` per-unit losses."""
        if count == 0:
            return cls(math.nan, math.nan, 0)
        mean = total / count
        var = max(squares / count - mean * mean, 0.0) * count / max(count - 1, 1)
        return cls(mean, math.sqrt(var / count), count)


@dataclass
class StoppingRule:
    """State of the stopping rule (plain numbers, so it round-trips through checkpoints).

    Parameters
    ----------
    smoothing : float
        Weight of the newest value in the moving average (1: raw values).
    patience : int or None
        Evaluations without improvement that stop the run (None: never).
    min_step : int
        No stop before this step.
    warmup : int
        Evaluations up to this step do not count against patience.
    min_improvement : float
        Relative decrease that counts as an improvement.
    """

    smoothing: float
    patience: int | None
    min_step: int
    warmup: int
    min_improvement: float
    smoothed: float = math.nan
    best: float = math.inf
    best_step: int = 0
    bad: int = 0
    first: float = math.nan

    def update(self, step: int, value: float) -> bool:
        """Add the holdout loss at ``step``; return whether it is the new best (smoothed) value."""
        if not math.isfinite(value):
            return False
        self.smoothed = value if not math.isfinite(self.smoothed) else \
            self.smoothing * value + (1 - self.smoothing) * self.smoothed
        if not math.isfinite(self.first):
            self.first = self.smoothed
        if self.smoothed < self.best * (1 - self.min_improvement):
            self.best, self.best_step, self.bad = self.smoothed, step, 0
            return True
        if step > self.warmup:
            self.bad += 1
        return False

    def should_stop(self, step: int) -> bool:
        """Whether patience is exhausted and the run is past its minimum length."""
        return self.patience is not None and self.bad >= self.patience and step >= self.min_step

    def never_improved(self) -> bool:
        """Whether the smoothed holdout loss never went below its first value."""
        return math.isfinite(self.first) and not self.best < self.first * (1 - self.min_improvement)

    def state(self) -> dict[str, float]:
        return asdict(self)

    def load(self, state: dict[str, float]) -> None:
        for key in ("smoothed", "best", "first"):
            setattr(self, key, float(state[key]))
        self.best_step, self.bad = int(state["best_step"]), int(state["bad"])
