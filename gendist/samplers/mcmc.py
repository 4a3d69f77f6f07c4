r"""MCMC samplers of unnormalized densities: plain functions with one signature that own their loop.

Every sampler is ``sample_xxx(target, x, steps, *, generator, progress, callback, keep, thin, ...) -> MCMCResult``.
``target(x)`` is the log-density up to a constant, :math:`\log f(x) = -E(x)`, summed over the event: one value
per chain, of shape ``x.shape[:x.dim() - event_dim]``. ``x`` holds the chains' starting states (any leading
shape of independent chains, then the event); ``steps`` transitions are taken, and the result holds the final
states, the last ``keep`` states (every ``thin``-th), and diagnostics: the mean acceptance probability per
chain (Metropolis-adjusted samplers) and the effective sample size of the kept states (by
:func:`pyro.ops.stats.effective_sample_size`).

A chain whose state or log-density stops being finite stops the sampler with an :class:`MCMCError` that names
the step and holds the last finite state (``error.state``): never silently.

Example:
    >>> import torch
    >>> target = lambda x: -0.5 * x.pow(2).sum(-1)             # N(0, I), up to its constant
    >>> out = sample_mala(target, torch.zeros(100, 2), 200, step_size=0.5, generator=torch.Generator().manual_seed(0))
    >>> out.x.shape, 0.3 < out.acceptance_rate < 1.0
    (torch.Size([100, 2]), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from pyro.ops.stats import effective_sample_size
from torch import Tensor
from tqdm.auto import tqdm

from gendist._checks import check_integer

__all__ = [
    "MCMC_SAMPLERS",
    "MCMCError",
    "MCMCResult",
    "Target",
    "check_step_size",
    "log_prob_and_grad",
    "sample_mala",
    "sample_ula",
]

Target = Callable[[Tensor], Tensor]
Callback = Callable[[dict[str, Any]], None]


class MCMCError(FloatingPointError):
    r"""A chain produced NaN or infinite values; ``state`` is the last state whose every entry was finite."""

    def __init__(self, message: str, step: int, state: Tensor) -> None:
        super().__init__(message)
        self.step, self.state = step, state


@dataclass
class MCMCResult:
    r"""What a sampler returns.

    Attributes:
        x: the final states, the shape of the starting ``x``.
        samples: the kept states, ``(keep, *x.shape)`` (None when ``keep=0``).
        acceptance: the mean acceptance probability of each chain (None for samplers that accept every move).
        steps: the transitions taken.
        info: sampler-specific diagnostics (the step size used, swap rates of parallel tempering, ...).
    """

    x: Tensor
    samples: Tensor | None = None
    acceptance: Tensor | None = None
    steps: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float:
        r"""The acceptance probability averaged over chains and steps (1.0 for samplers that accept every move)."""
        return 1.0 if self.acceptance is None else float(self.acceptance.float().mean())

    def ess(self, event_dim: int = 1) -> Tensor:
        r"""The effective sample size of each entry of the event, pooled over the chains (the kept states).

        Computed by :func:`pyro.ops.stats.effective_sample_size` with the chains (every leading dimension of
        ``x`` before the last ``event_dim``) as its chain dimension.
        """
        if self.samples is None or len(self.samples) < 2:
            raise ValueError("MCMCResult.ess: keep at least 2 states (keep=...) to estimate an effective sample size")
        n = self.samples.shape[0]
        event = self.samples.shape[self.samples.dim() - event_dim:] if event_dim else torch.Size()
        flat = self.samples.reshape(n, -1, *event).movedim(0, 1)  # (chains, draws, *event)
        return effective_sample_size(flat.double(), chain_dim=0, sample_dim=1).to(self.samples.dtype)


def check_step_size(name: str, step_size: float | Tensor) -> None:
    r"""Raise a ``ValueError`` naming ``name`` unless every step size is positive and finite."""
    s = torch.as_tensor(step_size)
    if not bool(torch.isfinite(s).all()) or not bool((s > 0).all()):
        raise ValueError(f"{name}: `step_size` must be positive and finite, got {step_size!r}")


def _check(name: str, x: Tensor, steps: int, keep: int, thin: int) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name}: `x` (the chains' starting states) must be a floating-point tensor, "
                        f"got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() == 0 or x.numel() == 0:
        raise ValueError(f"{name}: `x` must hold at least one chain (one state), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: the starting states `x` have NaN or infinite entries; expected finite values")
    check_integer(f"{name}: `steps`", steps, low=0)
    check_integer(f"{name}: `keep`", keep, low=0)
    check_integer(f"{name}: `thin`", thin, low=1)
    if keep * thin > steps:
        raise ValueError(f"{name}: cannot keep {keep} states every {thin} steps out of {steps} steps")


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _uniform(shape: torch.Size, like: Tensor, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def _per_chain(mask: Tensor, x: Tensor) -> Tensor:
    r"""A per-chain tensor broadcast over the event dimensions of ``x``."""
    return mask.reshape(mask.shape + (1,) * (x.dim() - mask.dim()))


def log_prob_and_grad(target: Target, x: Tensor) -> tuple[Tensor, Tensor]:
    r"""``target(x)`` and its gradient in ``x`` (detached: samplers do not differentiate through their chains)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        lp = target(x)
        (grad,) = torch.autograd.grad(lp.sum(), x)
    return lp.detach(), grad


def _finite(name: str, i: int, x: Tensor, lp: Tensor, last: Tensor) -> None:
    r"""Raise :class:`MCMCError` at step ``i`` if a state or its log-density is not finite."""
    if not bool(torch.isfinite(lp).all()) or not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(lp)).sum())
        raise MCMCError(
            f"{name}: the chain produced NaN or infinite values at step {i} ({bad} chains with a non-finite "
            "log-density); the last finite state is `error.state`. Lower `step_size`, or check the energy "
            "for NaN (an energy L2 penalty keeps a trained energy bounded)", i, last)


def _steps(steps: int, progress: bool, name: str) -> Iterator[int]:
    return iter(tqdm(range(steps), disable=not progress, leave=False, desc=name))


class _Keeper:
    r"""Keeps the last ``keep`` states, every ``thin``-th step."""

    def __init__(self, steps: int, keep: int, thin: int) -> None:
        self.first = steps - keep * thin  # keep states after steps first + thin - 1, first + 2 thin - 1, ...
        self.thin, self.kept = thin, []

    def __call__(self, i: int, x: Tensor) -> None:
        if i >= self.first and (i - self.first + 1) % self.thin == 0:
            self.kept.append(x.detach().clone())

    def stack(self) -> Tensor | None:
        return torch.stack(self.kept) if self.kept else None


def sample_ula(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    step_size: float = 1e-2,
    keep: int = 0,
    thin: int = 1,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> MCMCResult:
    r"""The unadjusted Langevin algorithm: the Euler–Maruyama discretisation of the Langevin diffusion.

    .. math:: x_{i+1} = x_i + \epsilon \nabla \log f(x_i) + \sqrt{2 \epsilon}\, z_i, \qquad z_i \sim \mathcal{N}(0, I)

    Step and noise are coupled (noise :math:`\sqrt{2\epsilon}`): the chain's stationary law tends to
    :math:`f / Z` as :math:`\epsilon \to 0`, with a bias of order :math:`\epsilon` at a fixed step
    (:func:`sample_mala` removes it).

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states.
        steps: the number of transitions.
        step_size: :math:`\epsilon` (a number, or a tensor broadcasting against ``x``).
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the noise.
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob"}``.

    Example:
        >>> out = sample_ula(lambda x: -0.5 * x.pow(2).sum(-1), torch.zeros(4, 2), 10, step_size=0.1)
        >>> out.x.shape, out.acceptance is None
        (torch.Size([4, 2]), True)

    References:
        | Exponential convergence of Langevin distributions and their discrete approximations
        | (Roberts & Tweedie, 1996)
    """
    name = "sample_ula"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    keeper = _Keeper(steps, keep, thin)
    lp, grad = log_prob_and_grad(target, x)
    _finite(name, 0, x, lp, x)
    scale = math.sqrt(2.0) * torch.as_tensor(step_size, dtype=x.dtype, device=x.device).sqrt()
    for i in _steps(steps, progress, name):
        new = x.detach() + step_size * grad + scale * _noise(x, generator)
        lp, grad = log_prob_and_grad(target, new)
        _finite(name, i + 1, new, lp, x)
        x = new
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x, "log_prob": lp})
    return MCMCResult(x, keeper.stack(), None, steps, {"step_size": step_size})


def sample_mala(
    target: Target,
    x: Tensor,
    steps: int,
    *,
    step_size: float = 1e-2,
    keep: int = 0,
    thin: int = 1,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> MCMCResult:
    r"""The Metropolis-adjusted Langevin algorithm: a Langevin proposal, accepted by Metropolis–Hastings.

    .. math:: x' = x + \epsilon \nabla \log f(x) + \sqrt{2 \epsilon}\, z, \qquad
        \alpha = \min\Big(1, \frac{f(x')\, q(x \mid x')}{f(x)\, q(x' \mid x)}\Big), \qquad
        \log q(x' \mid x) = -\frac{\lVert x' - x - \epsilon \nabla \log f(x) \rVert^2}{4 \epsilon}

    Its stationary law is exactly :math:`f / Z` for every step size; the acceptance probability of each chain,
    averaged over the steps, is returned (about 0.57 is optimal in high dimension).

    Arguments:
        target: the log-density up to a constant, one value per chain.
        x: the chains' starting states.
        steps: the number of transitions.
        step_size: :math:`\epsilon` (a number, or a per-chain tensor broadcasting against ``x``).
        keep, thin: keep the last ``keep`` states, every ``thin``-th step.
        generator: the source of the noise and of the accept/reject draws.
        progress: show a progress bar.
        callback: called after each step with ``{"i", "x", "log_prob", "accept"}``.

    Example:
        >>> out = sample_mala(lambda x: -0.5 * x.pow(2).sum(-1), torch.zeros(4, 2), 10, step_size=0.5, keep=5)
        >>> out.samples.shape, out.acceptance.shape
        (torch.Size([5, 4, 2]), torch.Size([4]))

    References:
        | Exponential convergence of Langevin distributions and their discrete approximations
        | (Roberts & Tweedie, 1996)
    """
    name = "sample_mala"
    _check(name, x, steps, keep, thin)
    check_step_size(name, step_size)
    keeper = _Keeper(steps, keep, thin)
    x = x.detach()
    lp, grad = log_prob_and_grad(target, x)
    _finite(name, 0, x, lp, x)
    eps = torch.as_tensor(step_size, dtype=x.dtype, device=x.device)
    event = tuple(range(lp.dim(), x.dim()))
    accepted = torch.zeros_like(lp)
    for i in _steps(steps, progress, name):
        mean = x + eps * grad
        new = mean + (2 * eps).sqrt() * _noise(x, generator)
        lp_new, grad_new = log_prob_and_grad(target, new)
        if bool(torch.isnan(lp_new).any()):  # -inf (outside the support) is a rejection; NaN is a broken energy
            raise MCMCError(f"{name}: the log-density of a proposal is NaN at step {i + 1}; the last finite state "
                            "is `error.state`. Check the energy for NaN (an energy L2 penalty keeps a trained "
                            "energy bounded), or lower `step_size`", i + 1, x)
        back = new + eps * grad_new
        log_q_fwd = -((new - mean) ** 2 / (4 * eps)).sum(event) if event else -((new - mean) ** 2 / (4 * eps))
        log_q_bwd = -((x - back) ** 2 / (4 * eps)).sum(event) if event else -((x - back) ** 2 / (4 * eps))
        log_alpha = (lp_new + log_q_bwd - lp - log_q_fwd).nan_to_num(nan=-math.inf)
        alpha = log_alpha.clamp(max=0).exp()
        accept = _uniform(lp.shape, lp, generator) < alpha
        accepted += alpha
        x = torch.where(_per_chain(accept, x), new, x)
        lp = torch.where(accept, lp_new, lp)
        grad = torch.where(_per_chain(accept, grad), grad_new, grad)
        _finite(name, i + 1, x, lp, x)
        keeper(i, x)
        if callback is not None:
            callback({"i": i, "x": x, "log_prob": lp, "accept": alpha})
    acceptance = accepted / max(steps, 1)
    return MCMCResult(x, keeper.stack(), acceptance, steps, {"step_size": step_size})


MCMC_SAMPLERS: dict[str, Callable[..., MCMCResult]] = {
    "ula": sample_ula,
    "mala": sample_mala,
}
r"""The MCMC samplers by name (what :class:`~gendist.distributions.EnergyBased` takes as ``sampler``)."""
