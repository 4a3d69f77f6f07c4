r"""NADE: the neural autoregressive distribution estimator's network, with its shared weights."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["TiedMLP"]


class TiedMLP(nn.Module):
    r"""The tied-weight network of NADE (Larochelle & Murray, 2011): one hidden layer whose weights all positions share.

    With the features taken in generation order :math:`\sigma`, position
    :math:`d` has the hidden state and outputs

    .. math:: h_d = g\Big(c + A\, \mathrm{ctx} + \sum_{k < d} W_{:, \sigma(k)}\, x_{\sigma(k)}\Big), \qquad
        \theta_{\sigma(d)} = V_{\sigma(d)}\, h_d + b_{\sigma(d)}

    (:math:`W` is ``(H, D, E)``, :math:`V` is ``(D, P, H)``, :math:`A` projects the
    context). The pre-activations of all positions are one exclusive cumulative
    sum over positions: :math:`O(D H (E + P))` per example, not the
    :math:`O(D^2 H)` of :math:`D` separate networks. Sampling keeps the running
    pre-activation :math:`a \leftarrow a + W_{:, \sigma(d)} x_{\sigma(d)}`, so each
    step is :math:`O(H (E + P))` (:meth:`begin`, :meth:`advance`, :meth:`position`).

    Arguments:
        features: the number of positions :math:`D`.
        params: the number of outputs :math:`P` per position.
        hidden: the hidden size :math:`H`.
        context: the context size (0 for none); it is projected onto the
            hidden pre-activation of every position.
        order: the rank of each feature (a permutation of :math:`0..D-1`);
            the natural order by default.
        activation: the activation module class (the paper's sigmoid by default).
        inputs: the number of input values :math:`E` per position (for
            example :math:`K` for one-hot categories).

    Example:
        >>> net = TiedMLP(4, 2, hidden=8)
        >>> net(torch.randn(7, 4, 1)).shape
        torch.Size([7, 4, 2])

    References:
        | The Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011)
        | https://proceedings.mlr.press/v15/larochelle11a.html
    """

    def __init__(
        self,
        features: int,
        params: int,
        hidden: int = 500,
        context: int = 0,
        order: Tensor | None = None,
        activation: type[nn.Module] = nn.Sigmoid,
        inputs: int = 1,
    ) -> None:
        super().__init__()
        features, params, hidden = (check_integer(k, v, 1) for k, v in
                                    (("features", features), ("params", params), ("hidden", hidden)))
        context, inputs = check_integer("context", context, 0), check_integer("inputs", inputs, 1)
        rank = torch.arange(features) if order is None else torch.as_tensor(order, dtype=torch.long)
        if rank.shape != (features,) or sorted(rank.tolist()) != list(range(features)):
            raise ValueError(f"order must be a permutation of 0..{features - 1}, got {rank.tolist()}")
        self.features, self.params, self.hidden, self.inputs = features, params, hidden, inputs
        self.register_buffer("order", rank)
        self.ordering: list[int] = torch.argsort(rank).tolist()
        self._natural = self.ordering == list(range(features))
        self.W = nn.Parameter(torch.empty(hidden, features, inputs))
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.empty(features, params, hidden))
        self.b = nn.Parameter(torch.zeros(features, params))
        self.context = nn.Linear(context, hidden, bias=False) if context > 0 else None
        self.activation = activation()
        bound = 1.0 / math.sqrt(features * inputs)
        nn.init.uniform_(self.W, -bound, bound)
        nn.init.uniform_(self.V, -1.0 / math.sqrt(hidden), 1.0 / math.sqrt(hidden))

    def _bias(self, c: Tensor | None) -> Tensor:
        r"""The pre-activation every position starts from: :math:`c + A\,\mathrm{ctx}`, ``(H,)`` or ``(*, H)``."""
        if self.context is None:
            return self.c
        if c is None:
            raise ValueError("this NADE is conditional: it needs a context tensor `c`, got None")
        return self.c + self.context(c)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""Every :math:`\theta_d`, ``(*, D, P)``, from ``x`` ``(*, D, E)`` and ``c`` ``(*, context)``."""
        if x.shape[-2:] != (self.features, self.inputs):
            raise ValueError(
                f"NADE: x must have shape (..., {self.features}, {self.inputs}), got {tuple(x.shape)}"
            )
        natural = self._natural
        perm = slice(None) if natural else self.ordering
        xs = x if natural else x[..., perm, :]  # in generation order
        steps = einsum(xs, self.W[:, perm], "... d e, h d e -> ... d h")
        a = F.pad(steps[..., :-1, :], (0, 0, 1, 0)).cumsum(-2)  # exclusive: position d sees those before it
        h = self.activation(a + self._bias(c).unsqueeze(-2))
        out = einsum(h, self.V[perm], "... d h, d p h -> ... d p") + self.b[perm]
        return out if natural else out[..., self.order, :]  # back to the natural order

    # --- incremental: a running pre-activation, O(H) per position ------------------------------

    def begin(self, n: int, c: Tensor | None = None) -> Tensor:
        r"""The pre-activation of the first position, ``(n, H)``."""
        return self._bias(c).expand(n, self.hidden)

    def advance(self, a: Tensor, x: Tensor, feature: int) -> Tensor:
        r""":math:`a + W_{:, i}\, x_i`: the pre-activation once ``feature`` :math:`i` (``x`` ``(n, E)``) is known."""
        return a + x @ rearrange(self.W[:, feature], "h e -> e h")

    def position(self, a: Tensor, feature: int) -> Tensor:
        r""":math:`\theta_i = V_i\, g(a) + b_i`, ``(n, P)``, of ``feature`` :math:`i` from its pre-activation."""
        return self.activation(a) @ rearrange(self.V[feature], "p h -> h p") + self.b[feature]
