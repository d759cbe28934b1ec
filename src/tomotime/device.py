"""Choice of the compute device."""

from __future__ import annotations

import torch

from tomotime.errors import InputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` (or a torch device) into a device.

    ``"auto"`` (and ``None``) picks CUDA when it is available, else the CPU.
    Asking for CUDA on a machine without it is an error, not a silent fallback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device={device!r}: expected 'auto', 'cpu' or 'cuda[:N]'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r}: CUDA was requested but no CUDA device is available")
    return dev
