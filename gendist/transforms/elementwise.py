r"""Elementwise monotone bijections: affine, sigmoid/logit, softplus, leaky ReLU."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from gendist.transforms.base import Transform

__all__ = ["MonotonicAffine", "Sigmoid", "Logit", "Softplus", "LeakyReLU"]


class MonotonicAffine(Transform):
    r"""Elementwise :math:`y = x \exp(s) + m` (with :math:`s = 0` when ``log_scale`` is None).

    With ``log_scale=None`` this is the additive (volume-preserving) coupling
    map of NICE and its log-determinant is zero.

    Arguments:
        shift: the shift :math:`m`, broadcastable with the input.
        log_scale: the log-scale :math:`s`, or None for a pure shift.

    Example:
        >>> t = MonotonicAffine(torch.tensor(1.0), torch.tensor(0.5))
        >>> y, ladj = t.call_and_ladj(torch.zeros(3))
        >>> bool(torch.allclose(t.inv(y), torch.zeros(3)))
        True
    """

    domain = constraints.real
    codomain = constraints.real
    sign = +1

    def __init__(self, shift: Tensor, log_scale: Tensor | None = None) -> None:
        super().__init__()
        self.shift = shift
        self.log_scale = log_scale

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.log_scale is None:
            return x + self.shift, torch.zeros_like(x)
        y = torch.addcmul(self.shift, x, self.log_scale.exp())
        return y, self.log_scale.expand(y.shape)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.log_scale is None:
            return y - self.shift, torch.zeros_like(y)
        x = (y - self.shift) * torch.exp(-self.log_scale)
        return x, self.log_scale.expand(x.shape)


class Sigmoid(Transform):
    r"""Elementwise :math:`y = 1 / (1 + e^{-x})` from the reals onto :math:`(0, 1)`.

    The log-determinant :math:`-\mathrm{softplus}(-x) - \mathrm{softplus}(x)`
    stays finite for every finite :math:`x`; the inverse clamps to the open
    interval so it never returns an infinity.
    """

    domain = constraints.real
    codomain = constraints.unit_interval
    sign = +1

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(x), -F.softplus(-x) - F.softplus(x)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        tiny = torch.finfo(y.dtype).tiny
        y = y.clamp(tiny, 1 - torch.finfo(y.dtype).eps)
        x = torch.log(y) - torch.log1p(-y)
        return x, torch.log(y) + torch.log1p(-y)


def Logit() -> Transform:
    r"""The logit map :math:`y = \log x - \log(1 - x)`, the inverse of :class:`Sigmoid`."""
    return Sigmoid().inv


class Softplus(Transform):
    r"""Elementwise :math:`y = \log(1 + e^x)` from the reals onto :math:`(0, \infty)`."""

    domain = constraints.real
    codomain = constraints.positive
    sign = +1

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return F.softplus(x), -F.softplus(-x)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = y.clamp_min(torch.finfo(y.dtype).tiny)
        x = y + torch.log(-torch.expm1(-y))  # log(exp(y) - 1), stable for large y
        return x, -F.softplus(-x)


class LeakyReLU(Transform):
    r"""Elementwise :math:`y = x` for :math:`x \ge 0` and :math:`y = a x` otherwise, :math:`a > 0`.

    Arguments:
        negative_slope: the slope :math:`a` on the negative half-line.
    """

    domain = constraints.real
    codomain = constraints.real
    sign = +1

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if not negative_slope > 0:
            raise ValueError(f"negative_slope must be > 0 to be invertible, got {negative_slope}")
        self.negative_slope = float(negative_slope)
        self._log_slope = math.log(self.negative_slope)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        neg = x < 0
        y = torch.where(neg, x * self.negative_slope, x)
        return y, neg.to(x.dtype) * self._log_slope

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        neg = y < 0
        x = torch.where(neg, y / self.negative_slope, y)
        return x, neg.to(y.dtype) * self._log_slope

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"
