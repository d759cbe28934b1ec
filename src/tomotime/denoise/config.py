"""Options of a UDVD training run (pydantic, validated on construction).

Two architectures: ``preset="paper"`` is the network of the UDVD paper
(two-stage blind U-Net of width 48, about 2.1 M parameters; Adam 1e-4);
``preset="fast"`` (the default) is one blind U-Net of width 32 over all five
frames, several times cheaper per frame (see ``benchmarks/README.md``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from tomotime.training import TrainingConfig

__all__ = ["DenoiserTrainingConfig", "UdvdConfig", "PRESETS", "MIN_FRAMES"]

#: ``preset -> (stages, width)`` of the network.
PRESETS = {"paper": (2, 48), "fast": (1, 32)}
#: Frames the video network needs; fewer frames need ``frames=1`` (the single-frame variant).
MIN_FRAMES = 5


class DenoiserTrainingConfig(TrainingConfig):
    """Options every denoiser trained on crops of a movie shares (UDVD, Neighbor2Neighbor).

    Parameters
    ----------
    crop : int
        Side of the square training crops (px; smaller frames are padded).
    crops_per_frame : int
        Training samples per training frame and epoch.
    holdout_crop : int
        Side of the centred region of each held-out frame whose loss is evaluated (px).

    The engine's ``holdout_fraction`` holds out whole frames as targets.
    """

    crop: int = Field(64, ge=8, le=4096)
    crops_per_frame: int = Field(4, ge=1)
    holdout_crop: int = Field(128, ge=8, le=4096)
    lr: float = Field(3e-4, gt=0, allow_inf_nan=False)
    epochs: float = Field(50.0, gt=0, allow_inf_nan=False)
    eval_every: int = Field(50, ge=1)
    # Measured (benchmarks/bench_udvd*.py) without the engine's warm-up, clipping and weight average.
    lr_warmup: float = Field(0.0, ge=0, lt=0.5)
    grad_clip: float | None = Field(None, gt=0, allow_inf_nan=False)
    ema_decay: float | None = Field(None, gt=0, lt=1)


class UdvdConfig(DenoiserTrainingConfig):
    """Options of :func:`tomotime.denoise.train_udvd` (plus those of the training engine).

    Parameters
    ----------
    preset : {"fast", "paper"}
        Network: one blind U-Net (fast) or the paper's two-stage network.
    width : int, optional
        U-Net width (None: the preset's, 32 fast / 48 paper).
    frames : {5, 1}
        Frames in per output frame: 5 (UDVD) or 1 (single-frame blind spot).
    blind_spot : {"pixel", "3x3", "row"}
        Blind the pixel itself, its 3x3 neighbourhood (spatially correlated
        noise), or its whole row (noise correlated along the fast-scan rows).
    crop : int
        Side of the square training crops (px, a multiple of 4; smaller frames are padded).
    crops_per_frame : int
        Training samples per training frame and epoch.
    holdout_crop : int
        Side of the centred region of each held-out frame whose loss is evaluated (px, multiple of 4).
    mixed_precision : bool
        bfloat16 autocast on CUDA during training (ignored on the CPU).

    The engine's ``holdout_fraction`` holds out whole frames (as targets; they
    still serve as neighbours of other frames).
    """

    method: ClassVar[str] = "udvd"

    preset: Literal["fast", "paper"] = "fast"
    width: int | None = Field(None, ge=4, le=256)
    frames: Literal[1, 5] = 5
    blind_spot: Literal["pixel", "3x3", "row"] = "pixel"
    mixed_precision: bool = False

    @model_validator(mode="after")
    def _check_sizes(self) -> UdvdConfig:
        for name in ("crop", "holdout_crop"):
            if getattr(self, name) % 4:
                raise ValueError(f"{name}={getattr(self, name)}: expected a multiple of 4 (two poolings)")
        if self.preset == "paper" and self.frames != 5:
            raise ValueError("preset='paper' takes 5 frames; use preset='fast' with frames=1")
        return self

    @property
    def network(self) -> dict:
        """Keyword arguments of :class:`tomotime.models.blindspot.BlindSpotNet`."""
        stages, width = PRESETS[self.preset]
        return {"frames": self.frames, "width": self.width or width, "stages": stages if self.frames == 5 else 1,
                "blind_spot": self.blind_spot}

    @classmethod
    def paper(cls, **changes) -> UdvdConfig:
        """The paper's settings: two-stage width-48 network, Adam 1e-4, batch 2, constant rate."""
        return cls(**{"preset": "paper", "lr": 1e-4, "batch_size": 2, "lr_schedule": "constant", **changes})
