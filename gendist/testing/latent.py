r"""Public checks of latent-variable models, whose ``log_prob`` is an importance-sampled estimate.

A linear-Gaussian model (probabilistic PCA) has its marginal likelihood and
its posterior in closed form, so it is the reference the estimates are
checked against:

.. math:: z \sim \mathcal{N}(0, I), \quad x \mid z \sim \mathcal{N}(W z + \mu, \sigma^2 I),
    \qquad x \sim \mathcal{N}(\mu, W W^\top + \sigma^2 I).

Example:
    >>> W = torch.randn(4, 2, dtype=torch.float64)
    >>> model = linear_gaussian_model(W, sigma=0.5)  # the exact posterior as the guide
    >>> x = ppca_marginal(W, sigma=0.5).sample((3,))
    >>> exact = ppca_marginal(W, sigma=0.5).log_prob(x)
    >>> torch.allclose(model().log_prob(x, k=1), exact)  # exact for any k with the exact posterior
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution

from gendist.distributions.bases import StandardNormal
from gendist.distributions.lazy import LazyDistribution
from gendist.latent.core import LatentModel

__all__ = [
    "LinearGaussian",
    "LinearGaussianPosterior",
    "check_bounds",
    "check_estimate_against",
    "linear_gaussian_model",
    "ppca_marginal",
]


def _as_tensors(W: Tensor, mu: Tensor | float | None, sigma: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(W, Tensor) or W.dim() != 2:
        raise ValueError(f"W must be a (features, latent) matrix, got {type(W).__name__} {getattr(W, 'shape', '')}")
    mu = torch.zeros(W.shape[0], dtype=W.dtype) if mu is None else torch.as_tensor(mu, dtype=W.dtype)
    sigma = torch.as_tensor(sigma, dtype=W.dtype)
    if sigma.dim() != 0 or not bool(sigma > 0):
        raise ValueError(f"sigma must be a positive scalar, got {sigma}")
    return W, mu.expand(W.shape[:1]), sigma


def ppca_marginal(W: Tensor, mu: Tensor | float | None = None, sigma: Tensor | float = 1.0) -> Distribution:
    r"""The exact marginal :math:`\mathcal{N}(\mu, W W^\top + \sigma^2 I)` of the linear-Gaussian model.

    Example:
        >>> ppca_marginal(torch.zeros(3, 1), sigma=2.0).covariance_matrix.diagonal()
        tensor([4., 4., 4.])
    """
    W, mu, sigma = _as_tensors(W, mu, sigma)
    cov = W @ W.T + sigma**2 * torch.eye(W.shape[0], dtype=W.dtype)
    return dist.MultivariateNormal(mu, covariance_matrix=cov)


class LinearGaussian(LazyDistribution):
    r"""The decoder :math:`p(x \mid z) = \mathcal{N}(W z + \mu, \sigma^2 I)`; parameters ``W``, ``mu``, ``log_sigma``.

    Example:
        >>> LinearGaussian(torch.ones(3, 2))(torch.zeros(5, 2)).batch_shape
        torch.Size([5])
    """

    def __init__(self, W: Tensor, mu: Tensor | float | None = None, sigma: Tensor | float = 1.0) -> None:
        super().__init__()
        W, mu, sigma = _as_tensors(W, mu, sigma)
        self.W = nn.Parameter(W.detach().clone())
        self.mu = nn.Parameter(mu.detach().clone())
        self.log_sigma = nn.Parameter(sigma.detach().log())

    def forward(self, c: Tensor | None = None) -> Distribution:
        if c is None or c.shape[-1] != self.W.shape[1]:
            raise ValueError(f"LinearGaussian: the input must have shape (..., {self.W.shape[1]}), got {c!r}")
        loc = c @ self.W.T + self.mu
        return dist.Normal(loc, self.log_sigma.exp().expand(loc.shape)).to_event(1)

    def marginal(self) -> Distribution:
        r"""The exact marginal of :math:`x` under a standard normal prior (:func:`ppca_marginal`)."""
        return ppca_marginal(self.W, self.mu, self.log_sigma.exp())


class LinearGaussianPosterior(LazyDistribution):
    r"""The exact posterior of a :class:`LinearGaussian` decoder under a standard normal prior, as a guide.

    .. math:: q(z \mid x) = \mathcal{N}\big(\Sigma W^\top (x - \mu) / \sigma^2,\ \mathrm{inflate}^2\, \Sigma\big),
        \qquad \Sigma = (I + W^\top W / \sigma^2)^{-1}

    It follows the decoder's current parameters. ``inflate`` > 1 widens it (an
    imperfect guide whose importance weights still have finite variance);
    ``shift`` moves its mean by that many posterior standard deviations in every coordinate.
    """

    def __init__(self, decoder: LinearGaussian, inflate: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self._decoder = [decoder]  # not a submodule: the model owns the decoder
        if not inflate > 0:
            raise ValueError(f"inflate must be > 0, got {inflate!r}")
        self.inflate, self.shift = float(inflate), float(shift)

    def forward(self, c: Tensor | None = None) -> Distribution:
        p = self._decoder[0]
        W, mu, var = p.W, p.mu, (2 * p.log_sigma).exp()
        if c is None or c.shape[-1] != W.shape[0]:
            raise ValueError(f"LinearGaussianPosterior: the input must have shape (..., {W.shape[0]}), got {c!r}")
        L = W.shape[1]
        cov = torch.linalg.inv(torch.eye(L, dtype=W.dtype, device=W.device) + W.T @ W / var)
        cov = (cov + cov.T) / 2
        tril = torch.linalg.cholesky(cov)
        loc = (c - mu) @ W @ cov / var + self.shift * cov.diagonal().sqrt()
        return dist.MultivariateNormal(loc, scale_tril=(self.inflate * tril).expand(loc.shape + (L,)))


def linear_gaussian_model(
    W: Tensor,
    mu: Tensor | float | None = None,
    sigma: Tensor | float = 1.0,
    encoder: LazyDistribution | None = None,
    inflate: float = 1.0,
    shift: float = 0.0,
    particles: int = 100,
    **kwargs,
) -> nn.Module:
    r"""Probabilistic PCA as a :class:`~gendist.latent.LatentModel`: the reference for importance-sampled estimates.

    The prior is :math:`\mathcal{N}(0, I)` over ``W.shape[1]`` dimensions, the decoder
    :class:`LinearGaussian`, the guide ``encoder`` or else the exact posterior
    (:class:`LinearGaussianPosterior`, widened by ``inflate`` and moved by ``shift``). ``kwargs`` go to
    :class:`~gendist.latent.LatentModel` (``objective``, ``k``, ``chunk``, ...).
    The exact marginal is ``model.decoder.marginal()``.

    Example:
        >>> model = linear_gaussian_model(torch.ones(3, 1), sigma=0.5, inflate=2.0, particles=8)
        >>> model().log_prob(torch.zeros(2, 3)).shape
        torch.Size([2])
    """
    decoder = LinearGaussian(W, mu, sigma)
    if encoder is None:
        encoder = LinearGaussianPosterior(decoder, inflate, shift)
    prior = StandardNormal(W.shape[1]).to(W.dtype)
    return LatentModel(prior, encoder, decoder, W.shape[0], particles=particles, **kwargs)


def _call(model: nn.Module | Distribution, c: Tensor | None) -> Distribution:
    return model(c) if isinstance(model, nn.Module) else model


def _mean_se(values: Tensor) -> tuple[float, float]:
    r"""The mean of ``(repeats, ...)`` values and its standard error over the repeats (each repeat averaged first)."""
    per_repeat = values.detach().double().reshape(values.shape[0], -1).mean(1)
    R = per_repeat.shape[0]
    se = float(per_repeat.std()) / math.sqrt(R) if R > 1 else 0.0
    return float(per_repeat.mean()), se


def check_bounds(
    model: nn.Module | Distribution,
    x: Tensor,
    ks: Sequence[int] = (1, 10, 100),
    c: Tensor | None = None,
    repeats: int = 20,
    z: float = 4.0,
) -> dict[str, float]:
    r"""Check, on the data ``x``, that the mean ELBO is at most the mean IWAE bound :math:`\mathcal{L}_k`, and that
    :math:`\mathcal{L}_k` does not decrease along ``ks`` (Burda et al., 2016, Theorem 1).

    Each mean is over ``x`` and ``repeats`` independent draws; a decrease must
    exceed ``z`` standard errors (of the difference) to fail. ``model`` is a
    latent-variable module (called as ``model(c)``) or its marginal, a
    :class:`~gendist.distributions.latent.LatentVariable`. Returns the means,
    ``{"elbo": ..., "iwae_1": ..., ...}``.

    Example:
        >>> model = linear_gaussian_model(torch.ones(3, 1), sigma=0.5, inflate=2.0)
        >>> means = check_bounds(model, torch.randn(10, 3), ks=(1, 10), repeats=5)
        >>> sorted(means)
        ['elbo', 'iwae_1', 'iwae_10']
    """
    d = _call(model, c)
    ks = [int(k) for k in ks]
    if any(a >= b for a, b in zip(ks, ks[1:])):
        raise ValueError(f"ks must increase, got {ks}")
    xr = x.expand((repeats,) + x.shape)
    with torch.no_grad():
        stats = {"elbo": _mean_se(d.elbo(xr))}
        for k in ks:
            stats[f"iwae_{k}"] = _mean_se(d.log_prob(xr, k))
    names = list(stats)
    for lo, hi in zip(names, names[1:]):
        (m1, s1), (m2, s2) = stats[lo], stats[hi]
        slack = z * math.hypot(s1, s2) + 1e-9 * (1 + abs(m1))
        if m1 > m2 + slack:
            raise AssertionError(
                f"bounds out of order: mean {lo} = {m1:.5g} > mean {hi} = {m2:.5g} by {m1 - m2:.3g}, more than "
                f"{z:g} standard errors ({slack:.3g}); " + ", ".join(f"{n} = {m:.5g}" for n, (m, _) in stats.items())
            )
    return {n: m for n, (m, _) in stats.items()}


def check_estimate_against(
    d: Distribution,
    x: Tensor,
    exact: Tensor,
    k: int | None = None,
    tol: float = 1e-2,
    repeats: int = 10,
    z: float = 4.0,
) -> float:
    r"""Check the estimate ``d.log_prob(x, k)`` against the exact log-density ``exact`` of ``x``.

    Over ``repeats`` independent draws: the mean error over all of ``x`` is
    within ``tol`` of 0 and not above 0 by more than ``z`` standard errors
    (the estimate is a lower bound in expectation), and at no point is the
    estimate's mean above the exact value by more than ``tol`` plus ``z``
    standard errors (plus rounding). Returns the mean error (estimate minus exact).

    Example:
        >>> W = torch.randn(4, 2, dtype=torch.float64)
        >>> model = linear_gaussian_model(W, sigma=0.5, inflate=1.5)
        >>> x = ppca_marginal(W, sigma=0.5).sample((20,))
        >>> gap = check_estimate_against(model(), x, ppca_marginal(W, sigma=0.5).log_prob(x), k=100, tol=0.05)
    """
    exact = exact.detach().double()
    with torch.no_grad():
        est = d.log_prob(x.expand((repeats,) + x.shape), k).double()
    gap = est - exact  # (repeats, *batch)
    mean = gap.mean(0)
    se = gap.std(0) / math.sqrt(repeats) if repeats > 1 else torch.zeros_like(mean)
    rounding = (1e-10 if x.dtype == torch.float64 else 1e-5) * (1 + exact.abs())
    total, total_se = _mean_se(gap)
    if not math.isfinite(total) or abs(total) > tol:
        raise AssertionError(f"the estimate is off the exact log-density by {total:.4g} on average (tol={tol:g})")
    if total > z * total_se + float(rounding.mean()):
        raise AssertionError(
            f"the estimate is above the exact log-density on average (it must be a lower bound in expectation): "
            f"by {total:.4g}, more than {z:g} standard errors ({total_se:.3g})"
        )
    above = mean - tol - z * se - rounding
    if bool((above > 0).any()):
        i = int(above.flatten().argmax())
        raise AssertionError(
            f"the estimate is above the exact log-density by more than tol={tol:g} and {z:g} standard errors at "
            f"flat index {i}: mean {float(mean.flatten()[i]):.4g} over {repeats} draws, "
            f"standard error {float(se.flatten()[i]):.3g}"
        )
    return total
