r"""Encoders (guides) and decoders (likelihoods) of latent-variable models, as modules that build distributions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro.distributions as dist
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution

from gendist._checks import check_integer, check_shape
from gendist.distributions.conditionals import Conditional, Normal, as_family
from gendist.distributions.factorized import Factorized
from gendist.distributions.lazy import LazyDistribution
from gendist.nn.mlp import MLP

__all__ = ["GaussianEncoder", "Decoder", "COVARIANCES"]

COVARIANCES = ("diag", "full")
_MIN_SCALE = 1e-4


class GaussianEncoder(LazyDistribution):
    r"""A Gaussian guide :math:`q(z \mid h) = \mathcal{N}(\mu(h), \Sigma(h))` from a perceptron.

    ``covariance="diag"``: :math:`\Sigma = \mathrm{diag}(\sigma^2)`, :math:`\sigma = \mathrm{softplus}(s) + 10^{-4}`;
    ``"full"``: :math:`\Sigma = L L^\top` with :math:`L` lower triangular, its diagonal
    positive the same way.

    Arguments:
        features: the size of the input :math:`h` (the flattened data, then the context).
        latent: the dimension of :math:`z`.
        hidden: the hidden layer sizes.
        covariance: ``"diag"`` or ``"full"``.
        activation: the activation module class.

    Example:
        >>> q = GaussianEncoder(5, 2, hidden=(8,))(torch.randn(3, 5))
        >>> q.batch_shape, q.event_shape
        (torch.Size([3]), torch.Size([2]))
    """

    def __init__(
        self,
        features: int,
        latent: int,
        hidden: Sequence[int] = (256, 256),
        covariance: str = "diag",
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.features = check_integer("features", features, 1)
        self.latent = check_integer("latent", latent, 1)
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        self.covariance = covariance
        extra = latent * (latent - 1) // 2 if covariance == "full" else 0
        self.net = MLP(features, 2 * latent + extra, hidden, activation=activation)
        rows, cols = torch.tril_indices(latent, latent, -1)
        self.register_buffer("_below", rows * latent + cols, persistent=False)  # flat indices under the diagonal

    def forward(self, c: Tensor | None = None) -> Distribution:
        if c is None or c.shape[-1] != self.features:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"GaussianEncoder: the input must have shape (..., {self.features}), got {got}")
        out = self.net(c)
        L = self.latent
        loc, raw = out[..., :L], out[..., L : 2 * L]
        scale = F.softplus(raw) + _MIN_SCALE
        if self.covariance == "diag":
            return dist.Normal(loc, scale).to_event(1)
        below = out.new_zeros(out.shape[:-1] + (L * L,)).index_copy(-1, self._below, out[..., 2 * L :])
        tril = torch.diag_embed(scale) + below.unflatten(-1, (L, L))
        return dist.MultivariateNormal(loc, scale_tril=tril)


class Decoder(LazyDistribution):
    r"""A likelihood :math:`p(x \mid h) = \prod_i p(x_i \mid \theta_i(h))` from a perceptron (independent entries).

    The family is one of the autoregressive models' per-position families:
    ``"bernoulli"``, ``Categorical(K)``, ``Normal()`` (a scale per entry from
    the network), ``Normal(scale)`` (a fixed scale), ``DiscretizedLogisticMixture(L, k)``, ...
    With ``learned_scale=True`` a ``Normal()`` family takes one learned
    scale per entry that does not depend on :math:`h`.

    Arguments:
        features: the size of the input :math:`h` (the latent, then the context).
        shape: the event shape of :math:`x`.
        family: the per-entry family.
        hidden: the hidden layer sizes.
        learned_scale: a ``Normal()`` family's scales as free parameters.
        activation: the activation module class.

    Example:
        >>> p = Decoder(2, (3, 4), family="bernoulli", hidden=(8,))(torch.randn(5, 2))
        >>> p.batch_shape, p.event_shape
        (torch.Size([5]), torch.Size([3, 4]))
    """

    def __init__(
        self,
        features: int,
        shape: int | Sequence[int],
        family: Conditional | str = "bernoulli",
        hidden: Sequence[int] = (256, 256),
        learned_scale: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.features = check_integer("features", features, 1)
        self.shape = check_shape(shape)
        self.family = as_family(family)
        if learned_scale and not (isinstance(self.family, Normal) and self.family.scale is None):
            raise ValueError(f"learned_scale needs the family Normal() (with no fixed scale), got {self.family!r}")
        self.learned_scale = bool(learned_scale)
        P = self.family.params - (1 if learned_scale else 0)
        self.net = MLP(features, self.shape.numel() * P, hidden, activation=activation)
        # the raw scale s with softplus(s) + 0.001 = 1 at the start
        self.raw_scale = (
            nn.Parameter(torch.full(tuple(self.shape), math.log(math.expm1(0.999)))) if learned_scale else None
        )

    def forward(self, c: Tensor | None = None) -> Factorized:
        if c is None or c.shape[-1] != self.features:
            got = None if c is None else tuple(c.shape)
            raise ValueError(f"Decoder: the input must have shape (..., {self.features}), got {got}")
        theta = self.net(c).unflatten(-1, (*self.shape, -1))
        if self.raw_scale is not None:
            theta = torch.cat([theta, self.raw_scale.expand(theta.shape[:-1]).unsqueeze(-1)], -1)
        return Factorized(self.family, theta, len(self.shape))
