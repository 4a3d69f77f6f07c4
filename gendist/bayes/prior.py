r"""Deep priors: a gendist model fitted to samples, used as a fixed prior inside a Pyro model.

.. code-block:: python

    flow = MAF(2)
    gendist.inference.fit(flow, samples)              # learn p(z) from samples
    prior = Prior(flow)                              # frozen, built once
    def model(y):
        z = pyro.sample("z", prior)
        pyro.sample("y", dist.Normal(A @ z, 0.5).to_event(1), obs=y)
    MCMC(NUTS(model), ...).run(y)

A :class:`Prior` snapshots the module (a deep copy in ``eval()`` mode, its parameters frozen: SVI does not
train them, since it is never registered with ``pyro.module``), builds its distribution once, and keeps that
distribution's ``support``, ``batch_shape``, ``event_shape`` and honest ``log_prob_kind``. A flow's
``log_prob`` then runs a hand-differentiated pass that returns the log-density and its gradient in the value together
(:mod:`gendist.bayes._fused`): what NUTS asks for at every leapfrog step.

What each family's ``log_prob`` is, and what MCMC can use:

======================  ======================================  =================================================
family                  ``log_prob_kind``                        under NUTS/HMC
======================  ======================================  =================================================
flows, autoregressive   ``"exact"``                              yes (flows: the fused fast path)
diffusion               ``"exact"`` (up to the ODE solver's      yes; a fixed-step solver (``method="rk4"``,
                        tolerance); ``"estimate"`` with          ``ode_steps=...``) gives a smooth potential.
                        Hutchinson's divergence                  Hutchinson: only with ``fixed_noise``
VAE (latent variable)   ``"estimate"`` (importance sampled) or   only with ``fixed_noise`` (common random numbers:
                        ``"bound"`` (``kind="bound"``: ELBO)     a deterministic, slightly biased potential)
energy-based            ``"unnormalized"``: :math:`-E(x)`,       yes, with ``kind="unnormalized"``: the constant
                        :math:`\log Z` unknown                   :math:`\log Z` cancels (ELBO values shift by it)
GAN (implicit)          ``"none"``                               no: refused, naming what to use instead
======================  ======================================  =================================================
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.nn as nn
from pyro.distributions import TorchDistribution
from torch import Size, Tensor
from torch.distributions import Distribution, biject_to, constraints

from gendist._checks import check_integer, check_value
from gendist.bayes._fused import FusedFlow, compile_flow, fused_log_prob
from gendist.distributions.base import Honest, LogProbKind
from gendist.distributions.flow import Flow
from gendist.transforms.base import inv_and_ladj

__all__ = ["Prior", "StochasticLogProb"]


class StochasticLogProb(RuntimeError):
    r"""A prior whose ``log_prob`` is a fresh random draw at every call was scored under NUTS/HMC."""


class Prior(Honest, TorchDistribution):
    r"""A trained gendist model (or a distribution built from one) as a fixed prior for ``pyro.sample``.

    .. math:: z \sim p_\theta(z \mid c), \qquad \theta \text{ frozen}

    ``Prior(module)`` deep-copies the module (``copy=False`` freezes it in place instead), puts it in
    ``eval()`` mode, turns off its parameters' gradients and builds ``module(context, **options)`` once.
    It is never registered with ``pyro.module``, so SVI leaves it alone. Plates, ``.expand``,
    ``.to_event`` and ``.mask`` work as for any Pyro distribution; ``sample``/``rsample`` draw from the model.

    ``log_prob`` is the model's own, stated by ``log_prob_kind`` (see the module's table):

    - flows: exact, through a hand-differentiated pass that computes the log-density and its gradient in the value
      together (``fused=False``: the flow's own ``log_prob``); ``fused`` says which runs;
    - a VAE's is random at every call (``stochastic``): NUTS/HMC refuse it (:class:`StochasticLogProb`)
      unless ``fixed_noise`` makes it a deterministic function of the value;
    - an energy-based model's is :math:`-E(x)`, accepted only with ``kind="unnormalized"``;
    - a GAN has none: refused.

    Arguments:
        source: a gendist module (``module(c)`` builds the distribution: flows, autoregressive models,
            ``DiffusionModel``, VAEs, energies) or a distribution built from one (used as given).
        context: the context ``c`` of a conditional model (fixed for this prior).
        kind: which log-density: None for the model's own; ``"bound"`` for a VAE's ELBO instead of its
            importance-sampled estimate; ``"unnormalized"`` to accept an energy's :math:`-E(x)`.
        particles: a VAE's importance samples per ``log_prob`` (default: the model's ``particles``).
        fixed_noise: a seed: every ``log_prob`` call then reuses the same random numbers (common random
            numbers), so a stochastic estimate becomes a deterministic, differentiable potential.
        support: the support the model's site needs: a ``ValueError`` naming both if the prior's differs.
        fused: use the hand-differentiated pass for flows.
        compile: ``torch.compile`` a flow's log-density (and, through it, its gradient) at its first use with
            each value shape, for values that need a gradient (NUTS/HMC, SVI): ``True`` for the default
            backend, or a backend's name. It pays off where the
            hand-differentiated pass leaves much to autograd (spline flows: about 5 times faster per
            evaluation, after tens of seconds of compilation); a MAF or RealNVP gains nothing over ``fused``.
        copy: snapshot the module (True) or freeze it in place (False).
        options: passed to the module's call (a diffusion model's ``method``, ``ode_steps``, ``rtol``,
            ``divergence``, ...).

    Example:
        >>> from gendist.flows import MAF
        >>> prior = Prior(MAF(2, transforms=2, hidden=(8,)))
        >>> prior.log_prob_kind, prior.fused, prior.event_shape
        ('exact', True, torch.Size([2]))
        >>> z = prior.sample((3,))
        >>> bool(torch.allclose(prior.log_prob(z), prior.distribution.log_prob(z), atol=1e-5))
        True
    """

    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self,
        source: nn.Module | Distribution,
        context: Tensor | None = None,
        *,
        kind: str | None = None,
        particles: int | None = None,
        fixed_noise: int | None = None,
        support: constraints.Constraint | None = None,
        fused: bool = True,
        compile: bool | str = False,
        copy: bool = True,
        validate_args: bool | None = None,
        **options: Any,
    ) -> None:
        self.module, d = _build(source, context, copy, options)
        self.source = type(source).__name__
        self.context = context
        self.particles = None if particles is None else check_integer("Prior: `particles`", particles, 1)
        if fixed_noise is not None:
            fixed_noise = check_integer("Prior: `fixed_noise`", fixed_noise, 0)
        self.fixed_noise = fixed_noise
        native = getattr(d, "log_prob_kind", "exact")
        self._latent = hasattr(d, "log_weights") and hasattr(d, "elbo")  # a LatentVariable (duck-typed)
        self._kind = _resolve_kind(self.source, d, native, kind, self._latent, context)
        if self._kind == "unnormalized" and hasattr(d, "unnormalized"):
            d = d.unnormalized()
        if self.particles is not None and not self._latent:
            raise ValueError(f"Prior: `particles` is the importance samples of a VAE's log_prob; a "
                             f"{type(d).__name__} takes none")
        self.distribution = d
        self.stochastic = self._latent or bool(getattr(d, "hutchinson", False))
        self.dtype = getattr(d, "dtype", None)
        if support is not None:
            _check_support(support, d, self.source)
        self._fused = _compile(d) if fused and not compile else None
        self._compiled = None
        if compile:
            if not isinstance(d, Flow):
                raise ValueError(f"Prior: `compile` is for flows; a {type(d).__name__}'s log_prob runs as it is")
            backend = compile if isinstance(compile, str) else "inductor"
            self._compiled = torch.compile(_FlowDensity(d), backend=backend, dynamic=False)
        self._real = _is_real(d.support)
        batch_shape, event_shape = d.batch_shape, d.event_shape
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    # --- what torch and Pyro look at -----------------------------------------------------------------

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return self.distribution.support

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.distribution.has_rsample)

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return bool(self.distribution.has_enumerate_support)

    @property
    def mean(self) -> Tensor:
        return self.distribution.mean

    @property
    def variance(self) -> Tensor:
        return self.distribution.variance

    @property
    def log_prob_kind(self) -> LogProbKind:  # type: ignore[override]
        r"""What ``log_prob`` is: ``"exact"``, ``"bound"``, ``"estimate"`` or ``"unnormalized"``."""
        return self._kind  # type: ignore[return-value]

    @property
    def fused(self) -> bool:
        r"""Whether ``log_prob`` runs the hand-differentiated pass (flows over vectors)."""
        return self._fused is not None

    @property
    def deterministic(self) -> bool:
        r"""Whether ``log_prob`` is a deterministic function of the value (what NUTS/HMC need)."""
        return not self.stochastic or self.fixed_noise is not None

    def expand(self, batch_shape: Size, _instance: Prior | None = None) -> Prior:
        new = self._get_checked_instance(Prior, _instance)
        new.__dict__.update(self.__dict__)
        batch_shape = Size(batch_shape)
        new.distribution = self.distribution.expand(batch_shape)
        super(Prior, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    # --- draws ---------------------------------------------------------------------------------------

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        with torch.no_grad():
            return self.distribution.sample(sample_shape)

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        return self.distribution.rsample(sample_shape)

    # --- density -------------------------------------------------------------------------------------

    def log_prob(self, value: Tensor) -> Tensor:
        r"""The prior's log-density of ``value`` (what ``log_prob_kind`` says it is)."""
        where = f"Prior({self.source}).log_prob"
        check_value("value", value, self.event_shape, where, self.dtype, finite=False)
        if not self.deterministic and _under_mcmc():
            raise StochasticLogProb(
                f"Prior({self.source}): log_prob is a stochastic estimate (log_prob_kind="
                f"{self.log_prob_kind!r}): every call draws new random numbers, so NUTS/HMC would see a "
                "different potential at every step and their acceptance test would be wrong. Pass "
                "`fixed_noise=<seed>` (common random numbers: the same draws at every call, a deterministic "
                "potential, biased by the estimator's error at that seed; raise `particles` to shrink it)"
                + (", or use a flow/autoregressive prior with an exact log_prob" if self._latent else
                   ", or build the diffusion prior with divergence='exact' (exact up to the ODE solver)")
            )
        if self._validate_args:
            self._validate_sample(value)
        program = self._fused
        if program is None and self._compiled is not None and value.requires_grad and torch.is_grad_enabled():
            program = self._compiled  # compiled for gradients only: a rare call without one runs as it is
        if program is not None:
            inside = None if self._real or torch.compiler.is_compiling() else self.distribution.support.check(value)
            if inside is not None and not bool(inside.all()):  # density 0 outside: score a point inside instead
                safe = biject_to(self.distribution.support)(torch.zeros_like(value))
                value = torch.where(inside.reshape(inside.shape + (1,) * len(self.event_shape)), value, safe)
            else:
                inside = None
            lp = fused_log_prob(program, value) if self._fused is not None else program(value)
            if inside is not None:
                lp = torch.where(inside, lp, torch.full_like(lp, -math.inf))
            if self.batch_shape and lp.shape[lp.dim() - len(self.batch_shape):] != self.batch_shape:
                lp = lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))
            return lp
        with self._noise(value):
            return self._score(value)

    def _score(self, value: Tensor) -> Tensor:
        d = self.distribution
        if self._latent:
            return d.elbo(value) if self._kind == "bound" else d.log_prob(value, self.particles)
        return d.log_prob(value)

    def _noise(self, value: Tensor) -> Any:
        return nullcontext() if self.fixed_noise is None or not self.stochastic else _seeded(self.fixed_noise, value)

    def __repr__(self) -> str:
        return (f"Prior({self.source}, log_prob_kind={self.log_prob_kind!r}, batch_shape={tuple(self.batch_shape)}, "
                f"event_shape={tuple(self.event_shape)}, fused={self.fused}, deterministic={self.deterministic})")


# --- building ------------------------------------------------------------------------------------------


def _build(source: Any, context: Tensor | None, snapshot: bool, options: dict[str, Any]
           ) -> tuple[nn.Module | None, Distribution]:
    if isinstance(source, Distribution):
        if context is not None or options:
            raise ValueError(
                f"Prior: `context` and options are for a module (module(context, **options) builds the "
                f"distribution); got a built {type(source).__name__}: build it with the context instead"
            )
        return None, source
    if isinstance(source, type):
        raise TypeError(f"Prior: `source` must be a trained model (an instance), got the class {source.__name__}; "
                        f"build and fit it first, e.g. `m = {source.__name__}(...); gendist.inference.fit(m, x)`")
    if not isinstance(source, nn.Module) or not callable(source):
        raise TypeError(
            "Prior: `source` must be a gendist model (a module whose call builds a distribution: a flow, an "
            "autoregressive model, a DiffusionModel, a VAE, an energy) or a torch distribution, got "
            f"{type(source).__name__}"
        )
    module = copy.deepcopy(source) if snapshot else source
    module.eval().requires_grad_(False)
    args = () if context is None else (context,)
    try:
        d = module(*args, **options)
    except TypeError as e:
        if options:
            raise TypeError(f"Prior: {type(source).__name__} does not take the options {sorted(options)} "
                            f"in its call ({e})") from e
        raise
    if not isinstance(d, Distribution):
        raise TypeError(f"Prior: calling {type(source).__name__} must build a distribution, got {type(d).__name__}")
    return module, d


def _resolve_kind(source: str, d: Distribution, native: str, kind: str | None, latent: bool,
                  context: Tensor | None) -> str:
    name = type(d).__name__.lstrip("_")
    if native == "none":
        raise TypeError(
            f"Prior({source}): a GAN's distribution ({name}) has no log-density (log_prob_kind='none'), and a "
            "prior in pyro.sample needs log p(z). Either fit a model with a log-density to the same samples "
            "(a flow: `m = gendist.flows.NSF(D); gendist.inference.fit(m, samples); Prior(m)`), or keep the "
            "generator as a deterministic map of its latent: `e = pyro.sample('e', d.latent)` then "
            "`z = pyro.deterministic('z', d.push(e))` (inference then runs over the latent e)"
        )
    if kind not in (None, "exact", "estimate", "bound", "unnormalized"):
        raise ValueError(f"Prior: `kind` must be None, 'bound' (a VAE's ELBO) or 'unnormalized' (an energy's "
                         f"-E(x)), got {kind!r}")
    if native == "unnormalized":
        if kind != "unnormalized":
            raise ValueError(
                f"Prior({source}): an energy-based model's log Z is unknown, so its log_prob is -E(x) up to a "
                "constant (log_prob_kind='unnormalized'). That is enough for NUTS/HMC and MAP, where the "
                "constant cancels, but ELBO values shift by log Z and model comparison is off. Pass "
                "kind='unnormalized' to accept it, or normalize the energy first (`module().normalized(method)`, "
                "exact in low dimension) and pass that distribution"
            )
        if context is not None and context.requires_grad:
            raise ValueError(f"Prior({source}): with an unnormalized energy the context must not depend on other "
                             "latent variables: log Z(c) would then change with them and not cancel")
        return "unnormalized"
    if latent:
        if kind in (None, "estimate"):
            return "estimate"
        if kind == "bound":
            return "bound"
        raise ValueError(f"Prior({source}): a VAE's log_prob is 'estimate' (importance sampled, the default) or "
                         f"'bound' (its ELBO); got kind={kind!r}")
    if kind not in (None, native):
        raise ValueError(f"Prior({source}): a {name}'s log_prob is {native!r}; kind={kind!r} is for "
                         + ("a VAE (its ELBO)" if kind == "bound" else "an energy-based model" if kind == "unnormalized"
                            else "another family"))
    return native


def _check_support(support: constraints.Constraint, d: Distribution, source: str) -> None:
    if not isinstance(support, constraints.Constraint):
        raise TypeError(f"Prior: `support` must be a torch constraint, got {type(support).__name__}")
    have = d.support
    if not _same(_strip(have), _strip(support)):
        raise ValueError(
            f"Prior({source}): the site needs support {support}, but the prior's support is {have}: its "
            f"samples would fall outside what the model accepts. Fit a model on that support instead (a flow "
            f"with `support=` ends with biject_to(support): `MAF(D, support=constraints.positive)`)"
        )


def _strip(c: constraints.Constraint) -> constraints.Constraint:
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return c


def _same(a: constraints.Constraint, b: constraints.Constraint) -> bool:
    if a is b or (type(a) is type(b) and vars(a) == vars(b)):
        return True
    try:
        return type(a) is type(b) and all(bool(torch.equal(torch.as_tensor(x), torch.as_tensor(y)))
                                           for x, y in zip(vars(a).values(), vars(b).values()))
    except (TypeError, RuntimeError):
        return False


def _is_real(c: constraints.Constraint) -> bool:
    return isinstance(_strip(c), type(constraints.real))


def _compile(d: Distribution) -> FusedFlow | None:
    r"""A flow's hand-differentiated pass, checked against its own ``log_prob`` on a few draws (None: not a flow)."""
    fused = compile_flow(d)
    if fused is None:
        return None
    with torch.no_grad():
        x = d.sample((3,))
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        want = d.log_prob(x)
        (g_want,) = torch.autograd.grad(want.sum(), x)
    got, g_got = fused.value_and_grad(x.detach())
    tol = 1e-3 if x.dtype in (torch.float16, torch.bfloat16) else 1e-4
    ok = torch.allclose(got, want.detach(), rtol=tol, atol=tol) and torch.allclose(
        g_got.sum_to_size(x.shape), g_want, rtol=tol, atol=tol * (1 + float(g_want.abs().max())))
    if not ok:  # a layer changed under the hand-written pass: keep the flow's own log_prob
        warnings.warn(f"Prior: the hand-differentiated pass of this {type(d).__name__} disagrees with its "
                      "log_prob; using log_prob (slower under NUTS)", RuntimeWarning, stacklevel=3)
        return None
    return fused


class _FlowDensity:
    r"""A flow's log-density without its argument checks (those run before): what ``compile`` traces."""

    def __init__(self, d: Flow) -> None:
        self.d = d

    def __call__(self, value: Tensor) -> Tensor:
        d = self.d
        z, ladj = inv_and_ladj(d.transform, value)
        return d._combine(d.base_dist.log_prob(z), ladj)


# --- randomness ------------------------------------------------------------------------------------------


@contextmanager
def _seeded(seed: int, like: Tensor) -> Iterator[None]:
    r"""Run with the global generators of the CPU (and of ``like``'s GPU) at ``seed``, restored afterwards."""
    cuda = [like.device] if like.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(like.device):
                torch.cuda.manual_seed(seed)
        yield


_MCMC = ("pyro.infer.mcmc", "gendist.samplers.mcmc")


def _under_mcmc() -> bool:
    r"""Whether an MCMC sampler's machinery (Pyro's HMC/NUTS, gendist's samplers) is on the call stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_MCMC):
            return True
        frame = frame.f_back
    return False
