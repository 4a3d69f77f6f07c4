r"""The chains' shared parts: the result, the error, argument checks, keeping states, tempered targets."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pyro.ops.stats import effective_sample_size
from torch import Tensor
from tqdm.auto import tqdm

from gendist._checks import check_integer

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
    _check_positive(name, "step_size", step_size)


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


def draw_normal(shape: torch.Size, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Standard normal draws of ``shape`` in ``like``'s dtype and on its device, from ``generator`` (on its own
    device: a CPU generator serves CUDA tensors too)."""
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def draw_uniform(shape: torch.Size, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Uniform draws on :math:`[0, 1)`, as :func:`draw_normal`."""
    device = generator.device if generator is not None else like.device
    return torch.rand(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return draw_normal(x.shape, x, generator)


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


def _start(name: str, target: Target, x: Tensor) -> tuple[Tensor, Tensor]:
    r"""``target(x)`` and its gradient at the starting states, with the shape of the log-density checked."""
    lp, grad = log_prob_and_grad(target, x)
    _check_log_prob(name, lp, x)
    _finite(name, 0, x, lp, x)
    return lp, grad


def _check_log_prob(name: str, lp: Tensor, x: Tensor) -> None:
    if not isinstance(lp, Tensor) or lp.shape != x.shape[: lp.dim()]:
        raise ValueError(f"{name}: `target(x)` must return one log-density per chain, of shape x.shape[:batch] "
                         f"(a prefix of {tuple(x.shape)}), got {tuple(getattr(lp, 'shape', ()))}")


def _event_sum(t: Tensor, batch: int) -> Tensor:
    r"""``t`` summed over its dimensions after the first ``batch`` (the event)."""
    return t.sum(tuple(range(batch, t.dim()))) if t.dim() > batch else t


def _chain_finite(x: Tensor, batch: int) -> Tensor:
    r"""Whether every entry of each chain's state is finite, shape ``x.shape[:batch]``."""
    ok = torch.isfinite(x)
    return ok.flatten(batch).all(-1) if x.dim() > batch else ok


def _as(value: float | Tensor, x: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=x.dtype, device=x.device)


def _check_positive(name: str, what: str, value: float | Tensor) -> None:
    v = torch.as_tensor(value)
    if not bool(torch.isfinite(v).all()) or not bool((v > 0).all()):
        raise ValueError(f"{name}: `{what}` must be positive and finite, got {value!r}")


def geometric_betas(levels: int, low: float = 0.01, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> Tensor:
    r"""``levels`` inverse temperatures spaced geometrically from ``low`` to 1: :math:`\beta_k = \text{low}^{1 -
    k / (K - 1)}` (just ``[1.0]`` for one level).

    Example:
        >>> geometric_betas(3, 0.01)
        tensor([0.0100, 0.1000, 1.0000])
    """
    levels = check_integer("geometric_betas: `levels`", levels, low=1)
    if not 0.0 < float(low) < 1.0:
        raise ValueError(f"geometric_betas: `low` must be in (0, 1), got {low!r}")
    if levels == 1:
        return torch.ones(1, dtype=dtype, device=device)
    out = torch.logspace(math.log10(low), 0.0, levels, dtype=torch.float64)
    out[-1] = 1.0
    return out.to(dtype=dtype or torch.get_default_dtype(), device=device)


def _betas(name: str, betas: int | Sequence[float] | Tensor, low: float, x: Tensor) -> Tensor:
    r"""The inverse temperatures as a tensor: increasing, positive, the last one 1."""
    if isinstance(betas, int) and not isinstance(betas, bool):
        check_integer(f"{name}: `betas` (a number of levels)", betas, low=1)
        if not 0.0 < float(low) < 1.0:
            raise ValueError(f"{name}: `beta_min` must be in (0, 1), got {low!r}")
        return geometric_betas(betas, low, x.dtype, x.device)
    b = torch.as_tensor(betas, dtype=x.dtype, device=x.device).detach()
    if (b.dim() != 1 or len(b) == 0 or not bool(torch.isfinite(b).all()) or not bool((b > 0).all())
            or not bool((b[1:] > b[:-1]).all()) or abs(float(b[-1]) - 1.0) > 1e-6):
        raise ValueError(f"{name}: `betas` must be increasing inverse temperatures 0 < beta_1 < ... < beta_K = 1 "
                         f"(or a number of geometric levels), got {betas!r}")
    return torch.cat([b[:-1], b.new_ones(1)])


class Tempered:
    r"""The tempered target :math:`x \mapsto \beta \log f(x)`, the density :math:`f^\beta` (picklable).

    ``beta`` is a number, or a tensor broadcasting against ``target(x)`` (one per replica of parallel tempering).
    """

    def __init__(self, target: Target, beta: float | Tensor) -> None:
        self.target, self.beta = target, beta

    def __call__(self, x: Tensor) -> Tensor:
        return self.beta * self.target(x)

    def tempered(self, beta: float | Tensor) -> Tempered:
        return Tempered(self.target, self.beta * beta)


def temper(target: Target, beta: float | Tensor) -> Target:
    r"""The target of :math:`f^\beta`: ``target.tempered(beta)`` where the target has it (an energy's, whose
    tempered target keeps its ``gibbs`` sweeps), else :class:`Tempered`.

    Example:
        >>> t = temper(lambda x: -x.pow(2).sum(-1), 0.5)
        >>> t(torch.ones(1, 2))
        tensor([-1.])
    """
    own = getattr(target, "tempered", None)
    return own(beta) if callable(own) else Tempered(target, beta)
