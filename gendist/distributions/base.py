r"""What every gendist distribution shares: an honest statement of its likelihood, and of what it cannot compute."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor
from torch.distributions import Distribution, register_kl

__all__ = ["ALTERNATIVES", "LOG_PROB_KINDS", "LogProbKind", "Honest", "register_no_kl", "unimplemented"]

LogProbKind = Literal["exact", "bound", "estimate", "unnormalized", "none"]

LOG_PROB_KINDS: dict[str, str] = {
    "exact": "log_prob is the exact normalized log-density",
    "bound": "log_prob is a lower bound of the log-density",
    "estimate": "log_prob is a stochastic estimate of the log-density",
    "unnormalized": "log_prob is correct only up to an unknown additive constant (log Z)",
    "none": "log_prob cannot be computed; calling it raises an error",
}


ALTERNATIVES: dict[str, str] = {
    "mean": "has no closed-form mean; estimate it from samples: `d.sample((n,)).mean(0)`",
    "variance": "has no closed-form variance (nor stddev); estimate it from samples: `d.sample((n,)).var(0)` "
    "(`.std(0)` for the stddev)",
    "entropy": "has no closed-form entropy; estimate it by Monte Carlo: `-d.log_prob(d.sample((n,))).mean(0)`",
    "cdf": "has no closed-form cdf; estimate P(X <= x) from samples: `(d.sample((n,)) <= x).float().mean(0)` "
    "(add `.all(-1)` before the mean for the joint cdf of a vector)",
    "icdf": "has no closed-form icdf (quantile function); use empirical quantiles of samples: "
    "`d.sample((n,)).quantile(q, dim=0)`",
    "enumerate_support": "cannot enumerate its support (has_enumerate_support is False); draw values with "
    "`d.sample((n,))` instead",
    "kl": "has no closed-form KL divergence; estimate it by Monte Carlo: "
    "`x = p.sample((n,)); (p.log_prob(x) - q.log_prob(x)).mean(0)`, or compare samples with gendist.metrics "
    "(mmd, energy_distance, sliced_wasserstein, classifier_two_sample_test)",
}
r"""What to say, and to use instead, when a distribution cannot compute one of these (see :func:`unimplemented`)."""


def unimplemented(d: object, what: str, detail: str = "") -> NotImplementedError:
    r"""The ``NotImplementedError`` for ``d.<what>()`` (a key of :data:`ALTERNATIVES`), naming what to use instead.

    Example:
        >>> str(unimplemented(object(), "mean")).startswith("object has no closed-form mean")
        True
    """
    message = f"{type(d).__name__.lstrip('_')} {ALTERNATIVES[what]}"
    return NotImplementedError(f"{message} ({detail})" if detail else message)


def _no_kl(p: Distribution, q: Distribution) -> Tensor:
    raise unimplemented(p, "kl", f"kl_divergence(p={type(p).__name__.lstrip('_')}, q={type(q).__name__.lstrip('_')})")


def register_no_kl(cls: type[Distribution]) -> type[Distribution]:
    r"""Make ``kl_divergence(p, q)``, for ``p`` a ``cls`` and any ``q``, raise an error naming what to use instead.

    Torch's own error for an unregistered pair names nothing to do. Only for a class that torch and Pyro
    register no KL for as ``p`` (others would make torch's dispatch ambiguous); returns ``cls``, so it decorates.
    """
    register_kl(cls, Distribution)(_no_kl)
    return cls


class Honest:
    r"""Mixin declaring what a distribution's ``log_prob`` is, and explaining what it cannot compute.

    ``log_prob_kind`` is one of ``"exact"``, ``"bound"``, ``"estimate"``,
    ``"unnormalized"`` or ``"none"`` (see :data:`LOG_PROB_KINDS`).

    Put before the torch class among the bases, it turns the bare ``NotImplementedError`` that torch raises
    for ``mean``, ``variance`` (and so ``stddev``), ``entropy``, ``cdf``, ``icdf`` and ``enumerate_support``
    into one that says what to use instead (:data:`ALTERNATIVES`); what the torch class computes, it returns.
    """

    log_prob_kind: ClassVar[LogProbKind]

    @property
    def mean(self) -> Tensor:
        return _explained(self, "mean", lambda: super(Honest, self).mean)

    @property
    def variance(self) -> Tensor:
        return _explained(self, "variance", lambda: super(Honest, self).variance)

    def entropy(self) -> Tensor:
        return _explained(self, "entropy", super().entropy)

    def cdf(self, value: Tensor) -> Tensor:
        return _explained(self, "cdf", super().cdf, value)

    def icdf(self, value: Tensor) -> Tensor:
        return _explained(self, "icdf", super().icdf, value)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        return _explained(self, "enumerate_support", super().enumerate_support, expand)


def _explained(d: object, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except NotImplementedError as e:
        inner = str(e)  # torch's reason, if any; a part's own explanation (a flow's base) is said once
        raise unimplemented(d, what, "" if ALTERNATIVES[what] in inner else inner) from e
