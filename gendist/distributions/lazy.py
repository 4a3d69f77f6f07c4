r"""Modules that build values: ``module(context) -> Distribution`` or ``-> Transform``."""

from __future__ import annotations

import abc

import torch.nn as nn
from pyro.distributions.conditional import ConditionalTransformModule
from torch import Tensor
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
