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
    \texttt{score}:&\quad D = (x_t + \sigma_t^2 F) / \alpha_t
    \end{aligned}

with :math:`c_{skip} = \sigma_d^2 / (\tilde\sigma^2 + \sigma_d^2)` and
:math:`c_{out} = \tilde\sigma \sigma_d / \sqrt{\tilde\sigma^2 + \sigma_d^2}` (``v`` is Salimans & Ho's
:math:`v`-prediction, which is EDM's preconditioning with the sign of :math:`F` flipped). The score follows
by Tweedie's formula, :math:`\nabla \log p_t(x) = (\alpha_t D - x) / \sigma_t^2`.

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

from gendist.diffusion.sde import SDE

__all__ = ["Denoiser", "PARAMETRIZATIONS"]

PARAMETRIZATIONS = ("eps", "x0", "v", "edm", "score")


class Denoiser(nn.Module):
    r"""``Denoiser(net, sde)(x, t, c)`` is :math:`D(x_t, t \mid c) \approx E[x_0 \mid x_t, c]`.

    Arguments:
        net: ``net(u, noise, c)`` with ``u`` of ``x``'s shape, ``noise`` of its batch shape
            (:math:`c_{noise}`), ``c`` the context or None; returns a tensor of ``x``'s shape.
        sde: the process, which gives :math:`\alpha_t, \sigma_t`.
        parametrization: what the network predicts: ``"eps"``, ``"x0"``, ``"v"``, ``"edm"`` or ``"score"``.
        sigma_data: :math:`\sigma_d`, the data's standard deviation assumed by the preconditioning.
        event_dim: the number of event dims of ``x``.

    Example:
        >>> from gendist.diffusion import VP
        >>> from gendist.diffusion.nets import ScoreMLP
        >>> D = Denoiser(ScoreMLP((2,), hidden=(16,)), VP(), "v")
        >>> D(torch.randn(5, 2), torch.tensor(0.5)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self, net: nn.Module, sde: SDE, parametrization: str = "eps", sigma_data: float = 1.0, event_dim: int = 1
    ) -> None:
        super().__init__()
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"Denoiser: `parametrization` must be one of {PARAMETRIZATIONS}, got {parametrization!r}")
        if not sigma_data > 0:
            raise ValueError(f"Denoiser: `sigma_data` must be positive, got {sigma_data}")
        self.net, self.sde, self.parametrization = net, sde, parametrization
        self.sigma_data, self.event_dim = float(sigma_data), event_dim

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
        return skip * xt + scale * out if p == "edm" else skip * xt - scale * out

    def score(self, x: Tensor, t: Tensor | float, c: Tensor | None = None) -> Tensor:
        r"""The score :math:`\nabla_x \log p_t(x \mid c) = (\alpha_t D - x) / \sigma_t^2`."""
        batch = x.shape[: x.dim() - self.event_dim]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(batch).reshape(batch + (1,) * self.event_dim)
        return (self.sde.alpha(t) * self(x, t.reshape(batch), c) - x) / self.sde.sigma(t) ** 2
