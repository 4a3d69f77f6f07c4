r"""Multi-layer perceptrons with an optional context input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["MLP", "MaskedLinear", "MaskedMLP"]


class MaskedLinear(nn.Linear):
    r"""A linear layer :math:`y = x (M \odot W)^\top + b` with a fixed binary mask :math:`M`.

    ``mask`` is ``(out, in)``, or ``(K, out, in)`` for :math:`K` masks sharing
    the weights; ``forward(x, k)`` then uses the ``k``-th.
    """

    def __init__(self, mask: Tensor, bias: bool = True) -> None:
        super().__init__(mask.shape[-1], mask.shape[-2], bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def masked_weight(self, k: int = 0) -> Tensor:
        return self.weight * (self.mask[k] if self.mask.dim() == 3 else self.mask)

    def forward(self, x: Tensor, k: int = 0) -> Tensor:
        return F.linear(x, self.masked_weight(k), self.bias)


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

    def hidden(self, x: Tensor, c: Tensor | None = None, k: int = 0) -> Tensor:
        """The activations that feed the last layer (through mask set ``k`` of masked layers)."""
        h = self.layers[0](x, k) if isinstance(self.layers[0], MaskedLinear) else self.layers[0](x)
        if self.context is not None:
            if c is None:
                raise ValueError("this network needs a context tensor `c`, got None")
            h = h + self.context(c)  # broadcasts: the context is projected once per batch
        for layer in self.layers[1:-1]:
            h = layer(self.activation(h))
        return self.activation(h)

    def forward(self, x: Tensor, c: Tensor | None = None, k: int = 0) -> Tensor:
        masked = isinstance(self.layers[-1], MaskedLinear)
        if len(self.layers) == 1:
            h = self.layers[0](x, k) if masked else self.layers[0](x)
            return h if self.context is None else h + self.context(c)
        h = self.hidden(x, c, k)
        return self.layers[-1](h, k) if masked else self.layers[-1](h)


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


class MaskedMLP(_ContextNet):
    r"""Masked autoencoder for distribution estimation (Germain et al., 2015).

    Maps :math:`x \in \mathbb{R}^{D \times E}` (``inputs`` :math:`E` numbers per
    feature, flattened to :math:`D E`; and a context) to parameters of shape
    :math:`(D, P)` where the parameters of feature :math:`i` depend only on the
    features of lower rank in ``order`` (and on the context).

    Several orders (a ``(K, D)`` ``order``) share one set of weights: hidden
    ranks do not depend on the order, so only the first and last layers hold
    :math:`K` masks, and ``forward(x, c, k)`` uses the ``k``-th (the MADE
    paper's order-agnostic training and ensembles).

    Arguments:
        features: the number of features :math:`D`.
        params: the number of parameters :math:`P` per feature.
        hidden: the hidden layer sizes.
        context: the context size (0 for none).
        order: the rank of each feature (a permutation of :math:`0..D-1`), or
            a ``(K, D)`` tensor of :math:`K` such rankings; the natural order
            by default.
        activation: the activation module class.
        inputs: the number of input values :math:`E` per feature (for
            example :math:`K` for one-hot encoded categories).
        direct: add masked linear connections straight from the inputs to
            the outputs (the paper's direct input connections: a logistic
            autoregressive model under the network).

    Example:
        >>> made = MaskedMLP(4, 2, hidden=(32,))
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
        inputs: int = 1,
        direct: bool = False,
    ) -> None:
        if order is None:
            order = torch.arange(features)
        order = torch.as_tensor(order, dtype=torch.long)
        orders = order if order.dim() == 2 else order[None]
        for o in orders:
            if sorted(o.tolist()) != list(range(features)):
                raise ValueError(f"order must be a permutation of 0..{features - 1}, got {o.tolist()}")
        inputs = check_integer("inputs", inputs, low=1)
        # hidden ranks, sorted so the units of rank < r form a prefix of each layer; with a
        # context, rank -1 units see only the context and feed every output (so the first
        # feature in the order depends on the context too)
        low = -1 if context > 0 else 0
        span = features - 1 - low
        ranks = [torch.arange(h) * span // h + low if span > 0 else torch.full((h,), -1) for h in hidden]
        stack = (lambda m: m) if order.dim() == 2 else (lambda m: m[0])  # noqa: E731
        in_ranks = orders.repeat_interleave(inputs, dim=1)  # (K, D E)
        out_ranks = orders.repeat_interleave(params, dim=1)  # (K, D P)
        layers = []
        if hidden:
            layers.append(MaskedLinear(stack(ranks[0][None, :, None] >= in_ranks[:, None, :])))
            for r_in, r_out in zip(ranks[:-1], ranks[1:]):
                layers.append(MaskedLinear(r_out[:, None] >= r_in[None, :]))
            layers.append(MaskedLinear(stack(out_ranks[:, :, None] > ranks[-1][None, None, :])))
        else:
            layers.append(MaskedLinear(stack(out_ranks[:, :, None] > in_ranks[:, None, :])))
        super().__init__(layers, context, activation)
        self.direct = MaskedLinear(stack(out_ranks[:, :, None] > in_ranks[:, None, :]), bias=False) if direct else None
        self.features = features
        self.params = params
        self.inputs = inputs
        self.register_buffer("order", order)
        self._ranks = orders.tolist()
        # _prefix[l][r]: how many units of hidden layer l have rank < r
        self._prefix = [[int((r < k).sum()) for k in range(features)] for r in ranks]

    @property
    def orders(self) -> int:
        r"""The number :math:`K` of orders (mask sets) sharing the weights."""
        return len(self._ranks)

    def forward(self, x: Tensor, c: Tensor | None = None, k: int = 0) -> Tensor:
        out = super().forward(x, c, k)
        if self.direct is not None:
            out = out + self.direct(x, k)
        return out.unflatten(-1, (self.features, self.params))

    def feature(self, x: Tensor, c: Tensor | None, i: int, k: int = 0) -> Tensor:
        r"""The :math:`P` parameters of feature ``i`` alone (under order ``k``), shape :math:`(*, P)`.

        Only hidden units of rank below feature ``i``'s rank can reach its
        outputs; ranks are sorted, so those are a prefix of every layer. This
        runs that prefix and feature ``i``'s rows of the last layer: what one
        sequential (inverse) pass needs, at a fraction of a full pass.
        """
        rows = slice(i * self.params, (i + 1) * self.params)
        out = self._feature(x, c, i, k, rows)
        return out if self.direct is None else out + F.linear(x, self.direct.masked_weight(k)[rows])

    def _feature(self, x: Tensor, c: Tensor | None, i: int, k: int, rows: slice) -> Tensor:
        first, last = self.layers[0], self.layers[-1]
        if len(self.layers) == 1:
            out = F.linear(x, first.masked_weight(k)[rows], first.bias[rows])
            return out if self.context is None else out + F.linear(c, self.context.weight[rows])
        n = [prefix[self._ranks[k][i]] for prefix in self._prefix]
        h = F.linear(x, first.masked_weight(k)[: n[0]], first.bias[: n[0]])
        if self.context is not None:
            h = h + F.linear(c, self.context.weight[: n[0]])
        for layer, m, j in zip(self.layers[1:-1], n[:-1], n[1:]):
            h = F.linear(self.activation(h), layer.weight[:j, :m] * layer.mask[:j, :m], layer.bias[:j])
        return F.linear(self.activation(h), last.masked_weight(k)[rows, : n[-1]], last.bias[rows])
