r"""WaveNet as a distribution: dilated causal convolutions over a sequence, sampled with per-layer queues."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from gendist._checks import check_integer
from gendist.autoregressive.core import ARModule
from gendist.distributions.conditionals import Conditional
from gendist.nn.wavenet import DilatedCausalCache, DilatedCausalNet

__all__ = ["WaveNet"]


class WaveNet(ARModule):
    r"""A (globally conditioned) WaveNet autoregressive distribution over sequences (van den Oord et al., 2016).

    .. math:: p(x \mid c) = \prod_{t=1}^{T} p(x_t \mid \theta_t), \quad
        \theta_t = \mathrm{WaveNet}(x_{t-r}, \dots, x_{t-1}, c)

    The network (:class:`~gendist.nn.DilatedCausalNet`, ``blocks`` blocks of ``layers``
    layers with dilations :math:`1, 2, 4, \dots, 2^{\text{layers}-1}`) reads the
    sequence shifted one step right (zeros before the start), so
    :math:`\theta_t` sees the :math:`r` = :attr:`receptive_field` values before
    :math:`x_t`. ``log_prob`` is one pass; sampling keeps a queue of past
    activations per layer (Fast WaveNet), :math:`O(T L)` for :math:`T` steps
    and :math:`L` layers (``sample(cache=False)`` runs a full pass per step,
    :math:`O(T^2 L)`, with the same results).

    Arguments:
        length: the sequence length :math:`T`.
        family: the per-step conditional (``Categorical(256)`` for 8-bit
            audio, ``DiscretizedLogisticMixture(256, 5)``, ``Normal()``, ``Bernoulli()``, ...).
        channels: the residual channels.
        blocks: the repeats of the dilation pattern.
        layers: the layers per block.
        kernel: the taps of every causal convolution.
        skip: the skip channels (``channels`` by default).
        context: the context size (0 for none): a global conditioning vector
            added to every layer's gates.

    Example:
        >>> from gendist.distributions.conditionals import Categorical
        >>> model = WaveNet(12, family=Categorical(4), channels=8, blocks=1, layers=3)
        >>> d = model()
        >>> x = d.sample((2,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([2, 12]), torch.Size([2]))

    References:
        | WaveNet: A Generative Model for Raw Audio (van den Oord et al., 2016)
        | https://arxiv.org/abs/1609.03499
        | Fast Wavenet Generation Algorithm (Paine et al., 2016) https://arxiv.org/abs/1611.09482
    """

    def __init__(
        self,
        length: int,
        family: Conditional | str = "bernoulli",
        channels: int = 32,
        blocks: int = 2,
        layers: int = 6,
        kernel: int = 2,
        skip: int | None = None,
        context: int = 0,
    ) -> None:
        super().__init__((check_integer("length", length, 1),), family, context)
        blocks, layers = check_integer("blocks", blocks, 1), check_integer("layers", layers, 1)
        dilations = [2**j for _ in range(blocks) for j in range(layers)]
        self.net = DilatedCausalNet(
            self.family.inputs, self.family.params, channels, dilations, kernel, skip, self.context
        )

    @property
    def receptive_field(self) -> int:
        r"""How many earlier steps :math:`\theta_t` sees."""
        return self.net.receptive_field

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        shifted = F.pad(self.encode(x), (0, 0, 1, 0))[:, :-1]  # step t reads x_{t-1}
        return self.net(shifted, c)

    def begin(self, n: int, c: Tensor | None) -> DilatedCausalCache:
        return self.net.init_cache(n, c)

    def step(self, state: Any, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        if state.t != i:
            raise RuntimeError(
                f"WaveNet.step: the cache holds {state.t} steps, so it gives step {state.t} next, not {i}; "
                "start a new one with begin()"
            )
        previous = self.encode(x[:, i - 1]) if i > 0 else x.new_zeros(x.shape[0], self.family.inputs)
        return self.net.step(previous, state)
