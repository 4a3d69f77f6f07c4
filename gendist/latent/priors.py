r"""Priors :math:`p(z)` that are not plain base distributions: the VampPrior."""

from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution

from gendist._checks import check_integer
from gendist.distributions.lazy import LazyDistribution

__all__ = ["VampPrior"]


class VampPrior(LazyDistribution):
    r"""The variational mixture of posteriors prior (Tomczak & Welling, 2018).

    .. math:: p(z) = \frac{1}{K} \sum_{k=1}^K q(z \mid u_k)

    with :math:`K` learned pseudo-inputs :math:`u_k` passed through the
    model's own encoder :math:`q`. It has no ``rsample`` (a mixture).

    Arguments:
        encoder: the guide module, ``encoder(h)`` gives :math:`q(z \mid h)`.
        features: the size of an encoder input :math:`h`.
        components: the number :math:`K` of pseudo-inputs.
        init: the pseudo-inputs' initial values, ``(K, features)`` (standard normal noise by default).

    References:
        | VAE with a VampPrior (Tomczak & Welling, 2018)
        | https://arxiv.org/abs/1705.07120
    """

    def __init__(
        self, encoder: LazyDistribution, features: int, components: int = 500, init: Tensor | None = None
    ) -> None:
        super().__init__()
        self._encoder = [encoder]  # not a submodule: the model owns the encoder (one copy of its weights)
        K = check_integer("components", components, 1)
        features = check_integer("features", features, 1)
        if init is not None and tuple(init.shape) != (K, features):
            raise ValueError(f"init must have shape ({K}, {features}), got {tuple(init.shape)}")
        self.pseudo_inputs = nn.Parameter(init.clone() if init is not None else torch.randn(K, features))

    def forward(self, c: Tensor | None = None) -> Distribution:
        q = self._encoder[0](self.pseudo_inputs)  # batch (K,)
        K = self.pseudo_inputs.shape[0]
        mix = dist.Categorical(logits=torch.zeros(K, dtype=self.pseudo_inputs.dtype, device=self.pseudo_inputs.device))
        d = dist.MixtureSameFamily(mix, q)
        return d if c is None else d.expand(c.shape[:-1])
