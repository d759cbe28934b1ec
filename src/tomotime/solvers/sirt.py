"""SIRT: the simultaneous iterative reconstruction technique."""

from __future__ import annotations

from typing import Callable

import torch

from tomotime.physics.linear_operator import LinearOperator
from tomotime.solvers.common import as_data_tensor, check_iterations, safe_reciprocal
from tomotime.solvers.progress import progress_bar

__all__ = ["sirt"]


@torch.no_grad()
def sirt(
    op: LinearOperator,
    data,
    *,
    iterations: int = 100,
    x0: torch.Tensor | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    mask: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """Reconstruct with SIRT: ``x <- x + C A^T R (b - A x)``.

    ``R`` and ``C`` are the inverse row and column sums of ``A`` (as in
    astra-toolbox's ``SIRT``), so with no constraints this converges to a
    weighted least-squares solution.

    Parameters
    ----------
    op : LinearOperator
        Projector, e.g. :class:`~tomotime.physics.ParallelProjector2D` (data
        ``(..., A, D)``, batched over leading dimensions such as detector rows)
        or :class:`~tomotime.physics.VolumeProjector` (data ``(N, Y, D)``).
    data : array_like or torch.Tensor
        Measured projections with the operator's range shape (plus batch dims).
    iterations : int
        Number of iterations.
    x0 : torch.Tensor, optional
        Start (default zeros).
    min_value, max_value : float, optional
        Box constraint applied after every iteration (``min_value=0`` for positivity).
    mask : torch.Tensor, optional
        Boolean/0-1 support of the object, shape ``op.domain_shape``; zero outside.
    callback : callable, optional
        Called as ``callback(iteration, x)`` after every iteration.
    progress : bool, optional
        Show a progress bar (default: when running in a terminal).

    Returns
    -------
    torch.Tensor
        Reconstruction of shape ``batch + op.domain_shape``.
    """
    iterations = check_iterations(iterations)
    b = as_data_tensor(op, data)
    batch = b.shape[: b.ndim - len(op.range_shape)]
    ones_x = torch.ones(op.domain_shape, device=b.device, dtype=b.dtype)
    if mask is not None:
        ones_x = ones_x * torch.as_tensor(mask, device=b.device).to(b.dtype)
    row_weight = safe_reciprocal(op.forward(ones_x))
    col_weight = safe_reciprocal(op.adjoint(torch.ones(op.range_shape, device=b.device, dtype=b.dtype)))
    if mask is not None:
        col_weight = col_weight * ones_x
    x = torch.zeros(*batch, *op.domain_shape, device=b.device, dtype=b.dtype) if x0 is None else x0.clone()
    for it in progress_bar(iterations, desc="SIRT", progress=progress):
        x += col_weight * op.adjoint(row_weight * (b - op.forward(x)))
        if min_value is not None or max_value is not None:
            x.clamp_(min=min_value, max=max_value)
        if callback is not None:
            callback(it, x)
    return x
