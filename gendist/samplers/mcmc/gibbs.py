r"""Block Gibbs sampling of a target that offers its sweeps (an RBM's)."""

from __future__ import annotations

import torch
from torch import Tensor

from gendist.samplers.mcmc.core import Callback, MCMCResult, Target, _check, _check_log_prob, _finite, _Keeper, _steps
from gendist.samplers.mcmc.moves import _gibbs_sweep, _need_gibbs


def sample_gibbs(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    keep: int = 0,
    thin: int = 1,
) -> MCMCResult:
    r"""Block Gibbs sampling: each step is one sweep ``target.gibbs(x, generator)`` that draws every block of
    variables from its conditional law given the others (an RBM: all hidden units given the visible ones, then
    all visible given the hidden), which leaves :math:`f / Z` invariant and accepts every move.

    The target must offer ``gibbs(x, generator) -> Tensor`` (the new state, drawn with ``generator``); an RBM's
    energy does (``EnergyBased(...).target()``), and its ``tempered(beta)`` target sweeps :math:`f^\beta`.
    Binary values are floats (0.0 and 1.0).

    Arguments:
        target: the log-density up to a constant, one value per chain, with a ``gibbs`` method.
        x: the chains' starting states.
        steps: the number of sweeps.
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the sweeps' draws.
        progress: show a progress bar.
        callback: called after each sweep with ``{"i", "x"}``.

    Example:
        >>> class Coins:  # independent coins of probability sigmoid(1): log f(x) = sum x
        ...     def __call__(self, x): return x.sum(-1)
        ...     def gibbs(self, x, g): return torch.bernoulli(torch.full_like(x, 0.7311), generator=g)
        >>> out = sample_gibbs(Coins(), torch.zeros(1000, 3), 2)
        >>> round(out.x.mean().item(), 1)
        0.7

    References:
        | Stochastic relaxation, Gibbs distributions, and the Bayesian restoration of images (Geman & Geman, 1984)
    """
    name = "sample_gibbs"
    _check(name, x, steps, keep, thin)
    _need_gibbs(name, target)
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    with torch.no_grad():
        lp = target(x)
    _check_log_prob(name, lp, x)
    _finite(name, 0, x, lp, x)
    for i in _steps(steps, progress, name):
        x = _gibbs_sweep(target, x, generator, name, i)
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x})
    return MCMCResult(x, keeper.stack(), None, steps, {})
