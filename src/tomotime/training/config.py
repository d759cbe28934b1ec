"""Validated training configuration shared by every learned method (pydantic).

:class:`TrainingConfig` holds the options of the training engine (length,
optimiser schedule, holdout stopping, checkpoints, seed, device); a method's
configuration subclasses it and adds its own fields. Every instance is
validated on construction: unknown keys, wrong types and impossible values
raise one :class:`~tomotime.errors.InputError` that names the key (and
suggests the closest known key for a misspelt one).
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tomotime.errors import InputError

__all__ = ["TrainingConfig", "SCHEMA_VERSION", "config_classes", "describe_validation_error"]

#: Version of the run-file schema; a run file that states another one is refused with a clear message.
SCHEMA_VERSION = 2

_REGISTRY: dict[str, type[TrainingConfig]] = {}


def config_classes() -> dict[str, type[TrainingConfig]]:
    """The configuration class of every method imported so far, by method name."""
    return dict(_REGISTRY)


def describe_validation_error(exc: ValidationError, cls: type[BaseModel]) -> str:
    """One line per problem of a pydantic error: ``key=value: what was expected``."""
    known = sorted(cls.model_fields)
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            owners = [m for m, c in _REGISTRY.items() if key in c.model_fields and c is not cls]
            close = difflib.get_close_matches(key, known, n=1)
            hint = (f"; it is an option of {', '.join(owners)}" if owners else
                    f"; did you mean {close[0]!r}?" if close else "")
            lines.append(f"{key}: unknown option{hint}")
        else:
            value = err.get("input")
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{key}={value!r}: {message}" if err["loc"] else message)
    return "; ".join(lines)


class TrainingConfig(BaseModel):
    """Options of the training engine, common to every learned method.

    Parameters
    ----------
    steps : int, optional
        Training steps; when None, ``epochs`` passes over the training samples.
    epochs : float
        Training length in passes over all training samples (when ``steps`` is None).
    batch_size : int
        Training samples per step (the global batch under ``torchrun``).
    lr : float
        Peak Adam learning rate.
    lr_schedule : {"cosine", "step", "constant"}
        Decay after the warm-up: cosine to ``lr * lr_final``, StepLR by
        ``lr_gamma`` every ``lr_step`` steps, or none.
    lr_warmup : float
        Fraction of the planned steps with a linear learning-rate warm-up
        (the first step uses ``lr`` divided by the warm-up's length in steps).
    lr_gamma : float
        StepLR decay factor (``lr_schedule="step"``).
    lr_step : int, optional
        StepLR period in steps (None: a third of the run).
    lr_final : float
        Final learning rate of the cosine schedule, as a fraction of ``lr``.
    grad_clip : float, optional
        Clip the global gradient norm to this value (None: no clipping).
    ema_decay : float, optional
        Keep an exponential moving average of the weights with this decay per
        step (at most ``1 - 10 / steps``, so that the average spans no more
        than a tenth of the run), used for evaluation, best-state keeping and
        export (None: off).
    holdout_fraction : float
        Fraction of the method's holdout units kept out of training (0 disables
        holdout stopping); what a unit is depends on the method.
    eval_every : int
        Steps between holdout evaluations (and metrics rows).
    patience : int, optional
        Stop after this many evaluations in a row whose smoothed holdout loss
        lies more than ``stop_margin`` standard errors above its best (None:
        never stop early); see :mod:`tomotime.training.stopping`.
    min_fraction : float
        Patience cannot stop a run before this fraction of its planned steps.
    stop_margin : float
        Rise above the best smoothed holdout loss, in standard errors of the
        holdout estimate, that counts against patience.
    holdout_smoothing : float
        Weight of the newest evaluation in the exponential moving average of
        the holdout curve that best state and patience use (1: no smoothing).
    min_improvement : float
        Relative decrease of the smoothed holdout loss that counts as an improvement.
    time_limit : float, optional
        Stop after this many minutes of training (over all resumed segments),
        after a last evaluation; the run ends normally and can be resumed with
        a larger limit (None: no limit).
    checkpoint_every : int, optional
        Steps between checkpoints (None: about ten per run); 0 disables periodic ones.
    checkpoint_minutes : float
        Also write a checkpoint when this much wall time passed since the last one.
    seed : int
        Seeds initialisation, holdout choice and sampling order.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
    schema_version : int
        Version of the run-file schema this configuration follows.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)
    method: ClassVar[str] = "training"

    steps: int | None = Field(None, ge=1)
    epochs: float = Field(25.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    lr_schedule: Literal["cosine", "step", "constant"] = "cosine"
    lr_warmup: float = Field(0.025, ge=0, lt=0.5)
    lr_gamma: float = Field(0.5, gt=0, le=1)
    lr_step: int | None = Field(None, ge=1)
    lr_final: float = Field(0.05, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0, allow_inf_nan=False)
    ema_decay: float | None = Field(0.995, gt=0, lt=1)
    holdout_fraction: float = Field(0.05, ge=0, lt=0.5)
    eval_every: int = Field(100, ge=1)
    patience: int | None = Field(10, ge=1)
    min_fraction: float = Field(0.5, ge=0, le=1)
    stop_margin: float = Field(1.0, ge=0, allow_inf_nan=False)
    holdout_smoothing: float = Field(0.3, gt=0, le=1)
    min_improvement: float = Field(1e-4, ge=0, lt=1)
    time_limit: float | None = Field(None, gt=0, allow_inf_nan=False)
    checkpoint_every: int | None = Field(None, ge=0)
    checkpoint_minutes: float = Field(5.0, gt=0, allow_inf_nan=False)
    seed: int = Field(0, ge=0)
    device: str = "auto"
    schema_version: int = SCHEMA_VERSION

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.method] = cls

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, type(self))) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, type(self))) from None

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingConfig:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version={self.schema_version}: this run file follows schema version "
                             f"{self.schema_version}; this tomotime reads version {SCHEMA_VERSION} (start from "
                             "the config.json of a new run)")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON- and torch-safe), tuples as lists; itself a valid run file."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        """Build from :meth:`to_dict` output (or a run file's mapping)."""
        if not isinstance(values, dict):
            raise InputError(f"expected a mapping of option names to values, got {type(values).__name__}")
        return cls(**values)

    def replace(self, **changes: Any) -> TrainingConfig:
        """A validated copy with ``changes`` applied."""
        return type(self)(**{**self.model_dump(), **changes})
