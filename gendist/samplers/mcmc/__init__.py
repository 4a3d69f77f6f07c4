r"""MCMC samplers of unnormalized densities: plain functions with one signature that own their loop.

Every sampler is ``sample_xxx(target, x, steps, *, generator, progress, callback, keep, thin, ...) -> MCMCResult``.
``target(x)`` is the log-density up to a constant, :math:`\log f(x) = -E(x)`, summed over the event: one value
per chain, of shape ``x.shape[:x.dim() - event_dim]``. ``x`` holds the chains' starting states (any leading
shape of independent chains, then the event); ``steps`` transitions are taken, and the result holds the final
states, the last ``keep`` states (every ``thin``-th), and diagnostics: the mean acceptance probability per
chain (Metropolis-adjusted samplers) and the effective sample size of the kept states (by
:func:`pyro.ops.stats.effective_sample_size`).

The samplers (:data:`MCMC_SAMPLERS`, by name):

- ``"ula"``, ``"mala"``: Langevin steps, unadjusted or Metropolis-adjusted;
- ``"hmc"``: Hamiltonian Monte Carlo with a fixed trajectory (``leapfrog`` steps), optional diagonal mass;
- ``"annealed_langevin"``: Langevin through tempered densities :math:`f^{\beta_1}, \dots, f^{\beta_K} = f`;
- ``"sgld"``: Langevin steps for stochastic or learned energies, with an optional :class:`ReplayBuffer` of
  persistent chains (JEM / IGEBM);
- ``"gibbs"``: block Gibbs sweeps of a target that offers them (``target.gibbs(x, generator)``: an RBM's);
- ``"parallel_tempering"``: replicas at several temperatures moved by any of these kernels, with swaps;
- ``"nuts"``: the No-U-Turn sampler of Pyro, with its warmup adaptation.

Every random draw comes from ``generator`` (torch's global stream when None): a seeded generator gives the
same chains again, on the generator's device. A chain whose state or log-density stops being finite stops the
sampler with an :class:`MCMCError` that names the step and holds the last finite state (``error.state``):
never silently.

Example:
    >>> import torch
    >>> target = lambda x: -0.5 * x.pow(2).sum(-1)             # N(0, I), up to its constant
    >>> out = sample_mala(target, torch.zeros(100, 2), 200, step_size=0.5, generator=torch.Generator().manual_seed(0))
    >>> out.x.shape, 0.3 < out.acceptance_rate < 1.0
    (torch.Size([100, 2]), True)
"""


from __future__ import annotations

from collections.abc import Callable

from gendist.samplers.mcmc.core import (
    MCMCError,
    MCMCResult,
    Target,
    Tempered,
    check_step_size,
    draw_normal,
    draw_uniform,
    geometric_betas,
    log_prob_and_grad,
    temper,
)
from gendist.samplers.mcmc.gibbs import sample_gibbs
from gendist.samplers.mcmc.hmc import sample_hmc
from gendist.samplers.mcmc.langevin import sample_annealed_langevin, sample_mala, sample_sgld, sample_ula
from gendist.samplers.mcmc.nuts import sample_nuts
from gendist.samplers.mcmc.tempering import sample_parallel_tempering

__all__ = [
    "MCMC_SAMPLERS",
    "MCMCError",
    "MCMCResult",
    "Target",
    "Tempered",
    "check_step_size",
    "draw_normal",
    "draw_uniform",
    "geometric_betas",
    "log_prob_and_grad",
    "sample_annealed_langevin",
    "sample_gibbs",
    "sample_hmc",
    "sample_mala",
    "sample_nuts",
    "sample_parallel_tempering",
    "sample_sgld",
    "sample_ula",
    "temper",
]

MCMC_SAMPLERS: dict[str, Callable[..., MCMCResult]] = {
    "ula": sample_ula,
    "mala": sample_mala,
    "hmc": sample_hmc,
    "annealed_langevin": sample_annealed_langevin,
    "sgld": sample_sgld,
    "gibbs": sample_gibbs,
    "parallel_tempering": sample_parallel_tempering,
    "nuts": sample_nuts,
}
r"""The MCMC samplers by name (what :class:`~gendist.distributions.EnergyBased` takes as ``sampler``)."""
