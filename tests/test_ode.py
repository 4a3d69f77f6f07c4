"""The ODE integrators: accuracy against closed forms, orders, tuple states, gradients and failures."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gendist.samplers.ode import ODEError, ODEStats, odeint

F64 = torch.float64


def decay(t, y):
    return -y


def rotation(t, y):  # y' = A y with A the generator of rotations: y(t) = R(t) y(0)
    return torch.stack([-y[..., 1], y[..., 0]], -1)


def rotated(y0, t):
    c, s = math.cos(t), math.sin(t)
    return torch.stack([c * y0[..., 0] - s * y0[..., 1], s * y0[..., 0] + c * y0[..., 1]], -1)


def test_dopri5_decay_tolerances():
    y0 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    errors, nfes = [], []
    for tol in (1e-4, 1e-6, 1e-8, 1e-10):
        y, stats = odeint(decay, y0, 0.0, 2.0, rtol=tol, atol=tol)
        error = (y - y0 * math.exp(-2)).abs().max().item()
        assert error < 10 * tol
        errors.append(error)
        nfes.append(stats.nfe)
        assert stats.nfe == 6 * (stats.steps + stats.rejected) + 2  # FSAL, plus the initial-step probe
    assert errors == sorted(errors, reverse=True) and nfes == sorted(nfes)


def test_dopri5_rotation_and_backward():
    y0 = torch.tensor([[1.0, 0.0], [0.3, -0.7]], dtype=F64)
    prev = math.inf
    for tol in (1e-5, 1e-8):
        y, _ = odeint(rotation, y0, 0.0, 2 * math.pi, rtol=tol, atol=tol)
        error = (y - y0).abs().max().item()
        assert error < 100 * tol and error < prev
        prev = error
    # backwards in time: from t = 3 to t = 1 undoes a rotation by 2
    y, stats = odeint(rotation, y0, 3.0, 1.0, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(y, rotated(y0, -2.0), rtol=1e-6, atol=1e-6)
    assert stats.steps > 0


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_fixed_step_orders(method, order):
    y0 = torch.tensor([1.0, 0.5], dtype=F64)
    errors = []
    for steps in (10, 20, 40):
        y, stats = odeint(rotation, y0, 0.0, 1.0, method=method, steps=steps)
        errors.append((y - rotated(y0, 1.0)).norm().item())
        assert stats == ODEStats(nfe=steps * {"euler": 1, "heun": 2, "rk4": 4}[method], steps=steps, rejected=0)
    for coarse, fine in zip(errors, errors[1:]):
        assert math.log2(coarse / fine) == pytest.approx(order, abs=0.2)
    # backwards: the same order
    y, _ = odeint(decay, torch.ones(1, dtype=F64), 1.0, 0.0, method=method, steps=40)
    assert abs(y.item() - math.e) < 5 * 40.0**-order


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_tuple_state(method):
    # (position, velocity) of a harmonic oscillator plus an integral, as three tensors of different shapes
    def f(t, state):
        x, v, area = state
        assert isinstance(t, torch.Tensor) and t.dim() == 0 and t.dtype == F64
        return v, -x, x.sum(-1)

    x0, v0 = torch.tensor([[1.0, 2.0]], dtype=F64), torch.zeros(1, 2, dtype=F64)
    steps = None if method == "dopri5" else 100
    (x, v, area), _ = odeint(f, (x0, v0, torch.zeros(1, dtype=F64)), 0.0, 1.5, method=method, steps=steps,
                             rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(x, x0 * math.cos(1.5), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(v, -x0 * math.sin(1.5), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(area, x0.sum(-1) * math.sin(1.5), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["dopri5", "euler", "heun", "rk4"])
def test_gradients(method):
    # y(T) = y0 exp(-k T): d/dy0 = exp(-k T), d/dk = -T y0 exp(-k T)
    k = torch.tensor(0.7, dtype=F64, requires_grad=True)
    y0 = torch.tensor([1.0, 3.0], dtype=F64, requires_grad=True)
    steps = None if method == "dopri5" else 400
    y, _ = odeint(lambda t, y: -k * y, y0, 0.0, 2.0, method=method, steps=steps, rtol=1e-9, atol=1e-9)
    g_y0, g_k = torch.autograd.grad(y.sum(), (y0, k))
    tol = {"dopri5": 1e-7, "euler": 1e-2, "heun": 1e-4, "rk4": 1e-7}[method]
    decay = math.exp(-1.4)
    torch.testing.assert_close(g_y0, torch.full((2,), decay, dtype=F64), rtol=tol, atol=tol)
    assert g_k.item() == pytest.approx(-2.0 * 4.0 * decay, rel=tol)


def test_first_step_float32_and_empty_interval():
    y, stats = odeint(decay, torch.ones(4), 0.0, 1.0, first_step=1e-3, rtol=1e-5, atol=1e-6)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, torch.full((4,), math.exp(-1)), rtol=1e-4, atol=1e-4)
    y0 = torch.ones(2, dtype=F64)
    y, stats = odeint(decay, y0, 0.5, 0.5)
    assert y is y0 and stats == ODEStats(0, 0, 0)


def test_failures():
    blowup = lambda t, y: y**2  # noqa: E731  (y = 1 / (1 - t) blows up at t = 1)
    with pytest.raises(ODEError, match="max_steps=20"):
        odeint(blowup, torch.ones(1, dtype=F64), 0.0, 2.0, max_steps=20)
    with pytest.raises(ODEError, match="underflow.*rtol=1e-06, atol=1e-06"):
        odeint(blowup, torch.ones(1, dtype=F64), 0.0, 2.0, rtol=1e-6, atol=1e-6)
    stiff = lambda t, y: -1e6 * (y - torch.cos(t))  # noqa: E731
    with pytest.raises(ODEError, match="max_steps=50.*rtol"):
        odeint(stiff, torch.zeros(1, dtype=F64), 0.0, 1.0, max_steps=50)
    with pytest.raises(ODEError, match="non-finite"):
        odeint(lambda t, y: y + (float("nan") if t > 0.3 else 1.0), torch.zeros(1), 0.0, 1.0)
    with pytest.raises(ODEError, match="non-finite"):
        odeint(lambda t, y: torch.full_like(y, float("inf")), torch.zeros(1), 0.0, 1.0)
    with pytest.raises(ODEError, match="non-finite"):
        odeint(lambda t, y: y**3, torch.ones(1), 0.0, 2.0, method="euler", steps=10)


def test_bad_arguments():
    y0 = torch.ones(2)
    cases = [
        (dict(method="rk45"), "method"),
        (dict(steps=10), "steps"),
        (dict(method="euler"), "steps"),
        (dict(method="rk4", steps=0), "steps"),
        (dict(method="heun", steps=2.5), "steps"),
        (dict(rtol=-1.0), "rtol"),
        (dict(atol=0.0), "atol"),
        (dict(max_steps=0), "max_steps"),
        (dict(first_step=-0.1), "first_step"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=name):
            odeint(decay, y0, 0.0, 1.0, **kwargs)
    with pytest.raises(ValueError, match="t0"):
        odeint(decay, y0, float("nan"), 1.0)
    with pytest.raises(ValueError, match="y0"):
        odeint(decay, [y0], 0.0, 1.0)
    with pytest.raises(ValueError, match="y0"):
        odeint(decay, torch.ones(2, dtype=torch.long), 0.0, 1.0)
    with pytest.raises(ValueError, match="structure of y0"):
        odeint(lambda t, y: (y, y), y0, 0.0, 1.0)
    with pytest.raises(ValueError, match="structure of y0"):
        odeint(lambda t, s: s[0], (y0, y0), 0.0, 1.0, method="euler", steps=1)


@given(
    k=st.floats(-2.0, 2.0),
    t1=st.floats(-2.0, 2.0).filter(lambda t: abs(t) > 1e-3),
    tol=st.sampled_from([1e-5, 1e-8]),
)
def test_dopri5_linear(k, t1, tol):
    # y' = k y in either direction stays within a small multiple of the tolerance
    y0 = torch.tensor([1.0, -0.5], dtype=F64)
    y, stats = odeint(lambda t, y: k * y, y0, 0.0, t1, rtol=tol, atol=tol)
    exact = y0 * math.exp(k * t1)
    assert (y - exact).abs().max().item() < 50 * tol * max(1.0, exact.abs().max().item())
    assert stats.steps >= 1 and stats.nfe >= 8
