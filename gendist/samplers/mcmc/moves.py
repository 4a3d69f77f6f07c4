r"""One transition of the chains' state :math:`(x, \log f(x), \nabla \log f(x))`: Langevin, MALA, HMC, Gibbs."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gendist.samplers.mcmc.core import (
    MCMCError,
    Target,
    _chain_finite,
    _event_sum,
    _finite,
    _noise,
    _per_chain,
    draw_uniform,
    log_prob_and_grad,
)


def _ula_move(target: Target, x: Tensor, grad: Tensor, step: float | Tensor, scale: Tensor,
              generator: torch.Generator | None, name: str, i: int) -> tuple[Tensor, Tensor, Tensor]:
    new = x.detach() + step * grad + scale * _noise(x, generator)
    lp, grad = log_prob_and_grad(target, new)
    _finite(name, i + 1, new, lp, x)
    return new, lp, grad


def _mala_move(target: Target, x: Tensor, lp: Tensor, grad: Tensor, eps: Tensor,
               generator: torch.Generator | None, name: str, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    mean = x + eps * grad
    new = mean + (2 * eps).sqrt() * _noise(x, generator)
    lp_new, grad_new = log_prob_and_grad(target, new)
    if bool(torch.isnan(lp_new).any()):  # -inf (outside the support) is a rejection; NaN is a broken energy
        raise MCMCError(f"{name}: the log-density of a proposal is NaN at step {i + 1}; the last finite state "
                        "is `error.state`. Check the energy for NaN (an energy L2 penalty keeps a trained "
                        "energy bounded), or lower `step_size`", i + 1, x)
    event = tuple(range(lp.dim(), x.dim()))
    back = new + eps * grad_new
    log_q_fwd = -((new - mean) ** 2 / (4 * eps)).sum(event) if event else -((new - mean) ** 2 / (4 * eps))
    log_q_bwd = -((x - back) ** 2 / (4 * eps)).sum(event) if event else -((x - back) ** 2 / (4 * eps))
    log_alpha = (lp_new + log_q_bwd - lp - log_q_fwd).nan_to_num(nan=-math.inf)
    alpha = log_alpha.clamp(max=0).exp()
    accept = draw_uniform(lp.shape, lp, generator) < alpha
    x = torch.where(_per_chain(accept, x), new, x)
    lp = torch.where(accept, lp_new, lp)
    grad = torch.where(_per_chain(accept, grad), grad_new, grad)
    _finite(name, i + 1, x, lp, x)
    return x, lp, grad, alpha


def _hmc_move(target: Target, x: Tensor, lp: Tensor, grad: Tensor, eps: Tensor, leapfrog: int, mass: Tensor,
              generator: torch.Generator | None, name: str, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    batch = lp.dim()
    p = _noise(x, generator) * mass.sqrt()
    h0 = 0.5 * _event_sum(p * p / mass, batch) - lp
    q, lq, g = x, lp, grad
    p = p + 0.5 * eps * g
    for j in range(leapfrog):
        q = q + eps * p / mass
        lq, g = log_prob_and_grad(target, q)
        if bool((torch.isnan(lq) & _chain_finite(q, batch)).any()):
            raise MCMCError(f"{name}: the log-density is NaN at a finite point of the trajectory of step {i + 1}; "
                            "the last finite state is `error.state`. Check the energy for NaN (an energy L2 "
                            "penalty keeps a trained energy bounded), or lower `step_size`", i + 1, x)
        p = p + (eps if j + 1 < leapfrog else 0.5 * eps) * g
    h1 = 0.5 * _event_sum(p * p / mass, batch) - lq
    log_alpha = (h0 - h1).nan_to_num(nan=-math.inf)  # a trajectory that left the finite numbers is rejected
    alpha = log_alpha.clamp(max=0).exp()
    divergent = ~torch.isfinite(h1) | (h1 - h0 > 1000.0)
    accept = (draw_uniform(lp.shape, lp, generator) < alpha) & ~divergent
    x = torch.where(_per_chain(accept, x), q, x)
    lp = torch.where(accept, lq, lp)
    grad = torch.where(_per_chain(accept, grad), g, grad)
    _finite(name, i + 1, x, lp, x)
    return x, lp, grad, alpha.masked_fill(divergent, 0.0), divergent


def _gibbs_sweep(target: Target, x: Tensor, generator: torch.Generator | None, name: str, i: int) -> Tensor:
    new = target.gibbs(x, generator)  # type: ignore[attr-defined]
    if not isinstance(new, Tensor) or new.shape != x.shape:
        raise ValueError(f"{name}: `target.gibbs(x, generator)` must return the new state, of shape "
                         f"{tuple(x.shape)}, got {tuple(getattr(new, 'shape', ()))}")
    if not bool(torch.isfinite(new).all()):
        raise MCMCError(f"{name}: the Gibbs sweep produced NaN or infinite values at step {i + 1}; the last "
                        "finite state is `error.state`. Check the energy for NaN", i + 1, x)
    return new.detach()


def _need_gibbs(name: str, target: Target) -> None:
    if not callable(getattr(target, "gibbs", None)):
        raise TypeError(f"{name}: the Gibbs kernel needs a target with a method `gibbs(x, generator)` (one block "
                        f"Gibbs sweep, returning the new state), which {type(target).__name__} lacks: an RBM's "
                        "energy provides it (EnergyBased(...).target()); use 'mala' or 'hmc' for real values")
