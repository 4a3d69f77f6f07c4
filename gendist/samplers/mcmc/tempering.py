r"""Parallel tempering: replicas at several temperatures, moved by any kernel, with swaps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gendist._checks import check_integer
from gendist.samplers.mcmc.core import (
    Callback,
    MCMCError,
    MCMCResult,
    Target,
    _as,
    _betas,
    _check,
    _check_log_prob,
    _check_positive,
    _finite,
    _Keeper,
    _start,
    _steps,
    check_step_size,
    draw_uniform,
    temper,
)
from gendist.samplers.mcmc.moves import _gibbs_sweep, _hmc_move, _mala_move, _need_gibbs, _ula_move

_PT_KERNELS = ("mala", "hmc", "ula", "gibbs")


def sample_parallel_tempering(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    keep: int = 0,
    thin: int = 1,
    betas: int | Sequence[float] | Tensor = 4,
    beta_min: float = 0.1,
    kernel: str = "mala",
    step_size: float | Tensor = 0.1,
    leapfrog: int = 5,
    mass: float | Tensor | None = None,
    scale_step: bool = True,
) -> MCMCResult:
    r"""Parallel tempering (replica exchange): :math:`K` replicas of every chain at inverse temperatures
    :math:`\beta_1 < \dots < \beta_K = 1`, each moved by a kernel that leaves :math:`f^{\beta_k}` invariant, and
    adjacent replicas swapping states by Metropolis.

    Each step moves every replica by ``kernel`` (``"mala"``, ``"hmc"``, ``"ula"`` or ``"gibbs"``), then proposes
    to swap the states :math:`a, b` of replicas :math:`k, k + 1` for the pairs with :math:`k` of the step's parity
    (the even and odd pairs alternate: the deterministic even–odd scheme), accepted with probability

    .. math:: \min\Big(1, \exp\big((\beta_{k+1} - \beta_k)(\log f(a) - \log f(b))\big)\Big),

    chain by chain. The joint law of the replicas stays :math:`\prod_k f^{\beta_k}`, so the :math:`\beta = 1`
    replica (returned) follows :math:`f / Z` exactly with an exact kernel, while the hot replicas carry states
    between modes. ``info["swap_rates"]`` holds each adjacent pair's mean swap probability (a rate near 0 means
    a gap in the ladder: add replicas), ``info["replicas"]`` every replica's final states ``(K, *x.shape)``.

    The tempered targets are ``temper(target, beta)``: the target's own ``tempered(beta)`` where it has one (an
    energy's, which keeps its ``gibbs`` sweeps; it must be :math:`f^\beta`, i.e. ``beta * target(x)``), else
    :class:`Tempered`. The gradient kernels move all replicas in one call, on the stacked states of shape
    ``(K, *x.shape)`` with ``beta`` a tensor of shape ``(K, 1, ...)`` broadcasting against their log-densities
    (so the target must accept any leading chain dimensions, and its ``tempered`` a tensor ``beta``); the Gibbs
    kernel sweeps each replica with its own ``tempered(beta).gibbs``. With ``scale_step`` the step of replica :math:`k`
    grows as its density widens: :math:`\epsilon / \beta_k` for Langevin kernels, :math:`\epsilon /
    \sqrt{\beta_k}` for HMC.

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states (every replica starts there).
        steps: the number of transitions (each a move of every replica and a round of swaps).
        betas: the inverse temperatures (increasing, the last 1), or a number :math:`K` of them spaced
            geometrically from ``beta_min`` to 1.
        beta_min: the hottest inverse temperature of the geometric ladder.
        kernel: the move within a temperature.
        step_size, leapfrog, mass: the kernel's options (see :func:`sample_mala`, :func:`sample_hmc`).
        scale_step: scale the step of each replica with its temperature (above).
        keep, thin: keep the last ``keep`` states of the :math:`\beta = 1` replica, every ``thin``-th step.
        generator: the source of every draw (moves and swaps).
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "replicas", "swap"}`` (``swap``: the swap
            probabilities of the pairs tried, ``(K - 1, *chains)``, zero for the pairs not tried).

    Example:
        >>> target = lambda x: torch.logaddexp(-0.5 * (x - 3).pow(2).sum(-1), -0.5 * (x + 3).pow(2).sum(-1))
        >>> out = sample_parallel_tempering(target, torch.zeros(8, 2), 50, betas=[0.1, 0.3, 1.0], step_size=0.5)
        >>> out.x.shape, out.info["swap_rates"].shape, out.info["replicas"].shape
        (torch.Size([8, 2]), torch.Size([2]), torch.Size([3, 8, 2]))

    References:
        | Replica Monte Carlo simulation of spin-glasses (Swendsen & Wang, 1986)
        | Markov chain Monte Carlo maximum likelihood (Geyer, 1991)
        | Non-reversible parallel tempering: a scalable highly parallel MCMC scheme (Syed et al., 2022)
    """
    name = "sample_parallel_tempering"
    _check(name, x, steps, keep, thin)
    if kernel not in _PT_KERNELS:
        raise ValueError(f"{name}: unknown `kernel` {kernel!r}; expected one of {list(_PT_KERNELS)}")
    b = _betas(name, betas, beta_min, x)
    K = len(b)
    gibbs = kernel == "gibbs"
    if gibbs:
        targets = [temper(target, float(beta)) for beta in b]
        for t in targets:
            _need_gibbs(name, t)
    else:
        check_step_size(name, step_size)
        leapfrog = check_integer(f"{name}: `leapfrog`", leapfrog, low=1)
        if mass is not None:
            _check_positive(name, "mass", mass)
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    ys = x.unsqueeze(0).expand(K, *x.shape).clone()  # the replicas, coldest last
    bx = b.reshape(K, *(1,) * x.dim())
    try:
        if gibbs:
            with torch.no_grad():
                lf = target(ys)
            _check_log_prob(name, lf, ys)
            _finite(name, 0, ys, lf, ys)
        else:
            lf, gf = _start(name, target, ys)
        bl = b.reshape(K, *(1,) * (lf.dim() - 1))  # broadcasts against the log-densities (K, *chains)
        if not gibbs:
            eps = _as(step_size, x) * (bx ** (-0.5 if kernel == "hmc" else -1.0) if scale_step else 1.0)
            m = _as(1.0 if mass is None else mass, x)
            stacked = temper(target, bl)
            lp, grad = bl * lf, bx * gf
        dims = (1,) * (ys.dim() - lf.dim())
        pairs = torch.arange(K - 1, device=x.device).reshape(K - 1, *(1,) * (lf.dim() - 1))
        gaps = (b[1:] - b[:-1]).reshape(pairs.shape)
        accepted = torch.zeros_like(lf)
        divergences = torch.zeros(lf.shape, dtype=torch.long, device=x.device)
        swap_sum = torch.zeros(K - 1, dtype=x.dtype, device=x.device)
        swap_tries = torch.zeros(K - 1, dtype=x.dtype, device=x.device)
        for i in _steps(steps, progress, name):
            if gibbs:
                ys = torch.stack([_gibbs_sweep(targets[k], ys[k], generator, name, i) for k in range(K)])
                with torch.no_grad():
                    lf = target(ys)
                _finite(name, i + 1, ys, lf, ys)
            else:
                if kernel == "mala":
                    ys, lp, grad, alpha = _mala_move(stacked, ys, lp, grad, eps, generator, name, i)
                elif kernel == "hmc":
                    ys, lp, grad, alpha, divergent = _hmc_move(stacked, ys, lp, grad, eps, leapfrog, m, generator,
                                                               name, i)
                    divergences += divergent
                else:
                    ys, lp, grad = _ula_move(stacked, ys, grad, eps, (2 * eps).sqrt(), generator, name, i)
                    alpha = torch.ones_like(lp)
                accepted += alpha
                lf, gf = lp / bl, grad / bx
            swap = torch.zeros_like(lf[1:])
            if K > 1:  # swap the pairs (k, k + 1) with k of this step's parity, chain by chain
                tried = pairs % 2 == i % 2
                log_a = (gaps * (lf[:-1] - lf[1:])).nan_to_num(nan=-math.inf)
                swap = torch.where(tried, log_a.clamp(max=0).exp(), torch.zeros_like(log_a))
                go = (draw_uniform(swap.shape, swap, generator) < swap).long()
                perm = torch.arange(K, device=x.device).reshape(K, *(1,) * (lf.dim() - 1)).expand(lf.shape).clone()
                perm[:-1] += go
                perm[1:] -= go
                lf = lf.gather(0, perm)
                index = perm.reshape(perm.shape + dims).expand(ys.shape)
                ys = ys.gather(0, index)
                if not gibbs:
                    gf = gf.gather(0, index)
                    lp, grad = bl * lf, bx * gf
                swap_sum += swap.reshape(K - 1, -1).mean(1)
                swap_tries += tried.reshape(K - 1).to(x.dtype)
            keeper(i, ys[-1])
            if callback is not None:
                callback({"i": i, "x": ys[-1], "replicas": ys, "swap": swap})
    except MCMCError as e:  # the state of the beta = 1 replica, the shape of x
        raise MCMCError(str(e), e.step, e.state[-1] if e.state.shape[1:] == x.shape else e.state) from e
    acceptance = None if gibbs else accepted[-1] / max(steps, 1)
    info = {
        "betas": b,
        "swap_rates": swap_sum / swap_tries.clamp(min=1),
        "replicas": ys,
        "kernel": kernel,
        "acceptance": None if gibbs else accepted.reshape(K, -1).mean(1) / max(steps, 1),
    }
    if not gibbs:
        info["step_size"] = eps
    if kernel == "hmc":
        info["divergences"] = divergences
    return MCMCResult(ys[-1], keeper.stack(), acceptance, steps, info)
