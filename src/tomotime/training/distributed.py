"""Data-parallel training across processes, with PyTorch's ``torch.distributed`` (``torchrun``).

Launched as ``torchrun --nproc_per_node N ...`` (environment ``WORLD_SIZE > 1``,
``RANK``, ``LOCAL_RANK``), the training engine (:func:`tomotime.training.train`)
and inference (e.g. DIP-STER's ``volume_series``) join one process group
(``nccl`` on CUDA, ``gloo`` on the CPU; an already initialised group is used
as it is) and share the work:

* **Training.** ``batch_size`` is the *global* batch: every step the ranks take
  disjoint, contiguous shares of the same sample list a single process would
  use (a function of ``seed`` and step only), and the gradients averaged by
  :class:`~torch.nn.parallel.DistributedDataParallel` equal the gradient of the
  whole batch (shares of unequal size are weighted). The same configuration thus
  follows the same optimisation path on any number of processes, up to
  floating-point summation order: the learning rate needs no rescaling, and a
  checkpoint resumes on another number of processes. Each process needs at least
  one row per step (``batch_size >= WORLD_SIZE``); for more throughput raise
  ``batch_size`` (and usually ``lr``) as for a single larger GPU.
* **Decisions** that change the control flow are taken together: the step loss
  is averaged over the ranks (a non-finite value on any rank rolls back all of
  them), the holdout statistics are summed over the ranks' shares of the
  holdout and broadcast from rank 0 (so best state, patience and early stop agree), and a
  Ctrl-C on any rank stops all of them after the same step.
* **Files.** Only rank 0 writes (run folder, checkpoints with the unwrapped
  model state, HDF5 volume series); a checkpoint is read by rank 0 and broadcast,
  so the other ranks need not see the run folder.
* **Inference.** The time points are dealt out round-robin; each round every
  rank generates one volume and rank 0 gathers and writes them, so rank 0 holds
  at most ``WORLD_SIZE`` volumes at a time.

Without ``torchrun`` (or with a world of one process) every helper here is the
identity and the single-process path runs unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tomotime.errors import InputError, TomotimeError

__all__ = ["DistributedContext", "init_distributed", "is_main_process", "LOCAL"]

log = logging.getLogger(__name__)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r}: expected an integer (set by torchrun)") from None


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel run.

    Attributes
    ----------
    rank : int
        Global rank, 0 .. ``world_size - 1``.
    world_size : int
        Number of processes (1: no process group, every helper is the identity).
    local_rank : int
        Rank on this machine; the CUDA device index of the process.
    device : torch.device
        Device of the tensors the collectives exchange (``cuda:LOCAL_RANK`` with
        ``nccl``, the CPU with ``gloo``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes files and shows progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    # --- placement and sharing -------------------------------------------------------------
    def place(self, device: torch.device) -> torch.device:
        """The device of this rank for a requested ``device``: ``cuda:LOCAL_RANK`` for any CUDA request."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` inside :class:`~torch.nn.parallel.DistributedDataParallel` (itself with one process)."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        dev = next(model.parameters()).device
        if dev.type != "cuda" and self.device.type == "cuda":
            raise InputError(f"device={dev}: the process group uses nccl, which trains on CUDA devices only; "
                             "use a CUDA device, or a gloo group for the CPU")
        return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def share(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of ``items`` (first axis); sizes differ by at most one."""
        if not self.active:
            return items
        return torch.tensor_split(items, self.world_size)[self.rank]

    def check_batch(self, batch: int) -> None:
        """Raise :class:`InputError` unless every rank gets at least one sample of a global batch."""
        if batch < self.world_size:
            raise InputError(f"batch_size={batch}: with {self.world_size} processes every process needs at "
                             f"least one row per step; use batch_size >= {self.world_size} (it is the global "
                             "batch, shared by the processes)")

    # --- collectives -------------------------------------------------------------------------
    def _tensor(self, value: float) -> torch.Tensor:
        return torch.tensor([float(value)], dtype=torch.float64, device=self.device)

    def all_reduce_sum(self, value: float) -> float:
        """Sum of ``value`` over the ranks."""
        if not self.active:
            return value
        import torch.distributed as dist

        t = self._tensor(value)
        dist.all_reduce(t)
        return float(t.item())

    def all_reduce_mean(self, value: float) -> float:
        """Mean of ``value`` over the ranks (non-finite on any rank: non-finite on all)."""
        if not self.active:
            return value
        return self.all_reduce_sum(value) / self.world_size

    def broadcast_value(self, value: float) -> float:
        """Rank 0's ``value`` on every rank."""
        if not self.active:
            return value
        import torch.distributed as dist

        t = self._tensor(value)
        dist.broadcast(t, src=0)
        return float(t.item())

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank."""
        return bool(self.broadcast_value(1.0 if flag else 0.0))

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank."""
        if not self.active:
            return bool(flag)
        return self.all_reduce_sum(1.0 if flag else 0.0) > 0

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every rank (tensors inside arrive on the CPU)."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def gather(self, tensor: torch.Tensor, *, everywhere: bool = False) -> list[torch.Tensor] | None:
        """Every rank's ``tensor`` (same shape on all), in rank order, on rank 0 (None elsewhere) or everywhere."""
        if not self.active:
            return [tensor]
        import torch.distributed as dist

        local = tensor.to(self.device).contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world_size)] if everywhere or self.is_main else None
        if everywhere:
            dist.all_gather(parts, local)
        else:
            dist.gather(local, parts, dst=0)
        return parts

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            import torch.distributed as dist

            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    @contextlib.contextmanager
    def together(self, what: str) -> Iterator[None]:
        """Run a block whose failure on one rank must stop all of them.

        An exception in the block is re-raised on its rank once every rank has
        finished the block; the other ranks raise :class:`TomotimeError`
        instead of waiting forever in the next collective.
        """
        failed: BaseException | None = None
        try:
            yield
        except Exception as exc:  # re-raised below, after the ranks have agreed
            failed = exc
        if self.any(failed is not None):
            if failed is not None:
                raise failed
            raise TomotimeError(f"{what} failed on another process; see its messages")


#: The context of a single process.
LOCAL = DistributedContext()


def _world_from_env() -> int:
    return _env_int("WORLD_SIZE", 1)


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only one); needs no process group yet.

    For code that writes files outside the library's own writers, e.g. a
    command's summary, under ``torchrun``.
    """
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    except ImportError:  # pragma: no cover - torch built without distributed
        pass
    return _env_int("RANK", 0) == 0


def init_distributed(device: str | torch.device | None = None) -> DistributedContext:
    """Join (or create) the process group of a ``torchrun`` launch.

    Parameters
    ----------
    device : str or torch.device, optional
        The compute device of the run: a CUDA device selects the ``nccl``
        backend and this rank's GPU ``cuda:LOCAL_RANK`` (made current), the CPU
        selects ``gloo``. Only used when the group is created here.

    Returns
    -------
    DistributedContext
        :data:`LOCAL` outside ``torchrun`` (``WORLD_SIZE`` unset or 1) and for a
        group of one process.

    Raises
    ------
    InputError
        If the environment asks for several processes but this PyTorch has no
        distributed support, or ``LOCAL_RANK`` names a missing GPU.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        if world == 1:
            return LOCAL
        local_rank = _env_int("LOCAL_RANK", rank)
        comm = torch.device("cuda", local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
        return DistributedContext(rank=rank, world_size=world, local_rank=local_rank, device=comm)
    world = _world_from_env()
    if world <= 1:
        return LOCAL
    if not dist.is_available():
        raise InputError(f"WORLD_SIZE={world}: this PyTorch build has no torch.distributed; run one process")
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"LOCAL_RANK={local_rank}: this machine has {torch.cuda.device_count()} CUDA "
                             "device(s); start at most that many processes per machine")
        torch.cuda.set_device(local_rank)
        comm, backend = torch.device("cuda", local_rank), "nccl"
    else:
        comm, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    atexit.register(_destroy)
    log.info("process %d of %d joined the %s group", rank, world, backend)
    return DistributedContext(rank=rank, world_size=world, local_rank=local_rank, device=comm)


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
