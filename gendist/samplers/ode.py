r"""ODE integrators for tensors and tuples of tensors: adaptive Dormand–Prince 5(4) and fixed-step Euler, Heun, RK4.

:func:`odeint` solves :math:`\frac{dy}{dt} = f(t, y)` from :math:`t_0` to :math:`t_1` (either direction) and is
differentiable: gradients flow through the accepted steps to :math:`y_0` and to the parameters used inside
:math:`f` (discretize-then-optimize), while the step-size controller only sees detached values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["State", "ODEError", "ODEStats", "METHODS", "odeint"]

State = Tensor | tuple[Tensor, ...]
Tensors = tuple[Tensor, ...]

METHODS = ("dopri5", "euler", "heun", "rk4")
_FIXED = {"euler": 1, "heun": 2, "rk4": 4}  # method -> function evaluations per step

# Dormand–Prince 5(4): nodes, stage coefficients, 5th-order weights and (5th - 4th)-order error weights
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)

_SAFETY, _FAC_MIN, _FAC_MAX = 0.9, 0.2, 10.0


class ODEError(RuntimeError):
    r"""A solve that failed: step size underflow, ``max_steps`` exceeded or a non-finite state."""


@dataclass
class ODEStats:
    r"""What a solve cost.

    Attributes:
        nfe: the number of evaluations of :math:`f`.
        steps: the number of accepted steps.
        rejected: the number of rejected steps (adaptive methods only).
    """

    nfe: int = 0
    steps: int = 0
    rejected: int = 0


def _combine(y: Tensors, h: float, terms: Sequence[tuple[float, Tensors]]) -> Tensors:
    r""":math:`y + h \sum_j b_j k_j`, tensor by tensor (terms with :math:`b_j = 0` skipped)."""
    out = []
    for i, yi in enumerate(y):
        acc = None
        for b, k in terms:
            if b != 0:
                acc = b * k[i] if acc is None else acc + b * k[i]
        out.append(yi if acc is None else yi + h * acc)
    return tuple(out)


def _rms(ratios: Sequence[Tensor]) -> float:
    r"""The root mean square over all elements of all tensors in ``ratios``, as a float."""
    total = sum(r.square().sum() for r in ratios)
    count = sum(r.numel() for r in ratios)
    return math.sqrt(float(total) / max(count, 1))


def _is_finite(y: Tensors) -> bool:
    return all(bool(torch.isfinite(yi).all()) for yi in y)


def _initial_step(
    fn: Callable[[float, Tensors], Tensors], t0: float, y0: Tensors, f0: Tensors, direction: float,
    rtol: float, atol: float, span: float,
) -> float:
    r"""Hairer, Nørsett & Wanner's starting step size (Solving ODEs I, II.4), on detached values; costs one NFE."""
    with torch.no_grad():
        y0, f0 = tuple(y.detach() for y in y0), tuple(k.detach() for k in f0)
        scale = [atol + rtol * y.abs() for y in y0]
        d0 = _rms([y / s for y, s in zip(y0, scale)])
        d1 = _rms([k / s for k, s in zip(f0, scale)])
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, span)
        y1 = _combine(y0, direction * h0, [(1.0, f0)])
        f1 = fn(t0 + direction * h0, y1)
        d2 = _rms([(k1 - k0) / s for k1, k0, s in zip(f1, f0, scale)]) / h0
    if not math.isfinite(d2):
        return h0
    big = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 else (0.01 / big) ** (1 / 5)
    return min(100 * h0, h1, span)


def _dopri5(
    fn: Callable[[float, Tensors], Tensors], y: Tensors, t0: float, t1: float, rtol: float, atol: float,
    max_steps: int, first_step: float | None, stats: ODEStats, eps: float,
) -> Tensors:
    direction, span = math.copysign(1.0, t1 - t0), abs(t1 - t0)
    t, k1 = t0, fn(t0, y)
    if not _is_finite(k1):
        raise ODEError(f"odeint: f(t0, y0) is non-finite at t0={t0:g}")
    h_abs = first_step if first_step is not None else _initial_step(fn, t0, y, k1, direction, rtol, atol, span)
    fac_max, why = _FAC_MAX, ""
    while t != t1:
        if stats.steps + stats.rejected >= max_steps:
            raise ODEError(
                f"odeint: max_steps={max_steps} exceeded at t={t:g} on the way from {t0:g} to {t1:g} "
                f"(rtol={rtol:g}, atol={atol:g}){why}; loosen rtol/atol or raise max_steps"
            )
        h_min = 10 * eps * max(abs(t), abs(t1))
        remaining = abs(t1 - t)
        last = h_abs >= remaining - h_min
        if last:
            h_abs = remaining
        elif h_abs < h_min:
            raise ODEError(
                f"odeint: step size underflow (|h|={h_abs:.3g}) at t={t:g} on the way from {t0:g} to {t1:g}: "
                f"rtol={rtol:g}, atol={atol:g} cannot be reached{why}"
            )
        h = direction * h_abs
        ks = [k1]
        for c, a in zip(_C[1:], _A[1:]):
            ks.append(fn(t + c * h, _combine(y, h, list(zip(a, ks)))))
        y_new = _combine(y, h, list(zip(_B, ks)))
        k7 = fn(t + h, y_new)
        with torch.no_grad():
            err = _combine(tuple(torch.zeros_like(yi) for yi in y), h, list(zip(_E, [*ks, k7])))
            ratios = [
                e.detach() / (atol + rtol * torch.maximum(y0.detach().abs(), y1.detach().abs()))
                for e, y0, y1 in zip(err, y, y_new)
            ]
            norm = _rms(ratios)
        if not math.isfinite(norm):  # a non-finite trial state: shrink hard and retry
            stats.rejected += 1
            h_abs, fac_max, why = h_abs * _FAC_MIN, 1.0, " (the state became non-finite)"
            continue
        if norm <= 1:
            t = t1 if last else t + h
            y, k1 = y_new, k7
            stats.steps += 1
            factor = _FAC_MAX if norm == 0 else min(fac_max, max(_FAC_MIN, _SAFETY * norm ** (-1 / 5)))
            fac_max, why = _FAC_MAX, ""
        else:
            stats.rejected += 1
            factor = max(_FAC_MIN, _SAFETY * norm ** (-1 / 5))
            fac_max = 1.0  # no growth right after a rejection
        h_abs = h_abs * factor
    return y


def _fixed(
    fn: Callable[[float, Tensors], Tensors], y: Tensors, t0: float, t1: float, method: str, steps: int,
    stats: ODEStats,
) -> Tensors:
    for i in range(steps):
        t, t_next = t0 + i * (t1 - t0) / steps, t0 + (i + 1) * (t1 - t0) / steps
        h = t_next - t
        k1 = fn(t, y)
        if method == "euler":
            y = _combine(y, h, [(1.0, k1)])
        elif method == "heun":
            k2 = fn(t_next, _combine(y, h, [(1.0, k1)]))
            y = _combine(y, h, [(0.5, k1), (0.5, k2)])
        else:
            k2 = fn(t + h / 2, _combine(y, h / 2, [(1.0, k1)]))
            k3 = fn(t + h / 2, _combine(y, h / 2, [(1.0, k2)]))
            k4 = fn(t_next, _combine(y, h, [(1.0, k3)]))
            y = _combine(y, h / 6, [(1.0, k1), (2.0, k2), (2.0, k3), (1.0, k4)])
        stats.steps += 1
    if not _is_finite(y):
        raise ODEError(f"odeint: the state became non-finite integrating from {t0:g} to {t1:g} "
                       f"with {method} and steps={steps}; use more steps")
    return y


def odeint(
    f: Callable[[Tensor, State], State],
    y0: State,
    t0: float,
    t1: float,
    *,
    method: str = "dopri5",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    max_steps: int = 10_000,
    first_step: float | None = None,
) -> tuple[State, ODEStats]:
    r"""Integrates :math:`\frac{dy}{dt} = f(t, y)` from :math:`y(t_0) = y_0` to :math:`y(t_1)`.

    ``"dopri5"`` is the adaptive Dormand–Prince 5(4) pair (first same as last, so six evaluations per
    step) with local extrapolation. A step is accepted when the mixed error norm

    .. math:: \lVert e \rVert = \sqrt{\frac{1}{N} \sum_{i=1}^{N}
        \left(\frac{e_i}{\mathrm{atol} + \mathrm{rtol} \max(|y_i|, |\hat y_i|)}\right)^2} \le 1,

    the root mean square over all :math:`N` elements of all state tensors, and the next step is
    :math:`h \cdot \min(10, \max(0.2, 0.9 \lVert e \rVert^{-1/5}))` (no growth right after a rejection).
    The first step follows Hairer's heuristic unless ``first_step`` is given. ``"euler"``, ``"heun"``
    and ``"rk4"`` take ``steps`` equal steps (1, 2 and 4 evaluations each; orders 1, 2 and 4).

    The solution is differentiable with respect to ``y0`` and to the parameters ``f`` uses: gradients
    flow through the accepted steps, the controller's decisions are made on detached values.

    Arguments:
        f: the vector field ``f(t, y)``, with ``t`` a 0-dim tensor of the state's dtype and device; it
            returns the structure of ``y`` (a tensor, or a tuple of tensors of the same shapes).
        y0: the initial state, a floating tensor or a tuple of them.
        t0: the initial time.
        t1: the final time; :math:`t_1 < t_0` integrates backwards.
        method: ``"dopri5"``, ``"euler"``, ``"heun"`` or ``"rk4"``.
        steps: the number of steps of a fixed-step method (required there, not allowed with ``"dopri5"``).
        rtol, atol: the relative and absolute tolerances of ``"dopri5"``.
        max_steps: the most steps (accepted and rejected) ``"dopri5"`` may take.
        first_step: the size of ``"dopri5"``'s first trial step (default: Hairer's heuristic).

    Returns:
        The state at :math:`t_1` (the structure of ``y0``) and the :class:`ODEStats` of the solve.

    Raises:
        ValueError: for bad arguments.
        ODEError: if the tolerance cannot be reached (step size underflow), ``max_steps`` is exceeded, or
            the state becomes non-finite.

    Example:
        >>> y, stats = odeint(lambda t, y: -y, torch.ones(3, dtype=torch.float64), 0.0, 1.0, rtol=1e-8, atol=1e-8)
        >>> bool(torch.allclose(y, torch.full((3,), math.exp(-1), dtype=torch.float64)))
        True
        >>> (y, z), _ = odeint(lambda t, s: (s[1], -s[0]), (torch.ones(1), torch.zeros(1)), 0.0, 1.0,
        ...                    method="rk4", steps=20)
        >>> round(y.item(), 4), round(z.item(), 4)
        (0.5403, -0.8415)

    References:
        | A family of embedded Runge-Kutta formulae (Dormand & Prince, 1980)
        | https://doi.org/10.1016/0771-050X(80)90013-3
        | Solving Ordinary Differential Equations I: Nonstiff Problems (Hairer, Nørsett & Wanner, 1993)
        | https://doi.org/10.1007/978-3-540-78862-1
    """
    if method not in METHODS:
        raise ValueError(f"odeint: `method` must be one of {METHODS}, got {method!r}")
    if method == "dopri5":
        if steps is not None:
            raise ValueError(f"odeint: `steps` is for the fixed-step methods {tuple(_FIXED)}; "
                             f"dopri5 is adaptive (set rtol/atol), got steps={steps!r}")
        if not (isinstance(rtol, (int, float)) and rtol >= 0 and math.isfinite(rtol)):
            raise ValueError(f"odeint: `rtol` must be a finite number >= 0, got {rtol!r}")
        if not (isinstance(atol, (int, float)) and atol > 0 and math.isfinite(atol)):
            raise ValueError(f"odeint: `atol` must be a finite number > 0, got {atol!r}")
        check_integer("odeint: `max_steps`", max_steps, low=1)
        if first_step is not None and not (first_step > 0 and math.isfinite(first_step)):
            raise ValueError(f"odeint: `first_step` must be a finite number > 0, got {first_step!r}")
    else:
        check_integer(f"odeint: method {method!r} needs `steps`, and `steps`", steps, low=1)
    t0, t1 = float(t0), float(t1)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"odeint: `t0` and `t1` must be finite, got {t0}, {t1}")
    is_tensor = isinstance(y0, Tensor)
    y = (y0,) if is_tensor else y0
    if not isinstance(y, tuple) or not y or not all(isinstance(yi, Tensor) for yi in y):
        raise ValueError(f"odeint: `y0` must be a tensor or a non-empty tuple of tensors, got {type(y0).__name__}")
    if not all(yi.is_floating_point() or yi.is_complex() for yi in y):
        raise ValueError(f"odeint: `y0` must hold floating tensors, got {[yi.dtype for yi in y]}")
    dtype, device = y[0].dtype, y[0].device
    stats = ODEStats()

    def fn(t: float, state: Tensors) -> Tensors:
        stats.nfe += 1
        out = f(torch.tensor(t, dtype=dtype, device=device), state[0] if is_tensor else state)
        out = (out,) if is_tensor and isinstance(out, Tensor) else out
        if not isinstance(out, tuple) or len(out) != len(state) or any(
            not isinstance(k, Tensor) or k.shape != s.shape for k, s in zip(out, state)
        ):
            raise ValueError(
                f"odeint: `f` must return the structure of y0 ({_describe(state)}), got {_describe(out)}"
            )
        return out

    if t0 != t1:
        if method == "dopri5":
            eps = torch.finfo(dtype if dtype.is_floating_point else torch.float64).eps
            y = _dopri5(fn, y, t0, t1, rtol, atol, max_steps, first_step, stats, eps)
        else:
            y = _fixed(fn, y, t0, t1, method, steps, stats)
    return (y[0] if is_tensor else y), stats


def _describe(state: object) -> str:
    if isinstance(state, Tensor):
        return f"a tensor of shape {tuple(state.shape)}"
    if isinstance(state, tuple):
        shapes = [tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__ for s in state]
        return f"a tuple of shapes {shapes}"
    return type(state).__name__
