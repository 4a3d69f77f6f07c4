r"""The autoregressive module: a network and a per-position family, built into an ``Autoregressive``."""

from __future__ import annotations

import abc
import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gendist._checks import check_context, check_integer, check_shape
from gendist._recipes import Recorded
from gendist.distributions.autoregressive import Autoregressive
from gendist.distributions.conditionals import Conditional, as_family
from gendist.distributions.lazy import LazyDistribution

__all__ = ["ARModule", "resolve_order"]


def resolve_order(order: str | Sequence[int] | Tensor, features: int, generator: torch.Generator) -> Tensor:
    r"""The rank of each feature from ``"natural"``, ``"random"`` (drawn with ``generator``) or a permutation."""
    if isinstance(order, str):
        if order not in ("natural", "random"):
            raise ValueError(f"order must be 'natural', 'random' or a permutation, got {order!r}")
        return torch.arange(features) if order == "natural" else torch.randperm(features, generator=generator)
    rank = torch.as_tensor(order, dtype=torch.long)
    if rank.shape != (features,) or sorted(rank.tolist()) != list(range(features)):
        raise ValueError(f"order must be a permutation of 0..{features - 1}, got {rank.tolist()}")
    return rank


class ARModule(Recorded, LazyDistribution):
    r"""An autoregressive model as a module: ``model(c)`` returns an :class:`~gendist.Autoregressive`.

    Subclasses hold a network and implement :meth:`conditionals` (every
    :math:`\theta_i` in one pass); networks that can sample faster than a
    full pass per position also override :meth:`begin` and :meth:`step`
    (a cache of activations). They set ``shape`` (the event shape),
    ``family`` and ``context``.

    Set ``validate_args`` (an attribute, None by default: torch's global
    default) to make every distribution it builds validate its arguments.
    """

    validate_args: bool | None = None
    _records = False

    def __init__(self, shape: Sequence[int], family: Conditional | str, context: int = 0) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        self.family = as_family(family)
        self.context = check_integer("context", context, 0)

    @abc.abstractmethod
    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        r"""Every :math:`\theta_i`, ``(N, *shape, params)``, from ``x`` ``(N, *shape)`` and ``c`` ``(N, context)``."""

    @functools.cached_property
    def _ordering(self) -> list[int]:
        return list(range(self.shape.numel()))

    def ordering(self) -> list[int]:
        r"""The flat positions in generation order (natural by default)."""
        return self._ordering

    def begin(self, n: int, c: Tensor | None) -> Any:
        r"""A sampling state for ``n`` sequences (None: this network keeps no cache)."""
        return None

    def step(self, state: Any, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        r""":math:`\theta` of position ``ordering()[i]``, ``(N, params)``; cached networks override this."""
        return self.step_uncached(x, c, i)

    def step_uncached(self, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        r""":math:`\theta` of position ``ordering()[i]`` from a full pass over ``x``."""
        return self.conditionals(x, c).flatten(1, -2)[:, self.ordering()[i]]

    def encode(self, x: Tensor) -> Tensor:
        r"""What the network sees: ``(N, *shape, inputs)``."""
        return self.family.encode(x)

    def _dtype(self) -> torch.dtype:
        for t in self.parameters():
            return t.dtype
        return torch.get_default_dtype()

    def forward(self, c: Tensor | None = None) -> Autoregressive:
        dtype = self._dtype()
        check_context(c, self.context, type(self).__name__, dtype)
        return Autoregressive(self, c, validate_args=self.validate_args, dtype=dtype)
