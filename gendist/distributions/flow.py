r"""The normalizing-flow distribution: a base distribution pushed through a bijection."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro.distributions as dist
import torch
from torch import Size, Tensor
from torch.distributions import Distribution, biject_to, constraints
from torch.distributions.transforms import Transform as _TorchTransform
from torch.distributions.utils import _sum_rightmost

from gendist._checks import check_value
from gendist.distributions.base import Honest
from gendist.transforms.base import Compose, call_and_ladj, inv_and_ladj

__all__ = ["Flow"]


class Flow(Honest, dist.TransformedDistribution):
    r"""A normalizing flow :math:`x = f(z)`, :math:`z \sim p_Z`, with an exact density

    .. math:: \log p(x) = \log p_Z(f^{-1}(x)) - \log |\det J_f(f^{-1}(x))| .

    A :class:`pyro.distributions.TransformedDistribution`, so it works in
    ``pyro.sample``, with ``.to_event``, ``.mask``, ``.expand`` and plates.
    Unlike torch's generic version, ``log_prob`` and :meth:`rsample_and_log_prob`
    use the fused value-and-log-det path of every transform: one pass, nothing
    recomputed.

    ``log_prob_kind = "exact"``.

    Arguments:
        base: the base distribution :math:`p_Z`.
        transforms: the bijections from the base space to the data space,
            applied in order.

    Example:
        >>> from gendist.transforms import MonotonicAffine
        >>> base = dist.Normal(torch.zeros(2), torch.ones(2)).to_event(1)
        >>> d = Flow(base, [MonotonicAffine(torch.ones(2), torch.zeros(2))])
        >>> d.log_prob(torch.ones(2)).shape
        torch.Size([])
    """

    log_prob_kind = "exact"

    def __init__(
        self,
        base: Distribution,
        transforms: _TorchTransform | Sequence[_TorchTransform],
        validate_args: bool | None = None,
    ) -> None:
        if isinstance(transforms, _TorchTransform):
            transforms = [transforms]
        super().__init__(base, list(transforms), validate_args=validate_args)
        self.transform = Compose(self.transforms)
        self._constrained = not _is_real(self.transform.codomain)
        self.dtype: torch.dtype | None = None  # the model's dtype, when a module built this flow
        self._last: tuple[Tensor, Tensor] | None = None  # (sample, its log_prob), see log_prob

    def expand(self, batch_shape: Size, _instance: Flow | None = None) -> Flow:
        new = self._get_checked_instance(Flow, _instance)
        new = super().expand(batch_shape, _instance=new)
        new.transform = self.transform
        new._constrained = self._constrained
        new.dtype = self.dtype
        new._last = None
        return new

    def _base_event_dim(self) -> int:
        t = self.transform
        return len(self.event_shape) + t.domain.event_dim - t.codomain.event_dim

    def _combine(self, base_log_prob: Tensor, ladj: Tensor) -> Tensor:
        t = self.transform
        lp = _sum_rightmost(base_log_prob, self._base_event_dim() - len(self.base_dist.event_shape))
        return lp - _sum_rightmost(ladj, len(self.event_shape) - t.codomain.event_dim)

    def log_prob(self, value: Tensor) -> Tensor:
        r"""The exact log-density of ``value``: one inverse pass with its log-determinant.

        The log-density of the last ``sample``/``rsample`` drawn from this
        object was computed with it; scoring that same tensor (as Pyro does
        with a guide's sample) returns it without inverting.
        """
        last = self._last
        if last is not None and value is last[0]:
            return last[1]
        check_value("value", value, self.event_shape, f"{type(self).__name__}.log_prob", self.dtype)
        if value.numel() == 0:  # torch's support checks and _sum_rightmost fail on empty batches
            shape = torch.broadcast_shapes(value.shape[: value.dim() - len(self.event_shape)], self.batch_shape)
            return value.new_zeros(shape)
        if self._validate_args:
            self._validate_sample(value)
        if self._constrained:  # outside a constrained support the density is 0
            inside = self.support.check(value)
            if not torch.compiler.is_compiling() and not bool(inside.all()):
                # score a point of the support instead, so no NaN reaches the gradients
                safe = biject_to(self.support)(torch.zeros_like(value))
                value = torch.where(inside.reshape(inside.shape + (1,) * len(self.event_shape)), value, safe)
        z, ladj = inv_and_ladj(self.transform, value)
        lp = self._combine(self.base_dist.log_prob(z), ladj)
        if self._constrained:
            lp = torch.where(inside, lp, torch.full_like(lp, -math.inf))
        return lp

    def _no_rsample(self) -> NotImplementedError:
        return NotImplementedError(
            f"the base distribution {type(self.base_dist).__name__} cannot be reparameterized (no rsample); "
            "use sample() or sample_and_log_prob() for samples without gradients, or a reparameterizable base"
        )

    def rsample(self, sample_shape: Size = Size()) -> Tensor:
        if getattr(self.base_dist, "log_prob_kind", None) == "none":  # an implicit base: samples only
            if not self.has_rsample:
                raise self._no_rsample()
            return self.transform(self.base_dist.rsample(sample_shape))
        self._last = self.rsample_and_log_prob(sample_shape)
        return self._last[0]

    def sample(self, sample_shape: Size = Size()) -> Tensor:
        if getattr(self.base_dist, "log_prob_kind", None) == "none":
            with torch.no_grad():
                return self.transform(self.base_dist.sample(sample_shape))
        self._last = self.sample_and_log_prob(sample_shape)
        return self._last[0]

    def rsample_and_log_prob(self, sample_shape: Size = Size()) -> tuple[Tensor, Tensor]:
        r"""Draw reparameterized samples and their log-density in one forward pass."""
        if not self.has_rsample:
            raise self._no_rsample()
        z = self.base_dist.rsample(sample_shape)
        x, ladj = call_and_ladj(self.transform, z)
        return x, self._combine(self.base_dist.log_prob(z), ladj)

    def sample_and_log_prob(self, sample_shape: Size = Size()) -> tuple[Tensor, Tensor]:
        r"""Draw samples and their log-density in one forward pass, without gradients."""
        with torch.no_grad():
            z = self.base_dist.sample(sample_shape)
            x, ladj = call_and_ladj(self.transform, z)
            return x, self._combine(self.base_dist.log_prob(z), ladj)


def _is_real(c: constraints.Constraint) -> bool:
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return c is constraints.real or isinstance(c, type(constraints.real))
