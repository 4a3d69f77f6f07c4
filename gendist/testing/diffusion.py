r"""Closed forms for testing diffusion models: Gaussian-mixture data under a linear SDE.

If the data is a Gaussian mixture :math:`\sum_k w_k \mathcal{N}(\mu_k, \Sigma_k)`, then at every time
:math:`t` of a linear SDE with kernel :math:`\mathcal{N}(\alpha_t x_0, \sigma_t^2 I)` the marginal is the
mixture :math:`\sum_k w_k \mathcal{N}(\alpha_t \mu_k, \alpha_t^2 \Sigma_k + \sigma_t^2 I)`, so its density,
its score and the denoiser :math:`E[x_0 \mid x_t] = (x_t + \sigma_t^2 \nabla \log p_t(x_t)) / \alpha_t`
(Tweedie's formula) are exact. Plugging :meth:`DiffusedMixture.denoiser` into a sampler or the
probability-flow likelihood tests them with no training.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, MixtureSameFamily, MultivariateNormal

from gendist.sde import SDE

__all__ = ["DiffusedMixture"]


class DiffusedMixture:
    r"""Gaussian-mixture data and its exact marginal, score and denoiser at every time of ``sde``.

    Arguments:
        sde: the process.
        weights: ``(K,)`` mixture weights (normalized here).
        means: ``(K, d)`` component means.
        covs: ``(K, d, d)`` component covariances, or ``(K,)`` / a float for isotropic scales :math:`s_k`
            (covariance :math:`s_k^2 I`).

    Example:
        >>> from gendist.diffusion import VP
        >>> gm = DiffusedMixture(VP(), torch.ones(2), torch.tensor([[-2.0], [2.0]]), 0.5)
        >>> x = torch.randn(3, 1)
        >>> gm.denoiser(x, torch.tensor(0.5)).shape
        torch.Size([3, 1])
    """

    def __init__(self, sde: SDE, weights: Tensor, means: Tensor, covs: Tensor | float) -> None:
        means = torch.as_tensor(means)
        if means.dim() != 2:
            raise ValueError(f"DiffusedMixture: `means` must be (K, d), got shape {tuple(means.shape)}")
        k, d = means.shape
        weights = torch.as_tensor(weights, dtype=means.dtype)
        covs = torch.as_tensor(covs, dtype=means.dtype)
        if covs.dim() <= 1:
            covs = covs.expand(k) ** 2
            covs = covs[:, None, None] * torch.eye(d, dtype=means.dtype)
        self.sde, self.weights, self.means, self.covs = sde, weights / weights.sum(), means, covs

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    def _coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        return self.sde.alpha(t), self.sde.sigma(t)

    def marginal(self, t: Tensor | float) -> Distribution:
        r"""The exact :math:`p_t`, a mixture of multivariate normals (batched over the shape of ``t``)."""
        t = self.sde.check_time(torch.as_tensor(t, dtype=self.means.dtype))
        a, s = self.sde.alpha(t)[..., None, None], self.sde.sigma(t)[..., None, None]
        eye = torch.eye(self.dim, dtype=self.means.dtype)
        comp = MultivariateNormal(a * self.means, (a[..., None] ** 2) * self.covs + (s[..., None] ** 2) * eye)
        logits = self.weights.log().expand(comp.batch_shape)
        return MixtureSameFamily(Categorical(logits=logits), comp)

    def data(self) -> Distribution:
        r"""The data distribution :math:`p_0`."""
        eye = torch.eye(self.dim, dtype=self.means.dtype)
        return MixtureSameFamily(Categorical(self.weights), MultivariateNormal(self.means, self.covs + 0 * eye))

    def log_prob(self, x: Tensor, t: Tensor | float) -> Tensor:
        return self.marginal(t).log_prob(x)

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        r"""The exact :math:`\nabla_x \log p_t(x) = -\sum_k r_k(x)\, C_k^{-1} (x - \alpha_t \mu_k)` (differentiable)."""
        a, s = self._coefficients(t, x)
        a, s = a.reshape(a.shape + (1, 1)), s.reshape(s.shape + (1, 1))
        eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
        cov = (a[..., None] ** 2) * self.covs.to(x) + (s[..., None] ** 2) * eye
        comp = MultivariateNormal(a * self.means.to(x), cov, validate_args=False)
        diff = x.unsqueeze(-2) - a * self.means.to(x)  # (..., K, d)
        logr = comp.log_prob(x.unsqueeze(-2)) + self.weights.to(x).log()
        r = torch.softmax(logr, -1)
        prec_diff = torch.cholesky_solve(diff.unsqueeze(-1), torch.linalg.cholesky(cov)).squeeze(-1)
        return -(r.unsqueeze(-1) * prec_diff).sum(-2)

    def denoiser(self, x: Tensor, t: Tensor) -> Tensor:
        r"""The exact :math:`E[x_0 \mid x_t = x]`, the denoiser every sampler takes."""
        a, s = self._coefficients(t, x)
        a, s = a.reshape(a.shape + (1,) * (x.dim() - a.dim())), s.reshape(s.shape + (1,) * (x.dim() - s.dim()))
        return (x + s**2 * self.score(x, t)) / a
