r"""The denoiser :math:`D(x_t, t) \approx E[x_0 \mid x_t]`: a network under one of five parametrizations.

Every parametrization is written in the variance-exploding frame of Karras et al. (2022):
:math:`\tilde x = x_t / \alpha_t = x_0 + \tilde\sigma \epsilon` with :math:`\tilde\sigma = \sigma_t / \alpha_t`.
The network sees :math:`c_{in} \tilde x` with :math:`c_{in} = 1/\sqrt{\tilde\sigma^2 + \sigma_d^2}` (unit variance
for data of variance :math:`\sigma_d^2`, whatever the process) and the noise level
:math:`c_{noise} = \frac{1}{4} \log \tilde\sigma`, and its output :math:`F` becomes

.. math::
    \begin{aligned}
    \texttt{eps}:&\quad D = \tilde x - \tilde\sigma F &
    \texttt{x0}:&\quad D = F \\
    \texttt{edm}:&\quad D = c_{skip} \tilde x + c_{out} F &
    \texttt{v}:&\quad D = c_{skip} \tilde x - c_{out} F \\
    \texttt{score}:&\quad D = (x_t + \sigma_t^2 F) / \alpha_t &
    \texttt{gaussian}:&\quad D = \mu + \Sigma (\Sigma + \tilde\sigma^2 I)^{-1} (\tilde x - \mu) + c_{out} F
    \end{aligned}

with :math:`c_{skip} = \sigma_d^2 / (\tilde\sigma^2 + \sigma_d^2)` and
:math:`c_{out} = \tilde\sigma \sigma_d / \sqrt{\tilde\sigma^2 + \sigma_d^2}` (``v`` is Salimans & Ho's
:math:`v`-prediction, which is EDM's preconditioning with the sign of :math:`F` flipped). The score follows
by Tweedie's formula, :math:`\nabla \log p_t(x) = (\alpha_t D - x) / \sigma_t^2`.

``gaussian`` is EDM's preconditioning with its skip :math:`c_{skip} \tilde x` (the exact denoiser of
:math:`\mathcal{N}(0, \sigma_d^2 I)` data) replaced by the exact denoiser of a Gaussian
:math:`\mathcal{N}(\mu, \Sigma)` fitted to the data (:meth:`Denoiser.set_gaussian`): with :math:`F = 0` the model
*is* that Gaussian, with :math:`p_t = \mathcal{N}(\alpha_t \mu, \alpha_t^2 \Sigma + \sigma_t^2 I)`, and the network
learns only what the Gaussian misses. On small data sets this is a far better start than an isotropic one.

References:
    | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., 2022)
    | https://arxiv.org/abs/2206.00364
    | Progressive Distillation for Fast Sampling of Diffusion Models (Salimans & Ho, 2022)
    | https://arxiv.org/abs/2202.00512
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from gendist.sde import SDE

__all__ = ["Denoiser", "PARAMETRIZATIONS"]

PARAMETRIZATIONS = ("eps", "x0", "v", "edm", "score", "gaussian")


class Denoiser(nn.Module):
    r"""``Denoiser(net, sde)(x, t, c)`` is :math:`D(x_t, t \mid c) \approx E[x_0 \mid x_t, c]`.

    Arguments:
        net: ``net(u, noise, c)`` with ``u`` of ``x``'s shape, ``noise`` of its batch shape
            (:math:`c_{noise}`), ``c`` the context or None; returns a tensor of ``x``'s shape.
        sde: the process, which gives :math:`\alpha_t, \sigma_t`.
        parametrization: what the network predicts: ``"eps"``, ``"x0"``, ``"v"``, ``"edm"``, ``"score"`` or
            ``"gaussian"``.
        sigma_data: :math:`\sigma_d`, the data's standard deviation assumed by the preconditioning.
        event_dim: the number of event dims of ``x``.
        size: the number of entries of an event, needed by ``"gaussian"`` (its :math:`\mu` and :math:`\Sigma`
            start as :math:`0` and :math:`\sigma_d^2 I`, where it equals ``"edm"``, and are buffers).

    Example:
        >>> from gendist.diffusion import VP
        >>> from gendist.nn.score import ScoreMLP
        >>> D = Denoiser(ScoreMLP((2,), hidden=(16,)), VP(), "v")
        >>> D(torch.randn(5, 2), torch.tensor(0.5)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        net: nn.Module,
        sde: SDE,
        parametrization: str = "eps",
        sigma_data: float = 1.0,
        event_dim: int = 1,
        size: int | None = None,
    ) -> None:
        super().__init__()
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"Denoiser: `parametrization` must be one of {PARAMETRIZATIONS}, got {parametrization!r}")
        if not sigma_data > 0:
            raise ValueError(f"Denoiser: `sigma_data` must be positive, got {sigma_data}")
        self.net, self.sde, self.parametrization = net, sde, parametrization
        self.sigma_data, self.event_dim = float(sigma_data), event_dim
        if parametrization == "gaussian":
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"Denoiser: the 'gaussian' parametrization needs the event `size`, got {size!r}")
            # Sigma = basis diag(variances) basis^T
            self.register_buffer("mean", torch.zeros(size))
            self.register_buffer("basis", torch.eye(size))
            self.register_buffer("variances", torch.full((size,), self.sigma_data**2))

    @torch.no_grad()
    def set_gaussian(self, mean: Tensor, cov: Tensor) -> None:
        r"""Set the Gaussian :math:`\mathcal{N}(\mu, \Sigma)` of the ``"gaussian"`` parametrization (over the
        flattened event): ``mean`` of size :math:`d`, ``cov`` a symmetric positive semi-definite
        :math:`d \times d` matrix (eigenvalues below :math:`10^{-6} \sigma_d^2` are raised to it)."""
        if self.parametrization != "gaussian":
            raise ValueError(
                f"Denoiser.set_gaussian: needs the 'gaussian' parametrization, not {self.parametrization!r}"
            )
        d = self.mean.numel()
        mean, cov = torch.as_tensor(mean), torch.as_tensor(cov)
        if mean.shape != (d,) or cov.shape != (d, d):
            raise ValueError(f"Denoiser.set_gaussian: `mean` must have shape ({d},) and `cov` ({d}, {d}), "
                             f"got {tuple(mean.shape)} and {tuple(cov.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(cov).all()):
            raise ValueError("Denoiser.set_gaussian: `mean` and `cov` must be finite")
        cov = cov.to(torch.float64)
        if not torch.allclose(cov, cov.T, rtol=1e-5, atol=1e-8 * float(cov.abs().max()) + 1e-12):
            raise ValueError("Denoiser.set_gaussian: `cov` must be symmetric")
        lam, U = torch.linalg.eigh((cov + cov.T) / 2)
        if lam.min() < -1e-6 * max(float(lam.max()), 1e-12):
            raise ValueError(f"Denoiser.set_gaussian: `cov` must be positive semi-definite, "
                             f"its smallest eigenvalue is {float(lam.min()):.3g}")
        self.mean.copy_(mean)
        self.basis.copy_(U)
        self.variances.copy_(lam.clamp_min(1e-6 * self.sigma_data**2))

    def forward(self, x: Tensor, t: Tensor | float, c: Tensor | None = None) -> Tensor:
        batch = x.shape[: x.dim() - self.event_dim]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(batch)
        pad = (1,) * self.event_dim
        a, s = self.sde.alpha(t), self.sde.sigma(t)
        st = s / a
        a_, s_, st_ = a.reshape(batch + pad), s.reshape(batch + pad), st.reshape(batch + pad)
        xt = x / a_
        norm = (st_**2 + self.sigma_data**2).sqrt()
        out = self.net(xt / norm, st.log() / 4, c)
        p = self.parametrization
        if p == "eps":
            return xt - st_ * out
        if p == "x0":
            return out
        if p == "score":
            return (x + s_**2 * out) / a_
        skip, scale = self.sigma_data**2 / norm**2, st_ * self.sigma_data / norm
        if p == "gaussian":
            z = (xt.reshape(batch + (-1,)) - self.mean.to(x.dtype)) @ self.basis.to(x.dtype)
            lam = self.variances.to(x.dtype)
            z = z * lam / (lam + st.reshape(batch + (1,)) ** 2)
            return (self.mean.to(x.dtype) + z @ self.basis.to(x.dtype).T).reshape(x.shape) + scale * out
        return skip * xt + scale * out if p == "edm" else skip * xt - scale * out

    def score(self, x: Tensor, t: Tensor | float, c: Tensor | None = None) -> Tensor:
        r"""The score :math:`\nabla_x \log p_t(x \mid c) = (\alpha_t D - x) / \sigma_t^2`."""
        batch = x.shape[: x.dim() - self.event_dim]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(batch).reshape(batch + (1,) * self.event_dim)
        return (self.sde.alpha(t) * self(x, t.reshape(batch), c) - x) / self.sde.sigma(t) ** 2
