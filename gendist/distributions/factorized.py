r"""Independent positions: :math:`p(x \mid \theta) = \prod_i p(x_i \mid \theta_i)` for one per-position family."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from pyro.distributions import TorchDistribution
from torch import Size, Tensor
from torch.distributions import constraints

from gendist.distributions.base import Honest
from gendist.distributions.conditionals import Conditional, check_values

__all__ = ["Factorized"]


class Factorized(Honest, TorchDistribution):
    r"""A product of independent per-position distributions from one family (a decoder's likelihood).

    .. math:: \log p(x \mid \theta) = \sum_i \log p(x_i \mid \theta_i)

    ``theta`` has shape ``batch_shape + event_shape + (family.params,)``.
    The families are those of the autoregressive models
    (:mod:`gendist.distributions.conditionals`): ``Bernoulli()``,
    ``Categorical(K)``, ``Normal()`` (learned scale) or ``Normal(scale)``
    (fixed), ``NormalMixture(k)``, ``DiscretizedLogisticMixture(L, k)``.
    ``log_prob_kind = "exact"``; out-of-support values score :math:`-\infty`
    (an error with ``validate_args=True``).

    Example:
        >>> from gendist.distributions.conditionals import Bernoulli
        >>> d = Factorized(Bernoulli(), torch.zeros(2, 3, 1))
        >>> d.batch_shape, d.event_shape, d.log_prob(torch.ones(3))
        (torch.Size([2]), torch.Size([3]), tensor([-2.0794, -2.0794]))
    """

    log_prob_kind = "exact"
    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self,
        family: Conditional,
        theta: Tensor,
        event_dim: int = 1,
        validate_args: bool | None = None,
    ) -> None:
        if theta.dim() < event_dim + 1 or theta.shape[-1] != family.params:
            raise ValueError(
                f"Factorized: `theta` must have shape (*batch, *event, {family.params}) for {family!r} "
                f"with {event_dim} event dims, got {tuple(theta.shape)}"
            )
        self.family, self.theta = family, theta
        shape = theta.shape[:-1]
        n = len(shape) - event_dim
        super().__init__(shape[:n], shape[n:], validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.family.support, len(self.event_shape))

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.family.has_rsample

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> Factorized:
        theta = self.theta.expand(Size(batch_shape) + self.theta.shape[len(self.batch_shape) :])
        return Factorized(self.family, theta, len(self.event_shape), self._validate_args)

    @property
    def mean(self) -> Tensor:
        return self.family.mean(self.theta)

    def log_prob(self, value: Tensor) -> Tensor:
        x = check_values(
            "Factorized.log_prob", value, self.family, self.event_shape, self.theta.dtype, bool(self._validate_args)
        )
        inside = None
        if self.family.discrete:
            inside = self.family.support.check(x)
            x = torch.where(inside, x, torch.zeros((), dtype=x.dtype, device=x.device))
        shape = torch.broadcast_shapes(x.shape, self.batch_shape + self.event_shape)
        lp = self.family.log_prob(self.theta.expand(shape + self.theta.shape[-1:]), x.expand(shape))
        if inside is not None:
            lp = torch.where(inside, lp, torch.full((), -math.inf, dtype=lp.dtype, device=lp.device))
        return lp.flatten(lp.dim() - len(self.event_shape)).sum(-1) if self.event_shape else lp

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        with torch.no_grad():
            theta = self.theta.expand(Size(sample_shape) + self.theta.shape)
            return self.family.sample(theta)

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        return self.family.rsample(self.theta.expand(Size(sample_shape) + self.theta.shape))
