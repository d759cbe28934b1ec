"""The holdout stopping rule: smoothed curve, best state, stop only on a clear rise after a minimum share of the run.

A single holdout evaluation is a noisy estimate, early in training the loss
can jump by several times between evaluations, and on noisy data the holdout
curve flattens long before the reconstruction stops improving (the noise
dominates the held-out loss while the learning-rate decay still sharpens the
signal). The rule therefore judges an exponential moving average of the
holdout curve, keeps the latest state that is not clearly worse than the
best (on a plateau the longer-trained state), and stops a run only when
it has risen clearly -- by more than ``margin`` standard errors of the
holdout estimate -- above that best for ``patience`` evaluations in a row,
and never before ``min_fraction`` of the planned steps. A plateau does not stop it.
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
        Consecutive evaluations clearly above the best that stop the run (None: never).
    min_step : int
        No stop before this step.
    warmup : int
        Evaluations up to this step count neither against patience nor as stale.
    min_improvement : float
        Relative decrease that counts as an improvement.
    margin : float
        How far above the best, in standard errors of the holdout estimate,
        the smoothed loss must lie for an evaluation to count against patience.
    """

    smoothing: float
    patience: int | None
    min_step: int
    warmup: int
    min_improvement: float
    margin: float = 1.0
    smoothed: float = math.nan
    best: float = math.inf
    kept: float = math.nan
    kept_step: int = 0
    worse: int = 0
    stale: int = 0
    first: float = math.nan

    def update(self, step: int, value: float, se: float = 0.0) -> bool:
        """Add the holdout loss (and its standard error) at ``step``; return whether to keep this state.

        The kept state is the latest one whose smoothed loss is not clearly
        above the best: on a plateau the later, longer-trained state wins;
        after a clear rise the state before it stays.
        """
        if not math.isfinite(value):
            return False
        self.smoothed = value if not math.isfinite(self.smoothed) else \
            self.smoothing * value + (1 - self.smoothing) * self.smoothed
        if not math.isfinite(self.first):
            self.first = self.smoothed
        if self.smoothed < self.best * (1 - self.min_improvement):
            self.best, self.stale = self.smoothed, 0
        elif step > self.warmup:
            self.stale += 1
        clearly_worse = self.smoothed > self.best + self.margin * (se if math.isfinite(se) else 0.0)
        self.worse = self.worse + 1 if clearly_worse and step > self.warmup else 0
        if not clearly_worse:
            self.kept, self.kept_step = self.smoothed, step
        return not clearly_worse

    def should_stop(self, step: int) -> bool:
        """Whether patience is exhausted and the run is past its minimum length."""
        return self.patience is not None and self.worse >= self.patience and step >= self.min_step

    def never_improved(self) -> bool:
        """Whether the smoothed holdout loss never went below its first value."""
        return math.isfinite(self.first) and not self.best < self.first * (1 - self.min_improvement)

    def state(self) -> dict[str, float]:
        return asdict(self)

    def load(self, state: dict[str, float]) -> None:
        for key in ("smoothed", "best", "kept", "first"):
            setattr(self, key, float(state[key]))
        self.kept_step, self.worse, self.stale = int(state["kept_step"]), int(state["worse"]), int(state["stale"])
