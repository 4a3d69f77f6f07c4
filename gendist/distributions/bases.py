r"""Base distributions as modules: their tensors are buffers or parameters, so they move with ``.to()``."""

from __future__ import annotations

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Distribution

from gendist.distributions.base import Honest, register_no_kl
from gendist.distributions.lazy import LazyDistribution

__all__ = ["StandardNormal", "DiagNormal", "GaussianMixture", "Fixed", "as_base"]


def _batch(c: Tensor | None) -> Size:
    return Size() if c is None else c.shape[:-1]


class _Independent(Honest, dist.Independent):
    r"""Pyro's ``Independent`` whose missing methods (cdf, icdf, ...) say what to use instead (see :class:`Honest`)."""

    log_prob_kind = "exact"


@register_no_kl
class _Mixture(Honest, dist.MixtureSameFamily):
    r"""Pyro's ``MixtureSameFamily`` whose missing methods (entropy, cdf, ...) say what to use instead."""

    log_prob_kind = "exact"


class StandardNormal(LazyDistribution):
    r"""The standard normal :math:`\mathcal{N}(0, I_D)` over vectors, with buffers for its tensors.

    Example:
        >>> StandardNormal(3)().sample().shape
        torch.Size([3])
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("loc", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    def forward(self, c: Tensor | None = None) -> Distribution:
        shape = _batch(c) + self.loc.shape
        return _Independent(dist.Normal(self.loc.expand(shape), self.scale.expand(shape)), 1)


class DiagNormal(LazyDistribution):
    r"""A diagonal Gaussian :math:`\mathcal{N}(\mu, \mathrm{diag}(\sigma^2))`, learnable :math:`\mu, \log \sigma`."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))

    def forward(self, c: Tensor | None = None) -> Distribution:
        shape = _batch(c) + self.loc.shape
        return _Independent(dist.Normal(self.loc.expand(shape), self.log_scale.exp().expand(shape)), 1)


class GaussianMixture(LazyDistribution):
    r"""A mixture of :math:`K` diagonal Gaussians with learnable weights, means and scales.

    It has no ``rsample`` (mixture sampling is discrete), so a flow on it
    samples but does not reparameterize.

    Arguments:
        features: the dimension :math:`D`.
        components: the number of components :math:`K`.
        spread: the standard deviation of the initial means.
    """

    def __init__(self, features: int, components: int = 8, spread: float = 1.0) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(components))
        self.loc = nn.Parameter(spread * torch.randn(components, features))
        self.log_scale = nn.Parameter(torch.zeros(components, features))

    def forward(self, c: Tensor | None = None) -> Distribution:
        batch = _batch(c)
        K, D = self.loc.shape
        mix = dist.Categorical(logits=self.logits.expand(batch + (K,)))
        comp = dist.Normal(
            self.loc.expand(batch + (K, D)), self.log_scale.exp().expand(batch + (K, D))
        ).to_event(1)
        return _Mixture(mix, comp)


def _tensors(d: object) -> list[tuple[object, str, Tensor]]:
    found = []
    for key, value in vars(d).items():
        if isinstance(value, Tensor):
            found.append((d, key, value))
        elif isinstance(value, Distribution):
            found.extend(_tensors(value))
    return found


class Fixed(LazyDistribution):
    r"""Wrap any torch or Pyro distribution instance as a module whose tensors are buffers.

    ``.to(device)`` and ``.double()`` move the wrapped distribution's tensors;
    ``state_dict`` saves them. A context only sets the batch shape.

    Example:
        >>> base = Fixed(dist.Laplace(torch.zeros(2), torch.ones(2)).to_event(1))
        >>> base(torch.zeros(5, 3)).batch_shape
        torch.Size([5])
    """

    def __init__(self, distribution: Distribution) -> None:
        super().__init__()
        if not isinstance(distribution, Distribution):
            raise TypeError(
                f"base must be a torch Distribution or a LazyDistribution module, got "
                f"{type(distribution).__name__}"
            )
        self.distribution = distribution
        self._slots = []
        for i, (owner, key, tensor) in enumerate(_tensors(distribution)):
            name = f"t{i}_{key.strip('_')}"
            self.register_buffer(name, tensor.clone())
            setattr(owner, key, getattr(self, name))
            self._slots.append((owner, key, name))

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        super()._apply(fn, recurse)
        for owner, key, name in self._slots:
            setattr(owner, key, getattr(self, name))
        return self

    def forward(self, c: Tensor | None = None) -> Distribution:
        d = self.distribution
        if c is not None:
            d = d.expand(c.shape[:-1] + d.batch_shape)
        return d


def as_base(base: LazyDistribution | Distribution | None, features: int) -> LazyDistribution:
    r"""Turn ``None`` (standard normal), a distribution instance or a module into a base module."""
    if base is None:
        return StandardNormal(features)
    if isinstance(base, nn.Module):
        return base
    base = Fixed(base)
    shape = base.distribution.batch_shape + base.distribution.event_shape
    if shape[-1:] != (features,) or len(base.distribution.event_shape) != 1:
        raise ValueError(
            f"base must be a distribution over vectors of size {features} (event_shape "
            f"({features},)), got batch_shape {tuple(base.distribution.batch_shape)} and event_shape "
            f"{tuple(base.distribution.event_shape)}; use .to_event(1) on a batch of scalars"
        )
    return base
