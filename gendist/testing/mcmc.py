r"""Public checks of MCMC samplers: their chains' final states follow the target.

Each check runs a sampler (a name of :data:`~gendist.samplers.MCMC_SAMPLERS` or any function of the one sampler
signature) from given starting states, takes the final state of every chain (independent chains: independent
draws) and tests them against the target: a two-sample test against exact draws for real values, Pearson's
chi-square against exact probabilities for discrete ones. It raises an ``AssertionError`` saying what went wrong
and returns the sampler's :class:`~gendist.samplers.MCMCResult` otherwise.

Two uses: started from broad noise, the check tests convergence (the chains must forget their start and find
every mode in its proportion); started from exact draws (``x0 = reference``-like draws), it tests that the
sampler leaves the target invariant, which needs no burn-in and catches a wrong acceptance ratio in a few steps.

Example:
    >>> import torch
    >>> target = lambda x: -0.5 * x.pow(2).sum(-1)
    >>> g = torch.Generator().manual_seed(0)
    >>> out = check_mcmc("mala", target, torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g), 20,
    ...                  step_size=0.5, generator=g)
    >>> out.x.shape
    torch.Size([300, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gendist.metrics.two_sample import energy_distance, mmd
from gendist.samplers.mcmc import MCMC_SAMPLERS, MCMCResult
from gendist.testing.distributions import chi2_pvalue

__all__ = ["check_mcmc", "check_mcmc_discrete"]

Sampler = Callable[..., MCMCResult]


def _run(sampler: str | Sampler, target: Callable[[Tensor], Tensor], x0: Tensor, steps: int,
         generator: torch.Generator | None, options: dict[str, Any]) -> tuple[str, MCMCResult]:
    if isinstance(sampler, str):
        if sampler not in MCMC_SAMPLERS:
            raise ValueError(f"check_mcmc: unknown sampler {sampler!r}; expected one of {sorted(MCMC_SAMPLERS)} "
                             "or a sampler function")
        name, sampler = sampler, MCMC_SAMPLERS[sampler]
    else:
        name = getattr(sampler, "__name__", type(sampler).__name__)
    return name, sampler(target, x0, steps, generator=generator, **options)


def _describe(name: str, out: MCMCResult) -> str:
    acc = f", mean acceptance {out.acceptance_rate:.3f}" if out.acceptance is not None else ""
    return f"{name} after {out.steps} steps{acc}"


def check_mcmc(
    sampler: str | Sampler,
    target: Callable[[Tensor], Tensor],
    x0: Tensor,
    reference: Tensor,
    steps: int,
    *,
    test: str = "mmd",
    alpha: float = 0.01,
    permutations: int = 200,
    generator: torch.Generator | None = None,
    **options: Any,
) -> MCMCResult:
    r"""Check that the final states of ``sampler``'s chains follow the target, against exact draws.

    The final states (every chain, flattened to ``(N, *event)``) and ``reference`` (``(M, *event)``, exact draws
    of :math:`f / Z`) go through a permutation two-sample test (``"mmd"``: Gaussian-kernel MMD; ``"energy"``:
    the energy distance; :mod:`gendist.metrics.two_sample`); the check fails when its p-value is below
    ``alpha``. At a fixed seed the outcome is deterministic; under the null a fresh seed fails with probability
    ``alpha``.

    Arguments:
        sampler: a name of :data:`~gendist.samplers.MCMC_SAMPLERS`, or a sampler function.
        target: the log-density up to a constant.
        x0: the chains' starting states.
        reference: exact draws of the target, ``(M, *event)``.
        steps: the sampler's transitions.
        test: ``"mmd"`` or ``"energy"``.
        alpha: the level of the test.
        permutations: the permutations of the p-value.
        generator: the sampler's generator (the permutations use their own fixed one).
        options: the sampler's other arguments (``step_size``, ...).

    Returns:
        The sampler's result.
    """
    if test not in ("mmd", "energy"):
        raise ValueError(f"check_mcmc: `test` must be 'mmd' or 'energy', got {test!r}")
    name, out = _run(sampler, target, x0, steps, generator, options)
    event = reference.shape[1:]
    if out.x.shape[out.x.dim() - len(event):] != event:
        raise AssertionError(f"check_mcmc: {name} returned states of shape {tuple(out.x.shape)}, whose event does not "
                             f"match the reference's {tuple(event)}")
    final = out.x.detach().reshape(-1, *event)
    if not bool(torch.isfinite(final).all()):
        raise AssertionError(f"check_mcmc: {_describe(name, out)}, some chains are NaN or infinite")
    stat = mmd if test == "mmd" else energy_distance
    result = stat(final, reference.detach().to(final.device), permutations=permutations)
    if result.p_value < alpha:
        raise AssertionError(
            f"check_mcmc: the final states of {_describe(name, out)} do not follow the target: {test} two-sample "
            f"test of {len(final)} chains against {len(reference)} exact draws, statistic {result.statistic:.4g}, "
            f"p-value {result.p_value:.4g} < {alpha} (more steps, another step size, or a wrong sampler)")
    return out


def check_mcmc_discrete(
    sampler: str | Sampler,
    target: Callable[[Tensor], Tensor],
    x0: Tensor,
    states: Tensor,
    probs: Tensor,
    steps: int,
    *,
    alpha: float = 0.01,
    generator: torch.Generator | None = None,
    **options: Any,
) -> MCMCResult:
    r"""Check that the final states of ``sampler``'s chains follow exact probabilities over a finite support.

    Every final state must be one of ``states`` (``(S, *event)``); their counts are tested against
    :math:`N \cdot` ``probs`` (``(S,)``, normalized here) by Pearson's chi-square
    (:func:`~gendist.testing.chi2_pvalue`, cells expected below 5 pooled); the check fails when the p-value is
    below ``alpha``. For a binary energy, ``states`` is its enumeration (``EnergyBased.enumerate_support()``)
    and ``probs`` the softmax of :math:`-E` over it.

    Arguments:
        sampler: a name of :data:`~gendist.samplers.MCMC_SAMPLERS`, or a sampler function.
        target: the log-density up to a constant (with ``gibbs`` for the Gibbs sampler).
        x0: the chains' starting states.
        states: the support, ``(S, *event)``.
        probs: the probability of each state (up to a constant factor).
        steps: the sampler's transitions.
        alpha: the level of the test.
        generator: the sampler's generator.
        options: the sampler's other arguments.

    Returns:
        The sampler's result.

    Example:
        >>> class Coin:  # one coin of probability 0.7311 = sigmoid(1): log f(x) = x
        ...     def __call__(self, x): return x.sum(-1)
        ...     def gibbs(self, x, g): return torch.bernoulli(torch.full_like(x, 0.7311), generator=g)
        >>> out = check_mcmc_discrete("gibbs", Coin(), torch.zeros(500, 1), torch.tensor([[0.0], [1.0]]),
        ...                           torch.tensor([0.0, 1.0]).exp(), 3)
    """
    name, out = _run(sampler, target, x0, steps, generator, options)
    event = states.shape[1:]
    final = out.x.detach().reshape(-1, *event)
    states = states.to(final)
    match = (final[:, None] == states[None]).flatten(2).all(-1)  # (N, S)
    outside = ~match.any(1)
    if bool(outside.any()):
        raise AssertionError(f"check_mcmc_discrete: {_describe(name, out)}, {int(outside.sum())} of {len(final)} "
                             f"final states are none of the {len(states)} states, e.g. {final[outside][0].tolist()}")
    counts = match.double().sum(0).cpu()
    p = probs.detach().double().cpu().flatten()
    if p.shape != counts.shape or not bool((p >= 0).all()) or not float(p.sum()) > 0:
        raise ValueError(f"check_mcmc_discrete: `probs` must hold one nonnegative probability per state "
                         f"({len(states)}), got shape {tuple(probs.shape)}")
    expected = len(final) * p / p.sum()
    p_value = chi2_pvalue(counts, expected)
    if p_value < alpha:
        worst = int(((counts - expected).abs() / expected.clamp(min=1e-12).sqrt()).argmax())
        raise AssertionError(
            f"check_mcmc_discrete: the final states of {_describe(name, out)} do not follow the probabilities: "
            f"chi-square p-value {p_value:.4g} < {alpha} over {len(final)} chains (worst state "
            f"{states[worst].tolist()}: {int(counts[worst])} chains, {float(expected[worst]):.1f} expected)")
    return out
