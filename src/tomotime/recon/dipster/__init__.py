"""DIP-STER: space-time deep image prior for dynamic tomography.

A mapping network turns a manifold coordinate (time, row along the tilt axis,
tilt angle) into a latent code and a generative CNN turns the code into the
slice perpendicular to the tilt axis. Trained on the measured projections
alone (each generated slice is projected at its own angle and compared with
its detector row), the network then yields a volume at any time, also between
acquisitions, and is itself a compressed store of the 4D result.

Typical use::

    config = DipsterConfig(hidden=(256,), base_channels=64, batch_size=8, steps=6000)  # a CPU-sized run
    volumes, result = reconstruct_dipster(series, config, run_dir="run")
    save_model("rod.pt", result.model)
    later = volume_at(load_model("rod.pt"), t=12.5)

Also: the paper's recipe (``DipsterConfig.paper()``), per-view acquisition
corrections learned with the network (``corrections=("gain", "shift")``, see
:mod:`.corrections`), per-row angles and times of a frame recorded while the
tilt advances (``row_lag``, ``row_time_lag``), and ensembles giving a band on
any quantity (:mod:`.ensemble`).
"""

from tomotime.recon.dipster.config import CORRECTIONS, LOSSES, MANIFOLDS, PAPER_PRESET, DipsterConfig
from tomotime.recon.dipster.corrections import CorrectionWarning, ViewCorrections, check_identifiable
from tomotime.recon.dipster.ensemble import QUANTITIES, Band, band_of, ensemble_band, ensemble_curves, train_ensemble
from tomotime.recon.dipster.inference import ExtrapolationWarning, volume_at, volume_series
from tomotime.recon.dipster.losses import (
    data_loss,
    estimate_noise_scale,
    geman_mcclure,
    ramp_filter,
    total_variation,
    total_variation_1d,
)
from tomotime.recon.dipster.model import SpaceTimeDIP
from tomotime.recon.dipster.reconstruct import reconstruct_dipster
from tomotime.recon.dipster.sampling import Normalisation
from tomotime.recon.dipster.store import load_model, save_model
from tomotime.recon.dipster.train import train_dipster
from tomotime.training import TrainResult

__all__ = [
    "DipsterConfig",
    "MANIFOLDS",
    "LOSSES",
    "CORRECTIONS",
    "PAPER_PRESET",
    "ViewCorrections",
    "CorrectionWarning",
    "check_identifiable",
    "Band",
    "band_of",
    "train_ensemble",
    "ensemble_band",
    "ensemble_curves",
    "QUANTITIES",
    "SpaceTimeDIP",
    "Normalisation",
    "TrainResult",
    "train_dipster",
    "volume_at",
    "volume_series",
    "reconstruct_dipster",
    "save_model",
    "load_model",
    "ExtrapolationWarning",
    "geman_mcclure",
    "ramp_filter",
    "data_loss",
    "total_variation",
    "total_variation_1d",
    "estimate_noise_scale",
]
