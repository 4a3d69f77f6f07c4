r"""Multi-layer perceptrons with an optional context input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MLP", "MaskedLinear", "MADE"]


class MaskedLinear(nn.Linear):
    r"""A linear layer :math:`y = x (M \odot W)^\top + b` with a fixed binary mask :math:`M`."""

    def __init__(self, mask: Tensor, bias: bool = True) -> None:
        super().__init__(mask.shape[1], mask.shape[0], bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


_INPLACE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SiLU)


class _ContextNet(nn.Module):
    """Shared body: first layer + context projection, then hidden layers."""

    def __init__(self, layers: list[nn.Linear], context: int, activation: type[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.context = (
            nn.Linear(context, layers[0].out_features, bias=False) if context > 0 else None
        )
        # in place where the activation allows it: the pre-activation is a fresh buffer nobody else reads
        self.activation = activation(inplace=True) if activation in _INPLACE else activation()

    def hidden(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        """The activations that feed the last layer."""
        h = self.layers[0](x)
        if self.context is not None:
            if c is None:
                raise ValueError("this network needs a context tensor `c`, got None")
            h = h + self.context(c)  # broadcasts: the context is projected once per batch
        for layer in self.layers[1:-1]:
            h = layer(self.activation(h))
        return self.activation(h)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        if len(self.layers) == 1:
            h = self.layers[0](x)
            return h if self.context is None else h + self.context(c)
        return self.layers[-1](self.hidden(x, c))


class MLP(_ContextNet):
    r"""A perceptron from :math:`x` (and a context :math:`c`) to ``out_features`` values.

    The context enters the first layer additively, :math:`W x + V c + b`, so
    a context shared by many inputs is projected once and broadcast.

    Arguments:
        in_features: the input size.
        out_features: the output size.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        activation: the activation module class.

    Example:
        >>> net = MLP(3, 5, hidden=(16,), context=2)
        >>> net(torch.randn(10, 3), torch.randn(2)).shape
        torch.Size([10, 5])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        context: int = 0,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        sizes = [in_features, *hidden, out_features]
        layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        super().__init__(layers, context, activation)


class MADE(_ContextNet):
    r"""Masked autoencoder for distribution estimation (Germain et al., 2015).

    Maps :math:`x \in \mathbb{R}^D` (and a context) to parameters of shape
    :math:`(D, P)` where the parameters of feature :math:`i` depend only on
    the features of lower rank in ``order`` (and on the context).

    Arguments:
        features: the number of features :math:`D`.
        params: the number of parameters :math:`P` per feature.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        order: the rank of each feature (a permutation of :math:`0..D-1`);
            the natural order by default.
        activation: the activation module class.

    Example:
        >>> made = MADE(4, 2, hidden=(32,))
        >>> made(torch.randn(7, 4)).shape
        torch.Size([7, 4, 2])

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
    """

    def __init__(
        self,
        features: int,
        params: int,
        hidden: Sequence[int] = (64, 64),
        context: int = 0,
        order: Tensor | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        if order is None:
            order = torch.arange(features)
        order = torch.as_tensor(order, dtype=torch.long)
        if sorted(order.tolist()) != list(range(features)):
            raise ValueError(f"order must be a permutation of 0..{features - 1}, got {order.tolist()}")
        # hidden ranks, sorted so the units of rank < r form a prefix of each layer; with a
        # context, rank -1 units see only the context and feed every output (so the first
        # feature in the order depends on the context too)
        low = -1 if context > 0 else 0
        span = features - 1 - low
        ranks = [order]
        for h in hidden:
            ranks.append(low + torch.arange(h) * span // h if span > 0 else torch.full((h,), -1))
        out_rank = order.repeat_interleave(params)
        layers = []
        for r_in, r_out in zip(ranks[:-1], ranks[1:]):
            layers.append(MaskedLinear(r_out[:, None] >= r_in[None, :]))
        layers.append(MaskedLinear(out_rank[:, None] > ranks[-1][None, :]))
        super().__init__(layers, context, activation)
        self.features = features
        self.params = params
        self.register_buffer("order", order)
        self._rank = order.tolist()
        # _prefix[l][r]: how many units of hidden layer l have rank < r
        self._prefix = [[int((r < k).sum()) for k in range(features)] for r in ranks[1:]]

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return super().forward(x, c).unflatten(-1, (self.features, self.params))

    def feature(self, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        r"""The :math:`P` parameters of feature ``i`` alone, shape :math:`(*, P)`.

        Only hidden units of rank below feature ``i``'s rank can reach its
        outputs; ranks are sorted, so those are a prefix of every layer. This
        runs that prefix and feature ``i``'s rows of the last layer: what one
        sequential (inverse) pass needs, at a fraction of a full pass.
        """
        rows = slice(i * self.params, (i + 1) * self.params)
        first, last = self.layers[0], self.layers[-1]
        if len(self.layers) == 1:
            out = F.linear(x, first.weight[rows] * first.mask[rows], first.bias[rows])
            return out if self.context is None else out + F.linear(c, self.context.weight[rows])
        n = [prefix[self._rank[i]] for prefix in self._prefix]
        h = F.linear(x, first.weight[: n[0]] * first.mask[: n[0]], first.bias[: n[0]])
        if self.context is not None:
            h = h + F.linear(c, self.context.weight[: n[0]])
        for layer, m, k in zip(self.layers[1:-1], n[:-1], n[1:]):
            h = F.linear(self.activation(h), layer.weight[:k, :m] * layer.mask[:k, :m], layer.bias[:k])
        return F.linear(self.activation(h), last.weight[rows, : n[-1]] * last.mask[rows, : n[-1]], last.bias[rows])
