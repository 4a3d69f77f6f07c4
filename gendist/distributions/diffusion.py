r"""A diffusion model as a distribution: sampled by a chosen sampler, scored by the probability-flow ODE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro.distributions as dist
import torch
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_integer, check_value
from gendist.distributions.base import Honest, LogProbKind
from gendist.samplers import SAMPLERS
from gendist.samplers.likelihood import PROBES, probability_flow_log_prob
from gendist.samplers.ode import METHODS
from gendist.sde import SDE, timesteps

__all__ = ["Diffusion"]

Denoise = Callable[[Tensor, Tensor, Tensor | None], Tensor]


class Diffusion(Honest, dist.TorchDistribution):
    r"""The distribution :math:`p_{t_0}` of a diffusion model: the prior :math:`p_T` carried back to
    :math:`t_0` (``sde.t_min``) by the probability-flow ODE of the model's score.

    ``log_prob(x)`` integrates the PF-ODE and its divergence
    (:func:`~gendist.samplers.likelihood.probability_flow_log_prob`) with the adaptive Dormand–Prince
    solver at ``rtol``/``atol``. The divergence is exact (``log_prob_kind = "exact"``, up to the solver's
    tolerance) when the event has at most ``exact_dim`` entries, and Hutchinson's unbiased estimate
    above (``log_prob_kind = "estimate"``); ``divergence`` forces either. The log-density backpropagates
    to the network's parameters.

    ``sample`` runs ``sampler`` (a name of :data:`gendist.samplers.SAMPLERS`) from prior noise. The
    default, ``"rk45"``, solves the same ODE at the same tolerance, so its samples follow the density
    ``log_prob`` scores; the others (DPM-Solver++, DDIM, Heun, ancestral, SDE samplers) approximate
    :math:`p_{t_0}` with ``steps`` steps on a ``spacing`` grid of times. ``rsample`` differentiates
    through the sampler.

    Arguments:
        denoiser: ``denoiser(x, t, c)``, :math:`E[x_0 \mid x_t, c]`.
        sde: the process.
        event_shape: the shape of one point.
        context: the context (its leading dims are the batch shape), or None.
        prior: the density at :math:`T` (default ``sde.prior``).
        sampler, steps, spacing, sampler_options: how ``sample`` draws.
        divergence: ``"auto"``, ``"exact"`` or ``"hutchinson"``.
        exact_dim: the largest event size with the exact divergence under ``"auto"``.
        probes, probe: Hutchinson's probe count and kind (``"rademacher"`` or ``"gaussian"``).
        rtol, atol: the ODE tolerances of ``log_prob`` and of the ``"rk45"`` sampler.
        dtype, device: where and in what precision ``sample`` draws (default: the context's, else the
            default dtype on the CPU).
        method, ode_steps: the solver of ``log_prob``: adaptive ``"dopri5"`` (the steps are shared by a
            batch, so a point's value moves within the tolerance with the rest of its batch), or a fixed-step
            ``"euler"``, ``"heun"`` or ``"rk4"`` with ``ode_steps`` steps (the same value in any batch).
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        denoiser: Denoise,
        sde: SDE,
        event_shape: Size | tuple[int, ...],
        context: Tensor | None = None,
        prior: Distribution | None = None,
        sampler: str = "rk45",
        steps: int = 50,
        spacing: str = "uniform",
        sampler_options: dict[str, Any] | None = None,
        divergence: str = "auto",
        exact_dim: int = 64,
        probes: int = 1,
        probe: str = "rademacher",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        method: str = "dopri5",
        ode_steps: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        validate_args: bool | None = None,
    ) -> None:
        event_shape = Size(event_shape)
        if sampler not in SAMPLERS:
            raise ValueError(
                f"Diffusion: unknown `sampler` {sampler!r}; expected one of {sorted(SAMPLERS)}"
            )
        check_integer("Diffusion: `steps`", steps, low=1)
        if divergence not in ("auto", "exact", "hutchinson"):
            raise ValueError(
                f"Diffusion: `divergence` must be 'auto', 'exact' or 'hutchinson', got {divergence!r}"
            )
        if probe not in PROBES:
            raise ValueError(f"Diffusion: `probe` must be one of {PROBES}, got {probe!r}")
        if method not in METHODS or (method == "dopri5") != (ode_steps is None):
            raise ValueError(
                f"Diffusion: `method` must be one of {METHODS}, with `ode_steps` for the fixed-step "
                f"ones and without it for 'dopri5'; got method={method!r}, ode_steps={ode_steps!r}"
            )
        if not (rtol > 0 and atol > 0):
            raise ValueError(f"Diffusion: `rtol` and `atol` must be positive, got {rtol}, {atol}")
        self.denoiser, self.sde, self.context, self.prior = denoiser, sde, context, prior
        self.sampler, self.steps, self.spacing = sampler, steps, spacing
        self.sampler_options = dict(sampler_options or {})
        self.probes, self.probe, self.rtol, self.atol = probes, probe, rtol, atol
        self.method, self.ode_steps = method, ode_steps
        self.hutchinson = divergence == "hutchinson" or (divergence == "auto" and event_shape.numel() > exact_dim)
        self.divergence, self.exact_dim = divergence, exact_dim
        self.dtype = dtype or (context.dtype if context is not None else torch.get_default_dtype())
        self.device = torch.device(device) if device is not None else (
            context.device if context is not None else torch.device("cpu"))
        batch_shape = context.shape[:-1] if context is not None else Size()
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def log_prob_kind(self) -> LogProbKind:  # type: ignore[override]
        return "estimate" if self.hutchinson else "exact"

    def _options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "prior", "sampler", "steps", "spacing", "sampler_options", "divergence", "exact_dim", "probes",
            "probe", "rtol", "atol", "method", "ode_steps", "dtype", "device")}

    def expand(self, batch_shape: Size, _instance: Any = None) -> Diffusion:
        batch_shape = Size(batch_shape)
        c = self.context.expand(batch_shape + self.context.shape[-1:]) if self.context is not None else None
        new = type(self)(self.denoiser, self.sde, self.event_shape, c, **self._options())
        if c is None:
            dist.TorchDistribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        return new

    def _model(self, shape: Size) -> Callable[[Tensor, Tensor], Tensor]:
        c = self.context
        if c is not None:
            c = c.expand(shape[: len(shape) - len(self.event_shape)] + c.shape[-1:])
        return lambda x, t: self.denoiser(x, t, c)

    def _prior(self) -> Distribution:
        if self.prior is not None:
            return self.prior
        return self.sde.prior(tuple(self.event_shape), dtype=self.dtype, device=self.device)

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        x = self._prior().sample(shape[: len(shape) - len(self.event_shape)])
        options = dict(self.sampler_options)
        if self.sampler == "rk45":
            options.setdefault("rtol", self.rtol)
            options.setdefault("atol", self.atol)
        ts = timesteps(self.sde, self.steps, self.spacing, dtype=x.dtype).to(x.device)
        return SAMPLERS[self.sampler](self._model(shape), self.sde, x, ts, **options)

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_value("value", value, self.event_shape, "Diffusion.log_prob", self.dtype)
        shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        value = value.expand(shape)
        lp, _ = probability_flow_log_prob(
            self._model(shape), self.sde, value, event_dim=len(self.event_shape), prior=self.prior,
            hutchinson=self.hutchinson, probes=self.probes, probe=self.probe, rtol=self.rtol, atol=self.atol,
            method=self.method, steps=self.ode_steps, generator=generator,
        )
        return lp

    def __repr__(self) -> str:
        return (
            f"Diffusion(sde={self.sde!r}, event_shape={tuple(self.event_shape)}, "
            f"batch_shape={tuple(self.batch_shape)}, sampler={self.sampler!r}, log_prob_kind={self.log_prob_kind!r})"
        )


