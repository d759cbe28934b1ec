"""The supervised U-Net noise filter of Zhao et al. on the shared training engine.

Training pairs are (one fast noisy frame, the averaged reference of the same
field). As in the paper each image is min-shifted to 0 and divided by its
maximum (:func:`paper_normalise`), the network sees random 64 x 64 patches
(with the same random flip and 90-degree rotation on both images), Adam, MSE.
Held-out units are whole pairs; their loss (full image) drives the engine's
stopping rule and best-state keeping. :func:`apply_filter` filters frames of
any size (reflect padding to the pooling grid, seamless tiles for large
frames). The network predicts the *normalised* reference, whose offset and
scale (the clean image's minimum and maximum) are unknown at inference, so
filtered frames are returned in those normalised units (0 darkest, 1
brightest); quality measures compare them with the normalised reference.

Beyond the paper, ``target="noisy-pair"`` trains the same network without
averaged references (Noise2Noise, :mod:`tomotime.rapid.noise2noise`). Its
images are normalised by :func:`robust_normalise` (percentiles of the input
frame, applied to input and target alike); such a filter's output is
min-shifted and divided by its maximum afterwards, so every filter returns
the same units.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from tomotime.denoise.inference import tile_starts
from tomotime.device import resolve_device
from tomotime.errors import FormatError, InputError
from tomotime.io.tagged import load_tagged, save_tagged
from tomotime.models.unet import UNet
from tomotime.training import TrainingConfig, TrainResult, fingerprint, train

__all__ = ["UnetFilterConfig", "UnetFilterMethod", "paper_normalise", "robust_normalise", "NORMALISERS", "check_pairs",
           "train_filter", "apply_filter", "save_filter", "load_filter", "FILTER_FORMAT"]

FILTER_FORMAT = "tomotime-unet-filter"
_VERSION = 1


class UnetFilterConfig(TrainingConfig):
    """Options of :func:`train_filter` (plus those of the training engine).

    Parameters
    ----------
    width, depth : int
        U-Net size (paper: 64, 4).
    patch : int
        Training patch side (px, a multiple of ``2 ** depth``; paper: 64).
    patches_per_pair : int
        Training samples per training pair (or area) and epoch.
    target : {"reference", "noisy-pair"}
        Train on (noisy, averaged reference) pairs (the paper), or on pairs of
        independent noisy frames of the same area (Noise2Noise, no averages;
        :func:`tomotime.rapid.noise2noise.train_filter_noise2noise`).
    normalisation : {"paper", "robust"}, optional
        ``"paper"``: every image min-shifted and divided by its maximum;
        ``"robust"``: :func:`robust_normalise` of the input, applied to input and
        target. Default: paper for ``reference``, robust for ``noisy-pair``.
    """

    method: ClassVar[str] = "unet-filter"

    width: int = Field(16, ge=4, le=256)
    depth: int = Field(3, ge=1, le=6)
    patch: int = Field(64, ge=8, le=4096)
    patches_per_pair: int = Field(4, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    epochs: float = Field(20.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(8, ge=1)
    holdout_fraction: float = Field(0.1, ge=0, lt=0.5)
    eval_every: int = Field(50, ge=1)
    ema_decay: float | None = Field(None, gt=0, lt=1)
    target: Literal["reference", "noisy-pair"] = "reference"
    normalisation: Literal["paper", "robust"] | None = None

    @property
    def normaliser(self) -> str:
        """The normalisation in use (see ``normalisation``)."""
        return self.normalisation or ("paper" if self.target == "reference" else "robust")


def paper_normalise(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-shift each image ``(..., H, W)`` to 0 and divide by its maximum; also return offsets and scales."""
    x = np.asarray(images, np.float32)
    lo = x.min(axis=(-2, -1), keepdims=True)
    scale = np.maximum((x - lo).max(axis=(-2, -1), keepdims=True), 1e-12)
    return (x - lo) / scale, lo, scale


def robust_normalise(images: np.ndarray, low: float = 0.5, high: float = 99.5
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift each image ``(..., H, W)`` by its ``low`` percentile and divide by the ``high - low`` percentile range.

    Unlike the minimum and maximum, these percentiles hardly move with the
    noise of a single frame. Returns the images, offsets and scales.
    """
    x = np.asarray(images, np.float32)
    lo, hi = np.percentile(x, [low, high], axis=(-2, -1), keepdims=True).astype(np.float32)
    scale = np.maximum(hi - lo, 1e-12)
    return (x - lo) / scale, lo, scale


#: Image normalisations by name: ``images -> (normalised, offset, scale)``.
NORMALISERS = {"paper": paper_normalise, "robust": robust_normalise}


def check_pairs(noisy: np.ndarray, reference: np.ndarray, *, name: str = "pairs",
                warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check training pairs ``(M, H, W)``; warn when the references are not cleaner than the noisy frames.

    Raises
    ------
    InputError
        Different shapes or counts, not 3-D, non-finite values, or frames smaller than 8 x 8.
    """
    a, b = np.asarray(noisy), np.asarray(reference)
    if a.ndim == 2:
        a = a[None]
    if b.ndim == 2:
        b = b[None]
    if a.ndim != 3 or b.ndim != 3:
        raise InputError(f"{name}: expected stacks of images (M, H, W), got {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise InputError(f"{name}: {a.shape[0]} noisy images but {b.shape[0]} references; expected one per image")
    if a.shape != b.shape:
        raise InputError(f"{name}: noisy images of {a.shape[1]} x {a.shape[2]} px but references of "
                         f"{b.shape[1]} x {b.shape[2]} px; expected the same size")
    if min(a.shape[1:]) < 8:
        raise InputError(f"{name}: images of {a.shape[1]} x {a.shape[2]} px; expected at least 8 x 8")
    a, b = a.astype(np.float32), b.astype(np.float32)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError(f"{name}: NaN or Inf in the images")
    na, _, _ = paper_normalise(a)
    nb, _, _ = paper_normalise(b)
    rough = [float(np.mean(np.abs(np.diff(x, axis=-1)))) for x in (na, nb)]
    if warn and rough[1] >= 0.9 * rough[0]:
        warnings.warn(f"{name}: the references are not cleaner than the noisy images (pixel-to-pixel variation "
                      f"{rough[1]:.3g} vs {rough[0]:.3g}); are the two stacks swapped or unaveraged?", stacklevel=2)
    return a, b


def _generator(seed: int, step: int, index: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(step), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def _pad(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class UnetFilterMethod:
    """The engine's view of U-Net filter training (see :class:`tomotime.training.Method`)."""

    name = "unet-filter"

    def __init__(self, noisy: np.ndarray, reference: np.ndarray, config: UnetFilterConfig,
                 device: torch.device) -> None:
        noisy, reference = check_pairs(noisy, reference, warn=False)
        self._setup(config, device, noisy.shape)
        x, lo, scale = NORMALISERS[config.normaliser](noisy)
        y = paper_normalise(reference)[0] if config.normaliser == "paper" else (reference - lo) / scale
        self.x, self.y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        self._split(noisy.shape[0])

    def _setup(self, config: UnetFilterConfig, device: torch.device, shape: tuple[int, ...]) -> None:
        if config.patch % 2**config.depth:
            raise InputError(f"patch={config.patch}: expected a multiple of 2 ** depth = {2**config.depth}")
        self.config, self.device, self.shape = config, device, tuple(shape)

    def _split(self, m: int) -> None:
        """Hold out whole pairs (areas), evenly spread; the rest are training units."""
        config = self.config
        n_held = 0 if config.holdout_fraction <= 0 or m < 2 else max(1, round(config.holdout_fraction * m))
        self.held = sorted({int(v) for v in np.linspace(0, m - 1, n_held + 2)[1:-1].round()}) if n_held else []
        self.train_pairs = [i for i in range(m) if i not in set(self.held)]
        self.n_train = len(self.train_pairs) * config.patches_per_pair
        self.n_holdout = len(self.held)

    def build_model(self) -> UNet:
        torch.manual_seed(self.config.seed)
        model = UNet(self.config.width, self.config.depth).to(self.device)
        model.normalisation, model.target = self.config.normaliser, self.config.target
        return model

    def _pair(self, p: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input and target ``(1, H, W)`` of training unit ``p`` (one pair; subclasses may draw)."""
        return self.x[p][None], self.y[p][None]

    def _patches(self, indices: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        side = self.config.patch
        xs, ys = [], []
        for i in indices.tolist():
            gen = _generator(self.config.seed, step, i)
            p = self.train_pairs[i % len(self.train_pairs)]
            x, y = self._pair(p, gen)
            if min(x.shape[-2:]) < side:
                x, _ = _pad(x[None], side)
                y, _ = _pad(y[None], side)
                x, y = x[0], y[0]
            r, c = (int(torch.randint(0, n - side + 1, (1,), generator=gen)) for n in x.shape[-2:])
            k, flip = int(torch.randint(0, 4, (1,), generator=gen)), int(torch.randint(0, 2, (1,), generator=gen))
            pair = torch.stack([x[:, r:r + side, c:c + side], y[:, r:r + side, c:c + side]])
            pair = torch.rot90(pair.flip(-1) if flip else pair, k, dims=(-2, -1))
            xs.append(pair[0])
            ys.append(pair[1])
        return torch.stack(xs), torch.stack(ys)

    def batch_loss(self, net: nn.Module, indices: torch.Tensor, step: int) -> torch.Tensor:
        x, y = self._patches(indices, step)
        return F.mse_loss(net(x), y)

    def _whole(self, model: nn.Module, i: int) -> torch.Tensor:
        x, (h, w) = _pad(self.x[i][None, None], 2**self.config.depth)
        return model(x)[0, 0, :h, :w]

    def holdout_losses(self, model: nn.Module, indices: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.mse_loss(self._whole(model, self.held[i]), self.y[self.held[i]])
                            for i in indices.tolist()])

    @torch.no_grad()
    def collapsed(self, model: nn.Module) -> str | None:
        out = self._whole(model, (self.held or self.train_pairs)[0])
        if float(out.max() - out.min()) <= 1e-6:
            return f"the filtered image is constant ({float(out.mean()):.3g} everywhere)"
        return None

    def describe(self) -> dict[str, Any]:
        return {"config": {**self.config.to_dict(), "device": str(self.device)},
                "derived": {"holdout_pairs": self.held, "train_pairs": len(self.train_pairs),
                            "normalisation": self.config.normaliser},
                "data": {"shape": list(self.shape),
                         "fingerprint": fingerprint(torch.stack([self.x, self.y]).cpu().numpy())}}

    def save(self, path: Path, model: nn.Module, extra: dict[str, Any]) -> None:
        save_filter(path, model, overwrite=True, extra=extra)


def train_filter(noisy: np.ndarray, reference: np.ndarray, config: UnetFilterConfig | None = None, *,
                 run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
                 progress: bool | None = None) -> TrainResult:
    """Train the U-Net filter on pairs ``(M, H, W)``; ``result.model`` is the best :class:`UNet`."""
    config = config if config is not None else UnetFilterConfig()
    if config.target != "reference":
        raise InputError(f"target={config.target!r}: train_filter takes (noisy, reference) pairs; use "
                         "tomotime.rapid.noise2noise.train_filter_noise2noise for pairs of noisy frames")
    check_pairs(noisy, reference)
    method = UnetFilterMethod(noisy, reference, config, resolve_device(config.device))
    return train(method, run_dir=run_dir, resume=resume, overwrite=overwrite, progress=progress)


@torch.no_grad()
def apply_filter(model: UNet, images: np.ndarray, *, tile: int = 512, overlap: int = 32) -> np.ndarray:
    """Filter frames ``(N, H, W)`` or one image ``(H, W)``; float32 in normalised units (see above).

    Each frame is normalised as in training (``model.normalisation``, the
    paper's by default) and filtered (in tiles of ``tile`` px dropping
    ``overlap`` px at inner edges when larger). The output of a filter not
    trained on paper-normalised references is min-shifted and divided by its
    maximum.
    """
    arr = np.asarray(images, np.float32)
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if arr.ndim != 3 or not np.isfinite(arr).all():
        raise InputError(f"images: expected finite frames (N, H, W), got shape {arr.shape}")
    m = model.multiple
    if tile % m or overlap % m or tile <= 2 * overlap:
        raise InputError(f"tile={tile}, overlap={overlap}: expected multiples of {m} with tile > 2 * overlap")
    normalisation, target = getattr(model, "normalisation", "paper"), getattr(model, "target", "reference")
    norm, _, _ = NORMALISERS[normalisation](arr)
    device = next(model.parameters()).device
    model.eval()
    out = np.empty_like(norm)
    for i, frame in enumerate(norm):
        x, (h, w) = _pad(torch.from_numpy(frame).to(device)[None, None], m)
        result = torch.empty_like(x)
        for ys, ylo, yhi in tile_starts(x.shape[-2], tile, overlap):
            for xs, xlo, xhi in tile_starts(x.shape[-1], tile, overlap):
                part = model(x[..., ys:ys + tile, xs:xs + tile])
                result[..., ylo:yhi, xlo:xhi] = part[..., ylo - ys:yhi - ys, xlo - xs:xhi - xs]
        out[i] = result[0, 0, :h, :w].cpu().numpy()
    if (normalisation, target) != ("paper", "reference"):
        out = paper_normalise(out)[0]
    return out[0] if single else out


def save_filter(path: str | Path, model: UNet, *, overwrite: bool = False,
                extra: dict[str, Any] | None = None) -> Path:
    """Write a trained U-Net filter to ``path`` atomically (self-describing torch file)."""
    payload = {"network": {"width": model.width, "depth": model.depth, "channels": model.channels},
               "normalisation": getattr(model, "normalisation", "paper"),
               "target": getattr(model, "target", "reference"), "extra": dict(extra or {}),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return save_tagged(path, FILTER_FORMAT, _VERSION, payload, overwrite=overwrite)


def load_filter(path: str | Path, *, device: str | torch.device = "cpu") -> UNet:
    """The U-Net filter (eval mode) written by :func:`save_filter`; FormatError for other files."""
    payload = load_tagged(path, FILTER_FORMAT, _VERSION, what="U-Net filter")
    model = UNet(**payload["network"])
    model.load_state_dict(payload["state_dict"])
    model.normalisation, model.target = payload.get("normalisation", "paper"), payload.get("target", "reference")
    if model.normalisation not in NORMALISERS:
        raise FormatError(f"{path}: unknown normalisation {model.normalisation!r} in the U-Net filter file")
    return model.to(resolve_device(device)).eval()
