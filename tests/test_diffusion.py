"""Diffusion processes, denoisers, the probability-flow likelihood and the Diffusion model, against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gendist.diffusion import DDPM, VE, VP, DiffusionModel, SubVP, timesteps
from gendist.nn.denoiser import PARAMETRIZATIONS, Denoiser
from gendist.samplers.likelihood import probability_flow_log_prob
from gendist.samplers.ode import ODEError
from gendist.testing.diffusion import DiffusedMixture

SDES = {
    "vp": lambda: VP(),
    "vp-cosine": lambda: VP(schedule="cosine"),
    "subvp": lambda: SubVP(),
    "ve": lambda: VE(sigma_max=20.0),
    "ddpm": lambda: DDPM(steps=200),
}


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _mixture(sde):
    return DiffusedMixture(sde, torch.tensor([0.3, 0.7]), torch.tensor([[-1.5, 0.5], [1.0, -0.5]]),
                           torch.tensor([0.4, 0.6]))


# --- processes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SDES)
def test_coefficients_are_consistent(name):
    r"""f = d log alpha / dt and g^2 = d sigma^2/dt - 2 f sigma^2 (the kernel's ODE), by autograd."""
    sde = SDES[name]()
    t = torch.linspace(0.0137, sde.T - 0.0013, 23).requires_grad_()
    log_a, var = sde.log_alpha(t) + 0 * t, sde.sigma(t) ** 2
    (dla,) = torch.autograd.grad(log_a.sum(), t, retain_graph=True)
    (dvar,) = torch.autograd.grad(var.sum(), t)
    assert torch.allclose(dla, sde.f(t), atol=1e-9)
    assert torch.allclose(dvar - 2 * sde.f(t) * var, sde.g2(t), rtol=1e-8, atol=1e-9)
    lam = sde.log_snr(t.detach())
    assert (lam.diff() < 0).all()
    assert torch.allclose(sde.time_of_log_snr(lam), t.detach(), atol=1e-8)


@pytest.mark.parametrize("name", SDES)
def test_marginal_matches_simulation(name):
    """The perturbation kernel N(alpha x0, sigma^2) matches an Euler-Maruyama simulation of the forward SDE."""
    sde = SDES[name]()
    g = torch.Generator().manual_seed(0)
    n, t1 = 8000, 0.6 * sde.T
    x0 = torch.tensor([1.5, -0.7])
    zero = torch.tensor(0.0)  # the process at 0 (VE starts with sigma_min noise)
    x = sde.alpha(zero) * x0 + sde.sigma(zero) * torch.randn(n, 2, generator=g)
    steps = 300
    dt = t1 / steps
    for i in range(steps):
        t = torch.tensor(i * dt)
        x = x + sde.drift(x, t) * dt + sde.diffusion(t) * math.sqrt(dt) * torch.randn(n, 2, generator=g)
    d = sde.marginal(x0, t1)
    se_mean = d.stddev / math.sqrt(n)
    assert ((x.mean(0) - d.mean).abs() < 4 * se_mean + 0.01 * d.stddev).all()
    assert torch.allclose(x.std(0), d.stddev, rtol=0.03)


def test_marginal_shapes_and_times():
    sde = VP()
    x0 = torch.randn(5, 3)
    assert sde.marginal(x0, torch.rand(5)).batch_shape == (5, 3)
    assert sde.marginal(x0, 0.5, event_dim=1).event_shape == (3,)
    with pytest.raises(ValueError, match=r"t. must lie in \[0, T\]"):
        sde.marginal(x0, 1.5)
    with pytest.raises(ValueError, match="leading dims"):
        sde.marginal(x0, torch.rand(4))
    with pytest.raises(ValueError, match="T < 1"):
        VP(schedule="cosine", T=1.0)
    with pytest.raises(ValueError, match="sigma_min"):
        VE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="betas"):
        DDPM(betas=[0.5, 1.5])


def test_reverse_sde_of_exact_score():
    """The PF-ODE drift of the exact score is f x - g^2/2 * score; the reverse SDE's is f x - g^2 * score."""
    sde = VP()
    gm = _mixture(sde)
    x, t = torch.randn(4, 2), torch.tensor(0.4)
    ode, rev = sde.reverse(gm.score, probability_flow=True), sde.reverse(gm.score)
    assert torch.allclose(2 * ode.drift(x, t) - rev.drift(x, t), sde.drift(x, t))
    assert float(ode.diffusion(t)) == 0 and torch.allclose(rev.diffusion(t), sde.g2(t).sqrt())


@pytest.mark.parametrize("spacing", ["uniform", "logsnr", "karras"])
@pytest.mark.parametrize("name", SDES)
def test_timesteps(name, spacing):
    sde = SDES[name]()
    ts = timesteps(sde, 12, spacing)
    assert ts.shape == (13,) and float(ts[0]) == pytest.approx(sde.T) and float(ts[-1]) == pytest.approx(sde.t_min)
    assert (ts.diff() < 0).all()
    to_zero = timesteps(sde, 12, spacing, t_min=0.0)
    assert to_zero.shape == (13,) and float(to_zero[-1]) == 0
    with pytest.raises(ValueError, match="steps"):
        timesteps(sde, 0)
    with pytest.raises(ValueError, match="spacing"):
        timesteps(sde, 3, "cubic")


# --- denoisers -------------------------------------------------------------------------------------


class _Ideal(torch.nn.Module):
    """A 'network' that outputs exactly what its parametrization asks for, from the exact mixture."""

    def __init__(self, gm, p, sigma_data):
        super().__init__()
        self.gm, self.p, self.sd = gm, p, sigma_data
        self.t = None

    def forward(self, u, noise, c):
        sde, t = self.gm.sde, self.t
        a, s = sde.alpha(t), sde.sigma(t)
        st = s / a
        x = u * (st**2 + self.sd**2).sqrt() * a  # undo c_in and the 1/alpha
        x0 = self.gm.denoiser(x, t)
        xt = x / a
        norm = (st**2 + self.sd**2).sqrt()
        skip, out = self.sd**2 / norm**2, st * self.sd / norm
        assert torch.allclose(noise, st.log() / 4)
        return {
            "eps": (xt - x0) / st,
            "x0": x0,
            "edm": (x0 - skip * xt) / out,
            "gaussian": (x0 - skip * xt) / out,  # its default Gaussian N(0, sigma_d^2 I) is EDM's
            "v": (skip * xt - x0) / out,
            "score": self.gm.score(x, t),
        }[self.p]


@pytest.mark.parametrize("p", PARAMETRIZATIONS)
@pytest.mark.parametrize("name", ["vp", "ve", "subvp"])
def test_parametrizations_invert_their_targets(name, p):
    sde = SDES[name]()
    gm = _mixture(sde)
    net = _Ideal(gm, p, 0.7)
    D = Denoiser(net, sde, p, sigma_data=0.7, size=2)
    for t in (0.05, 0.5, 0.9):
        net.t = torch.tensor(t)
        x = torch.randn(6, 2)
        assert torch.allclose(D(x, net.t), gm.denoiser(x, net.t), atol=1e-9)
        assert torch.allclose(D.score(x, net.t), gm.score(x, net.t), atol=1e-7)


def test_denoiser_bad_arguments():
    with pytest.raises(ValueError, match="parametrization"):
        Denoiser(torch.nn.Identity(), VP(), "epsilon")
    with pytest.raises(ValueError, match="sigma_data"):
        Denoiser(torch.nn.Identity(), VP(), "eps", sigma_data=0.0)
    with pytest.raises(ValueError, match="size"):
        Denoiser(torch.nn.Identity(), VP(), "gaussian")
    with pytest.raises(ValueError, match="gaussian"):
        Denoiser(torch.nn.Identity(), VP(), "eps").set_gaussian(torch.zeros(2), torch.eye(2))
    D = Denoiser(torch.nn.Identity(), VP(), "gaussian", size=2)
    with pytest.raises(ValueError, match="shape"):
        D.set_gaussian(torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        D.set_gaussian(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="semi-definite"):
        D.set_gaussian(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        D.set_gaussian(torch.tensor([0.0, math.nan]), torch.eye(2))


class _Zero(torch.nn.Module):
    def forward(self, u, noise, c):
        return torch.zeros_like(u)


@pytest.mark.parametrize("name", SDES)
def test_gaussian_parametrization_is_its_gaussian(name):
    """With a zero network, the 'gaussian' denoiser is the exact posterior mean of N(mu, Sigma) data, and the
    PF-ODE log_prob is the closed-form Gaussian p_t = N(alpha mu, alpha^2 Sigma + sigma^2 I)."""
    torch.manual_seed(0)
    sde = SDES[name]()
    A = torch.randn(3, 3, dtype=torch.float64)
    mu, cov = torch.tensor([1.0, -0.5, 0.3], dtype=torch.float64), A @ A.T / 3 + 0.05 * torch.eye(3)
    D = Denoiser(_Zero(), sde, "gaussian", sigma_data=0.8, size=3).double()
    D.set_gaussian(mu, cov)

    def p(t):
        a, s = sde.alpha(torch.tensor(t, dtype=torch.float64)), sde.sigma(torch.tensor(t, dtype=torch.float64))
        return torch.distributions.MultivariateNormal(a * mu, a**2 * cov + s**2 * torch.eye(3, dtype=torch.float64))

    t = 0.3
    a, s = sde.alpha(torch.tensor(t, dtype=torch.float64)), sde.sigma(torch.tensor(t, dtype=torch.float64))
    x = p(t).sample((5,))
    posterior = mu + (x - a * mu) @ torch.linalg.solve(a**2 * cov + s**2 * torch.eye(3, dtype=torch.float64),
                                                       a * cov)
    assert torch.allclose(D(x, t), posterior, atol=1e-9)
    x = p(sde.t_min).sample((32,))
    lp, _ = probability_flow_log_prob(D, sde, x, event_dim=1, prior=p(sde.T), rtol=1e-7, atol=1e-7)
    assert (lp - p(sde.t_min).log_prob(x)).abs().max() < 1e-3


def test_fit_gaussian():
    torch.manual_seed(0)
    x = torch.randn(500, 2, 2) * torch.tensor([1.0, 2.0]) + 3
    model = DiffusionModel((2, 2), parametrization="gaussian", hidden=(8,))
    model.fit_gaussian(x)
    for D in (model.denoiser, model.ema.averaged):
        assert torch.allclose(D.mean, x.reshape(500, 4).mean(0))
        cov = D.basis @ torch.diag(D.variances) @ D.basis.T
        assert torch.allclose(cov, torch.cov(x.reshape(500, 4).T), atol=1e-5)
    assert torch.isfinite(model.loss(x)).all()
    with pytest.raises(ValueError, match="gaussian"):
        DiffusionModel(2, hidden=(8,)).fit_gaussian(torch.randn(10, 2))
    with pytest.raises(ValueError, match="2 samples"):
        model.fit_gaussian(torch.randn(1, 2, 2))


# --- the probability-flow likelihood ---------------------------------------------------------------


@pytest.mark.parametrize("name", SDES)
def test_pf_ode_log_prob_matches_closed_form(name):
    """With the exact score and the exact p_T as the prior, log p_{t_min} is exact to 1e-3 nats."""
    sde = SDES[name]()
    gm = _mixture(sde)
    x = gm.marginal(sde.t_min).sample((64,))
    lp, stats = probability_flow_log_prob(gm.denoiser, sde, x, event_dim=1, prior=gm.marginal(sde.T),
                                          rtol=1e-7, atol=1e-7)
    exact = gm.log_prob(x, sde.t_min)
    assert (lp - exact).abs().max() < 1e-3, (lp - exact).abs().max()
    assert stats.nfe > 0


def test_pf_ode_log_prob_with_gaussian_prior_is_within_the_prior_mismatch():
    """With sde.prior (N(0, sigma_T^2)) instead of the exact p_T, the error is the mismatch at T only."""
    sde = VP()
    gm = _mixture(sde)
    x = gm.marginal(sde.t_min).sample((32,))
    lp, _ = probability_flow_log_prob(gm.denoiser, sde, x, event_dim=1)
    assert (lp - gm.log_prob(x, sde.t_min)).abs().max() < 0.05


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_within_its_error(probe):
    sde = VP()
    gm = _mixture(sde)
    x = gm.marginal(sde.t_min).sample((8,))
    exact = gm.log_prob(x, sde.t_min)
    g = torch.Generator().manual_seed(1)
    draws = torch.stack([
        probability_flow_log_prob(gm.denoiser, sde, x, event_dim=1, prior=gm.marginal(sde.T), hutchinson=True,
                                  probe=probe, probes=4, generator=g, rtol=1e-6, atol=1e-6)[0]
        for _ in range(8)
    ])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - exact).abs() < 4 * se + 2e-3).all()
    assert draws.std(0).max() > 0  # it is random


def test_pf_ode_log_prob_fixed_step_converges():
    sde = VE(sigma_max=20.0)
    gm = _mixture(sde)
    x = gm.marginal(sde.t_min).sample((16,))
    exact = gm.log_prob(x, sde.t_min)
    errs = [
        (probability_flow_log_prob(gm.denoiser, sde, x, event_dim=1, prior=gm.marginal(sde.T), method="rk4",
                                   steps=n)[0] - exact).abs().max()
        for n in (20, 80)
    ]
    assert errs[1] < errs[0]


def test_pf_ode_failure_is_reported():
    sde = VP()
    gm = _mixture(sde)
    with pytest.raises(ODEError, match="max_steps"):
        probability_flow_log_prob(gm.denoiser, sde, torch.randn(4, 2), event_dim=1, rtol=1e-10, atol=1e-10,
                                  max_steps=5)


# --- the model -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A small VP model trained on a 2-D Gaussian mixture for a few hundred steps."""
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    from gendist.inference import fit

    gm = _mixture(VP())
    data = gm.data().sample((2000,))
    model = DiffusionModel(2, hidden=(64, 64), ema=0.99, rtol=1e-4, atol=1e-4)
    fit(model, data, epochs=60, batch_size=200, lr=3e-3, progress=False)
    model.eval()
    torch.set_default_dtype(old)
    return model, gm


def test_trained_model_density_and_samples(trained):
    model, gm = trained
    d = model()
    assert d.log_prob_kind == "exact"
    x = gm.data().sample((300,))
    with torch.no_grad():
        nll = -d.log_prob(x).mean()
    H = -gm.log_prob(gm.data().sample((20000,)), 0.0).mean()
    assert nll - H < 0.3, (float(nll), float(H))  # 600 steps; benchmarks/diffusion_2d.py trains for real
    s = model(sampler="dpmpp_2m", steps=20).sample((500,))
    assert s.shape == (500, 2) and torch.isfinite(s).all()
    assert (s.mean(0) - gm.data().mean).abs().max() < 0.25


def test_log_prob_backpropagates_to_parameters():
    model = DiffusionModel(2, hidden=(8,), ema=None, rtol=1e-3, atol=1e-3)
    lp = model().log_prob(torch.randn(5, 2)).sum()
    lp.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_hutchinson_above_exact_dim():
    model = DiffusionModel(3, hidden=(8,), exact_dim=2, rtol=1e-3, atol=1e-3)
    d = model()
    assert d.log_prob_kind == "estimate" and model(divergence="exact").log_prob_kind == "exact"
    assert d.log_prob(torch.randn(4, 3)).shape == (4,)


@pytest.mark.parametrize("sde", ["vp", "subvp", "ve", "ddpm"])
@pytest.mark.parametrize("p", PARAMETRIZATIONS)
def test_model_options_shapes_and_loss(sde, p):
    model = DiffusionModel((2, 3), sde=sde, parametrization=p, hidden=(8,), context=2, sampler="ddim", steps=4,
                      rtol=1e-3, atol=1e-3)
    c = torch.randn(5, 2)
    d = model(c)
    assert d.batch_shape == (5,) and d.event_shape == (2, 3)
    x = d.sample((3,))
    assert x.shape == (3, 5, 2, 3)
    assert d.log_prob(x).shape == (3, 5)
    loss = model.loss(torch.randn(5, 2, 3), c)
    assert loss.shape == () and torch.isfinite(loss)


def test_model_bad_input():
    model = DiffusionModel(2, hidden=(8,))
    with pytest.raises(ValueError, match="shape"):
        model().log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        model().log_prob(torch.tensor([[0.0, math.nan]]))
    with pytest.raises(ValueError, match="context"):
        model(torch.randn(2))
    with pytest.raises(ValueError, match="sampler"):
        model(sampler="magic")
    with pytest.raises(ValueError, match="steps"):
        model(steps=0)
    with pytest.raises(ValueError, match="sde"):
        DiffusionModel(2, sde="vpp")
    with pytest.raises(ValueError, match="shape"):
        DiffusionModel(0)
    with pytest.raises(ValueError, match="x"):
        model.loss(torch.randn(4, 5))


def test_config_round_trip():
    import json

    from gendist.config import config, from_config

    model = DiffusionModel(2, sde="ve", sigma_max=10.0, parametrization="edm", hidden=(8,), weighting="likelihood",
                      importance=True, sampler="heun", steps=7, features=6, feature_scale=3.0)
    clone = from_config(json.loads(json.dumps(config(model))))
    clone.load_state_dict(model.state_dict())
    x = torch.randn(3, 2)
    assert torch.equal(clone.active()(x, torch.tensor(0.3)), model.active()(x, torch.tensor(0.3)))
    assert clone.sde.sigma_max == 10.0 and clone.options["sampler"] == "heun"
    assert torch.equal(clone.denoiser.net.features.B, model.denoiser.net.features.B)


def test_fourier_features():
    from gendist.diffusion import FourierFeatures, ScoreMLP

    f = FourierFeatures(3, 8, scale=2.0)
    u = torch.randn(5, 3)
    phi = f(u)
    assert phi.shape == (5, 8)
    # the features are sin and cos of the same projections, with frequencies of scale 2
    assert torch.allclose(phi[:, :4] ** 2 + phi[:, 4:] ** 2, torch.ones(5, 4), atol=1e-6)
    assert 0.5 < f.B.std() / (2 * math.pi * 2.0) < 2.0
    # drawn from their own generator: the same for every instance, and the global seed is untouched
    state = torch.get_rng_state()
    assert torch.equal(FourierFeatures(3, 8, scale=2.0).B, f.B)
    assert torch.equal(torch.get_rng_state(), state)
    assert "B" in f.state_dict()
    net = ScoreMLP(3, hidden=(8,), features=8, feature_scale=2.0)
    assert net(u, torch.zeros(5)).shape == (5, 3)
    with pytest.raises(ValueError, match="size"):
        FourierFeatures(3, 5)
    with pytest.raises(ValueError, match="scale"):
        FourierFeatures(3, 8, scale=0.0)
    with pytest.raises(ValueError, match="features"):
        ScoreMLP(3, features=3)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = DiffusionModel(2, hidden=(16, 16), dropout=0.5, ema=None, rtol=1e-4, atol=1e-4)
    x, t = torch.randn(6, 2), torch.tensor(0.4)
    assert not torch.equal(model.denoiser(x, t), model.denoiser(x, t))
    model.eval()
    assert torch.equal(model.denoiser(x, t), model.denoiser(x, t))
    assert torch.equal(model().log_prob(x), model().log_prob(x))
    with pytest.raises(ValueError, match="dropout"):
        DiffusionModel(2, dropout=1.0)


@settings(max_examples=10, deadline=None)
@given(w=st.floats(0.1, 0.9), m=st.floats(-2, 2), s=st.floats(0.2, 1.5), t=st.floats(0.01, 0.99),
       name=st.sampled_from(["vp", "subvp", "ve", "ddpm"]))
def test_tweedie_denoiser_is_posterior_mean(w, m, s, t, name):
    """E[x0 | x_t] of the closed form agrees with a Monte Carlo posterior mean (importance weights)."""
    sde = SDES[name]()
    gm = DiffusedMixture(sde, torch.tensor([w, 1 - w]), torch.tensor([[m, 0.0], [-m, 1.0]]), torch.tensor([s, 0.5]))
    torch.manual_seed(0)
    x0 = gm.data().sample((40000,))
    xt = torch.tensor([[0.3, -0.2]]) * sde.alpha(torch.tensor(t))
    kernel = sde.marginal(x0, t, event_dim=1).log_prob(xt)
    wts = torch.softmax(kernel, 0)
    mc = (wts[:, None] * x0).sum(0)
    ess = 1 / (wts**2).sum()  # the effective sample size of the weights
    tol = 6 * x0.std(0).max() / ess.sqrt() + 1e-3
    assert (mc - gm.denoiser(xt, torch.tensor(t))[0]).abs().max() < tol


def test_fit_updates_the_average_of_a_wrapped_model():
    """fit calls after_step() on every module that has it, so a DiffusionModel inside a FlowModule keeps its EMA."""
    from gendist.flows import FlowModule, Standardize
    from gendist.inference import fit

    wrapped = FlowModule([Standardize(2)], features=2, base=DiffusionModel(2, hidden=(8,)))
    fit(wrapped, torch.randn(64, 2), objective=lambda m, b: m.base.loss(b[0]), epochs=2, batch_size=32,
        progress=False)
    assert int(wrapped.base.ema.updates) == 4
