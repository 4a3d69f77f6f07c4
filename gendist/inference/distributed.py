r"""Several processes, one computation: the little :func:`fit` needs from ``torch.distributed``.

Under ``torchrun`` every process gets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in its environment; :func:`init_from_env`
turns them into a process group (``gloo`` on CPU, ``nccl`` for CUDA models).
Without them, or with ``WORLD_SIZE=1``, everything here is a no-op and a
single process is rank 0 of a world of size 1.

Example:
    >>> init_from_env()  # no torchrun here: nothing to start
    False
    >>> rank(), world_size(), is_main()
    (0, 1, True)
    >>> barrier()  # a no-op in one process
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "all_reduce_sum", "barrier", "broadcast_object", "gather_object", "init_from_env", "is_distributed", "is_main",
    "local_rank", "rank", "world_size",
]

#: How long a collective waits for a missing rank before it fails (seconds); ``GENDIST_DIST_TIMEOUT`` overrides.
DEFAULT_TIMEOUT = 300.0


def is_distributed() -> bool:
    r"""Whether a process group with more than one process is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    r"""This process's rank in the process group; 0 when not distributed."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    r"""The number of processes in the group; 1 when not distributed."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    r"""This process's rank on its own node (``LOCAL_RANK`` from torchrun; 0 without it)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    r"""True on rank 0, or when not distributed: the process that writes files and prints."""
    return rank() == 0


def barrier() -> None:
    r"""Wait until every rank gets here (a no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as e:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from e


def init_from_env(device: str | torch.device | None = None, timeout: float | None = None) -> bool:
    r"""Start the default process group from torchrun's environment, if it asks for more than one process.

    Does nothing (and returns False) when a process group already exists or
    ``WORLD_SIZE`` is unset or 1. Otherwise it needs ``RANK`` and
    ``MASTER_ADDR``/``MASTER_PORT`` (torchrun sets them all), initialises the
    group with the ``nccl`` backend when ``device`` is a CUDA device (and then
    selects ``cuda:LOCAL_RANK``), ``gloo`` otherwise, and returns True.

    Arguments:
        device: where the model lives (decides the backend); None means CPU.
        timeout: seconds a collective waits for a rank that is not there before it
            raises instead of hanging (default ``GENDIST_DIST_TIMEOUT`` or 300).
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return False
    size = _env_world_size()
    if size <= 1:
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={size} asks for a distributed run but {', '.join(missing)} "
            "is not set; launch with `torchrun --nproc-per-node N ...`"
        )
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(local_rank())
    seconds = timeout if timeout is not None else float(os.environ.get("GENDIST_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    dist.init_process_group(
        backend="nccl" if cuda else "gloo",
        init_method="env://",
        rank=int(os.environ["RANK"]),
        world_size=size,
        timeout=datetime.timedelta(seconds=seconds),
    )
    return True


def _device() -> torch.device:
    """Where collectives put their tensors: the current CUDA device for ``nccl``, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    r"""The sums over all ranks of each of ``values`` (in float64); the values themselves when not distributed.

    Example:
        >>> all_reduce_sum([1.5, 2.0])
        [1.5, 2.0]
    """
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return t.tolist()


def gather_object(obj: Any) -> list[Any] | None:
    r"""Every rank's ``obj`` (picklable), as a list by rank on rank 0 and None elsewhere; ``[obj]`` in one process.

    Example:
        >>> gather_object({"a": 1})
        [{'a': 1}]
    """
    if not is_distributed():
        return [obj]
    out = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: Any) -> Any:
    r"""Rank 0's ``obj`` on every rank (picklable); ``obj`` itself in one process.

    Example:
        >>> broadcast_object(3)
        3
    """
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
