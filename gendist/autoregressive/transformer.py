r"""A causal transformer as a distribution over sequences, sampled through a key/value cache."""

from __future__ import annotations

from torch import Tensor

from gendist._checks import check_integer
from gendist.autoregressive.core import ARModule
from gendist.distributions.conditionals import Conditional
from gendist.nn.transformer import CausalTransformer, KVCache

__all__ = ["Transformer"]


class Transformer(ARModule):
    r"""An autoregressive distribution over sequences of length :math:`T` from a decoder-only transformer.

    .. math:: p(x \mid c) = \prod_{t=0}^{T-1} p(x_t \mid \theta_t), \quad
        \theta_t = \mathrm{Transformer}(s, x_0, \dots, x_{t-1}; c)_t

    The input is shifted right behind a learned start token, so causal
    self-attention makes :math:`\theta_t` depend on :math:`x_{<t}` (and the
    context) only (see :class:`gendist.nn.CausalTransformer`). ``log_prob``
    is one pass; sampling feeds one value per step and keeps every layer's
    keys and values, so step :math:`t` costs :math:`O(t)`, not a full
    :math:`O(t^2)` pass (``sample(..., cache=False)`` recomputes them; same draws).

    Arguments:
        length: the sequence length :math:`T`.
        family: the per-position conditional (``Bernoulli()``, ``Categorical(K)``,
            ``Normal()``, ``NormalMixture(k)``, ``DiscretizedLogisticMixture(L, k)``).
        d_model: the width of the residual stream.
        heads: the number of attention heads (dividing ``d_model``).
        layers: the number of pre-LayerNorm blocks.
        context: the context size (0 for none); its projection is added to every token.
        dropout: the dropout rate in training mode (0 by default: deterministic).

    Example:
        >>> from gendist.distributions.conditionals import Categorical
        >>> model = Transformer(8, Categorical(4), d_model=16, heads=2, layers=1)
        >>> d = model()
        >>> x = d.sample((3,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([3, 8]), torch.Size([3]))

    References:
        | Attention Is All You Need (Vaswani et al., 2017) https://arxiv.org/abs/1706.03762
    """

    def __init__(
        self,
        length: int,
        family: Conditional | str,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        context: int = 0,
        dropout: float = 0.0,
    ) -> None:
        length = check_integer("length", length, 1)
        super().__init__((length,), family, context)
        self.net = CausalTransformer(
            length, self.family.inputs, self.family.params, d_model, heads, layers, self.context, dropout=dropout
        )

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        return self.net(self.encode(x), c)

    def begin(self, n: int, c: Tensor | None) -> KVCache:
        return self.net.init_cache(n, c)

    def step(self, state: KVCache, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        if i != state.length:
            raise ValueError(f"Transformer.step: the cache holds {state.length} positions, so it computes that "
                             f"one next, got {i}")
        return self.net.step(state, None if i == 0 else self.family.encode(x[:, i - 1]))
