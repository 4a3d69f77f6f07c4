r"""Hamiltonian Monte Carlo with a fixed trajectory length."""

from __future__ import annotations

import torch
from torch import Tensor

from gendist._checks import check_integer
from gendist.samplers.mcmc.core import (
    Callback,
    MCMCResult,
    Target,
    _as,
    _check,
    _check_positive,
    _Keeper,
    _start,
    _steps,
    check_step_size,
)
from gendist.samplers.mcmc.moves import _hmc_move


def sample_hmc(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    keep: int = 0,
    thin: int = 1,
    step_size: float | Tensor = 0.1,
    leapfrog: int = 10,
    mass: float | Tensor | None = None,
) -> MCMCResult:
    r"""Hamiltonian Monte Carlo with a fixed trajectory: ``leapfrog`` leapfrog steps, then a Metropolis test.

    With a momentum :math:`p \sim \mathcal{N}(0, M)` (diagonal mass :math:`M`) and
    :math:`H(x, p) = -\log f(x) + \tfrac12 p^\top M^{-1} p`, each transition integrates Hamilton's equations by
    :math:`L` leapfrog steps of size :math:`\epsilon`,

    .. math:: p \leftarrow p + \tfrac\epsilon2 \nabla \log f(x), \quad x \leftarrow x + \epsilon M^{-1} p, \quad
        p \leftarrow p + \tfrac\epsilon2 \nabla \log f(x),

    and accepts the end point with probability :math:`\min(1, e^{H(x, p) - H(x', p')})`, chain by chain: the
    chains' law stays exactly :math:`f / Z`. The trajectory :math:`L \epsilon` should be of the order of the
    target's scale (too short, a random walk; too long, it wastes gradients); the acceptance probability of each
    chain is returned (0.6 to 0.9 is good). A trajectory that leaves the finite numbers is rejected and counted
    in ``info["divergences"]`` (per chain); a NaN log-density at a finite point is an :class:`MCMCError`.

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states.
        steps: the number of transitions (each takes ``leapfrog`` gradients).
        step_size: :math:`\epsilon` (a number, or a tensor broadcasting against ``x``).
        leapfrog: :math:`L`, the leapfrog steps of a trajectory.
        mass: the diagonal of :math:`M` (a number, or a tensor broadcasting against ``x``: per entry of the event,
            ideally the inverse variances of the target); 1 by default.
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the momenta and of the accept/reject draws.
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob", "accept"}``.

    Example:
        >>> target = lambda x: -0.5 * x.pow(2).sum(-1)
        >>> out = sample_hmc(target, torch.zeros(4, 2), 20, step_size=0.3, leapfrog=5, keep=10)
        >>> out.samples.shape, out.acceptance.shape, out.acceptance_rate > 0.8
        (torch.Size([10, 4, 2]), torch.Size([4]), True)

    References:
        | Hybrid Monte Carlo (Duane, Kennedy, Pendleton & Roweth, 1987)
        | MCMC using Hamiltonian dynamics (Neal, 2011)
    """
    name = "sample_hmc"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    leapfrog = check_integer(f"{name}: `leapfrog`", leapfrog, low=1)
    if mass is not None:
        _check_positive(name, "mass", mass)
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    lp, grad = _start(name, target, x)
    eps = _as(step_size, x)
    m = _as(1.0 if mass is None else mass, x)
    accepted = torch.zeros_like(lp)
    divergences = torch.zeros(lp.shape, dtype=torch.long, device=x.device)
    for i in _steps(steps, progress, name):
        x, lp, grad, alpha, divergent = _hmc_move(target, x, lp, grad, eps, leapfrog, m, generator, name, i)
        accepted += alpha
        divergences += divergent
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x, "log_prob": lp, "accept": alpha})
    info = {"step_size": step_size, "leapfrog": leapfrog, "mass": mass, "divergences": divergences}
    return MCMCResult(x, keeper.stack(), accepted / max(steps, 1), steps, info)
