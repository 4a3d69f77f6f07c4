r"""The WaveNet network: dilated causal convolutions with gates, residual and skip connections, and a cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from gendist._checks import check_integer
from gendist.nn.causal import CausalConv1d, Queue

__all__ = ["DilatedCausalNet", "DilatedCausalCache"]


@dataclass
class DilatedCausalCache:
    r"""The state of incremental generation: one :class:`~gendist.nn.causal.Queue` per causal convolution,
    the context's per-layer biases, and the number of steps taken."""

    queues: list[Queue]
    biases: list[Tensor | None]
    t: int = 0


def _gate(y: Tensor) -> Tensor:
    r""":math:`\tanh(a) \odot \sigma(b)` of the two halves of the channel dimension (``dim=1``)."""
    a, b = y.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


def _pointwise(conv: nn.Conv1d, x: Tensor) -> Tensor:
    r"""A 1x1 convolution on one step ``(N, in)``."""
    return F.linear(x, conv.weight[:, :, 0], conv.bias)


class DilatedCausalNet(nn.Module):
    r"""WaveNet's network (van den Oord et al., 2016), causal over sequences: :math:`y_t = f(x_{\le t}, c)`.

    A causal convolution lifts the inputs to :math:`F` channels, then each layer
    :math:`l` with dilation :math:`d_l` computes

    .. math::
        g^l_t = \tanh(W_f * h^l + V_f c)_t \odot \sigma(W_g * h^l + V_g c)_t, \quad
        h^{l+1} = h^l + R^l g^l, \quad s = \sum_l S^l g^l

    (:math:`*` a :class:`~gendist.nn.causal.CausalConv1d`, :math:`c` a global
    context) and the output is :math:`O_2\,\mathrm{relu}(O_1\,\mathrm{relu}(s))`.
    :math:`y_t` sees :math:`x_{t - r + 1}, \dots, x_t` with :math:`r` = :attr:`receptive_field`.

    :meth:`step` computes :math:`y_t` from :math:`x_t` and a cache of per-layer
    queues (Fast WaveNet): :math:`O(L)` per step, so :math:`T` steps cost
    :math:`O(T L)` rather than :math:`O(T^2 L)` for :math:`T` full passes.

    Arguments:
        inputs: the values :math:`E` per step.
        outputs: the values :math:`P` per step.
        channels: the residual channels :math:`F`.
        dilations: the dilation of each layer (e.g. ``(1, 2, 4, 8) * 2``).
        kernel: the taps of every causal convolution.
        skip: the skip channels (``channels`` by default).
        context: the context size (0 for none).

    Shapes: ``(N, T, E)`` and ``(N, context)`` to ``(N, T, P)``.

    Example:
        >>> net = DilatedCausalNet(1, 2, channels=8, dilations=(1, 2, 4)).double()
        >>> x = torch.randn(3, 10, 1, dtype=torch.float64)
        >>> cache = net.init_cache(3)
        >>> steps = torch.stack([net.step(x[:, t], cache) for t in range(10)], 1)
        >>> steps.shape, torch.allclose(steps, net(x))
        (torch.Size([3, 10, 2]), True)

    References:
        | WaveNet: A Generative Model for Raw Audio (van den Oord et al., 2016)
        | https://arxiv.org/abs/1609.03499
        | Fast Wavenet Generation Algorithm (Paine et al., 2016) https://arxiv.org/abs/1611.09482
    """

    def __init__(
        self,
        inputs: int,
        outputs: int,
        channels: int = 32,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32),
        kernel: int = 2,
        skip: int | None = None,
        context: int = 0,
    ) -> None:
        super().__init__()
        check_integer("inputs", inputs)
        check_integer("outputs", outputs)
        F_ = check_integer("channels", channels)
        check_integer("kernel", kernel, 2)
        check_integer("context", context, 0)
        S = F_ if skip is None else check_integer("skip", skip)
        dilations = [int(d) for d in dilations]
        if not dilations:
            raise ValueError("dilations must hold at least one layer's dilation")
        for d in dilations:
            check_integer("every dilation", d)
        self.dilations = dilations
        self.first = CausalConv1d(inputs, F_, kernel)
        self.convs = nn.ModuleList(CausalConv1d(F_, 2 * F_, kernel, d) for d in dilations)
        self.residuals = nn.ModuleList(nn.Conv1d(F_, F_, 1) for _ in dilations[:-1])
        self.skips = nn.ModuleList(nn.Conv1d(F_, S, 1) for _ in dilations)
        self.head = nn.ModuleList([nn.Conv1d(S, S, 1), nn.Conv1d(S, outputs, 1)])
        self.context = nn.Linear(context, len(dilations) * 2 * F_) if context else None

    @property
    def receptive_field(self) -> int:
        r"""How many steps :math:`y_t` sees (:math:`x_t` included): :math:`1 + (k - 1)(1 + \sum_l d_l)`."""
        return 1 + self.first.span + sum(conv.span for conv in self.convs)

    def _biases(self, c: Tensor | None) -> list[Tensor | None]:
        r"""The context's bias of each layer, ``(N, 2F)``."""
        if self.context is None:
            return [None] * len(self.convs)
        if c is None:
            raise ValueError("this network needs a context tensor `c`, got None")
        return list(rearrange(self.context(c), "n (l f) -> l n f", l=len(self.convs)))

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        h = self.first(rearrange(x, "n t e -> n e t"))
        skip = None
        for l, (conv, bias) in enumerate(zip(self.convs, self._biases(c))):
            pre = conv(h)
            g = _gate(pre if bias is None else pre + bias[:, :, None])
            s = self.skips[l](g)
            skip = s if skip is None else skip + s
            if l < len(self.residuals):
                h = h + self.residuals[l](g)
        out = self.head[1](torch.relu(self.head[0](torch.relu(skip))))
        return rearrange(out, "n p t -> n t p")

    def init_cache(self, n: int, c: Tensor | None = None) -> DilatedCausalCache:
        r"""An empty cache for :meth:`step` over ``n`` sequences (with context ``c`` of shape ``(n, context)``)."""
        return DilatedCausalCache([self.first.queue()] + [conv.queue() for conv in self.convs], self._biases(c))

    def step(self, x: Tensor, cache: DilatedCausalCache) -> Tensor:
        r""":math:`y_t`, ``(N, P)``, from :math:`x_t` ``(N, E)``, the next step after those in ``cache``
        (which it updates)."""
        h = self.first.step(x, cache.queues[0])
        skip = None
        for l, (conv, queue, bias) in enumerate(zip(self.convs, cache.queues[1:], cache.biases)):
            pre = conv.step(h, queue)
            g = _gate(pre if bias is None else pre + bias)
            s = _pointwise(self.skips[l], g)
            skip = s if skip is None else skip + s
            if l < len(self.residuals):
                h = h + _pointwise(self.residuals[l], g)
        cache.t += 1
        return _pointwise(self.head[1], torch.relu(_pointwise(self.head[0], torch.relu(skip))))
