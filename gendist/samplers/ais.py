r"""Annealed importance sampling: :math:`\log Z` of an unnormalized density, forward (a stochastic lower bound)
and reverse (a stochastic upper bound).

Between a base :math:`f_0` of known normalizer :math:`Z_0` and the target :math:`f_1`, the intermediate
densities :math:`f_\beta` (for instance :math:`f_0^{1-\beta} f_1^\beta`) are visited at
:math:`0 = \beta_0 < \beta_1 < \dots < \beta_K = 1`. A chain started from :math:`f_0` and moved by a
transition :math:`T_{\beta_k}` that leaves :math:`f_{\beta_k}` invariant carries the weight

.. math:: \log w = \sum_{k=1}^{K} \log f_{\beta_k}(x_{k-1}) - \log f_{\beta_{k-1}}(x_{k-1}),

with :math:`E[w] = Z_1 / Z_0`: :math:`\log \hat Z = \log Z_0 + \log \frac1N \sum_n w_n` is unbiased in
:math:`Z` and so, by Jensen, a lower bound of :math:`\log Z` in expectation. Run backwards from exact draws of
the target, the same weights estimate :math:`Z_0 / Z_1` without bias, so the reverse estimate
:math:`\log Z_0 - \log \frac1N \sum_n w_n` is an upper bound in expectation (Burda, Grosse & Salakhutdinov,
2015): the two bracket :math:`\log Z`. The standard error is the delta method's,
:math:`\mathrm{sd}(w) / (\bar w \sqrt N)`.

Example:
    >>> import torch
    >>> # from N(0, 1) (Z0 = sqrt(2 pi)) to f1(x) = exp(-x^2 / 8), whose log Z is log sqrt(8 pi) = 1.6121
    >>> log_f = lambda x, b: -0.5 * x.pow(2).squeeze(-1) * ((1 - b) + b / 4)
    >>> step = lambda x, b, g: x * 0 + torch.randn(x.shape, generator=g) / ((1 - b) + b / 4) ** 0.5
    >>> g = torch.Generator().manual_seed(0)
    >>> out = ais(log_f, step, torch.randn(500, 1, generator=g), torch.linspace(0, 1, 50), 0.5 * math.log(2 * math.pi),
    ...           generator=g)
    >>> abs(float(out.log_z) - 0.5 * math.log(8 * math.pi)) < 4 * float(out.stderr) + 1e-3
    True

References:
    | Annealed importance sampling (Neal, 2001)
    | On the quantitative analysis of deep belief networks (Salakhutdinov & Murray, 2008)
    | Accurate and conservative estimates of MRF log-likelihood using reverse annealing (Burda et al., 2015)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["AISResult", "ais", "log_mean_exp_and_stderr"]

LogF = Callable[[Tensor, Tensor], Tensor]
Transition = Callable[[Tensor, Tensor, "torch.Generator | None"], Tensor]


@dataclass
class AISResult:
    r"""An AIS estimate of :math:`\log Z`.

    Attributes:
        log_z: the estimate (one per batch entry).
        stderr: its standard error (the delta method's).
        log_weights: the chains' log-weights, ``(chains, *batch)``.
        x: the chains' final states.
        reverse: whether it ran backwards (an upper bound in expectation) or forwards (a lower bound).
    """

    log_z: Tensor
    stderr: Tensor
    log_weights: Tensor
    x: Tensor
    reverse: bool = False


def log_mean_exp_and_stderr(log_w: Tensor) -> tuple[Tensor, Tensor]:
    r""":math:`\log \frac1N \sum_n e^{\log w_n}` over dim 0 and its delta-method standard error
    :math:`\mathrm{sd}(w) / (\bar w \sqrt N)`."""
    n = log_w.shape[0]
    lme = torch.logsumexp(log_w, 0) - math.log(n)
    ratio = (log_w - lme).exp()  # w / mean(w)
    se = ratio.std(0, unbiased=True) / math.sqrt(n) if n > 1 else torch.full_like(lme, math.inf)
    return lme, se


def ais(
    log_f: LogF,
    transition: Transition,
    x: Tensor,
    betas: Tensor,
    log_z0: Tensor | float,
    *,
    reverse: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> AISResult:
    r"""Annealed importance sampling of :math:`\log Z_1` from :math:`\log Z_0`.

    Arguments:
        log_f: ``log_f(x, beta)``, the unnormalized log-density of the intermediate at ``beta`` (one value per
            chain: shape ``x.shape[:-event_dim]``); at ``beta=0`` the base, normalized by ``log_z0``.
        transition: ``transition(x, beta, generator)``, a Markov step leaving ``f_beta`` invariant.
        x: the chains' starting states (dim 0 the chains, then any batch, then the event): exact draws of the
            base (forward) or of the target (``reverse=True``).
        betas: the increasing schedule from 0 to 1 (reversed for ``reverse=True``).
        log_z0: the base's log-normalizer.
        reverse: run from the target to the base: the estimate is an upper bound in expectation.
        generator: the source of the transitions' randomness.
        progress: show a progress bar.

    Returns:
        An :class:`AISResult`.
    """
    betas = torch.as_tensor(betas, dtype=x.dtype, device=x.device)
    if betas.dim() != 1 or len(betas) < 2:
        raise ValueError(f"ais: `betas` must be a 1-D schedule of at least 2 values, got shape {tuple(betas.shape)}")
    if not (float(betas[0]) == 0.0 and float(betas[-1]) == 1.0 and bool((betas[1:] > betas[:-1]).all())):
        raise ValueError("ais: `betas` must increase strictly from 0 to 1 (reverse=True runs it backwards)")
    if len(x) < 2:
        raise ValueError(f"ais: needs at least 2 chains (dim 0 of `x`) for a standard error, got {len(x)}")
    order = betas.flip(0) if reverse else betas
    log_w = torch.zeros((), dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for k in tqdm(range(1, len(order)), disable=not progress, leave=False, desc="ais"):
            log_w = log_w + log_f(x, order[k]) - log_f(x, order[k - 1])
            if k < len(order) - 1:
                x = transition(x, order[k], generator)
    if not bool(torch.isfinite(log_w).all()):
        raise FloatingPointError("ais: a chain's log-weight is not finite; check the energy for NaN or infinity")
    lme, se = log_mean_exp_and_stderr(log_w)
    log_z = log_z0 - lme if reverse else log_z0 + lme
    return AISResult(torch.as_tensor(log_z, dtype=x.dtype, device=x.device), se, log_w, x, reverse)
