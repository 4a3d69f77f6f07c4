r"""Modules that build values: ``module(context) -> Distribution`` or ``-> Transform``."""

from __future__ import annotations

import abc

import torch.nn as nn
from pyro.distributions.conditional import ConditionalTransformModule
from torch import Size, Tensor
from torch.distributions import Distribution
from torch.distributions.transforms import Transform

__all__ = ["LazyDistribution", "LazyTransform"]


class LazyDistribution(nn.Module, abc.ABC):
    r"""A module holding parameters whose call builds a distribution.

    ``module(c)`` returns :math:`p(\cdot \mid c)`; unconditional modules
    accept ``module()``. ``condition(c)`` is the same call, under Pyro's name.
    """

    @abc.abstractmethod
    def forward(self, c: Tensor | None = None) -> Distribution:
        """Build the distribution, conditioned on ``c`` when given."""

    def condition(self, context: Tensor) -> Distribution:
        return self(context)

    def log_prob(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""Shorthand for ``self(c).log_prob(x)``."""
        return self(c).log_prob(x)

    def sample(self, sample_shape: Size = Size(), c: Tensor | None = None) -> Tensor:
        r"""Shorthand for ``self(c).sample(sample_shape)``."""
        return self(c).sample(sample_shape)

    def rsample_and_log_prob(self, sample_shape: Size = Size(), c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Shorthand for ``self(c).rsample_and_log_prob(sample_shape)``."""
        return self(c).rsample_and_log_prob(sample_shape)


class LazyTransform(ConditionalTransformModule, abc.ABC):
    r"""A module holding parameters whose call builds a transform.

    ``module(c)`` returns :math:`f(\cdot; c)`. It is a Pyro
    ``ConditionalTransformModule``, so ``condition(c)`` works as well.
    """

    @abc.abstractmethod
    def forward(self, c: Tensor | None = None) -> Transform:
        """Build the transform, conditioned on ``c`` when given."""

    def condition(self, context: Tensor) -> Transform:
        return self(context)
