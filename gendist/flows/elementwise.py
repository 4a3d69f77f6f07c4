r"""Elementwise layers: free (or context-dependent) parameters for an elementwise family."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions.transforms import IndependentTransform
from torch.distributions.transforms import Transform as _TorchTransform

from gendist._checks import check_context
from gendist.distributions.lazy import LazyTransform
from gendist.flows.univariate import Univariate, as_univariate
from gendist.nn.mlp import MLP

__all__ = ["Elementwise"]


class Elementwise(LazyTransform):
    r"""An elementwise transform :math:`x_i = f(z_i; \theta_i)`, :math:`\theta` learned or computed from a context.

    Unconditional: :math:`\theta` is a parameter of shape :math:`(D, P)`
    (zeros: the identity for affine and spline families). Conditional:
    :math:`\theta = \mathrm{MLP}(c)`.

    Arguments:
        features: the number of features :math:`D`.
        context: the context size (0 for none).
        univariate: the elementwise family.
        hidden: the context network's hidden sizes.

    Example:
        >>> t = Elementwise(3, univariate="spline")()
        >>> x = torch.randn(3)
        >>> bool(torch.allclose(t(x), x, atol=1e-5))
        True
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        univariate: str | Univariate = "affine",
        hidden: Sequence[int] = (64, 64),
    ) -> None:
        super().__init__()
        self.univariate = as_univariate(univariate)
        shape = (features, self.univariate.params)
        self._shape = shape
        if context > 0:
            self.net = MLP(context, shape[0] * shape[1], hidden)
        else:
            self.theta = nn.Parameter(torch.zeros(shape))

    def forward(self, c: Tensor | None = None) -> _TorchTransform:
        if hasattr(self, "net"):
            check_context(c, self.net.layers[0].in_features, type(self).__name__)
            theta = self.net(c).unflatten(-1, self._shape)
        else:
            check_context(c, 0, type(self).__name__)
            theta = self.theta
        return IndependentTransform(self.univariate(theta), 1)
