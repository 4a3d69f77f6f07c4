r"""MADE as a distribution: masked-network conditionals over a vector, one or several orders."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gendist._checks import check_context, check_integer
from gendist.autoregressive.core import ARModule, resolve_order
from gendist.distributions.autoregressive import Autoregressive, Ensemble
from gendist.distributions.conditionals import Conditional
from gendist.nn.mlp import MaskedMLP

__all__ = ["MADE"]


class _Order:
    r"""Order ``k`` of a :class:`MADE`: the :class:`~gendist.distributions.autoregressive.ARModel` of one mask set."""

    def __init__(self, made: MADE, k: int) -> None:
        self.made, self.k = made, k
        self.family, self.shape = made.family, made.shape

    def parameters(self):  # noqa: ANN201 (device lookup)
        return self.made.parameters()

    def buffers(self):  # noqa: ANN201
        return self.made.buffers()

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        return self.made.net(self.made.encode(x).flatten(1), c, self.k)

    def ordering(self) -> list[int]:
        return self.made._orderings[self.k]

    def begin(self, n: int, c: Tensor | None) -> Any:
        return None

    def step(self, state: Any, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        # only the hidden units that can reach this feature, and its output rows
        return self.made.net.feature(self.made.encode(x).flatten(1), c, self.ordering()[i], self.k)

    def step_uncached(self, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        return self.conditionals(x, c)[:, self.ordering()[i]]


class MADE(ARModule):
    r"""A MADE autoregressive distribution over vectors (Germain et al., 2015).

    .. math:: p(x \mid c) = \prod_i p(x_{\sigma(i)} \mid \theta_{\sigma(i)}), \quad
        \theta = \mathrm{MADE}(x, c)

    Every conditional in one masked pass; sampling runs :math:`D` partial
    passes, each through only the hidden units that can reach the next
    feature. With ``orders=K > 1`` the :math:`K` orders share one set of
    weights: in ``train()`` mode each call uses one order drawn at random
    (order-agnostic training); in ``eval()`` mode it returns their
    :class:`~gendist.distributions.Ensemble`, which averages probabilities.
    ``model(c, k=j)`` gives the single order ``j``.

    Arguments:
        features: the dimension :math:`D`.
        family: the per-feature conditional (``Bernoulli()``, ``Categorical(K)``,
            ``Normal()``, ``NormalMixture(k)``, ``DiscretizedLogisticMixture(L, k)``).
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        order: ``"natural"``, ``"random"``, or the rank of each feature (a
            permutation of :math:`0..D-1`); with ``orders > 1``, the first order.
        orders: the number :math:`K` of orders sharing the weights (the
            others are random).
        activation: the activation module class.
        direct: add masked connections straight from the inputs to the
            conditionals' parameters (the paper's direct input connections).
        seed: the seed of the random orders.

    Example:
        >>> from gendist.distributions.conditionals import Bernoulli
        >>> model = MADE(10, family=Bernoulli(), hidden=(32,))
        >>> d = model()
        >>> x = d.sample((4,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([4, 10]), torch.Size([4]))

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
    """

    def __init__(
        self,
        features: int,
        family: Conditional | str = "bernoulli",
        hidden: Sequence[int] = (500,),
        context: int = 0,
        order: str | Sequence[int] | Tensor = "natural",
        orders: int = 1,
        activation: type[nn.Module] = nn.ReLU,
        direct: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__((features,), family, context)
        orders = check_integer("orders", orders, 1)
        g = torch.Generator().manual_seed(seed)
        first = resolve_order(order, features, g)
        ranks = torch.stack([first] + [torch.randperm(features, generator=g) for _ in range(orders - 1)])
        self.net = MaskedMLP(
            features,
            self.family.params,
            hidden,
            context,
            ranks if orders > 1 else ranks[0],
            activation,
            inputs=self.family.inputs,
            direct=direct,
        )
        self.orders = int(orders)

    @functools.cached_property
    def _orderings(self) -> list[list[int]]:
        order = self.net.order if self.net.order.dim() == 2 else self.net.order[None]
        return [torch.argsort(o).tolist() for o in order]

    def ordering(self) -> list[int]:
        return self._orderings[0]

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        return self.net(self.encode(x).flatten(1), c)

    def forward(self, c: Tensor | None = None, k: int | None = None) -> Autoregressive | Ensemble:
        dtype = self._dtype()
        check_context(c, self.context, type(self).__name__, dtype)
        if k is None and self.orders > 1 and self.training:
            k = int(torch.randint(self.orders, ()))
        if k is not None:
            if not 0 <= k < self.orders:
                raise ValueError(f"k must be in 0..{self.orders - 1}, got {k}")
            return Autoregressive(_Order(self, k), c, validate_args=self.validate_args, dtype=dtype)
        if self.orders == 1:
            return Autoregressive(_Order(self, 0), c, validate_args=self.validate_args, dtype=dtype)
        v = self.validate_args
        parts = [Autoregressive(_Order(self, j), c, validate_args=v, dtype=dtype) for j in range(self.orders)]
        return Ensemble(parts, validate_args=self.validate_args)
