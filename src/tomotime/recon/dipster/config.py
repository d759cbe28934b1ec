"""Hyperparameters of DIP-STER, as one validated dataclass."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

from tomotime.errors import InputError
from tomotime.models.generator import ACTIVATIONS, NORMS

__all__ = ["DipsterConfig", "MANIFOLDS", "LOSSES"]

MANIFOLDS = ("t-y-theta", "cos-sin-y-t", "y-t")
LOSSES = ("gm", "l2", "l1", "smooth-l1")


@dataclass
class DipsterConfig:
    """Everything that defines a DIP-STER training run.

    Parameters
    ----------
    manifold : {"t-y-theta", "cos-sin-y-t", "y-t"}
        Coordinates fed to the mapping network, see :mod:`.manifold`.
    hidden : tuple of int
        Hidden widths of the mapping network (paper: two layers of 512).
    latent : int
        Latent code size.
    base_channels, min_channels : int
        Generator channels at the seed, and their floor.
    seed_size : int, optional
        Edge of the generator's seed map (default: chosen from the slice size,
        see :func:`tomotime.models.generator.auto_seed_size`).
    thickness : int, optional
        Slice size ``Z`` along the beam (default: the detector width ``X``).
    norm : {"group", "none"}
        Generator normalisation (never BatchNorm, so outputs do not depend on the batch).
    activation : {"softplus", "sigmoid", "relu", "identity"}
        Output activation of the generator.
    loss : {"gm", "l2", "l1", "smooth-l1"}
        Data loss on residuals measured in units of ``gm_scale`` (see :mod:`.losses`).
    gm_scale : float, optional
        Residual scale ``c`` in normalised data units; None sets it from the
        data to ``gm_noise_factor`` times the robust noise deviation (see
        :func:`.losses.estimate_noise_scale`), floored at ``gm_scale_floor`` of
        the normalised data range.
    gm_noise_factor : float
        ``c`` in units of the estimated noise deviation: residuals within the
        noise are treated (nearly) quadratically, larger ones as outliers.
    gm_scale_floor : float
        Lower bound of the estimated scale, as a fraction of the normalised data range.
    smooth_l1_beta : float
        Transition point of the smooth-L1 loss, in units of ``gm_scale``.
    tv_weight : float
        Weight of the total variation of the generated slices.
    warmup_steps : int
        Steps trained with the L2 loss before switching to ``loss`` (reliable start from random init).
    lr, lr_gamma : float
        Adam learning rate, and its StepLR decay factor.
    lr_step : int, optional
        StepLR period in steps (None: a third of the training steps).
    batch_size : int
        Detector rows (slices) per step.
    steps : int, optional
        Training steps; when None, ``epochs`` passes over the training rows.
    epochs : float
        Training length in passes over all training rows (used when ``steps`` is None).
    holdout_fraction : float
        Fraction of projections kept out of training for early stopping (0 disables it).
    eval_every : int
        Steps between holdout evaluations (and metrics rows).
    patience : int, optional
        Stop after this many evaluations without improvement (None: never stop early).
    checkpoint_every : int
        Steps between checkpoints when a run folder is given (0: only at the end / on interrupt).
    data_offset : float, optional
        Subtracted from the projections before fitting (intensity units); None
        uses their 1st percentile (e.g. a HAADF background).
    seed : int
        Seeds initialisation, holdout choice and sampling order.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
    query_angle : float
        Default tilt angle (degrees) at which volumes are generated.

    Notes
    -----
    Defaults that differ from the reference implementation, measured on the
    alloying nanorod (24^3 voxels, 40 noise-free GRS projections, 3000 steps
    of 8 rows, three network seeds):

    * ``manifold="y-t"``: with a GRS scheme the angle jumps between successive
      projections, and an angle input lets the generator fit each projection
      with a slice of its own. ``"cos-sin-y-t"`` reached a lower holdout loss
      but worse volumes at the query angle (SSIM mean 0.925-0.954, worst
      0.72-0.79) than ``"y-t"`` (mean 0.953-0.955, worst 0.82-0.88).
    * ``loss="l2"``: Geman-McClure down-weights residuals beyond ``c``, and
      before convergence those include the real dynamics; switching to
      ``"gm"`` after 500 steps lowered the worst SSIM to 0.68, on noise-free
      and on Poisson-noisy (20 counts per unit) data alike. Use ``"gm"`` for
      data with outliers, with ``warmup_steps`` covering most of the run.
    * ``lr=1e-3`` with a StepLR halving every third of the run (the paper:
      1e-4 over 25-100 epochs on a GPU).

    ``hidden`` and ``base_channels`` default to the papers' widths. On the
    64^3 nanoshell benchmark (25 epochs) one hidden layer of 256 and 64
    channels reached the same quality (SSIM mean / worst 0.923 / 0.882
    against 0.922 / 0.879) in 0.8x the CPU time.
    """

    manifold: str = "y-t"
    hidden: tuple[int, ...] = (512, 512)
    latent: int = 64
    base_channels: int = 128
    seed_size: int | None = None
    min_channels: int = 16
    thickness: int | None = None
    norm: str = "group"
    activation: str = "softplus"
    loss: str = "l2"
    gm_scale: float | None = None
    gm_noise_factor: float = 3.0
    gm_scale_floor: float = 0.01
    smooth_l1_beta: float = 1.0
    tv_weight: float = 1e-5
    warmup_steps: int = 200
    lr: float = 1e-3
    lr_gamma: float = 0.5
    lr_step: int | None = None
    batch_size: int = 4
    steps: int | None = None
    epochs: float = 25.0
    holdout_fraction: float = 0.05
    eval_every: int = 100
    patience: int | None = 10
    checkpoint_every: int = 1000
    data_offset: float | None = 0.0
    seed: int = 0
    device: str = "auto"
    query_angle: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (int, float)):
            self.hidden = (int(self.hidden),)
        self.hidden = tuple(self.hidden)

    def validate(self) -> DipsterConfig:
        """Check every value; raise :class:`InputError` naming the first impossible one. Returns ``self``."""
        _choice("manifold", self.manifold, MANIFOLDS)
        _choice("norm", self.norm, NORMS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("loss", self.loss, LOSSES)
        if not all(_is_int(h) and h >= 1 for h in self.hidden):
            raise InputError(f"hidden={self.hidden!r}: expected a list of positive layer widths")
        for name in ("latent", "base_channels", "min_channels", "batch_size", "eval_every"):
            _int(name, getattr(self, name), minimum=1)
        for name in ("warmup_steps", "checkpoint_every", "seed"):
            _int(name, getattr(self, name), minimum=0)
        for name in ("steps", "lr_step", "patience", "thickness", "seed_size"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name), minimum=1)
        _positive("lr", self.lr)
        _positive("epochs", self.epochs)
        _positive("smooth_l1_beta", self.smooth_l1_beta)
        _positive("gm_scale_floor", self.gm_scale_floor)
        _positive("gm_noise_factor", self.gm_noise_factor)
        if self.gm_scale is not None:
            _positive("gm_scale", self.gm_scale)
        if not (_is_real(self.lr_gamma) and 0 < self.lr_gamma <= 1):
            raise InputError(f"lr_gamma={self.lr_gamma!r}: expected a decay factor in (0, 1]")
        if not (_is_real(self.tv_weight) and self.tv_weight >= 0):
            raise InputError(f"tv_weight={self.tv_weight!r}: expected a non-negative weight")
        if not (_is_real(self.holdout_fraction) and 0 <= self.holdout_fraction < 0.5):
            raise InputError(f"holdout_fraction={self.holdout_fraction!r}: expected a fraction in [0, 0.5)")
        if self.data_offset is not None and not _is_real(self.data_offset):
            raise InputError(f"data_offset={self.data_offset!r}: expected a finite number or None")
        if not (_is_real(self.query_angle) and abs(self.query_angle) <= 90):
            raise InputError(f"query_angle={self.query_angle!r}: expected an angle in degrees within [-90, 90]")
        if not isinstance(self.device, str):
            raise InputError(f"device={self.device!r}: expected 'auto', 'cpu' or 'cuda[:N]'")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON- and torch-safe), tuples as lists."""
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DipsterConfig:
        """Build from :meth:`to_dict` output; unknown keys are an :class:`InputError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown DIP-STER option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int(name: str, value: Any, *, minimum: int) -> None:
    if not (_is_int(value) and value >= minimum):
        raise InputError(f"{name}={value!r}: expected an integer >= {minimum}")


def _positive(name: str, value: Any) -> None:
    if not (_is_real(value) and value > 0):
        raise InputError(f"{name}={value!r}: expected a positive number")


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise InputError(f"{name}={value!r}: expected one of {', '.join(options)}")
