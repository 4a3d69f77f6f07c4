r"""The transform base class, fused value-and-log-det paths, composition and inversion.

Every bijection in gendist is a :class:`torch.distributions.Transform`. On top of
torch's interface, gendist transforms offer two *fused* paths that return the
value and the log-absolute-determinant of the Jacobian in one pass,

.. math:: (y, \log |\det J_f(x)|) = f.\mathrm{call\_and\_ladj}(x), \qquad
          (x, \log |\det J_f(x)|) = f.\mathrm{inv\_and\_ladj}(y),

so a flow's ``log_prob`` never inverts and differentiates separately. The
module-level :func:`call_and_ladj` and :func:`inv_and_ladj` accept *any* torch
transform (``ComposeTransform``, ``.inv``, ``IndependentTransform``, torch's own
elementwise maps) and use the fused path wherever one exists.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions.transforms import (
    ComposeTransform,
    IndependentTransform,
    _InverseTransform,
)
from torch.distributions.transforms import Transform as _TorchTransform
from torch.distributions.utils import _sum_rightmost

__all__ = [
    "Transform",
    "Inverse",
    "Compose",
    "call_and_ladj",
    "inv_and_ladj",
]


class Transform(_TorchTransform):
    r"""Base class of gendist bijections: a torch ``Transform`` with fused paths.

    Subclasses implement :meth:`call_and_ladj` and :meth:`inv_and_ladj` (and
    declare ``domain``, ``codomain``, ``bijective`` and ``sign`` where defined);
    ``_call``, ``_inverse`` and ``log_abs_det_jacobian`` follow from them.
    ``inv_and_ladj`` returns the log-determinant of the *forward* map at ``x``.
    """

    bijective = True

    def __init__(self, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = self._call(x)
        return y, self.log_abs_det_jacobian(x, y)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = self._inverse(y)
        return x, self.log_abs_det_jacobian(x, y)

    def _call(self, x: Tensor) -> Tensor:
        return self.call_and_ladj(x)[0]

    def _inverse(self, y: Tensor) -> Tensor:
        return self.inv_and_ladj(y)[0]

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return self.call_and_ladj(x)[1]

    @property
    def inv(self) -> _TorchTransform:
        inv = self._inv() if self._inv is not None else None
        if inv is None:
            inv = Inverse(self)
            self._inv = weakref.ref(inv)
        return inv

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Inverse(_InverseTransform):
    r"""The inverse :math:`f^{-1}` of a transform, keeping the fused paths."""

    def call_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x, ladj = inv_and_ladj(self._inv, y)
        return x, -ladj

    def inv_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, ladj = call_and_ladj(self._inv, x)
        return y, -ladj


class Compose(ComposeTransform):
    r"""Composition :math:`f_n \circ \dots \circ f_1` with fused paths.

    A drop-in for :class:`torch.distributions.ComposeTransform`; parts are
    applied left to right.
    """

    def __init__(self, parts: Sequence[_TorchTransform], cache_size: int = 0) -> None:
        super().__init__(list(parts), cache_size=cache_size)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _compose_call(self.parts, self.domain.event_dim, x)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return _compose_inv(self.parts, self.codomain.event_dim, y)


def _compose_call(
    parts: Sequence[_TorchTransform], event_dim: int, x: Tensor
) -> tuple[Tensor, Tensor]:
    total: Tensor | float = 0.0
    for part in parts:
        x, ladj = call_and_ladj(part, x)
        total = total + _sum_rightmost(ladj, event_dim - part.domain.event_dim)
        event_dim += part.codomain.event_dim - part.domain.event_dim
    if not isinstance(total, Tensor):
        total = torch.zeros_like(_sum_rightmost(x, event_dim))
    return x, total


def _compose_inv(
    parts: Sequence[_TorchTransform], event_dim: int, y: Tensor
) -> tuple[Tensor, Tensor]:
    total: Tensor | float = 0.0
    for part in reversed(parts):
        y, ladj = inv_and_ladj(part, y)
        total = total + _sum_rightmost(ladj, event_dim - part.codomain.event_dim)
        event_dim += part.domain.event_dim - part.codomain.event_dim
    if not isinstance(total, Tensor):
        total = torch.zeros_like(_sum_rightmost(y, event_dim))
    return y, total


def call_and_ladj(t: _TorchTransform, x: Tensor) -> tuple[Tensor, Tensor]:
    r"""Return :math:`(t(x), \log |\det J_t(x)|)` for any torch transform."""
    if isinstance(t, (Transform, Inverse, Compose)):
        return t.call_and_ladj(x)
    if isinstance(t, ComposeTransform):
        return _compose_call(t.parts, t.domain.event_dim, x)
    if isinstance(t, _InverseTransform):
        y, ladj = inv_and_ladj(t._inv, x)
        return y, -ladj
    if isinstance(t, IndependentTransform):
        y, ladj = call_and_ladj(t.base_transform, x)
        return y, _sum_rightmost(ladj, t.reinterpreted_batch_ndims)
    y = t(x)
    return y, t.log_abs_det_jacobian(x, y)


def inv_and_ladj(t: _TorchTransform, y: Tensor) -> tuple[Tensor, Tensor]:
    r"""Return :math:`(t^{-1}(y), \log |\det J_t(t^{-1}(y))|)` for any torch transform."""
    if isinstance(t, (Transform, Inverse, Compose)):
        return t.inv_and_ladj(y)
    if isinstance(t, ComposeTransform):
        return _compose_inv(t.parts, t.codomain.event_dim, y)
    if isinstance(t, _InverseTransform):
        x, ladj = call_and_ladj(t._inv, y)
        return x, -ladj
    if isinstance(t, IndependentTransform):
        x, ladj = inv_and_ladj(t.base_transform, y)
        return x, _sum_rightmost(ladj, t.reinterpreted_batch_ndims)
    x = t.inv(y)
    return x, t.log_abs_det_jacobian(x, y)

