"""EM (MLEM): maximum-likelihood expectation maximisation for non-negative data."""

from __future__ import annotations

from typing import Callable

import torch

from tomotime.errors import InputError
from tomotime.physics.linear_operator import LinearOperator
from tomotime.solvers.common import as_data_tensor, check_iterations, safe_reciprocal
from tomotime.solvers.progress import progress_bar

__all__ = ["em"]


@torch.no_grad()
def em(
    op: LinearOperator,
    data,
    *,
    iterations: int = 50,
    x0: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """Reconstruct with MLEM: ``x <- x / (A^T 1) * A^T (b / A x)``.

    The Poisson maximum-likelihood iteration; it keeps ``x`` non-negative and
    needs non-negative data (offset or clip the data first, e.g. after
    background subtraction).

    Parameters
    ----------
    op, data, iterations, mask, callback, progress
        As for :func:`~tomotime.solvers.sirt`.
    x0 : torch.Tensor, optional
        Positive start (default: ones inside the mask).

    Returns
    -------
    torch.Tensor
        Non-negative reconstruction of shape ``batch + op.domain_shape``.
    """
    iterations = check_iterations(iterations)
    b = as_data_tensor(op, data)
    if (b < 0).any():
        raise InputError(f"data: EM needs non-negative projections; the minimum is {float(b.min()):.4g} "
                         "(subtract a smaller background or clip at 0)")
    batch = b.shape[: b.ndim - len(op.range_shape)]
    support = torch.ones(op.domain_shape, device=b.device, dtype=b.dtype)
    if mask is not None:
        support = support * torch.as_tensor(mask, device=b.device).to(b.dtype)
    sensitivity = safe_reciprocal(op.adjoint(torch.ones(op.range_shape, device=b.device, dtype=b.dtype))) * support
    x = support.expand(*batch, *op.domain_shape).clone() if x0 is None else x0.clone()
    tiny = torch.finfo(b.dtype).tiny
    for it in progress_bar(iterations, desc="EM", progress=progress):
        estimate = op.forward(x)
        ratio = torch.where(estimate > tiny, b / estimate.clamp_min(tiny), torch.zeros_like(b))
        x *= sensitivity * op.adjoint(ratio)
        if callback is not None:
            callback(it, x)
    return x
