r"""Per-dimension families for autoregressive models: :math:`p(x_i \mid \theta_i)`.

An autoregressive network outputs, for every position :math:`i`, a vector
:math:`\theta_i` of ``params`` numbers; a family turns it into the conditional
:math:`p(x_i \mid x_{<i}) = p(x_i \mid \theta_i)`. Families are stateless:
they hold only their hyper-parameters (levels, components).

Every family also says how a value is fed back to a network (``encode``, with
``inputs`` numbers per position), its elementwise ``support``, and whether it
is discrete. Discrete values are floating-point tensors holding integers, as
for :class:`torch.distributions.Bernoulli`.

Example:
    >>> fam = Categorical(5)
    >>> theta = torch.randn(3, fam.params)
    >>> fam.log_prob(theta, torch.tensor([0.0, 4.0, 2.0])).shape
    torch.Size([3])
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from gendist._checks import check_finite, check_integer

__all__ = [
    "Bernoulli",
    "check_values",
    "Categorical",
    "Conditional",
    "DiscretizedLogisticMixture",
    "Normal",
    "NormalMixture",
    "as_family",
]

_MIN_SCALE = 1e-3  # keeps continuous conditionals from collapsing to spikes on the training data


def _scale(raw: Tensor) -> Tensor:
    return F.softplus(raw) + _MIN_SCALE


class Conditional(abc.ABC):
    r"""A family of one-dimensional conditionals :math:`p(x_i \mid \theta_i)`.

    Attributes:
        params: the number of parameters :math:`|\theta_i|` per position.
        inputs: the number of values :meth:`encode` feeds back per position.
        support: the elementwise support of :math:`x_i`.
        discrete: whether :math:`x_i` takes finitely many values.
        levels: the number of values of a discrete family (None if continuous).
        has_rsample: whether :meth:`rsample` is reparameterized.
    """

    params: int
    inputs: int = 1
    support: constraints.Constraint
    discrete: bool = False
    levels: int | None = None
    has_rsample: bool = False

    @abc.abstractmethod
    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        r""":math:`\log p(x \mid \theta)` for ``theta`` of shape ``(*, params)`` and ``x`` of shape ``(*)``."""

    @abc.abstractmethod
    def sample(self, theta: Tensor) -> Tensor:
        r"""Draw :math:`x \sim p(\cdot \mid \theta)`, shape ``theta.shape[:-1]``."""

    def rsample(self, theta: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} conditionals cannot be reparameterized; use sample() "
            "(a Normal family can)"
        )

    def mean(self, theta: Tensor) -> Tensor:
        r""":math:`\mathbb{E}[x \mid \theta]`, shape ``theta.shape[:-1]``."""
        raise NotImplementedError(f"{self!r} has no closed-form mean; estimate it from samples")

    def encode(self, x: Tensor) -> Tensor:
        r"""What a network sees of :math:`x`: shape ``(*, inputs)``."""
        return x.unsqueeze(-1)

    def config(self) -> dict[str, Any]:
        r"""The JSON form of this family; :func:`as_family` reads it back."""
        return {"family": type(self).__name__, "args": dict(self._args)}

    _args: dict[str, Any] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._args == self._args  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._args.items())))


class Bernoulli(Conditional):
    r"""Binary values: :math:`p(x_i = 1 \mid \theta_i) = \sigma(\theta_i)` (one logit per position).

    Example:
        >>> Bernoulli().log_prob(torch.zeros(2, 1), torch.tensor([0.0, 1.0]))
        tensor([-0.6931, -0.6931])
    """

    params = 1
    support = constraints.boolean
    discrete = True
    levels = 2

    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(theta[..., 0], x, reduction="none")

    def sample(self, theta: Tensor) -> Tensor:
        return torch.bernoulli(torch.sigmoid(theta[..., 0]))

    def mean(self, theta: Tensor) -> Tensor:
        return torch.sigmoid(theta[..., 0])


class Categorical(Conditional):
    r"""Values :math:`0, \dots, K - 1` with :math:`p(x_i = k \mid \theta_i) = \mathrm{softmax}(\theta_i)_k`.

    Arguments:
        levels: the number of values :math:`K`.
        encode: what networks see of a value: ``"onehot"`` (:math:`K` inputs)
            or ``"scalar"`` (one input, :math:`2x / (K - 1) - 1 \in [-1, 1]`).
    """

    discrete = True

    def __init__(self, levels: int, encode: str = "onehot") -> None:
        levels = check_integer("levels", levels, 2)
        if encode not in ("onehot", "scalar"):
            raise ValueError(f"encode must be 'onehot' or 'scalar', got {encode!r}")
        self.levels = int(levels)
        self.params = self.levels
        self.inputs = self.levels if encode == "onehot" else 1
        self.support = constraints.integer_interval(0, self.levels - 1)
        self._onehot = encode == "onehot"
        self._args = {"levels": self.levels, "encode": encode}

    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        return theta.log_softmax(-1).gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def sample(self, theta: Tensor) -> Tensor:
        flat = theta.reshape(-1, self.levels).softmax(-1)
        return torch.multinomial(flat, 1).reshape(theta.shape[:-1]).to(theta.dtype)

    def mean(self, theta: Tensor) -> Tensor:
        return theta.softmax(-1) @ torch.arange(self.levels, dtype=theta.dtype, device=theta.device)

    def encode(self, x: Tensor) -> Tensor:
        if self._onehot:
            return F.one_hot(x.long(), self.levels).to(x.dtype)
        return (x * (2.0 / (self.levels - 1)) - 1.0).unsqueeze(-1)


class Normal(Conditional):
    r"""Real values :math:`x_i \sim \mathcal{N}(\mu_i, \sigma_i^2)`, :math:`\sigma_i = \mathrm{softplus}(s_i) + 0.001`.

    With a fixed ``scale`` :math:`\sigma`, :math:`\theta_i = \mu_i` alone
    (one parameter per position). Reparameterized: :meth:`rsample` draws
    :math:`\mu + \sigma \epsilon`.

    Arguments:
        scale: a fixed standard deviation, or None to read it from :math:`\theta`.
    """

    support = constraints.real
    has_rsample = True

    def __init__(self, scale: float | None = None) -> None:
        if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number or None, got {scale!r}")
        self.scale = None if scale is None else float(scale)
        self.params = 2 if scale is None else 1
        self._args = {} if scale is None else {"scale": self.scale}

    def _split(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        if self.scale is None:
            return theta[..., 0], _scale(theta[..., 1])
        return theta[..., 0], torch.full((), self.scale, dtype=theta.dtype, device=theta.device)

    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        mu, scale = self._split(theta)
        return -0.5 * ((x - mu) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)

    def rsample(self, theta: Tensor) -> Tensor:
        mu, scale = self._split(theta)
        return mu + scale * torch.randn_like(mu)

    def sample(self, theta: Tensor) -> Tensor:
        with torch.no_grad():
            return self.rsample(theta)

    def mean(self, theta: Tensor) -> Tensor:
        return theta[..., 0]


class NormalMixture(Conditional):
    r"""Real values from a mixture of :math:`K` Gaussians (mixture logits, means, scales).

    Arguments:
        components: the number of components :math:`K`.
    """

    support = constraints.real

    def __init__(self, components: int = 5) -> None:
        self.components = check_integer("components", components, 1)
        self.params = 3 * self.components
        self._args = {"components": self.components}

    def _split(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, mu, raw = theta.unflatten(-1, (3, self.components)).unbind(-2)
        return logits.log_softmax(-1), mu, _scale(raw)

    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        logw, mu, scale = self._split(theta)
        z = (x.unsqueeze(-1) - mu) / scale
        return torch.logsumexp(logw - 0.5 * z**2 - scale.log(), -1) - 0.5 * math.log(2 * math.pi)

    def mean(self, theta: Tensor) -> Tensor:
        logw, mu, _ = self._split(theta)
        return (logw.exp() * mu).sum(-1)

    def sample(self, theta: Tensor) -> Tensor:
        logw, mu, scale = self._split(theta)
        k = torch.multinomial(logw.reshape(-1, self.components).exp(), 1).reshape(logw.shape[:-1] + (1,))
        pick = lambda t: t.gather(-1, k).squeeze(-1)  # noqa: E731
        return pick(mu) + pick(scale) * torch.randn_like(pick(mu))


class DiscretizedLogisticMixture(Conditional):
    r"""Quantized values :math:`0, \dots, L - 1` from a discretized mixture of logistics (PixelCNN++).

    Level :math:`k` is the bin :math:`[v_k - \delta, v_k + \delta]` around
    :math:`v_k = 2k / (L - 1) - 1 \in [-1, 1]`, :math:`\delta = 1 / (L - 1)`; the
    two edge bins extend to :math:`\pm\infty`, so the :math:`L` probabilities sum
    to one exactly. Each component has a logit, a location and a log-scale.

    Arguments:
        levels: the number of values :math:`L` (256 for 8-bit images).
        components: the number of logistic components.

    References:
        | PixelCNN++ (Salimans et al., 2017) https://arxiv.org/abs/1701.05517
    """

    discrete = True

    def __init__(self, levels: int = 256, components: int = 5) -> None:
        levels, components = check_integer("levels", levels, 2), check_integer("components", components, 1)
        self.levels = int(levels)
        self.components = int(components)
        self.params = 3 * self.components
        self.support = constraints.integer_interval(0, self.levels - 1)
        self._args = {"levels": self.levels, "components": self.components}

    def _split(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, mu, log_s = theta.unflatten(-1, (3, self.components)).unbind(-2)
        return logits.log_softmax(-1), mu, log_s.clamp(min=-7.0)

    def log_prob(self, theta: Tensor, x: Tensor) -> Tensor:
        logw, mu, log_s = self._split(theta)
        v = (x * (2.0 / (self.levels - 1)) - 1.0).unsqueeze(-1)
        half = 1.0 / (self.levels - 1)
        inv_s = torch.exp(-log_s)
        upper = (v - mu + half) * inv_s
        lower = (v - mu - half) * inv_s
        # log(sigmoid(upper) - sigmoid(lower)) = logsigmoid(upper) + logsigmoid(-lower) + log(1 - exp(lower - upper)):
        # no cancellation in either tail, nor for a bin much narrower than the scale (lower - upper is computed
        # directly; clamped below 0 where exp(-log_s) underflows)
        log_cdf_upper = F.logsigmoid(upper)
        log_sf_lower = F.logsigmoid(-lower)
        gap = (lower - upper).clamp(max=-torch.finfo(upper.dtype).tiny)
        middle = log_cdf_upper + log_sf_lower + torch.log(-torch.expm1(gap))
        first = log_cdf_upper  # bin 0 reaches -inf
        last = log_sf_lower  # bin L-1 reaches +inf
        lp = torch.where(v < -1 + half / 2, first, torch.where(v > 1 - half / 2, last, middle))
        return torch.logsumexp(logw + lp, -1)

    def sample(self, theta: Tensor) -> Tensor:
        logw, mu, log_s = self._split(theta)
        k = torch.multinomial(logw.reshape(-1, self.components).exp(), 1).reshape(logw.shape[:-1] + (1,))
        m, s = mu.gather(-1, k).squeeze(-1), log_s.gather(-1, k).squeeze(-1).exp()
        u = torch.rand_like(m).clamp(1e-6, 1 - 1e-6)
        y = m + s * (u.log() - (-u).log1p())
        level = torch.round((y.clamp(-1, 1) + 1) * ((self.levels - 1) / 2))
        return level

    def encode(self, x: Tensor) -> Tensor:
        return (x * (2.0 / (self.levels - 1)) - 1.0).unsqueeze(-1)


def check_values(
    where: str, value: Tensor, family: Conditional, event_shape: torch.Size, dtype: torch.dtype, validate: bool
) -> Tensor:
    r"""``value`` as a float tensor of ``dtype`` ending in ``event_shape``, or a clear error.

    Integer and boolean tensors are accepted for discrete families. Real
    families reject NaN and infinite entries; with ``validate`` every entry
    must lie in ``family.support`` (otherwise out-of-support entries are the
    caller's to score as :math:`-\infty`).
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{where}: `value` must be a torch.Tensor, got {type(value).__name__}")
    x = value
    if x.dtype.is_floating_point:
        if x.dtype != dtype:
            raise TypeError(f"{where}: `value` has dtype {x.dtype} but the model is {dtype}; use `value.to({dtype})`")
    elif family.discrete and not x.dtype.is_complex:
        x = x.to(dtype)
    else:
        raise TypeError(f"{where}: `value` must be a real tensor, got dtype {x.dtype}")
    e = len(event_shape)
    if x.dim() < e or x.shape[x.dim() - e :] != event_shape:
        raise ValueError(
            f"{where}: `value` must have shape (..., {', '.join(map(str, event_shape))}) ending in the "
            f"event shape {tuple(event_shape)}, got shape {tuple(x.shape)}"
        )
    if not family.discrete:  # a discrete family's NaN is out of its support: the caller scores it -inf
        check_finite("value", x, where)
    if validate:
        inside = family.support.check(x)
        if not bool(inside.all()):
            bad = x[~inside][:5].tolist()
            raise ValueError(
                f"{where}: `value` has {int((~inside).sum())} entries outside the support {family.support} (e.g. {bad})"
            )
    return x


_FAMILIES = {c.__name__: c for c in (Bernoulli, Categorical, Normal, NormalMixture, DiscretizedLogisticMixture)}


def as_family(spec: Conditional | str | dict[str, Any]) -> Conditional:
    r"""A family from an instance, a name (``"bernoulli"``, ``"normal"``) or :meth:`Conditional.config`'s dict.

    Example:
        >>> as_family("bernoulli"), as_family({"family": "Categorical", "args": {"levels": 3}})
        (Bernoulli(), Categorical(levels=3, encode='onehot'))
    """
    if isinstance(spec, Conditional):
        return spec
    if isinstance(spec, str):
        lower = {k.lower(): v for k, v in _FAMILIES.items()}
        if spec.lower() in lower and spec.lower() in ("bernoulli", "normal"):
            return lower[spec.lower()]()
        raise ValueError(
            f"unknown family {spec!r}: by name only 'bernoulli' and 'normal' (the others need arguments, "
            "e.g. Categorical(17))"
        )
    if isinstance(spec, dict) and spec.get("family") in _FAMILIES:
        return _FAMILIES[spec["family"]](**spec.get("args", {}))
    raise TypeError(
        f"family must be a gendist.distributions.conditionals.Conditional (Bernoulli(), Categorical(K), "
        f"Normal(), NormalMixture(k), DiscretizedLogisticMixture(L, k)), got {spec!r}"
    )
