r"""Neural spline flows, autoregressive (NSF-AR) and coupling (NSF-C)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution, constraints

from gendist.distributions.lazy import LazyDistribution
from gendist.flows.autoregressive import Fast, MaskedAutoregressive, orders
from gendist.flows.core import FlowModule
from gendist.flows.coupling import _coupling_stack
from gendist.flows.univariate import Spline

__all__ = ["NSF"]


class NSF(FlowModule):
    r"""Neural spline flow (Durkan et al., 2019): monotone rational-quadratic splines.

    ``coupling=False`` (default) stacks MADE-conditioned splines (NSF-AR,
    orientation set by ``fast`` as in :class:`~gendist.flows.MAF`);
    ``coupling=True`` stacks coupling splines (NSF-C, one pass both ways).
    Inputs beyond ``[-bound, bound]`` pass through the identity tails, so
    ``log_prob`` and its gradients are finite everywhere.

    Arguments:
        features: the data dimension :math:`D`.
        context: the context size (0 for none).
        transforms: the number of layers.
        bins: the number of spline bins :math:`K`.
        bound: the spline interval half-width :math:`B`.
        hidden: the conditioners' hidden sizes.
        base: the base distribution (standard normal by default).
        support: an optional data constraint.
        coupling: coupling layers instead of autoregressive ones.
        fast: for ``coupling=False``, ``"log_prob"`` or ``"sample"``.
        randperm: random orders instead of alternating ones (autoregressive).
        masks: user-chosen masks (coupling).
        seed: the seed of the random orders.

    Example:
        >>> flow = NSF(features=2, context=3)
        >>> flow(torch.randn(3)).log_prob(torch.randn(10, 2)).shape
        torch.Size([10])

    References:
        | Neural Spline Flows (Durkan et al., 2019)
        | https://arxiv.org/abs/1906.04032
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 5,
        bins: int = 8,
        bound: float = 5.0,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        coupling: bool = False,
        fast: Fast = "log_prob",
        randperm: bool = False,
        masks: Sequence[Tensor] | None = None,
        seed: int = 0,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        spline = Spline(bins, bound)
        if coupling:
            layers = _coupling_stack(features, context, transforms, masks, spline, hidden, activation)
        else:
            layers = [
                MaskedAutoregressive(features, context, spline, fast, hidden, order, activation)
                for order in orders(features, transforms, randperm, seed)
            ]
        super().__init__(layers, features, context, base, support)
