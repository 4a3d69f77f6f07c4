r"""Monotone rational-quadratic spline with linear (identity) tails."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import constraints

from gendist.transforms.base import Transform

__all__ = ["MonotonicRQSpline"]


class MonotonicRQSpline(Transform):
    r"""Elementwise monotone rational-quadratic spline (Durkan et al., 2019).

    On :math:`[-B, B]` the map is made of :math:`K` rational-quadratic pieces
    through knots :math:`(x_k, y_k)` with positive derivatives :math:`d_k`;
    inside bin :math:`k`, with :math:`s = \Delta y / \Delta x` and
    :math:`\xi = (x - x_k) / \Delta x`,

    .. math:: y = y_k + \Delta y \, \frac{s \xi^2 + d_k \xi (1 - \xi)}
                  {s + (d_{k+1} + d_k - 2 s) \xi (1 - \xi)} .

    Outside :math:`[-B, B]` it is the identity (linear tails, derivative 1 at
    the boundary knots), so every real input has a finite value, log-determinant
    and gradient. The inverse is closed form (a quadratic per element).

    All-zero parameters give the identity map.

    Arguments:
        widths: unnormalized bin widths, shape :math:`(*, K)`.
        heights: unnormalized bin heights, shape :math:`(*, K)`.
        derivatives: unnormalized interior knot derivatives, shape :math:`(*, K - 1)`.
        bound: the half-width :math:`B` of the spline's interval.
        min_bin: the smallest bin width and height, as a fraction of :math:`2B`.
        min_derivative: the smallest knot derivative.

    Example:
        >>> t = MonotonicRQSpline(torch.randn(8), torch.randn(8), torch.randn(7))
        >>> x = torch.linspace(-9.0, 9.0, 7)
        >>> bool(torch.allclose(t.inv(t(x)), x, atol=1e-5))
        True

    References:
        | Neural Spline Flows (Durkan et al., 2019)
        | https://arxiv.org/abs/1906.04032
    """

    domain = constraints.real
    codomain = constraints.real
    sign = +1

    def __init__(
        self,
        widths: Tensor,
        heights: Tensor,
        derivatives: Tensor,
        bound: float = 5.0,
        min_bin: float = 1e-3,
        min_derivative: float = 1e-3,
    ) -> None:
        super().__init__()
        K = widths.shape[-1]
        if heights.shape[-1] != K or derivatives.shape[-1] != K - 1:
            raise ValueError(
                "expected widths and heights with K entries and derivatives with K - 1 on the "
                f"last dimension, got {tuple(widths.shape)}, {tuple(heights.shape)}, "
                f"{tuple(derivatives.shape)}"
            )
        if not bound > 0:
            raise ValueError(f"bound must be > 0, got {bound}")
        self.bound = float(bound)
        self.bins = K
        # shift so that a zero parameter gives derivative 1 (identity at init)
        shift = math.log(math.expm1(1.0 - min_derivative))
        d = min_derivative + F.softplus(derivatives + shift)
        d = F.pad(d, (1, 1), value=1.0)
        xk = self._knots(widths, min_bin)
        yk = self._knots(heights, min_bin)
        # one table of (x, y, d) per knot so a single gather fetches a whole bin
        self.table = torch.stack(torch.broadcast_tensors(xk, yk, d), dim=-1)

    def _knots(self, unnormalized: Tensor, min_bin: float) -> Tensor:
        K = unnormalized.shape[-1]
        p = min_bin + (1 - min_bin * K) * torch.softmax(unnormalized, dim=-1)
        c = torch.cumsum(p[..., :-1], dim=-1) * (2 * self.bound) - self.bound
        lo = c.new_full(c.shape[:-1] + (1,), -self.bound)
        return torch.cat((lo, c, -lo), dim=-1)

    def _bin(self, v: Tensor, column: int) -> tuple[Tensor, ...]:
        """The two knots (x0, y0, d0), (x1, y1, d1) around each clamped value ``v``."""
        inner = self.table[..., 1:-1, column]
        k = (v.unsqueeze(-1) >= inner).sum(dim=-1, keepdim=True)
        idx = torch.cat((k, k + 1), dim=-1).unsqueeze(-1)
        table = self.table
        if idx.dim() > table.dim():  # take_along_dim broadcasts, but needs equal ranks
            table = table.reshape((1,) * (idx.dim() - table.dim()) + table.shape)
        lo_hi = torch.take_along_dim(table, idx, dim=-2)  # (..., 2, 3)
        (x0, y0, d0), (x1, y1, d1) = lo_hi[..., 0, :].unbind(-1), lo_hi[..., 1, :].unbind(-1)
        return x0, x1, y0, y1, d0, d1

    @staticmethod
    def _log_derivative(s: Tensor, xi: Tensor, d0: Tensor, d1: Tensor, denom: Tensor) -> Tensor:
        om = 1 - xi
        num = d1 * xi * xi + 2 * s * xi * om + d0 * om * om
        return 2 * torch.log(s) + torch.log(num) - 2 * torch.log(denom)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        B = self.bound
        inside = (x >= -B) & (x <= B)
        xc = x.clamp(-B, B)
        x0, x1, y0, y1, d0, d1 = self._bin(xc, 0)
        w, h = x1 - x0, y1 - y0
        s = h / w
        xi = (xc - x0) / w
        xiom = xi * (1 - xi)
        denom = s + (d0 + d1 - 2 * s) * xiom
        y = y0 + h * (s * xi * xi + d0 * xiom) / denom
        ladj = self._log_derivative(s, xi, d0, d1, denom)
        return torch.where(inside, y, x), torch.where(inside, ladj, torch.zeros_like(ladj))

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        B = self.bound
        inside = (y >= -B) & (y <= B)
        yc = y.clamp(-B, B)
        x0, x1, y0, y1, d0, d1 = self._bin(yc, 1)
        w, h = x1 - x0, y1 - y0
        s = h / w
        dy = yc - y0
        c1 = d0 + d1 - 2 * s
        a = h * (s - d0) + dy * c1
        b = h * d0 - dy * c1
        c = -s * dy
        sq = torch.sqrt((b * b - 4 * a * c).clamp_min(0))
        # the root in [0, 1], by whichever of the two quadratic formulas does not cancel
        pos = b >= 0
        xi = torch.where(
            pos,
            2 * c / torch.where(pos, -b - sq, -1.0),
            (sq - b) / torch.where(pos, 1.0, 2 * a),
        ).clamp(0, 1)
        x = x0 + xi * w
        denom = s + c1 * xi * (1 - xi)
        ladj = self._log_derivative(s, xi, d0, d1, denom)
        return torch.where(inside, x, y), torch.where(inside, ladj, torch.zeros_like(ladj))

    def __repr__(self) -> str:
        return f"MonotonicRQSpline(bins={self.bins}, bound={self.bound})"
