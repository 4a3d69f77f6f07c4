r"""Autoregressive and coupling transforms built from a conditioner (a "meta" function)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import LongTensor, Tensor
from torch.distributions import constraints
from torch.distributions.transforms import Transform as _TorchTransform

from gendist.transforms.base import Transform, call_and_ladj, inv_and_ladj

__all__ = ["Autoregressive", "Coupling"]


class Autoregressive(Transform):
    r"""Autoregressive map :math:`y_i = f(x_i; \theta_i(x_{<i}))`.

    ``meta(x)`` returns the elementwise transform :math:`f(\cdot; \theta(x))`
    whose parameters for feature :math:`i` depend only on the features before
    :math:`i` in the conditioner's order (a MADE does this in one pass).

    Cost: the forward map is **one** conditioner pass; the inverse needs
    ``passes`` sequential passes (the number of features), each one fixing
    one more feature of the order. Given ``step``, each inverse pass computes
    only the parameters of the feature it fixes (and its log-determinant,
    which is final then) instead of all of them.

    Arguments:
        meta: a function from :math:`x` to an elementwise transform.
        passes: the number of conditioner passes the inverse needs.
        step: optionally, ``step(x, i)`` gives feature ``i``'s elementwise transform alone.
        order: with ``step``, the features in the order the inverse fixes them.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(
        self,
        meta: Callable[[Tensor], _TorchTransform],
        passes: int,
        step: Callable[[Tensor, int], _TorchTransform] | None = None,
        order: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.meta = meta
        self.passes = int(passes)
        self.step = step
        self.order = list(order) if order is not None else list(range(self.passes))

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, ladj = call_and_ladj(self.meta(x), x)
        return y, ladj.sum(dim=-1)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.zeros_like(y)
        if self.step is None:
            for _ in range(self.passes):
                x, ladj = inv_and_ladj(self.meta(x), y)
            return x, ladj.sum(dim=-1)
        total: Tensor | float = 0.0
        for i in self.order:
            xi, ladj = inv_and_ladj(self.step(x, i), y[..., i])
            if xi.shape != x.shape[:-1]:  # a context batch broadcast the parameters
                x = x.expand(xi.shape + x.shape[-1:]).contiguous()
            x = torch.select_scatter(x, xi, -1, i)
            total = total + ladj
        return x, total

    def __repr__(self) -> str:
        return f"Autoregressive(passes={self.passes})"


class Coupling(Transform):
    r"""Coupling map: :math:`y_a = x_a`, :math:`y_b = f(x_b; \theta(x_a))`.

    Both directions cost one conditioner pass.

    Arguments:
        meta: a function from :math:`x_a` to an elementwise transform of :math:`x_b`.
        idx_a: the indices of the features that condition (kept as they are).
        idx_b: the indices of the features that are transformed.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(
        self, meta: Callable[[Tensor], _TorchTransform], idx_a: LongTensor, idx_b: LongTensor
    ) -> None:
        super().__init__()
        self.meta = meta
        self.idx_a = idx_a
        self.idx_b = idx_b

    def _apply(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        t = self.meta(x.index_select(-1, self.idx_a))
        xb = x.index_select(-1, self.idx_b)
        yb, ladj = inv_and_ladj(t, xb) if inverse else call_and_ladj(t, xb)
        if yb.shape[:-1] != x.shape[:-1]:
            x = x.expand(yb.shape[:-1] + x.shape[-1:])
        return x.index_copy(-1, self.idx_b, yb), ladj.sum(dim=-1)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._apply(x, inverse=False)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._apply(y, inverse=True)

    def __repr__(self) -> str:
        return f"Coupling(a={self.idx_a.tolist()}, b={self.idx_b.tolist()})"
