r"""The marginal of a latent-variable model, :math:`p(x) = \int p(x \mid z)\, p(z)\, dz`, with its guide."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from pyro.distributions import TorchDistribution
from torch import Size, Tensor
from torch.distributions import Distribution, biject_to, constraints, kl_divergence

from gendist._checks import check_finite, check_integer
from gendist.distributions.base import Honest
from gendist.distributions.conditionals import check_values

__all__ = ["LatentVariable", "VQVAEDistribution", "sample_and_log_prob"]

Likelihood = Callable[[Tensor, "Tensor | None"], Distribution]
Guide = Callable[[Tensor, "Tensor | None"], Distribution]


def sample_and_log_prob(q: Distribution, sample_shape: Size, reparameterized: bool = True) -> tuple[Tensor, Tensor]:
    r"""Draw from ``q`` and score the draw, in one pass where ``q`` offers it (flows, autoregressive models)."""
    if reparameterized and q.has_rsample:
        fused = getattr(q, "rsample_and_log_prob", None)
        if fused is not None:
            return fused(sample_shape)
        z = q.rsample(sample_shape)
    else:
        fused = getattr(q, "sample_and_log_prob", None)
        if fused is not None:
            z, lq = fused(sample_shape)
            return z.detach(), lq
        z = q.sample(sample_shape)
    return z, q.log_prob(z)


class LatentVariable(Honest, TorchDistribution):
    r"""The marginal :math:`p(x \mid c) = \int p(x \mid z, c)\, p(z \mid c)\, dz` of a latent-variable model.

    ``log_prob`` is the importance-sampled estimate with the guide
    :math:`q(z \mid x, c)` as proposal and :math:`K` = ``particles`` draws,

    .. math:: \log \hat p(x) = \log \frac{1}{K} \sum_{k=1}^K
        \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)}, \quad z_k \sim q(\cdot \mid x),

    which is the IWAE bound: a lower bound *in expectation*
    (:math:`\mathbb{E}[\log \hat p(x)] \le \log p(x)`), tightening as
    :math:`K` grows and exact for any :math:`K` when :math:`q` is the true
    posterior. So ``log_prob_kind = "estimate"``: two calls differ, and a
    single call may land above :math:`\log p(x)`. It is differentiable
    (reparameterized through the guide where the guide allows).
    ``sample``/``rsample`` are ancestral: :math:`z \sim p(z)`, :math:`x \sim p(x \mid z)`.

    Built by a module (:class:`gendist.latent.VAE` and the others): ``vae(c)``.

    Arguments:
        prior: :math:`p(z \mid c)`, batch shape ``batch_shape``, event shape the latent's.
        likelihood: ``likelihood(z, c)`` gives :math:`p(x \mid z, c)` for flat ``z`` of
            shape ``(N, *latent)`` and ``c`` of shape ``(N, C)`` or None, batch shape ``(N,)``.
        guide: ``guide(x, c)`` gives :math:`q(z \mid x, c)` for flat ``x`` of shape
            ``(N, *event)``, batch shape ``(N,)``.
        event_shape: the shape of :math:`x`.
        context: the context, ``(*batch_shape, C)``, or None.
        support: the support of :math:`x` (the likelihood's).
        particles: :math:`K`, the importance samples per ``log_prob`` value.
        chunk: draw the particles this many at a time (memory; the estimate is the same).
        has_rsample: whether the likelihood is reparameterized (a Gaussian decoder).
        dtype: the model's dtype (values must have it).
    """

    log_prob_kind = "estimate"
    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self,
        prior: Distribution,
        likelihood: Likelihood,
        guide: Guide,
        event_shape: Sequence[int],
        context: Tensor | None = None,
        support: constraints.Constraint = constraints.real,
        particles: int = 100,
        chunk: int | None = None,
        has_rsample: bool = False,
        validate_args: bool | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.prior, self.likelihood, self.guide = prior, likelihood, guide
        self.context = context
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        self._support = support
        self.particles = check_integer("particles", particles, 1)
        self.chunk = None if chunk is None else check_integer("chunk", chunk, 1)
        self._has_rsample = bool(has_rsample) and prior.has_rsample
        event_shape = Size(event_shape)
        if support.event_dim > len(event_shape):
            raise ValueError(f"support {support} has more event dims than the event shape {tuple(event_shape)}")
        super().__init__(prior.batch_shape, event_shape, validate_args=validate_args)

    # --- what torch and Pyro look at -------------------------------------------------------

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        extra = len(self.event_shape) - self._support.event_dim
        return constraints.independent(self._support, extra) if extra else self._support

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self._has_rsample

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> LatentVariable:
        batch_shape = Size(batch_shape)
        context = None if self.context is None else self.context.expand(batch_shape + self.context.shape[-1:])
        return LatentVariable(
            self.prior.expand(batch_shape),
            self.likelihood,
            self.guide,
            self.event_shape,
            context,
            self._support,
            self.particles,
            self.chunk,
            self._has_rsample,
            self._validate_args,
            self.dtype,
        )

    @property
    def latent_shape(self) -> Size:
        r"""The event shape of :math:`z`."""
        return self.prior.event_shape

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError("a latent-variable marginal's mean has no closed form; use sample((n,)).mean(0)")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError("a latent-variable marginal's variance has no closed form; use sample((n,)).var(0)")

    def entropy(self) -> Tensor:
        raise NotImplementedError(
            "a latent-variable marginal's entropy has no closed form; "
            "estimate it with -d.log_prob(d.sample((n,))).mean(0)"
        )

    # --- helpers ------------------------------------------------------------------------------

    def _flat_context(self, shape: Size) -> Tensor | None:
        c = self.context
        return None if c is None else c.expand(shape + c.shape[-1:]).reshape(-1, c.shape[-1])

    def _check(self, value: Tensor, where: str) -> tuple[Tensor, Size]:
        r"""``value`` checked against the event shape and support; returns it and its batch shape."""
        if not isinstance(value, Tensor):
            raise TypeError(f"{where}: `value` must be a torch.Tensor, got {type(value).__name__}")
        E = self.event_shape
        if value.dim() < len(E) or value.shape[value.dim() - len(E) :] != E:
            raise ValueError(
                f"{where}: `value` must have shape (..., {', '.join(map(str, E))}) ending in the event shape "
                f"{tuple(E)}, got shape {tuple(value.shape)}"
            )
        dtype = self.dtype
        if value.dtype.is_floating_point:
            if value.dtype != dtype:
                raise TypeError(
                    f"{where}: `value` has dtype {value.dtype} but the model is {dtype}; use `value.to({dtype})`"
                )
        elif self._support.is_discrete and not value.dtype.is_complex:
            value = value.to(dtype)
        else:
            raise TypeError(f"{where}: `value` must be a floating-point tensor, got dtype {value.dtype}")
        if not self._support.is_discrete:  # a discrete support's NaN is out of it: -inf (see _in_support)
            check_finite("value", value, where)
        if not torch.compiler.is_compiling():
            if self._validate_args:
                inside = self.support.check(value)
                if not bool(inside.all()):
                    events = value.reshape((-1,) + E)[~inside.reshape(-1)]
                    if self._support.event_dim == 0:  # the offending entries themselves
                        events = events[~self._support.check(events)]
                    raise ValueError(
                        f"{where}: `value` has {int((~inside).sum())} events outside the likelihood's support "
                        f"{self._support}, such as {events.flatten()[:5].tolist()} (a Bernoulli decoder needs "
                        "values 0 or 1, a categorical one integers 0..K-1)"
                    )
        batch = torch.broadcast_shapes(value.shape[: value.dim() - len(E)], self.batch_shape)
        return value.expand(batch + E), batch

    def _in_support(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        r"""``x`` with out-of-support entries replaced by a point of the support, and which events were inside.

        The replaced events score :math:`-\infty` (the caller's ``torch.where``); the networks and the
        likelihood only see values of the support, so nothing raises or turns NaN on them. None: all inside.
        """
        if torch.compiler.is_compiling() or _is_real(self._support):
            return x, None
        inside = self.support.check(x)
        if bool(inside.all()):
            return x, None
        s = self._support
        if s.event_dim == 0:
            safe = torch.where(s.check(x), x, _point_of(s, x))
        else:
            shape = inside.shape + (1,) * len(self.event_shape)
            safe = torch.where(inside.reshape(shape), x, biject_to(self.support)(torch.zeros_like(x)))
        return safe, inside

    # --- generation --------------------------------------------------------------------------

    def sample_joint(self, sample_shape: Size = Size(), reparameterized: bool = False) -> tuple[Tensor, Tensor]:
        r"""Ancestral draws :math:`(x, z)`: :math:`z \sim p(z \mid c)`, then :math:`x \sim p(x \mid z, c)`."""
        if reparameterized and not self.has_rsample:
            raise NotImplementedError(
                "rsample needs a reparameterized prior and likelihood (e.g. a Gaussian decoder); this model's "
                + ("prior" if not self.prior.has_rsample else "likelihood")
                + " is discrete or not reparameterized: use sample()"
            )
        shape = Size(sample_shape) + self.batch_shape
        z = self.prior.rsample(sample_shape) if reparameterized else self.prior.sample(sample_shape)
        px = self.likelihood(z.reshape((-1,) + self.latent_shape), self._flat_context(shape))
        x = px.rsample() if reparameterized else px.sample()
        return x.reshape(shape + self.event_shape), z

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        with torch.no_grad():
            return self.sample_joint(sample_shape)[0]

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        return self.sample_joint(sample_shape, reparameterized=True)[0]

    # --- density ----------------------------------------------------------------------------

    def log_weights(self, value: Tensor, k: int | None = None) -> Tensor:
        r"""The log-weights :math:`\log p(x, z_k) - \log q(z_k \mid x)`, shape ``(k, *sample_shape, *batch_shape)``."""
        k = self.particles if k is None else check_integer("k", k, 1)
        x, batch = self._check(value, "LatentVariable.log_prob")
        x, inside = self._in_support(x)
        lw = torch.cat([self._log_weights(x, batch, j) for j in self._chunks(k)])
        return lw if inside is None else _minus_inf_outside(lw, inside)

    def _chunks(self, k: int) -> list[int]:
        step = self.chunk or k
        return [min(step, k - i) for i in range(0, k, step)]

    def _log_weights(self, x: Tensor, batch: Size, k: int) -> Tensor:
        E = self.event_shape
        flat = x.reshape((-1,) + E)
        n = flat.shape[0]
        c = self._flat_context(batch)
        z, lq = sample_and_log_prob(self.guide(flat, c), Size((k,)))  # (k, n, *Z), (k, n)
        Z = z.shape[2:]
        lpz = self.prior.log_prob(z.reshape((k,) + batch + Z)).reshape(k, n)
        zc = None if c is None else c.expand((k,) + c.shape).reshape(k * n, -1)
        # out-of-support values were replaced by points of the support (_in_support): no global flag to toggle
        px = self.likelihood(z.reshape((k * n,) + Z), zc)
        lpx = px.log_prob(flat.expand((k,) + flat.shape).reshape((k * n,) + E)).reshape(k, n)
        return (lpx + lpz - lq).reshape((k,) + batch)

    def log_prob(self, value: Tensor, k: int | None = None) -> Tensor:
        r"""The importance-sampled estimate of :math:`\log p(x)` with ``k`` particles (default ``particles``)."""
        k = self.particles if k is None else check_integer("k", k, 1)
        x, batch = self._check(value, "LatentVariable.log_prob")
        x, inside = self._in_support(x)
        if self.chunk is None or self.chunk >= k:
            lw = self._log_weights(x, batch, k)
            lp = torch.logsumexp(lw, 0) - math.log(k)
        else:
            total = None
            for j in self._chunks(k):  # a running logsumexp keeps only one chunk of particles alive
                part = torch.logsumexp(self._log_weights(x, batch, j), 0)
                total = part if total is None else torch.logaddexp(total, part)
            lp = total - math.log(k)
        return lp if inside is None else _minus_inf_outside(lp, inside)

    def iwae(self, value: Tensor, k: int) -> Tensor:
        r"""The IWAE bound :math:`\mathcal{L}_k` (Burda et al., 2016), one draw of it: ``log_prob(value, k)``."""
        return self.log_prob(value, k)

    def elbo(self, value: Tensor, beta: float = 1.0, analytic: bool = True) -> Tensor:
        r"""The evidence lower bound, one draw: :math:`\mathbb{E}_q[\log p(x \mid z)] - \beta \mathrm{KL}(q \| p)`.

        The KL term is in closed form where torch knows it (Gaussian guide and
        prior, ``analytic=True``), otherwise the one-sample estimate
        :math:`\log q(z \mid x) - \log p(z)`. ``beta = 1`` is the ELBO proper.
        """
        x, batch = self._check(value, "LatentVariable.elbo")
        x, inside = self._in_support(x)
        E = self.event_shape
        flat = x.reshape((-1,) + E)
        c = self._flat_context(batch)
        q = self.guide(flat, c)
        z, lq = sample_and_log_prob(q, Size())
        Z = z.shape[1:]
        rec = self.likelihood(z, c).log_prob(flat).reshape(batch)
        kl = None
        if analytic:
            try:
                kl = kl_divergence(_reshape_batch(q, batch), self.prior.expand(batch))
            except NotImplementedError:
                kl = None
        if kl is None:
            kl = lq.reshape(batch) - self.prior.log_prob(z.reshape(batch + Z))
        out = rec - beta * kl
        return out if inside is None else _minus_inf_outside(out, inside)


def _is_real(c: constraints.Constraint) -> bool:
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return isinstance(c, type(constraints.real))


def _point_of(support: constraints.Constraint, like: Tensor) -> Tensor:
    r"""One point of an elementwise ``support`` as a 0-d tensor like ``like``: 0, a bound, or a bijected 0."""
    zero = torch.zeros((), dtype=like.dtype, device=like.device)
    candidates = [zero]
    for bound in (getattr(support, "lower_bound", None), getattr(support, "upper_bound", None)):
        if bound is not None and torch.as_tensor(bound).numel() == 1:
            candidates.append(torch.as_tensor(bound, dtype=like.dtype, device=like.device).reshape(()))
    for point in candidates:
        if bool(support.check(point)):
            return point
    return biject_to(support)(zero)


def _minus_inf_outside(lp: Tensor, inside: Tensor) -> Tensor:
    r"""``lp`` with :math:`-\infty` where ``inside`` (broadcast over leading dims of ``lp``) is False."""
    return torch.where(inside, lp, torch.full((), -math.inf, dtype=lp.dtype, device=lp.device))


def _reshape_batch(q: Distribution, batch: Size) -> Distribution:
    r"""``q`` (batch ``(N,)``) seen with batch shape ``batch`` where torch can (Gaussians); else NotImplementedError."""
    import torch.distributions as td

    if tuple(q.batch_shape) == tuple(batch):
        return q
    base, dims = q, 0
    while isinstance(base, td.Independent):
        dims += base.reinterpreted_batch_ndims
        base = base.base_dist
    if isinstance(base, td.Normal):
        shape = batch + base.loc.shape[1:]
        new = type(base)(base.loc.reshape(shape), base.scale.reshape(shape))
        return td.Independent(new, dims) if dims else new
    if isinstance(base, td.MultivariateNormal) and not dims:
        Z = base.loc.shape[-1:]
        return type(base)(base.loc.reshape(batch + Z), scale_tril=base.scale_tril.reshape(batch + Z + Z))
    raise NotImplementedError(f"no reshaped view of a {type(base).__name__} guide: the KL is sampled instead")


class VQModel(Protocol):
    r"""What :class:`VQVAEDistribution` reads of its model (a :class:`~gendist.latent.VQVAE`)."""

    shape: Size
    grid: tuple[int, ...]
    family: Any

    def _dtype(self) -> torch.dtype: ...

    def bound(self, x: Tensor) -> tuple[Tensor, Tensor]: ...

    def prior(self) -> Distribution: ...

    def decode(self, k: Tensor) -> Distribution: ...


class VQVAEDistribution(Honest, TorchDistribution):
    r"""The distribution of a :class:`~gendist.latent.VQVAE`: codes from the prior, then pixels from the decoder.

    .. math:: p(x) = \sum_k p(x \mid k)\, p(k), \qquad
        \log p(x) \ge \log p(x \mid k(x)) + \log p(k(x))

    ``sample`` draws :math:`k \sim p(k)` (the autoregressive prior) and
    :math:`x \sim p(x \mid k)`. ``log_prob`` is the right-hand side: the ELBO
    with the encoder's point-mass posterior :math:`q(k \mid x) = \delta_{k(x)}`,
    :math:`\mathbb{E}_q[\log p(x \mid k)] + \mathbb{E}_q[\log p(k)] - \mathbb{E}_q[\log q(k \mid x)]`,
    whose entropy term is 0 (a point mass on a discrete space). It is a
    deterministic lower bound: ``log_prob_kind = "bound"``, exact only when
    :math:`k(x)` is the only code grid that can produce :math:`x`. Values
    outside the family's support get :math:`-\infty` (a ``ValueError`` naming
    them with ``validate_args=True``).

    Built by a module: ``VQVAE((1, 8, 8), Categorical(17), ...)()``.

    Arguments:
        model: the :class:`~gendist.latent.VQVAE`.
        batch_shape: the batch shape (``()``; :meth:`expand` makes others).
    """

    log_prob_kind = "bound"
    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(self, model: VQModel, batch_shape: Sequence[int] = (), validate_args: bool | None = None) -> None:
        self.model = model
        super().__init__(Size(batch_shape), model.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.model.family.support, 3)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return False

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> VQVAEDistribution:
        new = type(self).__new__(type(self)) if _instance is None else _instance
        VQVAEDistribution.__init__(new, self.model, batch_shape, self._validate_args)
        return new

    def log_prob(self, value: Tensor) -> Tensor:
        model = self.model
        x = check_values(
            "VQVAE.log_prob", value, model.family, self.event_shape, model._dtype(), bool(self._validate_args)
        )
        ok = None
        if model.family.discrete:  # out-of-support entries: score -inf, show the networks a 0
            inside = model.family.support.check(x)
            ok = inside.flatten(x.dim() - 3).all(-1)
            x = torch.where(inside, x, torch.zeros((), dtype=x.dtype, device=x.device))
        batch = torch.broadcast_shapes(x.shape[:-3], self.batch_shape)
        recon, prior = model.bound(x.expand(batch + self.event_shape).reshape((-1,) + self.event_shape))
        lp = (recon + prior).reshape(batch)
        if ok is None:
            return lp
        return torch.where(ok.expand(batch), lp, torch.full((), -math.inf, dtype=lp.dtype, device=lp.device))

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        shape = Size(sample_shape) + self.batch_shape
        model = self.model
        with torch.no_grad():
            k = model.prior().sample((shape.numel(),)).long().reshape((-1,) + model.grid)
            return model.decode(k).sample().reshape(shape + self.event_shape)
