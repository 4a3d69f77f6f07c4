r"""Mini-batches for :func:`~gendist.inference.fit`: one shared shuffle, and each process's share of every batch."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from gendist.inference.objective import Batch

Data = Tensor | Sequence[Tensor] | DataLoader

__all__ = ["Data", "batches", "check_data", "epoch", "local_share", "share", "steps_per_epoch", "tensors"]


def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous share ``[start, stop)`` of ``n`` examples of ``rank`` among ``world`` (sizes differ by <= 1)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def tensors(data: object) -> tuple[Tensor, ...]:
    """The tensors of tensor data (``x`` or ``(x, c)``)."""
    return (data,) if isinstance(data, Tensor) else tuple(data)


def batches(data: Data, batch_size: int, order: Tensor | None) -> Iterator[Batch]:
    """The global batches of one pass, in ``order`` (None: as stored)."""
    if isinstance(data, DataLoader):
        for batch in data:
            yield tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
        return
    columns = tensors(data)
    n = len(columns[0])
    order = torch.arange(n) if order is None else order
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield tuple(t[idx.to(t.device)] for t in columns)


def local_share(batch: Batch, rank: int, world: int) -> tuple[Batch, float]:
    """This rank's share of a global batch and its weight ``n_rank / n``; an empty share is one example of weight 0."""
    if world == 1:
        return batch, 1.0
    n = len(batch[0])
    start, stop = share(n, rank, world)
    if stop == start:
        return tuple(t[-1:] for t in batch), 0.0
    return tuple(t[start:stop] for t in batch), (stop - start) / n


def epoch(data: Data, batch_size: int, skip: int, gen: torch.Generator, shared: bool = False) -> Iterator[Batch]:
    """One shuffled epoch, its shuffle drawn now from ``gen`` (the same on every rank), less ``skip`` batches.

    ``shared``: ``gen`` is torch's global stream itself, which a ``DataLoader`` then draws from directly.
    """
    if isinstance(data, DataLoader) and shared:
        todo = batches(data, batch_size, None)
        for _ in range(skip):
            next(todo)
        first = next(todo, None)
    elif isinstance(data, DataLoader):  # the loader's own shuffle draws from the global RNG: seed it from `gen`
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (), generator=gen)))
            todo = batches(data, batch_size, None)
            for _ in range(skip):
                next(todo)
            first = next(todo, None)
    else:
        todo = batches(data, batch_size, torch.randperm(len(tensors(data)[0]), generator=gen))
        for _ in range(skip):
            next(todo)
        first = next(todo, None)
    return itertools.chain(() if first is None else (first,), todo)


def check_data(name: str, data: object) -> None:
    """Raise a clear error unless ``data`` is a DataLoader or non-empty tensors of one length."""
    if isinstance(data, DataLoader):
        return
    columns = (data,) if isinstance(data, Tensor) else tuple(data) if isinstance(data, (list, tuple)) else None
    if not columns or not all(isinstance(t, Tensor) for t in columns):
        raise TypeError(f"fit: `{name}` must be a tensor, a tuple (x, c) of tensors or a DataLoader")
    if len({len(t) for t in columns}) != 1:
        raise ValueError(f"fit: the tensors of `{name}` have different lengths {[len(t) for t in columns]}")
    if len(columns[0]) == 0:
        raise ValueError(f"fit: `{name}` is empty")


def steps_per_epoch(data: object, batch_size: int) -> int:
    """The global batches in one epoch."""
    if isinstance(data, DataLoader):
        return len(data)
    n = len(data) if isinstance(data, Tensor) else len(data[0])
    return math.ceil(n / batch_size)
