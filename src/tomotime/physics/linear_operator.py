"""The linear-operator interface every projector implements."""

from __future__ import annotations

import torch


class LinearOperator:
    """A linear map ``A`` with an exact adjoint ``A.T``.

    Subclasses set ``domain_shape`` and ``range_shape`` (trailing dimensions;
    extra leading batch dimensions pass through) and implement
    :meth:`forward` and :meth:`adjoint`. Both are differentiable.
    """

    domain_shape: tuple[int, ...]
    range_shape: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    @property
    def T(self) -> "LinearOperator":
        """The adjoint as an operator (``A.T(y) == A.adjoint(y)``)."""
        return _Adjoint(self)


class _Adjoint(LinearOperator):
    def __init__(self, op: LinearOperator) -> None:
        self.op = op
        self.domain_shape, self.range_shape = op.range_shape, op.domain_shape

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(y)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.forward(x)

    @property
    def T(self) -> LinearOperator:
        return self.op
