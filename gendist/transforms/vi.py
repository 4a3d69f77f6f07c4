r"""Planar, radial and Sylvester maps (the residual flows of variational inference), with inverses.

Libraries usually invert these maps only through a cache of the last sample,
which makes them useless for scoring data they did not draw. Here every one
of them has a real inverse: the radial map in closed form, the planar and
Sylvester maps by vectorized bisection on scalar monotone equations, solved to
the floating-point resolution of the dtype (see :func:`bisect_tanh`). The
inverse is differentiable: after the bisection, one value-preserving Newton
step re-attaches the root to the autograd graph, so gradients with respect to
the input and to the parameters are those of the implicit function theorem.

All three act on vectors (``event_dim = 1``) and accept batched parameters:
parameters of shape :math:`(*B, \dots)` broadcast against inputs of shape
:math:`(*S, *B, D)`, as conditional (amortized) flows need. They assume their
parameters satisfy the invertibility condition stated in each docstring; the
modules in :mod:`gendist.flows.vi` build parameters that always do.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import constraints

from gendist.transforms.base import Transform

__all__ = ["Planar", "Radial", "Sylvester", "bisect_tanh", "bisection_steps"]


def bisection_steps(dtype: torch.dtype) -> int:
    r"""The number of bisection steps :math:`p + 2` for a dtype with :math:`p` mantissa bits.

    :math:`p = -\log_2 \epsilon` (23 for float32, 52 for float64), so a bracket
    of width :math:`2K` shrinks to :math:`2K \cdot 2^{-(p+2)} = K \epsilon / 2`:
    25 steps in float32, 54 in float64.

    Example:
        >>> bisection_steps(torch.float32), bisection_steps(torch.float64)
        (25, 54)
    """
    return round(-math.log2(torch.finfo(dtype).eps)) + 2


def bisect_tanh(t: Tensor, k: Tensor, m: Tensor | float, c: Tensor) -> Tensor:
    r"""Solve :math:`x + k \tanh(m x + c) = t` elementwise, for :math:`k m > -1`.

    The left side :math:`g(x)` has slope :math:`1 + k m \,\mathrm{sech}^2(m x + c) > 0`,
    so the root is unique, and since :math:`|\tanh| < 1` it lies in
    :math:`[t - |k|, t + |k|]`. A fixed number :func:`bisection_steps` of
    vectorized bisection steps (no data-dependent control flow, so it
    compiles and runs on any device) narrows that bracket to
    :math:`|k| \epsilon / 2`, and the midpoint is returned:

    .. math:: |x - x^\star| \le |k| \epsilon / 4 + \mathrm{ulp}(x^\star),

    i.e. the root to the resolution of the dtype (about :math:`10^{-7}` relative
    to :math:`\max(|k|, |x|)` in float32, :math:`10^{-16}` in float64). The
    error this leaves in :math:`x` is as small as floating point allows; the
    error it implies for a value recomputed from a perturbed :math:`t` grows
    like :math:`1 / g'(x)`, which is large only near the boundary :math:`k m \to -1`.

    If gradients are needed, a final Newton step :math:`x \leftarrow x - (g(x) - \bar g(x)) / g'(x)`
    (with :math:`\bar g` the detached value, so :math:`x` does not move) gives
    :math:`x` the implicit-function gradients
    :math:`\partial x / \partial \theta = -(\partial g / \partial \theta) / g'(x)`.

    Arguments:
        t: the right side.
        k: the amplitude :math:`k`, broadcastable with ``t``.
        m: the slope :math:`m` inside the tanh, broadcastable with ``t``.
        c: the offset :math:`c` inside the tanh, broadcastable with ``t``.

    Example:
        >>> t, k, c = torch.tensor([0.5, -3.0]), torch.tensor([2.0, -0.9]), torch.tensor([0.1, 0.0])
        >>> x = bisect_tanh(t, k, 1.0, c)
        >>> bool(torch.allclose(x + k * torch.tanh(x + c), t))
        True
    """
    with torch.no_grad():
        t_, k_, c_ = t.detach(), k.detach(), c.detach()
        m_ = m.detach() if isinstance(m, Tensor) else m
        half = k_.abs()
        lo, hi = torch.broadcast_tensors(t_ - half, t_ + half)
        for _ in range(bisection_steps(t.dtype)):
            mid = lo + 0.5 * (hi - lo)
            below = mid + k_ * torch.tanh(m_ * mid + c_) < t_
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        x = lo + 0.5 * (hi - lo)
    needs_grad = torch.is_grad_enabled() and any(
        isinstance(v, Tensor) and v.requires_grad for v in (t, k, m, c)
    )
    if needs_grad:
        th = torch.tanh(m * x + c)
        g = x + k * th - t
        slope = (1 + k * m * (1 - th * th)).clamp_min(torch.finfo(x.dtype).tiny)
        x = x - (g - g.detach()) / slope
    return x


def _check_batch(where: str, **shapes: torch.Size) -> None:
    try:
        torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        got = ", ".join(f"{k}: {tuple(v)}" for k, v in shapes.items())
        raise ValueError(f"{where}: the parameters' batch shapes must broadcast, got {got}") from None


def _matvec(A: Tensor, x: Tensor) -> Tensor:
    r""":math:`A x` over the last dimensions, broadcasting the batch dimensions of both."""
    return torch.matmul(A, x.unsqueeze(-1)).squeeze(-1)


class Planar(Transform):
    r"""Planar map (Rezende & Mohamed, 2015) :math:`y = z + u \tanh(w^\top z + b)`.

    .. math:: \log |\det J| = \log |1 + \mathrm{sech}^2(w^\top z + b) \, w^\top u| .

    Invertible iff :math:`w^\top u \ge -1` (strictly :math:`> -1` for a finite
    log-determinant); ``u`` is used as given, so pass the reparametrized
    :math:`\hat u` (as :class:`~gendist.flows.PlanarLayer` does).

    **Inverse** (numerical): with :math:`\alpha = w^\top z`, projecting on
    :math:`w` gives the scalar equation
    :math:`w^\top y = \alpha + (w^\top u) \tanh(\alpha + b)`, strictly
    increasing in :math:`\alpha`, whose root lies in
    :math:`[w^\top y - |w^\top u|, w^\top y + |w^\top u|]`. It is solved by
    :func:`bisect_tanh` (25 bisection steps in float32, 54 in float64: the
    root to :math:`|w^\top u| \epsilon / 4` plus one ulp), then
    :math:`z = y - u \tanh(\alpha + b)`. In practice :math:`f^{-1}(f(z))`
    matches :math:`z` to about :math:`10^{-6}` (float32) or :math:`10^{-14}`
    (float64) relative, worse by :math:`1 / (1 + w^\top u)` next to the boundary
    :math:`w^\top u \to -1`. Gradients flow through the inverse.

    Arguments:
        u: the direction :math:`u`, shape :math:`(*B, D)`.
        w: the normal :math:`w`, shape :math:`(*B, D)`.
        b: the offset :math:`b`, shape :math:`(*B,)`.

    Example:
        >>> t = Planar(torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.3]), torch.tensor(0.2))
        >>> z = torch.randn(5, 2)
        >>> y, ladj = t.call_and_ladj(z)
        >>> bool(torch.allclose(t.inv(y), z, atol=1e-5)), ladj.shape
        (True, torch.Size([5]))

    References:
        | Variational Inference with Normalizing Flows (Rezende & Mohamed, 2015)
        | https://arxiv.org/abs/1505.05770
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, u: Tensor, w: Tensor, b: Tensor) -> None:
        super().__init__()
        if u.dim() < 1 or w.shape[-1:] != u.shape[-1:]:
            raise ValueError(
                f"Planar: u and w must have shape (*B, D) with the same D, got {tuple(u.shape)} "
                f"and {tuple(w.shape)}"
            )
        _check_batch("Planar", u=u.shape[:-1], w=w.shape[:-1], b=b.shape)
        self.u = u
        self.w = w
        self.b = b
        self.wu = (w * u).sum(dim=-1)

    def _ladj(self, h: Tensor) -> Tensor:
        return torch.log(torch.abs(1 + (1 - h * h) * self.wu))

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.tanh((x * self.w).sum(dim=-1) + self.b)
        return x + self.u * h.unsqueeze(-1), self._ladj(h)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        alpha = bisect_tanh((y * self.w).sum(dim=-1), self.wu, 1.0, self.b)
        h = torch.tanh(alpha + self.b)
        return y - self.u * h.unsqueeze(-1), self._ladj(h)

    def __repr__(self) -> str:
        return f"Planar(features={self.u.shape[-1]})"


class Radial(Transform):
    r"""Radial map (Rezende & Mohamed, 2015) :math:`y = z + \beta h(r) (z - z_0)`, :math:`h(r) = 1 / (\alpha + r)`.

    With :math:`r = \|z - z_0\|`, :math:`h' = -h^2`,

    .. math:: \log |\det J| = (D - 1) \log(1 + \beta h) + \log(1 + \beta h + \beta h' r)
                            = (D - 1) \log(1 + \beta h) + \log(1 + \alpha \beta h^2) .

    Invertible iff :math:`\alpha > 0` and :math:`\beta \ge -\alpha` (strictly
    :math:`> -\alpha` for a finite log-determinant everywhere).

    **Inverse** (closed form): :math:`r_y = \|y - z_0\| = r (1 + \beta h(r))`,
    so :math:`r` is the positive root of
    :math:`r^2 + r (\alpha + \beta - r_y) - \alpha r_y = 0`, computed with the
    cancellation-free form of the quadratic formula, and
    :math:`z = z_0 + (y - z_0) / (1 + \beta h(r))`. Exact up to rounding.

    Arguments:
        z0: the centre :math:`z_0`, shape :math:`(*B, D)`.
        alpha: :math:`\alpha > 0`, shape :math:`(*B,)`.
        beta: :math:`\beta \ge -\alpha`, shape :math:`(*B,)`.

    Example:
        >>> t = Radial(torch.zeros(3), torch.tensor(1.0), torch.tensor(2.0))
        >>> z = torch.randn(4, 3)
        >>> bool(torch.allclose(t.inv(t(z)), z, atol=1e-6))
        True

    References:
        | Variational Inference with Normalizing Flows (Rezende & Mohamed, 2015)
        | https://arxiv.org/abs/1505.05770
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, z0: Tensor, alpha: Tensor, beta: Tensor) -> None:
        super().__init__()
        if z0.dim() < 1:
            raise ValueError(f"Radial: z0 must have shape (*B, D), got {tuple(z0.shape)}")
        _check_batch("Radial", z0=z0.shape[:-1], alpha=alpha.shape, beta=beta.shape)
        self.z0 = z0
        self.alpha = alpha
        self.beta = beta

    def _ladj(self, r: Tensor, D: int) -> Tensor:
        h = 1 / (self.alpha + r)
        return (D - 1) * torch.log1p(self.beta * h) + torch.log1p(self.alpha * self.beta * h * h)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        d = x - self.z0
        r = torch.linalg.vector_norm(d, dim=-1)
        y = x + (self.beta / (self.alpha + r)).unsqueeze(-1) * d
        return y, self._ladj(r, x.shape[-1])

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        a, b = self.alpha, self.beta
        d = y - self.z0
        ry = torch.linalg.vector_norm(d, dim=-1)
        p = a + b - ry
        disc = torch.sqrt(p * p + 4 * a * ry)
        # positive root of r^2 + p r - a ry = 0 without cancellation
        big = p >= 0
        r = torch.where(big, 2 * a * ry / torch.where(big, p + disc, 1.0), 0.5 * (disc - p))
        x = self.z0 + d * ((a + r) / (a + b + r)).unsqueeze(-1)
        return x, self._ladj(r, y.shape[-1])

    def __repr__(self) -> str:
        return f"Radial(features={self.z0.shape[-1]})"


class Sylvester(Transform):
    r"""Orthogonal Sylvester map (van den Berg et al., 2018) :math:`y = z + Q R \tanh(\tilde R Q^\top z + b)`.

    :math:`Q` is :math:`D \times M` with orthonormal columns (:math:`M \le D`),
    :math:`R` and :math:`\tilde R` are :math:`M \times M` upper triangular
    (only their upper triangles are read). By Sylvester's determinant identity,
    with :math:`a = \tilde R Q^\top z + b`,

    .. math:: \log |\det J| = \sum_{i=1}^M \log |1 + \mathrm{sech}^2(a_i) R_{ii} \tilde R_{ii}| .

    Invertible when :math:`R_{ii} \tilde R_{ii} > -1` for every :math:`i`.

    **Inverse** (numerical): the component of :math:`z` orthogonal to the
    columns of :math:`Q` is left unchanged, and :math:`v = Q^\top z` solves the
    triangular system :math:`Q^\top y = v + R \tanh(\tilde R v + b)`. It is
    solved from the last component up: once :math:`v_{i+1}, \dots, v_M` are
    known, every off-diagonal term is a known number and
    :math:`v_i + R_{ii} \tanh(\tilde R_{ii} v_i + c_i) = t_i` is a strictly
    increasing scalar equation with its root in :math:`[t_i - |R_{ii}|, t_i + |R_{ii}|]`,
    solved by :func:`bisect_tanh` (25 steps in float32, 54 in float64: each
    :math:`v_i` to :math:`|R_{ii}| \epsilon / 4` plus one ulp). Then
    :math:`z = y - Q R \tanh(\tilde R v + b)`. The cost is :math:`M`
    sequential bisections; gradients flow through the inverse.

    Arguments:
        Q: orthonormal columns, shape :math:`(*B, D, M)`.
        R: upper triangular, shape :math:`(*B, M, M)`.
        R_tilde: upper triangular, shape :math:`(*B, M, M)`.
        b: the bias, shape :math:`(*B, M)`.

    Example:
        >>> Q = torch.linalg.qr(torch.randn(3, 2)).Q
        >>> t = Sylvester(Q, torch.randn(2, 2), torch.randn(2, 2).tanh(), torch.randn(2))
        >>> z = torch.randn(5, 3)
        >>> bool(torch.allclose(t.inv(t(z)), z, atol=1e-5))
        True

    References:
        | Sylvester Normalizing Flows for Variational Inference (van den Berg et al., 2018)
        | https://arxiv.org/abs/1803.05649
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, Q: Tensor, R: Tensor, R_tilde: Tensor, b: Tensor) -> None:
        super().__init__()
        if Q.dim() < 2 or Q.shape[-2] < Q.shape[-1]:
            raise ValueError(f"Sylvester: Q must have shape (*B, D, M) with M <= D, got {tuple(Q.shape)}")
        M = Q.shape[-1]
        if R.shape[-2:] != (M, M) or R_tilde.shape[-2:] != (M, M) or b.shape[-1:] != (M,):
            raise ValueError(
                f"Sylvester: with Q of shape {tuple(Q.shape)} (M = {M}), R and R_tilde must have shape "
                f"(*B, {M}, {M}) and b shape (*B, {M}), got {tuple(R.shape)}, {tuple(R_tilde.shape)}, "
                f"{tuple(b.shape)}"
            )
        _check_batch("Sylvester", Q=Q.shape[:-2], R=R.shape[:-2], R_tilde=R_tilde.shape[:-2], b=b.shape[:-1])
        self.Q = Q
        self.R = R.triu()
        self.R_tilde = R_tilde.triu()
        self.b = b
        self.QR = Q @ self.R  # (*B, D, M)
        self.RtQT = self.R_tilde @ Q.mT  # (*B, M, D)
        self.diag = torch.diagonal(self.R, dim1=-2, dim2=-1) * torch.diagonal(self.R_tilde, dim1=-2, dim2=-1)

    def _ladj(self, h: Tensor) -> Tensor:
        return torch.log(torch.abs(1 + (1 - h * h) * self.diag)).sum(dim=-1)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.tanh(_matvec(self.RtQT, x) + self.b)
        return x + _matvec(self.QR, h), self._ladj(h)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        R, Rt, b = self.R, self.R_tilde, self.b
        M = R.shape[-1]
        w = _matvec(self.Q.mT, y)  # Q^T y, shape (..., M)
        vs: list[Tensor] = []  # v_M, v_{M-1}, ... as they are solved
        hs: list[Tensor] = []  # tanh(a_M), tanh(a_{M-1}), ...
        for i in reversed(range(M)):
            t, c = w[..., i], b[..., i]
            if vs:
                later = torch.stack(vs[::-1], dim=-1)  # v_{i+1..M}
                h_later = torch.stack(hs[::-1], dim=-1)
                c = c + (Rt[..., i, i + 1 :] * later).sum(dim=-1)
                t = t - (R[..., i, i + 1 :] * h_later).sum(dim=-1)
            rt_ii = Rt[..., i, i]
            v = bisect_tanh(t, R[..., i, i], rt_ii, c)
            vs.append(v)
            hs.append(torch.tanh(rt_ii * v + c))
        h = torch.stack(hs[::-1], dim=-1)
        return y - _matvec(self.QR, h), self._ladj(h)

    def __repr__(self) -> str:
        D, M = self.Q.shape[-2:]
        return f"Sylvester(features={D}, rank={M})"
