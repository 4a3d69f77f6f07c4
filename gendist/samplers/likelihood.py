r"""The probability-flow likelihood: :math:`\log p_{t_0}(x)` by integrating the PF-ODE and its divergence.

The probability-flow ODE :math:`\frac{dx}{dt} = v(x, t) = f(t)\, x - \frac12 g(t)^2 \nabla \log p_t(x)` carries
:math:`p_{t_0}` to :math:`p_T`, and the instantaneous change of variables gives

.. math:: \log p_{t_0}(x(t_0)) = \log p_T(x(T)) + \int_{t_0}^{T} \nabla \cdot v(x(t), t)\, dt.

Both are integrated together from the data at :math:`t_0` to :math:`T`. The divergence is exact (one
batched backward pass per event entry) or Hutchinson's unbiased estimate
:math:`E_\epsilon[\epsilon^\top \frac{\partial v}{\partial x} \epsilon]` with probes drawn once per solve
(Rademacher or Gaussian), as in FFJORD. The result is differentiable with respect to the network's
parameters and to :math:`x` (gradients through the solver's steps).

References:
    | Score-Based Generative Modeling through Stochastic Differential Equations (Song et al., 2021)
    | https://arxiv.org/abs/2011.13456
    | FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative Models (Grathwohl et al., 2019)
    | https://arxiv.org/abs/1810.01367
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

from gendist._checks import check_integer
from gendist.samplers.ode import ODEStats, odeint
from gendist.sde import SDE

__all__ = ["DIVERGENCES", "PROBES", "probability_flow_log_prob", "divergence"]

DIVERGENCES = ("exact", "hutchinson")
PROBES = ("rademacher", "gaussian")


def _grads(v: Tensor, x: Tensor, outs: Tensor, create_graph: bool) -> Tensor:
    r"""The vector-Jacobian products :math:`u^\top \partial v / \partial x` for each ``u`` in ``outs`` (first dim)."""
    try:
        (g,) = torch.autograd.grad(v, x, outs, create_graph=create_graph, retain_graph=True, is_grads_batched=True)
        return g
    except RuntimeError:  # an operation without a batching rule: one backward pass per vector
        return torch.stack(
            [torch.autograd.grad(v, x, u, create_graph=create_graph, retain_graph=True)[0] for u in outs]
        )


def divergence(
    v: Tensor, x: Tensor, event_dim: int, probes: Tensor | None = None, create_graph: bool = False
) -> Tensor:
    r"""The divergence :math:`\nabla \cdot v` of ``v = fn(x)`` over the last ``event_dim`` dims: exact when
    ``probes`` is None, else Hutchinson's estimate averaged over ``probes`` (shape ``(P,) + x.shape``)."""
    batch, event = x.shape[: x.dim() - event_dim], x.shape[x.dim() - event_dim :]
    if probes is None:
        d = math.prod(event)
        eye = torch.eye(d, dtype=x.dtype, device=x.device).reshape((d,) + (1,) * len(batch) + event)
        g = _grads(v, x, eye.expand((d,) + x.shape), create_graph)
        return g.reshape((d,) + batch + (d,)).diagonal(dim1=0, dim2=-1).sum(-1)
    g = _grads(v, x, probes, create_graph)
    return (g * probes).flatten(g.dim() - event_dim).sum(-1).mean(0)


def probability_flow_log_prob(
    denoiser: Callable[[Tensor, Tensor], Tensor],
    sde: SDE,
    x: Tensor,
    *,
    event_dim: int,
    prior: Distribution | None = None,
    t_min: float | None = None,
    hutchinson: bool = False,
    probes: int = 1,
    probe: str = "rademacher",
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 10_000,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, ODEStats]:
    r""":math:`\log p_{t_0}(x)` of the diffusion model whose denoiser is ``denoiser(x, t)``, and the solver's stats.

    Arguments:
        denoiser: :math:`D(x, t) \approx E[x_0 \mid x_t = x]` (``t`` a 0-dim tensor).
        sde: the process.
        x: points, the last ``event_dim`` dims being the event.
        event_dim: the number of event dims.
        prior: the density at :math:`T` (default ``sde.prior``).
        t_min: :math:`t_0` (default ``sde.t_min``).
        hutchinson: estimate the divergence with ``probes`` random ``probe`` vectors (``"rademacher"``
            or ``"gaussian"``) instead of computing it exactly.
        method, steps, rtol, atol, max_steps: the ODE solver (:func:`~gendist.samplers.ode.odeint`):
            adaptive ``"dopri5"`` with tolerances and at most ``max_steps`` steps, or a fixed-step method
            with ``steps``.
        generator: the random source of the probes.

    Returns:
        The log-density, of ``x``'s batch shape, and the :class:`~gendist.samplers.ode.ODEStats`.

    Raises:
        ODEError: if the adaptive solver cannot reach the tolerance.

    Example:
        >>> from gendist.diffusion import VP
        >>> from gendist.testing.diffusion import DiffusedMixture
        >>> gm = DiffusedMixture(VP(), torch.ones(1), torch.zeros(1, 2), 1.0)  # N(0, I) data
        >>> x = torch.randn(4, 2)
        >>> lp, _ = probability_flow_log_prob(gm.denoiser, gm.sde, x, event_dim=1)
        >>> bool(torch.allclose(lp, gm.log_prob(x, gm.sde.t_min), atol=1e-3))
        True
    """
    if probe not in PROBES:
        raise ValueError(f"probability_flow_log_prob: `probe` must be one of {PROBES}, got {probe!r}")
    check_integer("probability_flow_log_prob: `probes`", probes, low=1)
    t0 = sde.t_min if t_min is None else float(sde.check_time(t_min, "t_min"))
    if t0 >= sde.T:
        raise ValueError(f"probability_flow_log_prob: `t_min` must be below T = {sde.T}, got {t0}")
    batch, event = x.shape[: x.dim() - event_dim], x.shape[x.dim() - event_dim :]
    grad_on = torch.is_grad_enabled()
    eps = None
    if hutchinson:
        eps = torch.randn((probes,) + x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        if probe == "rademacher":
            eps = eps.sign()

    def rhs(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        y = state[0]
        with torch.enable_grad():
            y = y if y.requires_grad else y.detach().requires_grad_()
            tt = t.reshape(())
            a, s = sde.alpha(tt), sde.sigma(tt)
            score = (a * denoiser(y, tt) - y) / s**2
            v = sde.f(tt) * y - 0.5 * sde.g2(tt) * score
            div = divergence(v, y, event_dim, eps, create_graph=grad_on)
        if not grad_on:
            v, div = v.detach(), div.detach()
        return v, div

    zero = torch.zeros(batch, dtype=x.dtype, device=x.device)
    (xT, delta), stats = odeint(rhs, (x, zero), t0, sde.T, method=method, steps=steps, rtol=rtol, atol=atol,
                               max_steps=max_steps)
    prior = sde.prior(event, dtype=x.dtype, device=x.device) if prior is None else prior
    return prior.log_prob(xT) + delta, stats
