r"""An energy-based model as a distribution: :math:`p(x) = e^{-E(x)} / Z`, honest about what it knows of :math:`Z`."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro.distributions as dist
import torch
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_integer, check_value
from gendist.distributions.base import Honest, LogProbKind, register_no_kl
from gendist.samplers.ais import ais
from gendist.samplers.mcmc import MCMC_SAMPLERS, MCMCResult, check_step_size, sample_mala

__all__ = ["ENUMERATION_LIMIT", "EnergyBased", "LogPartition", "LogPartitionUnknown", "binary_states"]

EnergyFn = Callable[[Tensor, "Tensor | None"], Tensor]

ENUMERATION_LIMIT = 25
r"""The most binary entries (or RBM units) that exact enumeration sums over: :math:`2^{25}` states, chunked."""


class LogPartitionUnknown(NotImplementedError):
    r"""``log_prob`` of an energy whose :math:`\log Z` is unknown: the message names what to call instead."""


@dataclass(frozen=True)
class LogPartition:
    r""":math:`\log Z` and how it was found.

    Attributes:
        value: :math:`\log Z` (one per batch entry of the distribution).
        stderr: its standard error for a stochastic estimate (AIS); None when exact.
        method: ``"exact"`` (enumeration), ``"quadrature"``, ``"ais"``, ``"reverse_ais"`` or ``"given"``.
    """

    value: Tensor
    stderr: Tensor | None = None
    method: str = "given"

    @property
    def kind(self) -> LogProbKind:
        r"""``"exact"`` for enumeration, quadrature or a given value; ``"estimate"`` for AIS."""
        return "exact" if self.stderr is None else "estimate"

    def to(self, *args: Any, **kwargs: Any) -> LogPartition:
        se = self.stderr.to(*args, **kwargs) if self.stderr is not None else None
        return LogPartition(self.value.to(*args, **kwargs), se, self.method)


class _Target:
    r"""``x -> -E(x, c)`` with the context expanded to ``x``'s batch (picklable, unlike a closure)."""

    def __init__(self, d: EnergyBased, beta: float | Tensor = 1.0) -> None:
        self.d, self.beta = d, beta

    def __call__(self, x: Tensor) -> Tensor:
        return -self.d._energy(x) * self.beta

    def gibbs(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.d.energy.gibbs(x, self.d._context(x), generator, self.beta)

    def tempered(self, beta: float | Tensor) -> _Target:
        r"""The target of :math:`p^\beta`: ``x -> -beta E(x, c)`` (keeping ``gibbs``, at that temperature)."""
        return _Target(self.d, self.beta * beta)


@register_no_kl
class EnergyBased(Honest, dist.TorchDistribution):
    r"""The distribution :math:`p(x \mid c) = e^{-E(x, c)} / Z(c)` of an energy over any event shape.

    What ``log_prob`` is, ``log_prob_kind`` says:

    - ``"unnormalized"`` while :math:`\log Z` is unknown: ``log_prob`` raises :class:`LogPartitionUnknown`,
      naming :meth:`log_partition` and :meth:`unnormalized_log_prob`; :meth:`unnormalized` gives the same
      energy whose ``log_prob`` is :math:`-E(x)` (what Pyro's HMC/NUTS and ``pyro.factor`` need: the
      constant cancels);
    - ``"exact"`` once :math:`\log Z` comes from enumeration or quadrature (:meth:`normalized`);
    - ``"estimate"`` once it comes from AIS: its standard error is ``log_partition_stderr``.

    ``sample`` runs the configured MCMC sampler (``has_rsample = False``) from ``init`` draws;
    :meth:`mcmc` returns the chains with their diagnostics.

    Arguments:
        energy: ``energy(x, c) -> E`` of shape ``x.shape[:-len(event_shape)]`` (``c`` already expanded to
            ``x``'s batch, or None). An energy may offer more: ``gibbs(x, c, generator, beta)`` (block Gibbs,
            for ``sampler="gibbs"``), ``log_partition(method, c, **options)`` (its own exact or AIS
            :math:`\log Z`, e.g. an RBM's) with the methods it knows in ``partition_methods``, and ``init(shape,
            generator)`` (the chains' starting states).
        event_shape: the shape of one :math:`x`.
        support: the support of one entry (or of the event): ``constraints.real`` (default) or
            ``constraints.boolean`` for binary data.
        context: the context (its leading dimensions are the batch shape), or None.
        log_z: a known :class:`LogPartition` (or a tensor, taken as exact), or None.
        up_to_constant: ``log_prob`` returns :math:`-E(x)` without :math:`\log Z` (see :meth:`unnormalized`).
        sampler: the MCMC sampler of ``sample``: a name of :data:`~gendist.samplers.MCMC_SAMPLERS`
            (``"gibbs"`` for energies that offer it).
        steps: its number of transitions; ``sampler_options``: its other arguments (``step_size``, ...).
        init: a distribution of the chains' starting states (default: the energy's ``init``, else
            :math:`\mathcal{N}(0, I)` for real values, fair coins for binary ones).
        dtype, device: of draws when there is no context (default: the default dtype, on the CPU).

    Example:
        >>> import torch
        >>> d = EnergyBased(lambda x, c: 0.5 * x.pow(2).sum(-1), (2,))
        >>> d.log_prob_kind, d.unnormalized_log_prob(torch.zeros(2)).item()
        ('unnormalized', -0.0)
        >>> n = d.normalized("quadrature", bound=8.0, points=401)
        >>> round(n.log_partition_value.item(), 3), n.log_prob_kind   # log 2 pi = 1.838
        (1.838, 'exact')
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False

    def __init__(
        self,
        energy: EnergyFn,
        event_shape: Size | tuple[int, ...],
        support: constraints.Constraint = constraints.real,
        context: Tensor | None = None,
        log_z: LogPartition | Tensor | None = None,
        up_to_constant: bool = False,
        sampler: str = "mala",
        steps: int = 200,
        sampler_options: dict[str, Any] | None = None,
        init: Distribution | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        validate_args: bool | None = None,
    ) -> None:
        event_shape = Size(event_shape)
        if not callable(energy):
            raise TypeError(f"EnergyBased: `energy` must be callable as energy(x, c), got {type(energy).__name__}")
        if sampler not in MCMC_SAMPLERS:
            raise ValueError(f"EnergyBased: unknown `sampler` {sampler!r}; expected one of {sorted(MCMC_SAMPLERS)}")
        if sampler == "gibbs" and not callable(getattr(energy, "gibbs", None)):
            raise ValueError("EnergyBased: sampler='gibbs' needs an energy with a `gibbs(x, c, generator, beta)` "
                             "method (an RBM's); use 'mala' or 'hmc' for other energies")
        check_integer("EnergyBased: `steps`", steps, low=1)
        options = dict(sampler_options or {})
        if "step_size" in options:
            check_step_size("EnergyBased", options["step_size"])
        self.energy, self.context, self.init = energy, context, init
        self.sampler, self.steps, self.sampler_options = sampler, steps, options
        if log_z is not None and not isinstance(log_z, LogPartition):
            log_z = LogPartition(torch.as_tensor(log_z))
        self.log_z, self.up_to_constant = log_z, bool(up_to_constant)
        self.dtype = dtype or (context.dtype if context is not None else torch.get_default_dtype())
        self.device = torch.device(device) if device is not None else (
            context.device if context is not None else torch.device("cpu"))
        n = len(event_shape)
        if support.event_dim > n:
            raise ValueError(f"EnergyBased: a support of event_dim {support.event_dim} does not fit the event shape "
                             f"{tuple(event_shape)}")
        self._support = constraints.independent(support, n - support.event_dim) if support.event_dim < n else support
        batch_shape = context.shape[:-1] if context is not None else Size()
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    # --- what it is --------------------------------------------------------------------------------
    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return self._support

    @property
    def log_prob_kind(self) -> LogProbKind:  # type: ignore[override]
        return self.log_z.kind if self.log_z is not None else "unnormalized"

    @property
    def log_partition_value(self) -> Tensor | None:
        r""":math:`\log Z` where known (None otherwise)."""
        return self.log_z.value if self.log_z is not None else None

    @property
    def log_partition_stderr(self) -> Tensor | None:
        r"""The standard error of an estimated :math:`\log Z` (AIS); None when exact or unknown."""
        return self.log_z.stderr if self.log_z is not None else None

    @property
    def binary(self) -> bool:
        r"""Whether values are binary (0/1 in every entry)."""
        base = self._support
        while isinstance(base, constraints.independent):
            base = base.base_constraint
        return base is constraints.boolean

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return self.binary and self.event_shape.numel() <= ENUMERATION_LIMIT

    def _replace(self, **changes: Any) -> EnergyBased:
        new = copy.copy(self)
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    def expand(self, batch_shape: Size, _instance: Any = None) -> EnergyBased:
        batch_shape = Size(batch_shape)
        c = self.context.expand(batch_shape + self.context.shape[-1:]) if self.context is not None else None
        log_z = self.log_z
        if log_z is not None:
            se = log_z.stderr.expand(batch_shape) if log_z.stderr is not None else None
            log_z = LogPartition(log_z.value.expand(batch_shape), se, log_z.method)
        new = self._replace(context=c, log_z=log_z)
        new._batch_shape = batch_shape
        return new

    # --- densities ---------------------------------------------------------------------------------
    def _context(self, x: Tensor) -> Tensor | None:
        c = self.context
        if c is None:
            return None
        return c.expand(x.shape[: x.dim() - len(self.event_shape)] + c.shape[-1:])

    def _broadcast(self, x: Tensor) -> Tensor:
        return x.expand(torch.broadcast_shapes(x.shape, self.batch_shape + self.event_shape))

    def _energy(self, x: Tensor) -> Tensor:
        return self.energy(x, self._context(x))

    def _check(self, value: Tensor, where: str) -> Tensor:
        if self.binary and isinstance(value, Tensor):
            if not value.dtype.is_floating_point:
                value = value.to(self.dtype)
            # NaN or 0.5 is a value outside the binary support: -inf without validation, an error with it
            check_value("value", value, self.event_shape, where, self.dtype, finite=False)
        else:
            check_value("value", value, self.event_shape, where, self.dtype)
        if self._validate_args:
            if self.binary:
                bad = ~((value == 0) | (value == 1))
                if bool(bad.any()):
                    raise ValueError(f"{where}: `value` must lie in the support {{0, 1}} (binary entries), got an "
                                     f"entry {float(value[bad][0]):g}; with validate_args=False it scores -inf")
            else:
                self._validate_sample(value)
        return self._broadcast(value)

    def energy_of(self, value: Tensor, check: bool = True) -> Tensor:
        r"""The energy :math:`E(x, c)`, shape ``sample_shape + batch_shape``; ``check=False`` skips the checks of
        the value (for the model's own draws, such as a sampler's negatives in training)."""
        return self._energy(self._check(value, "EnergyBased.energy_of") if check else self._broadcast(value))

    def unnormalized_log_prob(self, value: Tensor) -> Tensor:
        r""":math:`-E(x, c)`: the log-density up to the constant :math:`\log Z(c)`; differentiable in ``value``
        and in the energy's parameters. Values outside a binary support score ``-inf`` (with validation off)."""
        x = self._check(value, "EnergyBased.unnormalized_log_prob")
        if self.binary:
            ok = ((x == 0) | (x == 1)).flatten(x.dim() - len(self.event_shape)).all(-1)
            lp = -self._energy(torch.where(_events(ok, x), x, torch.zeros_like(x)))
            return lp.masked_fill(~ok, -math.inf)
        return -self._energy(x)

    def score(self, value: Tensor, create_graph: bool = True) -> Tensor:
        r""":math:`\nabla_x \log p(x \mid c) = -\nabla_x E(x, c)` by autograd (real values only); with
        ``create_graph`` it stays differentiable in the parameters (for score matching)."""
        if self.binary:
            raise NotImplementedError("EnergyBased.score: binary values have no gradient; use "
                                      "`unnormalized_log_prob` at the flipped values instead")
        x = self._check(value, "EnergyBased.score")
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(-self._energy(x).sum(), x, create_graph=create_graph)
        return grad

    def log_prob(self, value: Tensor) -> Tensor:
        r""":math:`-E(x, c) - \log Z(c)`; raises :class:`LogPartitionUnknown` while :math:`\log Z` is unknown
        (unless built ``up_to_constant``, when it is :math:`-E(x, c)`)."""
        if self.log_z is None and not self.up_to_constant:
            raise LogPartitionUnknown(
                "EnergyBased.log_prob needs log Z, which is unknown: use `d.normalized(method)` (or "
                "`d.log_partition(method)`: 'exact' by enumeration, 'quadrature' in 1-2 dimensions, 'ais' for an "
                "estimate) first, `d.unnormalized_log_prob(x)` instead for -E(x), or `d.unnormalized()` for a "
                "distribution whose log_prob is -E(x) (enough for MCMC, where the constant cancels)")
        lp = self.unnormalized_log_prob(value)
        return lp if self.log_z is None else lp - self.log_z.value.to(lp)

    # --- the partition function ----------------------------------------------------------------------
    def log_partition(self, method: str = "auto", **options: Any) -> LogPartition:
        r""":math:`\log Z(c)` by ``method``:

        - ``"exact"``: the energy's own (an RBM's, summing over its smaller layer) or enumeration of every
          binary value (at most :data:`ENUMERATION_LIMIT` entries; ``chunk`` values at a time);
        - ``"quadrature"``: the trapezoidal rule on a grid of ``points`` per axis (1 or 2 real entries) over
          ``[-bound, bound]`` (or ``[low, high]``); without a box, from ``[-10, 10]`` doubled until the box holds
          the mass. A box whose edge holds more than :math:`10^{-4}` of the mass is refused (the integral would
          miss what lies outside);
        - ``"ais"``: annealed importance sampling, an estimate with its standard error (the energy's own, or
          from :math:`\mathcal{N}(0, \text{scale}^2 I)` by MALA: ``chains``, ``betas``, ``scale``, ``step_size``,
          ``mcmc_steps``, ``generator``);
        - ``"auto"``: exact where possible, else quadrature, else AIS.

        Example:
            >>> d = EnergyBased(lambda x, c: -x.sum(-1) * 0.0, (3,), constraints.boolean)
            >>> round(d.log_partition("exact").value.item(), 6) == round(math.log(8), 6)
            True
        """
        own = getattr(self.energy, "partition_methods", ())
        if method == "auto":
            method = ("exact" if "exact" in own or self.has_enumerate_support else
                      "quadrature" if not self.binary and self.event_shape.numel() <= 2 else "ais")
        if method in own:
            out = self.energy.log_partition(method, self.context, **options)
        elif method == "exact":
            out = self._log_partition_enumerate(**options)
        elif method == "quadrature":
            out = self._log_partition_quadrature(**options)
        elif method in ("ais", "reverse_ais"):
            out = self._log_partition_ais(method, **options)
        else:
            raise ValueError(f"EnergyBased.log_partition: unknown `method` {method!r}; expected 'auto', 'exact', "
                             f"'quadrature', 'ais'{''.join(f', {m!r}' for m in own if m not in ('exact', 'ais'))}")
        return out

    def normalized(self, method: str = "auto", **options: Any) -> EnergyBased:
        r"""The same distribution with :math:`\log Z` from :meth:`log_partition` (``log_prob`` then works)."""
        return self._replace(log_z=self.log_partition(method, **options), up_to_constant=False)

    def unnormalized(self) -> EnergyBased:
        r"""The same energy with ``log_prob`` :math:`= -E(x, c)` (``log_prob_kind="unnormalized"``): for
        ``pyro.sample`` under HMC/NUTS or ``pyro.factor``, where the constant cancels."""
        return self._replace(log_z=None, up_to_constant=True)

    def _log_partition_enumerate(self, chunk: int = 2**16) -> LogPartition:
        D = self.event_shape.numel()
        if not self.binary:
            raise ValueError("EnergyBased.log_partition('exact'): enumeration needs binary values; use "
                             "'quadrature' (1-2 real entries) or 'ais' instead")
        if D > ENUMERATION_LIMIT:
            raise ValueError(
                f"EnergyBased.log_partition('exact'): enumerating {D} binary entries means 2^{D} states "
                f"(about {2.0 ** D * D * 4 / 1e9:.3g} GB at once); at most {ENUMERATION_LIMIT} are enumerated: "
                "use method='ais' instead")
        total = None
        for start in range(0, 2**D, chunk):
            x = binary_states(start, min(start + chunk, 2**D), D, self.dtype, self.device)
            x = x.reshape(x.shape[:1] + (1,) * len(self.batch_shape) + self.event_shape)
            part = torch.logsumexp(-self._energy(self._broadcast(x)), 0)
            total = part if total is None else torch.logaddexp(total, part)
        return LogPartition(total, None, "exact")

    def _log_partition_quadrature(self, bound: float | None = None, low: float | None = None,
                                  high: float | None = None, points: int = 401, chunk: int = 2**16) -> LogPartition:
        D = self.event_shape.numel()
        if self.binary or D > 2:
            raise ValueError(f"EnergyBased.log_partition('quadrature'): quadrature needs 1 or 2 real entries, the "
                             f"event has {D}{' binary' if self.binary else ''}; use 'exact' (binary) or 'ais' instead")
        check_integer("EnergyBased.log_partition('quadrature'): `points`", points, low=3)
        if bound is not None or low is not None or high is not None:
            b = 10.0 if bound is None else float(bound)
            return self._quadrature(-b if low is None else low, b if high is None else high, points, chunk, True)
        # no box given: from [-10, 10] on, doubled until it holds the mass (the grid coarsens with it)
        b = 10.0
        while True:
            out = self._quadrature(-b, b, points, chunk, b >= 640.0)
            if out is not None:
                return out
            b *= 2

    def _quadrature(self, lo: float, hi: float, points: int, chunk: int, final: bool) -> LogPartition | None:
        r"""The trapezoidal rule on ``[lo, hi]^D``; None (or, when ``final``, an error) if the box misses mass."""
        D = self.event_shape.numel()
        grid = torch.linspace(lo, hi, points, dtype=torch.float64)
        w = torch.full((points,), (hi - lo) / (points - 1), dtype=torch.float64)
        w[0] = w[-1] = w[0] / 2
        if D == 1:
            x, logw = grid[:, None], w.log()
        else:
            x = torch.cartesian_prod(grid, grid)
            logw = (w[:, None] * w[None, :]).log().reshape(-1)
        flat = x
        x = x.to(self.dtype).to(self.device).reshape(-1, *(1,) * len(self.batch_shape), *self.event_shape)
        parts = []
        for i in range(0, len(x), chunk):
            xi = self._broadcast(x[i: i + chunk])
            parts.append((-self._energy(xi)).to(torch.float64) + logw[i: i + chunk].to(self.device).reshape(
                -1, *(1,) * len(self.batch_shape)))
        lp = torch.cat(parts)
        value = torch.logsumexp(lp, 0)
        # the box must hold the mass: what lies on its outermost cells says whether it does
        band = 0.005 * (hi - lo)
        edge = ((flat <= lo + band) | (flat >= hi - band)).any(-1).to(lp.device)
        share = float((torch.logsumexp(lp[edge], 0) - value).detach().exp().max())
        if not math.isfinite(float(value.detach().max())) or share > 1e-4:
            if not final:
                return None
            raise ValueError(
                f"EnergyBased.log_partition('quadrature'): {share:.2g} of the mass lies on the edge of the box "
                f"[{lo:g}, {hi:g}]^{D}, so the quadrature misses mass outside it: widen it (`bound=`, or `low=`/"
                "`high=`), or confine the energy (Energy(confine=...))")
        return LogPartition(value.to(self.dtype), None, "quadrature")

    def _log_partition_ais(self, method: str, chains: int = 256, betas: int | Tensor = 1000, scale: float = 1.0,
                           step_size: float = 0.05, mcmc_steps: int = 1, x: Tensor | None = None,
                           generator: torch.Generator | None = None, progress: bool = False) -> LogPartition:
        if self.binary:
            raise ValueError("EnergyBased.log_partition('ais'): the generic AIS anneals real values by MALA; a "
                             "binary energy needs its own (an RBM's: method='ais' on an RBM), or 'exact'")
        if isinstance(betas, int):
            betas = torch.linspace(0, 1, betas, dtype=self.dtype)
        base = dist.Normal(torch.zeros((), dtype=self.dtype, device=self.device), scale)
        D = self.event_shape.numel()
        log_z0 = D * math.log(scale * math.sqrt(2 * math.pi))

        def log_f(y: Tensor, beta: Tensor) -> Tensor:
            log_base = base.log_prob(y).flatten(y.dim() - len(self.event_shape)).sum(-1) + log_z0
            return (1 - beta) * log_base - beta * self._energy(y)

        def transition(y: Tensor, beta: Tensor, g: torch.Generator | None) -> Tensor:
            return sample_mala(lambda z: log_f(z, beta), y, mcmc_steps, step_size=step_size, generator=g).x

        reverse = method == "reverse_ais"
        if reverse:
            if x is None:
                raise ValueError("EnergyBased.log_partition('reverse_ais'): pass `x`, draws of the model (exact, "
                                 "for an upper bound), chains along dim 0")
            start = self._broadcast(x.to(self.dtype))
        else:
            noise = torch.randn((chains, *self.batch_shape, *self.event_shape), generator=generator,
                                dtype=self.dtype, device=generator.device if generator is not None else self.device)
            start = noise.to(self.device) * scale
        out = ais(log_f, transition, start, betas, log_z0, reverse=reverse, generator=generator, progress=progress)
        return LogPartition(out.log_z, out.stderr, method)

    # --- sampling ----------------------------------------------------------------------------------
    def _init(self, shape: Size, generator: torch.Generator | None) -> Tensor:
        if self.init is not None:
            return self.init.sample(shape[: len(shape) - len(self.event_shape)]).to(self.dtype).to(self.device)
        own = getattr(self.energy, "init", None)
        if callable(own):
            return own(shape, generator).to(self.dtype).to(self.device)
        device = generator.device if generator is not None else self.device
        if self.binary:
            x = torch.rand(shape, generator=generator, dtype=self.dtype, device=device).round()
        else:
            x = torch.randn(shape, generator=generator, dtype=self.dtype, device=device)
        return x.to(self.device)

    def target(self, beta: float | Tensor = 1.0) -> Callable[[Tensor], Tensor]:
        r"""The sampler's target ``x -> -beta E(x, c)`` (with ``gibbs`` where the energy has one)."""
        return _Target(self, beta)

    def mcmc(self, sample_shape: Size = Size(), x: Tensor | None = None, *, sampler: str | None = None,
             steps: int | None = None, generator: torch.Generator | None = None, progress: bool = False,
             **options: Any) -> MCMCResult:
        r"""Run the sampler (or another, with other options) on chains of shape ``sample_shape + batch_shape``
        from ``x`` (default: ``init`` draws) and return the chains with their diagnostics."""
        shape = self._extended_shape(sample_shape)
        if x is None:
            x = self._init(shape, generator)
        else:
            x = self._broadcast(x.to(self.dtype))
        name = sampler or self.sampler
        if name not in MCMC_SAMPLERS:
            raise ValueError(f"EnergyBased.mcmc: unknown `sampler` {name!r}; expected one of {sorted(MCMC_SAMPLERS)}")
        kw = {**self.sampler_options, **options} if sampler is None else dict(options)
        return MCMC_SAMPLERS[name](self.target(), x, steps or self.steps, generator=generator, progress=progress, **kw)

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        with torch.no_grad():
            return self.mcmc(Size(sample_shape)).x.detach()

    def potential(self, name: str = "x") -> Callable[[dict[str, Tensor]], Tensor]:
        r"""A potential function for ``pyro.infer.mcmc.NUTS(potential_fn=...)``/``HMC``: ``{name: x} -> sum E(x)``."""
        return _Potential(self, name)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        if not self.has_enumerate_support:
            return super().enumerate_support(expand)
        D = self.event_shape.numel()
        values = binary_states(0, 2**D, D, self.dtype, self.device)
        values = values.reshape(-1, *(1,) * len(self.batch_shape), *self.event_shape)
        return values.expand(-1, *self.batch_shape, *self.event_shape) if expand else values

    def __repr__(self) -> str:
        return (f"EnergyBased(event_shape={tuple(self.event_shape)}, batch_shape={tuple(self.batch_shape)}, "
                f"sampler={self.sampler!r}, log_prob_kind={self.log_prob_kind!r})")


class _Potential:
    def __init__(self, d: EnergyBased, name: str) -> None:
        self.d, self.name = d, name

    def __call__(self, params: dict[str, Tensor]) -> Tensor:
        return self.d._energy(self.d._broadcast(params[self.name])).sum()


def _events(ok: Tensor, x: Tensor) -> Tensor:
    return ok.reshape(ok.shape + (1,) * (x.dim() - ok.dim()))


def binary_states(start: int, stop: int, D: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    r"""The binary vectors of ``start, ..., stop - 1`` (most significant entry first), shape ``(stop - start, D)``."""
    n = torch.arange(start, stop, device=device)
    bits = torch.arange(D - 1, -1, -1, device=device)
    return ((n[:, None] >> bits) & 1).to(dtype)

