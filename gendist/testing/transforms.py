r"""Public checks of bijections: invertibility, fused paths and log-determinants.

Each check raises an ``AssertionError`` that says what disagreed and by how
much; it returns nothing on success. They accept any
:class:`torch.distributions.Transform` (gendist's, torch's, Pyro's).

Example:
    >>> from gendist.transforms import MonotonicRQSpline
    >>> p = (torch.randn(5), torch.randn(5), torch.randn(4))
    >>> t = MonotonicRQSpline(*(q.double() for q in p))
    >>> x = 10 * torch.randn(100, dtype=torch.float64)
    >>> check_invertible(t, x); check_log_abs_det_jacobian(t, x[:5])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions.transforms import Transform

from gendist.transforms.base import call_and_ladj, inv_and_ladj

__all__ = ["check_invertible", "check_log_abs_det_jacobian", "check_finite_gradients", "tolerance"]


def tolerance(dtype: torch.dtype) -> float:
    """A default absolute/relative tolerance for ``dtype``."""
    return 1e-6 if dtype == torch.float64 else 2e-4


def _close(name: str, got: Tensor, want: Tensor, atol: float, rtol: float) -> None:
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {tuple(got.shape)} != expected {tuple(want.shape)}")
    if not torch.isfinite(got).all():
        raise AssertionError(f"{name}: {int((~torch.isfinite(got)).sum())} non-finite values")
    err = (got - want).abs()
    bound = atol + rtol * want.abs()
    if not (err <= bound).all():
        i = int(torch.argmax(err - bound))
        raise AssertionError(
            f"{name}: max abs error {err.max().item():.3g} (at flat index {i}: got "
            f"{got.flatten()[i].item():.8g}, expected {want.flatten()[i].item():.8g}; atol={atol}, rtol={rtol})"
        )


def check_invertible(
    transform: Transform, x: Tensor, atol: float | None = None, rtol: float | None = None
) -> None:
    r"""Check :math:`f^{-1}(f(x)) \approx x`, that the fused paths agree with the plain ones,
    and that the log-determinant of the inverse is the negated forward one.

    The inverse is judged by its backward error, :math:`f(f^{-1}(y)) \approx y`
    to ``atol``/``rtol``, and by its forward error,
    :math:`f^{-1}(f(x)) \approx x` to the square root of the tolerance at the
    points where :math:`|\det J_f| \ge \sqrt{\text{atol}}`: where
    :math:`f` is nearly flat, any floating-point inverse loses digits in
    :math:`x` that no implementation can keep, while a wrong inverse fails the
    backward error everywhere.

    Arguments:
        transform: the bijection :math:`f`.
        x: points of its domain, shape :math:`(*, \text{event})`.
        atol, rtol: tolerances (by dtype when None).
    """
    tol = tolerance(x.dtype)
    atol = tol if atol is None else atol
    rtol = tol if rtol is None else rtol
    y, ladj = call_and_ladj(transform, x)
    _close("f(x) by call_and_ladj vs f(x)", y, transform(x), atol, rtol)
    x2, ladj2 = inv_and_ladj(transform, y)
    _close("f(f^-1(y)) vs y", transform(x2), y, atol, rtol)
    # forward error where the map is not too flat: exp(-ladj) bounds how much it amplifies y's rounding
    flat = (ladj < 0.5 * math.log(atol)).reshape(ladj.shape + (1,) * (x.dim() - ladj.dim()))
    _close("f^-1(f(x)) vs x", torch.where(flat, x, x2), x, atol**0.5, rtol**0.5)
    _close("f.inv(y) vs inv_and_ladj(y)", transform.inv(y), x2, atol, rtol)
    _close("log|det J| from inv_and_ladj vs call_and_ladj", torch.where(flat.reshape(ladj.shape), ladj, ladj2),
           ladj, atol**0.5, rtol**0.5)
    plain = transform.log_abs_det_jacobian(x, y)
    _close("log_abs_det_jacobian vs call_and_ladj", plain.expand_as(ladj), ladj, 10 * atol, 10 * rtol)


def check_log_abs_det_jacobian(
    transform: Transform, x: Tensor, atol: float | None = None, rtol: float | None = None
) -> None:
    r"""Check the analytic :math:`\log |\det J_f(x)|` against the autograd Jacobian.

    ``x`` has shape :math:`(N, *\text{event})` or :math:`(N,)` for
    elementwise maps; each of the :math:`N` points is checked. The Jacobian of
    an elementwise map (``domain.event_dim == 0``) is diagonal; otherwise it
    is taken over the event.
    """
    tol = 10 * tolerance(x.dtype)
    atol = tol if atol is None else atol
    rtol = tol if rtol is None else rtol
    event_dim = transform.domain.event_dim
    _, ladj = call_and_ladj(transform, x)
    if event_dim == 0:
        flat = x.reshape(-1).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(transform(flat).sum(), flat)
        want = torch.log(g.abs()).reshape(x.shape)
        _close("log|f'(x)| vs autograd", ladj.expand_as(want), want, atol, rtol)
        return
    event = x.shape[x.dim() - event_dim :]
    n = event.numel()
    points = x.reshape((-1,) + event).detach()
    N = len(points)
    # one Jacobian over the whole batch, then each point's diagonal block: points may
    # pair with different context rows, so they cannot be differentiated one at a time
    J = torch.autograd.functional.jacobian(lambda v: transform(v), points).reshape(N, n, N, n)
    idx = torch.arange(N)
    want = torch.linalg.slogdet(J[idx, :, idx, :])[1].reshape(x.shape[: x.dim() - event_dim])
    _close("log|det J| vs autograd slogdet", ladj.expand_as(want), want, atol, rtol)


def check_finite_gradients(value: Tensor, parameters: list[Tensor], name: str = "value") -> None:
    r"""Check ``value`` is finite and its gradient reaches every parameter (not None) and is finite."""
    if not torch.isfinite(value).all():
        raise AssertionError(f"{name}: {int((~torch.isfinite(value)).sum())} non-finite values")
    grads = torch.autograd.grad(value.sum(), parameters, allow_unused=True)
    for i, (p, g) in enumerate(zip(parameters, grads)):
        if g is None:
            raise AssertionError(f"{name}: no gradient reaches parameter {i} of shape {tuple(p.shape)}")
        if not torch.isfinite(g).all():
            raise AssertionError(f"{name}: non-finite gradient for parameter {i} of shape {tuple(p.shape)}")
