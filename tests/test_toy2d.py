"""The synthetic 2-D densities: shapes, support, normalization, entropy, Pyro, dtypes; the demo runs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.distributions.testing.gof import vector_density_goodness_of_fit

from gendist.data import Checkerboard, Moons, Pinwheel, Toy2D, densities
from gendist.distributions import LOG_PROB_KINDS

ROOT = Path(__file__).resolve().parents[1]
EXACT = [name for name, cls in densities.items() if cls.log_prob_kind == "exact"]
NONE = [name for name, cls in densities.items() if cls.log_prob_kind == "none"]
ANCHORS = {"eight_gaussians": 2.834, "checkerboard": 3.466, "rings": 2.626, "circles": 3.267, "moons": 2.405}
# TwoSpirals.log_prob costs about 1 ms a point: fewer points for it
POINTS = {"two_spirals": 1_000}


def build(name: str, **kwargs: object) -> Toy2D:
    return densities[name](validate_args=True, **kwargs)


def test_registry() -> None:
    assert set(ANCHORS) <= set(densities)
    for name, cls in densities.items():
        assert issubclass(cls, Toy2D) and issubclass(cls, dist.TorchDistribution), name
        assert cls.log_prob_kind in LOG_PROB_KINDS, name
    assert set(NONE) == {"pinwheel"}


@pytest.mark.parametrize("name", list(densities))
def test_shapes_and_support(name: str) -> None:
    d = build(name)
    assert d.event_shape == (2,) and d.batch_shape == ()
    assert d.support.event_dim == 1 and not d.has_rsample
    assert d.sample().shape == (2,)
    x = d.sample((3, 4))
    assert x.shape == (3, 4, 2) and x.dtype == torch.get_default_dtype()
    assert bool(d.support.check(d.sample((1000,))).all())

    e = d.expand((5,))
    assert type(e) is type(d) and e.batch_shape == (5,)
    assert e.sample((3,)).shape == (3, 5, 2)
    if d.log_prob_kind == "exact":
        assert d.log_prob(x).shape == (3, 4)
        assert e.log_prob(torch.zeros(3, 1, 2)).shape == (3, 5)
        assert e.entropy().shape == (5,)
        assert bool(d.log_prob(d.sample((100,))).isfinite().all())


@pytest.mark.parametrize("name", EXACT)
def test_log_prob_normalizes(name: str) -> None:
    r"""Midpoint quadrature of exp(log_prob) over a box holding all but ~1e-9 of the mass."""
    # the ring's modes (std 0.02) need a step well below 0.04 for the midpoint rule to reach 1e-3
    h, half = {"two_spirals": (0.15, 4.2), "ring": (0.005, 2.5)}.get(name, (0.04, 6.0))
    g = torch.arange(-half, half, h, dtype=torch.float64) + h / 2
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1)
    d = densities[name](validate_args=False)
    total = d.log_prob(grid).exp().sum().item() * h * h
    assert abs(total - 1) < 1e-3, total


@pytest.mark.parametrize("name", EXACT)
def test_monte_carlo_entropy(name: str) -> None:
    n = POINTS.get(name, 50_000)
    d = build(name, dtype=torch.float64)
    lp = d.log_prob(d.sample((n,)))
    estimate, se = -lp.mean().item(), lp.std().item() / math.sqrt(n)
    H = d.entropy().item()
    assert abs(estimate - H) < 4 * se + 1e-3, (estimate, se, H)
    if name in ANCHORS:  # anchors.md's Monte Carlo values
        assert abs(H - ANCHORS[name]) < 0.015


@pytest.mark.parametrize("name", EXACT)
def test_samples_agree_with_log_prob(name: str) -> None:
    r"""Pyro's nearest-neighbour goodness-of-fit test of ``sample`` against ``log_prob``."""
    d = build(name, dtype=torch.float64)
    x = d.sample((2_500 if name == "two_spirals" else 4_000,))  # the test needs > 2000
    gof = vector_density_goodness_of_fit(x, d.log_prob(x).exp(), dim=2)
    assert gof > 1e-3, gof


# The FFJORD generators (toy_data.inf_train_gen) and scikit-learn's make_moons and
# make_circles, transcribed in numpy with their evenly spaced angles: scoring their
# output with our log_prob must give our entropy (the cross-entropy of a different
# distribution would be larger).
def _ffjord(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if name == "eight_gaussians":
        s = 1 / np.sqrt(2)
        centres = 4 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
        x = rng.standard_normal((n, 2)) * 0.5 + centres[rng.integers(0, 8, n)]
        return x / 1.414
    if name == "checkerboard":
        x1 = rng.random(n) * 4 - 2
        x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + np.floor(x1) % 2
        return np.stack([x1, x2], 1) * 2
    if name == "rings":
        k = n // 4
        parts = []
        for scale, m in zip((1.0, 0.75, 0.5, 0.25), (k, k, k, n - 3 * k)):
            t = np.linspace(0, 2 * np.pi, m, endpoint=False)
            parts.append(np.stack([np.cos(t), np.sin(t)], 1) * scale)
        return np.concatenate(parts) * 3.0 + rng.normal(scale=0.08, size=(n, 2))
    if name == "circles":  # make_circles(n, factor=.5, noise=.08) * 3
        out = np.linspace(0, 2 * np.pi, n // 2, endpoint=False)
        inn = np.linspace(0, 2 * np.pi, n - n // 2, endpoint=False)
        x = np.concatenate([np.stack([np.cos(out), np.sin(out)], 1), 0.5 * np.stack([np.cos(inn), np.sin(inn)], 1)])
        return (x + rng.normal(scale=0.08, size=x.shape)) * 3
    if name == "moons":  # make_moons(n, noise=.1) * 2 + (-1, -0.2)
        out, inn = np.linspace(0, np.pi, n // 2), np.linspace(0, np.pi, n - n // 2)
        x = np.concatenate([np.stack([np.cos(out), np.sin(out)], 1), np.stack([1 - np.cos(inn), 0.5 - np.sin(inn)], 1)])
        return (x + rng.normal(scale=0.1, size=x.shape)) * 2 + np.array([-1, -0.2])
    if name == "two_spirals":
        m = n // 2
        nu = np.sqrt(rng.random((m, 1))) * 540 * (2 * np.pi) / 360
        d1 = np.hstack([-np.cos(nu) * nu + rng.random((m, 1)) * 0.5, np.sin(nu) * nu + rng.random((m, 1)) * 0.5])
        return np.vstack([d1, -d1]) / 3 + rng.standard_normal((2 * m, 2)) * 0.1
    if name == "ring":  # the mode-collapse benchmarks' generators: centres r (sin t, cos t), the same eight points
        t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        centres = 2.0 * np.stack([np.sin(t), np.cos(t)], 1)
        return centres[rng.integers(0, 8, n)] + rng.normal(scale=0.02, size=(n, 2))
    if name == "grid":
        centres = np.array([(i, j) for i in range(-4, 5, 2) for j in range(-4, 5, 2)], dtype=float)
        return centres[rng.integers(0, 25, n)] + rng.normal(scale=0.05, size=(n, 2))
    raise KeyError(name)


@pytest.mark.parametrize("name", EXACT)
def test_matches_ffjord_generator(name: str) -> None:
    n = POINTS.get(name, 40_000)
    x = torch.from_numpy(_ffjord(name, n, np.random.default_rng(0)))
    d = densities[name](validate_args=False, dtype=torch.float64)
    lp = d.log_prob(x)
    cross, se = -lp.mean().item(), lp.std().item() / math.sqrt(n)
    assert abs(cross - d.entropy().item()) < 4 * se + 1e-3, (cross, se)


def test_pinwheel_matches_ffjord_moments() -> None:
    rng = np.random.default_rng(0)
    n = 50_000
    f = rng.standard_normal((n, 2)) * np.array([0.3, 0.1])
    f[:, 0] += 1.0
    angles = np.linspace(0, 2 * np.pi, 5, endpoint=False)[rng.integers(0, 5, n)] + 0.25 * np.exp(f[:, 0])
    rot = np.reshape(np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)]).T, (-1, 2, 2))
    ref = torch.from_numpy(2 * np.einsum("ti,tij->tj", f, rot))
    x = Pinwheel(dtype=torch.float64).sample((n,))
    for stat in (lambda v: v, lambda v: v**2, lambda v: v.prod(-1, keepdim=True), lambda v: v.norm(dim=-1)):
        a, b = stat(x), stat(ref)
        se = math.sqrt((a.var(0) / n + b.var(0) / n).max().item())
        assert ((a.mean(0) - b.mean(0)).abs() < 5 * se).all()


@pytest.mark.parametrize("name", NONE)
def test_no_log_prob_says_what_to_do(name: str) -> None:
    d = build(name)
    with pytest.raises(NotImplementedError, match="sample"):
        d.log_prob(torch.zeros(2))
    with pytest.raises(NotImplementedError):
        d.entropy()


@pytest.mark.parametrize("name", list(densities))
def test_pyro_sample(name: str) -> None:
    d = build(name)

    def model(data: torch.Tensor | None = None) -> torch.Tensor:
        with pyro.plate("n", 10):
            return pyro.sample("x", d, obs=data)

    trace = poutine.trace(model).get_trace()
    assert trace.nodes["x"]["value"].shape == (10, 2)
    assert trace.nodes["x"]["fn"].batch_shape == (10,)
    if d.log_prob_kind == "exact":
        observed = poutine.trace(model).get_trace(d.sample((10,)))
        assert math.isfinite(observed.log_prob_sum().item())


@pytest.mark.parametrize("name", list(densities))
def test_float64(name: str) -> None:
    d = build(name, dtype=torch.float64)
    x = d.sample((50,))
    assert x.dtype == torch.float64 and d.dtype == torch.float64
    if d.log_prob_kind == "exact":
        lp64 = d.log_prob(x)
        assert lp64.dtype == torch.float64
        lp32 = d.log_prob(x.float())
        assert lp32.dtype == torch.float32
        torch.testing.assert_close(lp32.double(), lp64, atol=1e-3, rtol=1e-5)
    if d.log_prob_kind == "exact":
        assert d.entropy().dtype == torch.float64


def test_seeded_sampling_is_reproducible() -> None:
    torch.manual_seed(3)
    a = Moons().sample((20,))
    torch.manual_seed(3)
    torch.testing.assert_close(Moons().sample((20,)), a)


def test_checkerboard_support_and_bad_input() -> None:
    d = Checkerboard(validate_args=False)
    lp = d.log_prob(torch.tensor([[1.0, 1.0], [1.0, -1.0], [5.0, 0.0], [-3.0, -3.0]]))
    expected = torch.tensor([-math.log(32), -math.inf, -math.inf, -math.log(32)])
    torch.testing.assert_close(lp, expected)
    with pytest.raises(ValueError, match="support"):
        Checkerboard(validate_args=True).log_prob(torch.tensor([5.0, 0.0]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        Moons().log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        Moons().log_prob(torch.tensor([math.nan, 0.0]))
    with pytest.raises(TypeError, match="floating"):
        Moons(dtype=torch.int64)


def test_log_prob_gradient_is_finite() -> None:
    for name in EXACT:
        if name == "checkerboard":
            continue
        x = densities[name]().sample((20,)).requires_grad_()
        densities[name]().log_prob(x).sum().backward()
        assert bool(x.grad.isfinite().all()), name


def test_demo_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--steps", "50", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "NLL - H" in result.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(densities))
def test_cuda(name: str) -> None:
    d = build(name, device="cuda", dtype=torch.float64)
    x = d.sample((100,))
    assert x.device.type == "cuda" and x.dtype == torch.float64
    if d.log_prob_kind == "exact":
        lp = d.log_prob(x)
        assert lp.device.type == "cuda"
        torch.testing.assert_close(lp.cpu(), densities[name]().log_prob(x.cpu()))
        assert d.entropy().device.type == "cuda"
