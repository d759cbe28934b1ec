"""Helpers shared by the classical solvers."""

from __future__ import annotations

import numpy as np
import torch

from tomotime.errors import InputError
from tomotime.physics.linear_operator import LinearOperator


def as_data_tensor(op: LinearOperator, data, *, name: str = "data") -> torch.Tensor:
    """Move ``data`` to the operator's device/dtype and check its trailing shape and values."""
    device = getattr(op, "device", torch.device("cpu"))
    dtype = getattr(op, "dtype", torch.float32)
    tensor = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    tensor = tensor.to(device=device, dtype=dtype)
    n = len(op.range_shape)
    if tuple(tensor.shape[tensor.ndim - n:]) != tuple(op.range_shape) or tensor.ndim < n:
        raise InputError(f"{name}: expected trailing shape {tuple(op.range_shape)} "
                         f"(the projector's range), got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise InputError(f"{name}: holds NaN or Inf values")
    return tensor


def safe_reciprocal(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``1 / x`` where ``x > eps * max(x)``, else 0 (pixels/rays the geometry never touches)."""
    cutoff = eps * float(x.abs().max()) if x.numel() else 0.0
    return torch.where(x > cutoff, 1.0 / x.clamp_min(cutoff if cutoff > 0 else 1e-30), torch.zeros_like(x))


def check_iterations(iterations: int) -> int:
    if int(iterations) != iterations or iterations < 1:
        raise InputError(f"iterations={iterations!r}: expected a positive integer")
    return int(iterations)
