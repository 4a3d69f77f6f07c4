r"""Two dependent blocks as one distribution: :math:`p(u, v) = p(u)\, p(v \mid u)` over the concatenation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from pyro.distributions import TorchDistribution
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist.distributions.base import Honest

__all__ = ["Chain"]


class Chain(Honest, TorchDistribution):
    r"""A joint distribution over vectors :math:`[u, v]` drawn in two steps.

    .. math:: \log p(u, v) = \log p(u) + \log p(v \mid u)

    :math:`u \sim` ``first`` then :math:`v \sim` ``then(u)``; the value is
    ``cat([u, v])``, or ``cat([v, u])`` with ``first_last=True`` (so a prior
    drawn top-down and a guide drawn bottom-up can share one layout).
    ``log_prob`` is exact when both parts are (``log_prob_kind = "exact"``);
    ``rsample`` when both reparameterize. It is what a hierarchical VAE uses
    for its prior :math:`p(z_2)\, p(z_1 \mid z_2)` and its guide
    :math:`q(z_1 \mid x)\, q(z_2 \mid z_1)`.

    Arguments:
        first: :math:`p(u)`, over vectors, with batch shape ``B``.
        then: ``then(u)`` gives :math:`p(v \mid u)` for ``u`` of shape ``(*S, *B, |u|)``, batch shape ``(*S, *B)``.
        size: :math:`|v|`, the size of the second block.
        first_last: put :math:`u` after :math:`v` in the value.

    Example:
        >>> import pyro.distributions as dist
        >>> first = dist.Normal(torch.zeros(2), 1.0).to_event(1)
        >>> d = Chain(first, lambda u: dist.Normal(u.sum(-1, keepdim=True), 1.0).to_event(1), 1)
        >>> x = d.sample((4,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([4, 3]), torch.Size([4]))
    """

    log_prob_kind = "exact"
    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real_vector

    def __init__(
        self,
        first: Distribution,
        then: Callable[[Tensor], Distribution],
        size: int,
        first_last: bool = False,
        validate_args: bool | None = None,
    ) -> None:
        if len(first.event_shape) != 1:
            raise ValueError(f"Chain: `first` must be over vectors, got event shape {tuple(first.event_shape)}")
        self.first, self.then, self.size, self.first_last = first, then, int(size), bool(first_last)
        n = first.event_shape[0] + self.size
        super().__init__(first.batch_shape, Size((n,)), validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.first.has_rsample)  # the second part is checked when drawn

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> Chain:
        return Chain(self.first.expand(batch_shape), self.then, self.size, self.first_last, self._validate_args)

    def _split(self, value: Tensor) -> tuple[Tensor, Tensor]:
        m = self.first.event_shape[0]
        if self.first_last:
            return value[..., self.size :], value[..., : self.size]
        return value[..., :m], value[..., m:]

    def _join(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.cat([v, u] if self.first_last else [u, v], -1)

    def log_prob(self, value: Tensor) -> Tensor:
        if value.shape[-1:] != self.event_shape:
            raise ValueError(
                f"Chain.log_prob: `value` must have shape (..., {self.event_shape[0]}), got {tuple(value.shape)}"
            )
        u, v = self._split(value)
        return self.first.log_prob(u) + self.then(u).log_prob(v)

    def rsample_and_log_prob(self, sample_shape: Size = Size()) -> tuple[Tensor, Tensor]:
        u = self.first.rsample(sample_shape)
        p = self.then(u)
        if not p.has_rsample:
            raise NotImplementedError("Chain.rsample: the second part does not reparameterize; use sample()")
        v = p.rsample()
        return self._join(u, v), self.first.log_prob(u) + p.log_prob(v)

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        return self.rsample_and_log_prob(sample_shape)[0]

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        with torch.no_grad():
            u = self.first.sample(sample_shape)
            return self._join(u, self.then(u).sample())
