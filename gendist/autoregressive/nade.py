r"""NADE as a distribution: weight-shared conditionals over a vector, O(H) per sampling step."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from gendist._checks import check_integer
from gendist.autoregressive.core import ARModule, resolve_order
from gendist.distributions.conditionals import Conditional
from gendist.nn.nade import TiedMLP

__all__ = ["NADE"]


class _Running:
    r"""NADE's sampling state: the running pre-activation and the next position it expects."""

    def __init__(self, a: Tensor) -> None:
        self.a, self.next = a, 0


class NADE(ARModule):
    r"""A NADE autoregressive distribution over vectors (Larochelle & Murray, 2011).

    .. math:: p(x \mid c) = \prod_d p(x_{\sigma(d)} \mid \theta_{\sigma(d)}), \quad
        \theta_{\sigma(d)} = V_{\sigma(d)}\, g\Big(\beta + A c + \sum_{k < d} W_{:, \sigma(k)}\, x_{\sigma(k)}\Big)
        + b_{\sigma(d)}

    One hidden layer whose input weights :math:`W` every position shares: all
    :math:`D` conditionals cost one cumulative sum, :math:`O(D H)` per example
    (see :class:`gendist.nn.TiedMLP`). Sampling keeps the running pre-activation,
    so each of the :math:`D` steps costs :math:`O(H)`.

    Arguments:
        features: the dimension :math:`D`.
        family: the per-feature conditional (``Bernoulli()``, ``Categorical(K)``,
            ``Normal()``, ``NormalMixture(k)``, ``DiscretizedLogisticMixture(L, k)``).
        hidden: the hidden size :math:`H`.
        context: the context size (0 for none).
        order: ``"natural"``, ``"random"``, or the rank of each feature (a
            permutation of :math:`0..D-1`).
        activation: the activation module class :math:`g` (the paper's sigmoid by default).
        seed: the seed of the random order.

    Example:
        >>> from gendist.distributions.conditionals import Bernoulli
        >>> model = NADE(10, family=Bernoulli(), hidden=16)
        >>> d = model()
        >>> x = d.sample((4,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([4, 10]), torch.Size([4]))

    References:
        | The Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011)
        | https://proceedings.mlr.press/v15/larochelle11a.html
    """

    def __init__(
        self,
        features: int,
        family: Conditional | str = "bernoulli",
        hidden: int = 500,
        context: int = 0,
        order: str | Sequence[int] | Tensor = "natural",
        activation: type[nn.Module] = nn.Sigmoid,
        seed: int = 0,
    ) -> None:
        features, hidden = check_integer("features", features, 1), check_integer("hidden", hidden, 1)
        if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
            raise TypeError(f"activation must be an nn.Module class such as nn.Sigmoid, got {activation!r}")
        super().__init__((features,), family, context)
        rank = resolve_order(order, features, torch.Generator().manual_seed(int(seed)))
        self.net = TiedMLP(features, self.family.params, hidden, self.context, rank, activation, self.family.inputs)

    def ordering(self) -> list[int]:
        return self.net.ordering

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        return self.net(self.encode(x), c)

    def begin(self, n: int, c: Tensor | None) -> _Running:
        return _Running(self.net.begin(n, c))

    def step(self, state: _Running, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        if i != state.next:
            raise ValueError(f"NADE.step: the state expects position {state.next} of the ordering next, got {i}")
        if i > 0:  # add the feature sampled last
            prev = self.net.ordering[i - 1]
            state.a = self.net.advance(state.a, self.family.encode(x[:, prev]), prev)
        state.next = i + 1
        return self.net.position(state.a, self.net.ordering[i])

    def extra_repr(self) -> str:
        return f"features={self.shape[0]}, family={self.family!r}, context={self.context}"
