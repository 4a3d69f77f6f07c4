r"""Denoising score matching (weightings, time sampling, the loss) and the moving average of weights."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from gendist.diffusion import DDPM, VE, VP, SubVP
from gendist.inference import EMA, WEIGHTINGS, TimeSampler, dsm_loss, weight

DIM, MEAN, STD = 2, 0.7, 1.5  # Gaussian data N(MEAN, STD^2 I)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _optimal(sde):
    r"""E[x0 | x_t] for x0 ~ N(MEAN, STD^2 I)."""

    def denoiser(x, t, c):
        t = t.reshape(t.shape + (1,) * (x.dim() - t.dim()))
        a, s = sde.alpha(t), sde.sigma(t)
        return MEAN + a * STD**2 / (a**2 * STD**2 + s**2) * (x - a * MEAN)

    return denoiser


def _expected_mse(sde, t):
    r"""E[||eps_hat - eps||^2 | t] of the optimal denoiser: SNR * DIM * posterior variance."""
    a2, s2 = sde.alpha(t) ** 2, sde.sigma(t) ** 2
    return DIM * a2 * STD**2 / (a2 * STD**2 + s2)


def _integral(sde, h, nodes: int = 64, pieces: int = 400):
    r"""(1 / (T - t_min)) * integral of h over [t_min, T], by Gauss-Legendre on geometric pieces (float64)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    x, w = torch.as_tensor(x), torch.as_tensor(w)
    edges = torch.logspace(math.log10(sde.t_min), math.log10(sde.T), pieces + 1, dtype=torch.float64)
    lo, hi = edges[:-1, None], edges[1:, None]
    t = (lo + hi) / 2 + (hi - lo) / 2 * x
    return float(((hi - lo) / 2 * w * h(t)).sum()) / (sde.T - sde.t_min)


# weightings ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("t", [0.01, 0.3, 0.9])
def test_weights_by_hand_vp(t):
    sde, gamma, sd = VP(beta_min=0.1, beta_max=20.0), 3.0, 0.5
    beta = 0.1 + t * 19.9
    alpha2 = math.exp(-(0.1 * t + 0.5 * 19.9 * t**2))
    sigma2 = 1 - alpha2
    snr = alpha2 / sigma2
    expect = {"simple": 1.0, "likelihood": beta / sigma2, "min_snr": min(snr, gamma) / snr,
              "edm": 1 + 1 / (snr * sd**2)}
    tt = torch.tensor([t], dtype=torch.float64)
    for name in WEIGHTINGS:
        got = weight(sde, tt, name, gamma=gamma, sigma_data=sd).item()
        assert got == pytest.approx(expect[name], rel=1e-10), name


@pytest.mark.parametrize("t", [0.01, 0.3, 0.9])
def test_weights_by_hand_ve(t):
    sde, gamma, sd = VE(sigma_min=0.02, sigma_max=40.0), 5.0, 1.3
    sigma = 0.02 * (40.0 / 0.02) ** t
    snr = 1 / sigma**2
    expect = {"simple": 1.0, "likelihood": 2 * math.log(40.0 / 0.02), "min_snr": min(snr, gamma) / snr,
              "edm": 1 + sigma**2 / sd**2}
    tt = torch.tensor([t], dtype=torch.float64)
    for name in WEIGHTINGS:
        got = weight(sde, tt, name, gamma=gamma, sigma_data=sd).item()
        assert got == pytest.approx(expect[name], rel=1e-10), name


@pytest.mark.parametrize("sde", [VP(), VP(schedule="cosine"), SubVP(), VE(), DDPM(steps=50)], ids=repr)
def test_likelihood_weight_is_minus_dlogsnr_dt(sde):
    # g^2 / sigma^2 = -d log SNR / dt (Kingma et al.'s continuous-time ELBO weighting) for every process
    t = torch.tensor([0.0123, 0.2571, 0.6349, 0.9137], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(sde.log_snr(t).sum(), t)
    torch.testing.assert_close(weight(sde, t.detach(), "likelihood"), -grad, rtol=1e-8, atol=0)


def test_weight_shape_and_errors():
    sde = VP()
    t = torch.rand(3, 4) * 0.9 + 0.05
    for name in WEIGHTINGS:
        assert weight(sde, t, name).shape == (3, 4)
    with pytest.raises(ValueError, match="weighting"):
        weight(sde, t, "snr")
    with pytest.raises(ValueError, match="gamma"):
        weight(sde, t, "min_snr", gamma=0.0)
    with pytest.raises(ValueError, match="sigma_data"):
        weight(sde, t, "edm", sigma_data=-1.0)
    with pytest.raises(ValueError, match=r"\[0, T\]"):
        weight(sde, torch.tensor([1.5]), "simple")


# the time sampler ---------------------------------------------------------------------------------------------------
def test_time_sampler_errors():
    with pytest.raises(ValueError, match="weighting"):
        TimeSampler(VP(), "elbo")
    with pytest.raises(ValueError, match="cells"):
        TimeSampler(VP(), "simple", importance=True, cells=0)
    with pytest.raises(ValueError, match="t_min > 0"):
        TimeSampler(VP(t_min=0.0), "likelihood")
    with pytest.raises(TypeError, match="SDE"):
        TimeSampler("vp", "simple")
    TimeSampler(VP(t_min=0.0), "min_snr", importance=True)  # finite at t = 0: fine


@pytest.mark.parametrize("importance", [False, True])
def test_time_sampler_draws(importance):
    sde = VP(t_min=1e-3)
    sampler = TimeSampler(sde, "likelihood", importance=importance, cells=200)
    t, factor = sampler.sample((50, 3), generator=_gen(), dtype=torch.float32)
    assert t.shape == factor.shape == (50, 3) and t.dtype == factor.dtype == torch.float32
    assert t.min() >= sde.t_min and t.max() <= sde.T and (factor > 0).all()
    t2, factor2 = sampler.sample((50, 3), generator=_gen())
    assert torch.equal(t, t2) and torch.equal(factor, factor2)
    # the density the factor refers to integrates to 1
    grid = torch.linspace(sde.t_min, sde.T, 200_001, dtype=torch.float64)
    assert float(torch.trapezoid(sampler.density(grid), grid)) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "sde, weighting, gain",
    [(VP(), "likelihood", 2.5), (VE(), "likelihood", 2.5), (VP(), "min_snr", 2.0), (VP(), "simple", 2.0),
     (VP(), "edm", 0.95), (VE(), "edm", 0.95)],
)
def test_importance_sampling_is_unbiased_with_lower_variance(sde, weighting, gain):
    # h(t): the expected error of the exact denoiser, made a little different from the sampler's reference
    h = lambda t: _expected_mse(sde, t) * (1.2 + 0.5 * torch.sin(7 * t))  # noqa: E731
    target = _integral(sde, lambda t: weight(sde, t, weighting) * h(t))
    n = 100_000
    stats = {}
    for importance in (False, True):
        sampler = TimeSampler(sde, weighting, importance=importance)
        t, factor = sampler.sample(n, generator=_gen(1), dtype=torch.float64)
        y = factor * h(t)
        stats[importance] = (float(y.mean()), float(y.std()))
        se = stats[importance][1] / math.sqrt(n)
        assert abs(stats[importance][0] - target) < 4 * se + 1e-9 * abs(target), (importance, stats, target)
    assert stats[True][1] * gain < stats[False][1], stats  # (edm: w m = 1, so the same uniform times)


def test_importance_density_of_edm_is_uniform():
    sampler = TimeSampler(VP(), "edm", importance=True, sigma_data=0.5, cells=100)
    torch.testing.assert_close(sampler._probs, torch.full((100,), 0.01, dtype=torch.float64))


def test_importance_factor_is_w_over_q():
    sde = VE()
    sampler = TimeSampler(sde, "edm", importance=True, cells=50)
    t, factor = sampler.sample(1000, generator=_gen(2), dtype=torch.float64)
    expect = weight(sde, t, "edm") / (sampler.density(t) * (sde.T - sde.t_min))
    torch.testing.assert_close(factor, expect, rtol=1e-6, atol=0)


# the loss -----------------------------------------------------------------------------------------------------------
def test_dsm_loss_matches_the_definition():
    sde = VP()
    sampler = TimeSampler(sde, "edm", sigma_data=0.5)
    x0 = torch.randn(6, 4, 3, generator=_gen(3))
    den = lambda x, t, c: 0.3 * x + c  # noqa: E731
    c = torch.randn(6, 4, 3, generator=_gen(4))
    loss = dsm_loss(den, sde, x0, c, event_dim=2, sampler=sampler, generator=_gen(5))
    assert loss.shape == (6,)
    # redo by hand with the same draws
    g = _gen(5)
    t, factor = sampler.sample((6,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    a, s = sde.alpha(t)[:, None, None], sde.sigma(t)[:, None, None]
    xt = a * x0 + s * eps
    eps_hat = (xt - a * den(xt, t, c)) / s
    torch.testing.assert_close(loss, factor * (eps_hat - eps).square().sum((1, 2)), rtol=1e-4, atol=1e-5)
    # event_dim = 0: one loss per element
    assert dsm_loss(den, sde, x0, c, event_dim=0, sampler=sampler).shape == x0.shape


def test_dsm_loss_gradient_and_time_argument():
    sde, net = VE(), nn.Linear(3, 3)
    seen = {}

    def den(x, t, c):
        seen["t"] = t
        return net(x) * t[..., None]

    x0 = torch.randn(2, 5, 3)
    dsm_loss(den, sde, x0, event_dim=1, sampler=TimeSampler(sde, "min_snr", importance=True)).mean().backward()
    assert seen["t"].shape == (2, 5) and net.weight.grad is not None and torch.isfinite(net.weight.grad).all()


def test_dsm_loss_errors():
    sde = VP()
    sampler = TimeSampler(sde)
    den = lambda x, t, c: x  # noqa: E731
    with pytest.raises(ValueError, match="event_dim"):
        dsm_loss(den, sde, torch.randn(4, 2), event_dim=3, sampler=sampler)
    with pytest.raises(ValueError, match="event_dim"):
        dsm_loss(den, sde, torch.randn(4, 2), event_dim=-1, sampler=sampler)
    with pytest.raises(ValueError, match="floating"):
        dsm_loss(den, sde, torch.ones(4, 2, dtype=torch.long), event_dim=1, sampler=sampler)
    with pytest.raises(ValueError, match="shape"):
        dsm_loss(lambda x, t, c: x[..., :1], sde, torch.randn(4, 2), event_dim=1, sampler=sampler)
    with pytest.raises(ValueError, match="built for"):
        dsm_loss(den, VP(t_min=1e-2), torch.randn(4, 2), event_dim=1, sampler=sampler)
    with pytest.raises(TypeError, match="TimeSampler"):
        dsm_loss(den, sde, torch.randn(4, 2), event_dim=1, sampler="simple")


@pytest.mark.parametrize("sde", [VP(), VE(sigma_min=0.01, sigma_max=20.0)], ids=repr)
@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_optimal_denoiser_has_the_lowest_loss(sde, weighting):
    x0 = MEAN + STD * torch.randn(20_000, DIM, generator=_gen(6), dtype=torch.float64)
    sampler = TimeSampler(sde, weighting, importance=True)
    opt = _optimal(sde)
    loss = dsm_loss(opt, sde, x0, event_dim=1, sampler=sampler, generator=_gen(7)).mean()
    for bad in (lambda x, t, c: opt(x, t, c) + 0.1, lambda x, t, c: 1.1 * opt(x, t, c) - 0.1 * MEAN):
        worse = dsm_loss(bad, sde, x0, event_dim=1, sampler=sampler, generator=_gen(7)).mean()
        assert loss < worse


@pytest.mark.parametrize("importance", [False, True])
def test_likelihood_loss_of_the_optimal_denoiser(importance):
    # E[loss] of the exact denoiser is (1 / (T - t_min)) * integral of w(t) * DIM * SNR * posterior variance;
    # with the likelihood weighting, (T - t_min) / 2 times it (the ELBO's diffusion term) is finite and positive
    sde = VP()
    x0 = MEAN + STD * torch.randn(40_000, DIM, generator=_gen(8), dtype=torch.float64)
    sampler = TimeSampler(sde, "likelihood", importance=importance)
    per = dsm_loss(_optimal(sde), sde, x0, event_dim=1, sampler=sampler, generator=_gen(9))
    target = _integral(sde, lambda t: weight(sde, t, "likelihood") * _expected_mse(sde, t))
    se = float(per.std()) / math.sqrt(per.numel())
    assert abs(float(per.mean()) - target) < 4 * se
    diffusion_term = 0.5 * (sde.T - sde.t_min) * float(per.mean())
    assert math.isfinite(diffusion_term) and diffusion_term >= 0


# the moving average -------------------------------------------------------------------------------------------------
class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("stat", torch.zeros(2))

    def forward(self, x):
        return self.lin(x) + self.stat


def test_ema_errors_and_structure():
    net = _Net()
    for decay in (1.0, -0.1, 1.5, float("nan"), True, "0.9"):
        with pytest.raises(ValueError, match="decay"):
            EMA(net, decay)
    with pytest.raises(TypeError, match="Module"):
        EMA(lambda x: x)
    ema = EMA(net, 0.9)
    assert all(not p.requires_grad for p in ema.averaged.parameters())
    assert all(p.requires_grad for p in net.parameters())
    assert set(ema.state_dict()) == {"averaged.lin.weight", "averaged.lin.bias", "averaged.count", "averaged.stat",
                                     "updates"}
    assert ema.updates.dtype == torch.long and int(ema.updates) == 0
    ema.double()
    assert ema.averaged.lin.weight.dtype == torch.float64 and ema.updates.dtype == torch.long
    with pytest.raises(ValueError, match="parameters"):
        ema.update(nn.Linear(3, 2))


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_of_a_constant_module_is_the_module(warmup):
    net = _Net()
    ema = EMA(net, 0.99, warmup=warmup)
    for _ in range(5):
        ema.update(net)
    for p, q in zip(net.parameters(), ema.averaged.parameters()):
        torch.testing.assert_close(p, q)
    x = torch.randn(4, 3)
    torch.testing.assert_close(ema(x), net(x))


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_matches_a_hand_computed_average(warmup):
    torch.manual_seed(0)
    net, decay = _Net(), 0.95
    ema = EMA(net, decay, warmup=warmup)
    avg = {k: v.clone() for k, v in net.lin.state_dict().items()}
    for n in range(6):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            net.count += 3
            net.stat.copy_(torch.randn(2))
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        avg = {k: d * avg[k] + (1 - d) * v for k, v in net.lin.state_dict().items()}
        ema.update(net)
    for k, v in avg.items():
        torch.testing.assert_close(ema.averaged.lin.state_dict()[k], v)
    assert int(ema.averaged.count) == 18 and torch.equal(ema.averaged.stat, net.stat)
    assert int(ema.updates) == 6


def _train(net, ema, opt, steps, start):
    for i in range(start, start + steps):
        g = _gen(100 + i)
        x, y = torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)
        opt.zero_grad()
        (net(x) - y).square().mean().backward()
        opt.step()
        ema.update(net)


def test_ema_state_dict_round_trip_and_resume():
    torch.manual_seed(1)
    net = _Net()
    ema = EMA(net, 0.9)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    # uninterrupted: 10 steps
    net_a, ema_a = copy.deepcopy(net), copy.deepcopy(ema)
    opt_a = torch.optim.Adam(net_a.parameters(), lr=0.05)
    _train(net_a, ema_a, opt_a, 10, 0)
    # interrupted after 4 steps, saved, restored into fresh objects, 6 more
    _train(net, ema, opt, 4, 0)
    saved = copy.deepcopy({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict()})
    net_b = _Net()
    ema_b = EMA(net_b, 0.9)
    opt_b = torch.optim.Adam(net_b.parameters(), lr=0.05)
    net_b.load_state_dict(saved["net"])
    ema_b.load_state_dict(saved["ema"])
    opt_b.load_state_dict(saved["opt"])
    assert int(ema_b.updates) == 4
    for k, v in ema.state_dict().items():
        assert torch.equal(ema_b.state_dict()[k], v)
    _train(net_b, ema_b, opt_b, 6, 4)
    for k, v in ema_a.state_dict().items():
        torch.testing.assert_close(ema_b.state_dict()[k], v, rtol=0, atol=0)
