"""2D parallel-beam projectors in slice mode (pure PyTorch, CPU and GPU).

Two entry points share the Joseph discretisation of :mod:`tomotime.physics.joseph`:

* :class:`ParallelProjector2D` projects a batch of slices ``(B, Z, X)`` at one
  shared set of angles to ``(B, A, D)``. It holds the system matrix as sparse CSR
  (and its transpose), so forward and adjoint are exact transposes and cost
  O(B * nnz): linear in ``B``.
* :func:`project_slices` projects each slice of ``(B, Z, X)`` at **its own**
  angle to ``(B, D)``, computing the ray weights on the fly (cost linear in B;
  no B x B work). It is differentiable with respect to the slices.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import torch

from tomotime.device import resolve_device
from tomotime.errors import InputError
from tomotime.physics.joseph import joseph_samples
from tomotime.physics.linear_operator import LinearOperator

__all__ = ["ParallelProjector2D", "project_slices"]


def _check_angles(angles, name: str = "angles") -> np.ndarray:
    a = np.asarray(angles.detach().cpu() if isinstance(angles, torch.Tensor) else angles, dtype=np.float64)
    a = a.reshape(-1)
    if a.size == 0 or not np.isfinite(a).all():
        raise InputError(f"{name}: expected a non-empty list of finite angles in degrees")
    return a


def _system_matrix(theta: torch.Tensor, shape: tuple[int, int], n_det: int, dtype, device):
    """Sparse CSR system matrix ``(A * D, Z * X)`` and its transpose.

    Rows are built angle by angle with their columns sorted, so no global
    coalescing is needed; indices are int32 where they fit, which lets the
    sparse kernels run several times faster than with int64.
    """
    cols, vals, counts = [], [], []
    chunk = max(1, 4_000_000 // (n_det * max(shape) * 2))
    small = shape[0] * shape[1] < 2**31
    for start in range(0, theta.numel(), chunk):
        index, weight = joseph_samples(theta[start:start + chunk].to(dtype), shape, n_det)
        index = index.reshape(-1, index.shape[2] * 2)
        index = index.int() if small else index
        weight = weight.reshape(index.shape)
        # Rays walked along Z come out in column order already; sort only the others.
        unsorted = (index[:, 1:] < index[:, :-1]).any(dim=1).nonzero().squeeze(1)
        if unsorted.numel():
            rows, order = torch.sort(index[unsorted], dim=1)
            index[unsorted] = rows
            weight[unsorted] = torch.gather(weight[unsorted], 1, order)
        keep = weight != 0
        counts.append(keep.sum(dim=1))
        flat = keep.reshape(-1).nonzero().squeeze(1)
        cols.append(index.reshape(-1).index_select(0, flat))
        vals.append(weight.reshape(-1).index_select(0, flat))
    counts, cols, vals = torch.cat(counts), torch.cat(cols), torch.cat(vals)
    index_dtype = torch.int32 if cols.numel() < 2**31 - 1 else torch.int64
    crow = torch.zeros(counts.numel() + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(counts, 0)
    size = (theta.numel() * n_det, shape[0] * shape[1])
    # scipy's O(nnz) CSR -> CSC conversion is far faster than torch's to_sparse_csc; same result.
    csc = scipy.sparse.csr_matrix((vals.numpy(), cols.numpy(), crow.numpy()), shape=size).tocsc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        matrix = torch.sparse_csr_tensor(crow.to(index_dtype), cols.to(index_dtype), vals, size=size)
        transpose = torch.sparse_csr_tensor(torch.from_numpy(csc.indptr).to(index_dtype),
                                            torch.from_numpy(csc.indices).to(index_dtype),
                                            torch.from_numpy(csc.data), size=(size[1], size[0]))
    return matrix.to(device), transpose.to(device)


class _SparseApply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, matrix, transpose):
        ctx.transpose = transpose
        ctx.matrix = matrix
        return torch.sparse.mm(matrix, x)

    @staticmethod
    def backward(ctx, grad):
        return torch.sparse.mm(ctx.transpose, grad.contiguous()), None, None


class ParallelProjector2D(LinearOperator):
    """Parallel-beam projector of slices at a shared set of angles.

    Parameters
    ----------
    angles : array_like, shape (A,)
        Tilt angles in degrees.
    shape : (int, int)
        Slice shape ``(Z, X)``; non-square slices are supported.
    n_det : int, optional
        Detector bins ``D`` (default ``X``), unit spacing, centred on the axis.
    device : str or torch.device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.

    Notes
    -----
    ``forward`` maps ``(..., Z, X)`` to ``(..., A, D)`` and ``adjoint`` maps back;
    see :mod:`tomotime.physics.joseph` for the exact convention. Projections are
    line integrals in pixel units.
    """

    def __init__(self, angles, shape: tuple[int, int], *, n_det: int | None = None,
                 device="cpu", dtype=torch.float32) -> None:
        self.angles = _check_angles(angles)
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"shape={shape}: expected a slice shape (Z, X) of positive sizes")
        self.shape = (int(shape[0]), int(shape[1]))
        if n_det is not None and (int(n_det) != n_det or n_det < 1):
            raise InputError(f"n_det={n_det!r}: expected a positive number of detector bins")
        self.n_det = int(n_det or self.shape[1])
        self.device = resolve_device(device)
        self.dtype = dtype
        self.domain_shape = self.shape
        self.range_shape = (self.angles.size, self.n_det)
        theta = torch.as_tensor(np.radians(self.angles), dtype=torch.float64)
        self._matrix, self._transpose = _system_matrix(theta, self.shape, self.n_det, dtype, self.device)

    def __repr__(self) -> str:
        return (f"ParallelProjector2D(n_angles={self.angles.size}, shape={self.shape}, n_det={self.n_det}, "
                f"device={self.device})")

    def _apply(self, x: torch.Tensor, matrix, transpose, in_shape, out_shape) -> torch.Tensor:
        if tuple(x.shape[-2:]) != in_shape:
            raise InputError(f"expected trailing shape {in_shape}, got {tuple(x.shape)}")
        batch = x.shape[:-2]
        cols = x.reshape(-1, in_shape[0] * in_shape[1]).to(self.device, self.dtype).t()
        out = _SparseApply.apply(cols.contiguous(), matrix, transpose)
        return out.t().reshape(*batch, *out_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project slices ``(..., Z, X)`` to sinograms ``(..., A, D)``."""
        return self._apply(x, self._matrix, self._transpose, self.domain_shape, self.range_shape)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-project sinograms ``(..., A, D)`` to slices ``(..., Z, X)`` (exact transpose)."""
        return self._apply(y, self._transpose, self._matrix, self.range_shape, self.domain_shape)

    def select(self, indices) -> "ParallelProjector2D":
        """A projector for a subset of the angles (e.g. ``P.select(slice(0, 30))``)."""
        return ParallelProjector2D(self.angles[indices], self.shape, n_det=self.n_det,
                                   device=self.device, dtype=self.dtype)


def project_slices(slices: torch.Tensor, angles: torch.Tensor, *, n_det: int | None = None) -> torch.Tensor:
    """Project each slice at its own angle.

    Parameters
    ----------
    slices : torch.Tensor, shape (B, Z, X)
        A batch of slices perpendicular to the tilt axis.
    angles : torch.Tensor or array_like, shape (B,)
        One angle per slice, in degrees.
    n_det : int, optional
        Detector bins (default ``X``).

    Returns
    -------
    torch.Tensor, shape (B, D)
        ``out[b] == ParallelProjector2D([angles[b]], (Z, X)).forward(slices[b])[0]``,
        computed in ``O(B * D * max(Z, X))`` and differentiable in ``slices``.
    """
    if slices.ndim != 3:
        raise InputError(f"slices: expected (B, Z, X), got shape {tuple(slices.shape)}")
    b, nz, nx = slices.shape
    theta = torch.deg2rad(torch.as_tensor(angles, dtype=slices.dtype, device=slices.device).reshape(-1))
    if theta.numel() != b:
        raise InputError(f"angles: expected {b} angles (one per slice), got {theta.numel()}")
    n_det = int(n_det or nx)
    index, weight = joseph_samples(theta.detach(), (nz, nx), n_det)  # (B, D, P, 2)
    flat = slices.reshape(b, nz * nx)
    values = torch.gather(flat, 1, index.reshape(b, -1)).reshape(index.shape)
    return (values * weight).sum(dim=(-1, -2))
