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
        self.min_derivative = float(min_derivative)
        widths, heights, derivatives = _broadcast_but_last(widths, heights, derivatives)
        self.knots = self._knots(torch.stack((widths, heights), dim=-2), min_bin)
        self.raw_derivatives = derivatives

    @classmethod
    def from_params(
        cls, params: Tensor, bound: float = 5.0, min_bin: float = 1e-3, min_derivative: float = 1e-3
    ) -> MonotonicRQSpline:
        r"""Build from packed parameters ``(widths, heights, derivatives)`` of shape :math:`(*, 3K - 1)`.

        Equivalent to ``MonotonicRQSpline(p[..., :K], p[..., K:2K], p[..., 2K:])``
        without copying the widths and heights apart (the conditioners' path).
        """
        K = (params.shape[-1] + 1) // 3
        self = cls.__new__(cls)
        Transform.__init__(self)
        self.bound, self.bins, self.min_derivative = float(bound), K, float(min_derivative)
        wh, derivatives = torch.split(params, [2 * K, K - 1], dim=-1)  # split: one backward copy
        self.knots = self._knots(wh.unflatten(-1, (2, K)), min_bin)
        self.raw_derivatives = derivatives
        return self

    def _knots(self, wh: Tensor, min_bin: float) -> Tensor:
        """Rows (x_k) and (y_k) of the K + 1 knots, shape (..., 2, K + 1)."""
        K, B = self.bins, self.bound
        p = min_bin + (1 - min_bin * K) * torch.softmax(wh, dim=-1)
        # knots from -B to B (both exact, so the tails join without a gap), both rows at once
        knots = F.pad(torch.cumsum(p, dim=-1), (1, 0)) * (2 * B) - B
        knots[..., -1] = B
        return knots

    def _bin(self, v: Tensor, row: int) -> tuple[Tensor, ...]:
        """The knots (x0, x1, y0, y1, d0, d1) around each clamped value ``v``, searched in ``row``."""
        knots, raw, K = self.knots, self.raw_derivatives, self.bins
        k = (v.unsqueeze(-1) >= knots[..., row, 1:-1]).sum(dim=-1, keepdim=True)
        idx = k + torch.arange(2, device=k.device)  # (..., 2): bin k spans knots k, k + 1
        batch = idx.shape[:-1]
        xs, ys = knots.expand(batch + knots.shape[-2:]).gather(-1, idx.unsqueeze(-2).expand(batch + (2, 2))).unbind(-2)
        # derivatives stay raw until gathered: knot j's is raw[j - 1] inside, and a raw 0
        # (a derivative of exactly 1, the tails' slope) at the two end knots
        j = idx - 1
        inner = (j >= 0) & (j <= K - 2)
        r = raw.expand(batch + raw.shape[-1:]).gather(-1, j.clamp(0, K - 2))
        md = self.min_derivative
        ds = md + F.softplus(torch.where(inner, r, 0.0) + math.log(math.expm1(1.0 - md)))
        return (*xs.unbind(-1), *ys.unbind(-1), *ds.unbind(-1))

    @staticmethod
    def _log_derivative(s: Tensor, xi: Tensor, d0: Tensor, d1: Tensor, denom: Tensor) -> Tensor:
        om = 1 - xi
        num = d1 * xi * xi + 2 * s * xi * om + d0 * om * om
        return torch.log(s * s * num / (denom * denom))

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


def _broadcast_but_last(*tensors: Tensor) -> list[Tensor]:
    batch = torch.broadcast_shapes(*(t.shape[:-1] for t in tensors))
    return [t.expand(batch + t.shape[-1:]) for t in tensors]
