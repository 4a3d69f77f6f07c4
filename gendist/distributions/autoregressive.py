r"""The autoregressive distribution: :math:`p(x) = \prod_i p(x_{\sigma(i)} \mid x_{\sigma(<i)})`, exactly."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from pyro.distributions import TorchDistribution
from torch import Size, Tensor
from torch.distributions import constraints

from gendist._checks import check_integer
from gendist.distributions.base import Honest
from gendist.distributions.conditionals import Conditional, check_values

__all__ = ["ARModel", "Autoregressive", "Ensemble"]

ENUMERATION_LIMIT = 2**16  # the most configurations enumerate_support will list


class ARModel(Protocol):
    r"""What :class:`Autoregressive` needs from a network (see :class:`gendist.autoregressive.ARModule`).

    ``x`` is always ``(N, *shape)`` values and ``c`` is ``(N, context)`` or None.
    """

    family: Conditional
    shape: Size

    def conditionals(self, x: Tensor, c: Tensor | None) -> Tensor:
        r"""Every :math:`\theta_i` in one pass, ``(N, *shape, params)``; each sees only earlier positions."""

    def ordering(self) -> list[int]:
        r"""The flat positions in the order they are generated."""

    def begin(self, n: int, c: Tensor | None) -> Any:
        r"""A fresh sampling state (a cache) for ``n`` sequences."""

    def step(self, state: Any, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        r""":math:`\theta` of position ``ordering()[i]``, ``(N, params)``, once the earlier ones are in ``x``."""

    def step_uncached(self, x: Tensor, c: Tensor | None, i: int) -> Tensor:
        r"""The same, recomputed from scratch (a full pass)."""


class Autoregressive(Honest, TorchDistribution):
    r"""An autoregressive distribution with an exact likelihood.

    .. math:: \log p(x \mid c) = \sum_i \log p(x_{\sigma(i)} \mid \theta_{\sigma(i)}(x_{\sigma(<i)}, c))

    where a network computes every :math:`\theta_i` in one pass (``log_prob``)
    and :math:`\sigma` is its generation order. Sampling runs the positions
    one after the other (:math:`D` steps), reusing cached activations where
    the network allows it (``sample(shape, cache=False)`` recomputes every
    step from scratch, with the same random draws). :meth:`inpaint` samples
    the missing positions given observed ones.

    ``log_prob_kind = "exact"``. Discrete families give values as floating-point
    tensors of integers; out-of-support values get ``-inf`` (or, with
    ``validate_args=True``, an error naming them).

    Built by a module: ``gendist.autoregressive.MADE(10, family=Bernoulli())()``.

    Arguments:
        model: the network and family (an :class:`ARModel`).
        context: the context, ``(*batch_shape, context)``, or None.
        batch_shape: the batch shape of an unconditional distribution.
    """

    log_prob_kind = "exact"
    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self,
        model: ARModel,
        context: Tensor | None = None,
        batch_shape: Sequence[int] | None = None,
        validate_args: bool | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.family = model.family
        self.context = context
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        if batch_shape is None:
            batch_shape = context.shape[:-1] if context is not None else Size()
        super().__init__(Size(batch_shape), Size(model.shape), validate_args=validate_args)

    # --- what torch and Pyro look at -------------------------------------------------------

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.family.support, len(self.event_shape))

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.family.has_rsample

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return self.family.discrete and self.family.levels ** self.event_shape.numel() <= ENUMERATION_LIMIT

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> Autoregressive:
        batch_shape = Size(batch_shape)
        context = None
        if self.context is not None:
            context = self.context.expand(batch_shape + self.context.shape[-1:])
        new = type(self).__new__(type(self)) if _instance is None else _instance
        Autoregressive.__init__(new, self.model, context, batch_shape, self._validate_args, self.dtype)
        return new

    def enumerate_support(self, expand: bool = True) -> Tensor:
        if not self.has_enumerate_support:
            levels = self.family.levels
            why = (
                "enumerate_support lists every configuration: only discrete families with at most "
                f"{ENUMERATION_LIMIT} of them (this one has {levels}^{self.event_shape.numel()})" if levels else
                "enumerate_support needs a discrete family; this one is continuous"
            )
            raise NotImplementedError(f"{why}; draw values with `d.sample((n,))` instead")
        D, levels = self.event_shape.numel(), self.family.levels
        grid = torch.tensor(list(itertools.product(range(levels), repeat=D)), dtype=self.dtype)
        values = grid.reshape((-1,) + (1,) * len(self.batch_shape) + self.event_shape)
        values = values.to(self.context.device if self.context is not None else _device(self.model))
        return values.expand((-1,) + self.batch_shape + self.event_shape) if expand else values

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError("an autoregressive mean has no closed form; estimate it with sample((n,)).mean(0)")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError("an autoregressive variance has no closed form; estimate it with sample((n,)).var(0)")

    def entropy(self) -> Tensor:
        raise NotImplementedError(
            "an autoregressive entropy has no closed form; estimate it with -d.log_prob(d.sample((n,))).mean(0)"
        )

    # --- density ---------------------------------------------------------------------------

    def _flat(self, x: Tensor) -> tuple[Tensor, Tensor | None, Size]:
        r"""Broadcast ``x`` and the context to one batch and flatten it: ``(N, *event)``, ``(N, C)``."""
        e = len(self.event_shape)
        batch = torch.broadcast_shapes(x.shape[: x.dim() - e], self.batch_shape)
        x = x.expand(batch + self.event_shape).reshape((-1,) + self.event_shape)
        c = self.context
        if c is not None:
            c = c.expand(batch + c.shape[-1:]).reshape(-1, c.shape[-1])
        return x, c, batch

    def _check(self, x: Tensor) -> Tensor:
        r"""The value as a float tensor of the model's dtype, or a clear error."""
        where = "Autoregressive.log_prob"
        return check_values(where, x, self.family, self.event_shape, self.dtype, bool(self._validate_args))

    def conditional_log_probs(self, value: Tensor) -> Tensor:
        r"""Every term :math:`\log p(x_i \mid x_{<i})`, shape ``sample_shape + batch_shape + event_shape``.

        Out-of-support entries get ``-inf`` at their own position.
        """
        x = self._check(value)
        inside = None
        if self.family.discrete:  # a real-valued family's support is every finite value _check let through
            inside = self.family.support.check(x)
            x = torch.where(inside, x, torch.zeros((), dtype=x.dtype, device=x.device))  # the network sees 0
        flat, c, batch = self._flat(x)
        theta = self.model.conditionals(flat, c)
        lp = self.family.log_prob(theta, flat).reshape(batch + self.event_shape)
        if inside is None:
            return lp
        return torch.where(inside, lp, torch.full((), -math.inf, dtype=lp.dtype, device=lp.device))

    def log_prob(self, value: Tensor) -> Tensor:
        lp = self.conditional_log_probs(value)
        return lp.flatten(lp.dim() - len(self.event_shape)).sum(-1) if self.event_shape else lp

    # --- generation ------------------------------------------------------------------------

    def _generate(
        self,
        sample_shape: Size,
        cache: bool = True,
        reparameterized: bool = False,
        given: Tensor | None = None,
        observed: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Values ``sample_shape + batch_shape + event_shape`` and their log-probabilities."""
        shape = Size(sample_shape) + self.batch_shape
        n = shape.numel()
        device = self.context.device if self.context is not None else _device(self.model)
        c = None
        if self.context is not None:
            c = self.context.expand(shape + self.context.shape[-1:]).reshape(n, -1)
        D = self.event_shape.numel()
        if given is not None:
            x = given.expand(shape + self.event_shape).reshape(n, D).clone()
            keep = observed.expand(shape + self.event_shape).reshape(n, D)
        else:
            x = torch.zeros(n, D, dtype=self.dtype, device=device)
            keep = None
        lp = torch.zeros(n, dtype=self.dtype, device=device)
        family, model = self.family, self.model
        state = model.begin(n, c) if cache else None
        for i, pos in enumerate(model.ordering()):
            view = x.view((n,) + self.event_shape)
            theta = model.step(state, view, c, i) if cache else model.step_uncached(view, c, i)
            v = family.rsample(theta) if reparameterized else family.sample(theta)
            if keep is not None:
                v = torch.where(keep[:, pos], x[:, pos], v)
            lp = lp + family.log_prob(theta, v)
            if reparameterized:
                x = x.clone()  # autograd keeps the earlier versions the network read
            x[:, pos] = v
        return x.reshape(shape + self.event_shape), lp.reshape(shape)

    def sample(self, sample_shape: Size = Size(), cache: bool = True) -> Tensor:
        with torch.no_grad():
            return self._generate(Size(sample_shape), cache)[0]

    def sample_and_log_prob(self, sample_shape: Size = Size(), cache: bool = True) -> tuple[Tensor, Tensor]:
        r"""Samples and their exact log-probabilities, from the one sequential pass (no extra network pass)."""
        with torch.no_grad():
            return self._generate(Size(sample_shape), cache)

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        return self.rsample_and_log_prob(sample_shape)[0]

    def rsample_and_log_prob(self, sample_shape: Size = Size()) -> tuple[Tensor, Tensor]:
        r"""Reparameterized samples (continuous reparameterizable families only) and their log-probabilities."""
        if not self.family.has_rsample:
            raise NotImplementedError(
                f"{self.family!r} values cannot be reparameterized; use sample() (or a Normal family for rsample)"
            )
        return self._generate(Size(sample_shape), cache=True, reparameterized=True)

    def inpaint(self, value: Tensor, observed: Tensor, sample_shape: Size = Size(), particles: int = 1) -> Tensor:
        r"""Sample the unobserved positions of ``value`` given the ``observed`` ones.

        Positions are drawn in the generation order from
        :math:`p(x_i \mid x_{<i})` with the observed values kept. That is exact
        :math:`p(x_\text{miss} \mid x_\text{obs})` when every observed position
        comes before every missing one in the order; otherwise it ignores the
        observed positions that come later. ``particles > 1`` corrects for them
        by sampling-importance-resampling: each output is one of ``particles``
        proposals drawn with weights :math:`\prod_{i \in \text{obs}} p(x_i \mid x_{<i})`
        (exact as ``particles`` grows).

        Arguments:
            value: ``(*batch, *event_shape)``; the entries at unobserved positions are ignored
                (placeholders such as NaN are fine).
            observed: a boolean mask broadcastable to ``value``; True where observed.
            sample_shape: how many completions per value.
            particles: proposals per completion.
        """
        if not isinstance(value, Tensor):
            raise TypeError(f"Autoregressive.inpaint: `value` must be a torch.Tensor, got {type(value).__name__}")
        observed = torch.as_tensor(observed, device=value.device)
        if observed.dtype != torch.bool:
            raise TypeError(f"Autoregressive.inpaint: `observed` must be a boolean mask, got dtype {observed.dtype}")
        particles = check_integer("Autoregressive.inpaint: `particles`", particles, 1)
        try:
            observed = observed.expand(value.shape)
        except RuntimeError:
            raise ValueError(
                f"Autoregressive.inpaint: `observed` of shape {tuple(observed.shape)} does not broadcast to "
                f"`value`'s shape {tuple(value.shape)}"
            ) from None
        # the unobserved entries are placeholders (NaN, -1, ...): 0, a value of every family, stands in for them,
        # so they neither fail validation nor reach the network (0 * NaN = NaN through a masked weight)
        x = self._check(torch.where(observed, value, torch.zeros((), dtype=value.dtype, device=value.device)))
        if self.family.discrete and not bool(self.family.support.check(x)[observed].all()):
            raise ValueError(f"Autoregressive.inpaint: observed entries of `value` are outside {self.family.support}")
        e = len(self.event_shape)
        batch = torch.broadcast_shapes(x.shape[: x.dim() - e], self.batch_shape)
        d = self.expand(batch) if batch != self.batch_shape else self
        outer = Size(sample_shape) + ((int(particles),) if particles > 1 else ())
        with torch.no_grad():
            filled, _ = d._generate(outer, given=x.expand(batch + self.event_shape), observed=observed)
            if particles == 1:
                return filled
            lp = d.conditional_log_probs(filled)
            logw = torch.where(observed.expand(lp.shape), lp, torch.zeros_like(lp)).flatten(lp.dim() - e).sum(-1)
            k = len(sample_shape)
            w = logw.movedim(k, -1)  # (*sample, *batch, particles)
            pick = torch.multinomial(w.reshape(-1, particles).softmax(-1), 1).reshape(w.shape[:-1])
            index = pick.reshape(pick.shape + (1,) * (e + 1)).expand(pick.shape + (1,) + self.event_shape)
            return filled.movedim(k, -1 - e).gather(-1 - e, index).squeeze(-1 - e)


def _device(model: Any) -> torch.device:
    for t in itertools.chain(model.parameters(), model.buffers()) if hasattr(model, "parameters") else ():
        return t.device
    return torch.device("cpu")


class Ensemble(Honest, TorchDistribution):
    r"""A uniform mixture of exact distributions: :math:`p(x) = \frac1K \sum_k p_k(x)`.

    The ensemble over orders (or masks) of an autoregressive model: ``log_prob``
    averages probabilities, :math:`\operatorname{logsumexp}_k \log p_k(x) - \log K`,
    never logits, so it stays a normalized density. ``sample`` draws every
    component and keeps one chosen uniformly per sample and batch element
    (:math:`K` times the cost of one component, and independent across the batch).

    ``log_prob_kind = "exact"`` (when every component is exact).

    Arguments:
        components: distributions with one batch and event shape.
    """

    log_prob_kind = "exact"
    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(self, components: Sequence[TorchDistribution], validate_args: bool | None = None) -> None:
        components = list(components)
        if not components:
            raise ValueError("Ensemble needs at least one component")
        first = components[0]
        for d in components:
            if d.batch_shape != first.batch_shape or d.event_shape != first.event_shape:
                raise ValueError(
                    "Ensemble components must share batch and event shapes, got "
                    f"{[(tuple(d.batch_shape), tuple(d.event_shape)) for d in components]}"
                )
            if getattr(d, "log_prob_kind", "exact") != "exact":
                raise ValueError(f"Ensemble components must have exact log_prob, got {d.log_prob_kind!r}")
        self.components = components
        super().__init__(first.batch_shape, first.event_shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return self.components[0].support

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return bool(self.components[0].has_enumerate_support)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        return self.components[0].enumerate_support(expand)

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> Ensemble:
        return Ensemble([d.expand(batch_shape) for d in self.components], self._validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        lp = torch.stack([d.log_prob(value) for d in self.components])
        return torch.logsumexp(lp, 0) - math.log(len(self.components))

    def sample_and_log_prob(self, sample_shape: Size = Size()) -> tuple[Tensor, Tensor]:
        r"""Samples and their exact log-probabilities under the mixture (one extra scoring pass per component)."""
        x = self.sample(sample_shape)
        with torch.no_grad():
            return x, self.log_prob(x)

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        draws = torch.stack([d.sample(sample_shape) for d in self.components])  # (K, *S, *B, *E)
        K, e = len(self.components), len(self.event_shape)
        k = torch.randint(K, draws.shape[1 : draws.dim() - e], device=draws.device)
        index = k.reshape((1,) + k.shape + (1,) * e).expand((1,) + draws.shape[1:])
        return draws.gather(0, index).squeeze(0)
