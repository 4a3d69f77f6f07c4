"""Deep priors: gendist models fitted to samples, used as fixed priors in Pyro models (gendist.bayes.prior)."""

import importlib.util
import json
import pickle
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn as nn
from pyro import poutine
from pyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.optim import Adam
from torch.distributions import constraints

from gendist.autoregressive import MADE, Normal
from gendist.bayes._fused import compile_flow
from gendist.bayes.prior import Prior, StochasticLogProb
from gendist.diffusion import DiffusionModel
from gendist.ebm import Energy
from gendist.flows import IAF, MAF, NICE, NSF, RealNVP
from gendist.gan import GAN
from gendist.inference import fit
from gendist.latent import VAE

MEAN = torch.tensor([1.0, -0.5])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]])


@pytest.fixture(scope="module")
def fitted() -> MAF:
    """A small MAF fitted to samples of N(MEAN, COV)."""
    torch.manual_seed(0)
    x = dist.MultivariateNormal(MEAN, COV).sample((2000,))
    flow = MAF(2, transforms=3, hidden=(16, 16))
    fit(flow, x, epochs=15, batch_size=200, lr=1e-2, progress=False)
    return flow


def _grad_log_prob(f, x):
    x = x.detach().clone().requires_grad_(True)
    lp = f(x)
    (g,) = torch.autograd.grad(lp.sum(), x)
    return lp.detach(), g


RECIPES = {
    "maf": lambda: MAF(3, transforms=2, hidden=(8, 8)),
    "maf-additive": lambda: MAF(3, transforms=2, hidden=(8,), univariate="additive"),
    "maf-no-hidden": lambda: MAF(3, transforms=2, hidden=()),
    "maf-context": lambda: MAF(3, context=2, transforms=2, hidden=(8,)),
    "maf-context-no-hidden": lambda: MAF(3, context=2, transforms=2, hidden=()),
    "maf-tanh": lambda: MAF(3, transforms=2, hidden=(8,), activation=nn.Tanh),
    "maf-silu": lambda: MAF(3, transforms=2, hidden=(8,), activation=nn.SiLU),
    "maf-leaky": lambda: MAF(3, transforms=2, hidden=(8,), activation=nn.LeakyReLU),
    "maf-positive": lambda: MAF(3, transforms=2, hidden=(8,), support=constraints.positive),
    "realnvp": lambda: RealNVP(3, transforms=2, hidden=(8,)),
    "realnvp-context": lambda: RealNVP(3, context=2, transforms=2, hidden=(8,)),
    "nice": lambda: NICE(3, transforms=2, hidden=(8,)),
    "nsf": lambda: NSF(3, transforms=2, hidden=(8,), bins=4),
    "iaf": lambda: IAF(3, transforms=2, hidden=(8,)),
}
HAND_WRITTEN = {"nsf": 0, "iaf": 0}


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_pass_matches_the_flows_log_prob_and_gradient(name, dtype):
    torch.manual_seed(1)
    module = RECIPES[name]().to(dtype)
    with torch.no_grad():  # a trained-looking flow: weights away from their initialization
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    c = torch.randn(4, 2, dtype=dtype) if module.context else None
    prior = Prior(module, c)
    assert prior.fused and prior.log_prob_kind == "exact"
    assert prior._fused.hand_written == HAND_WRITTEN.get(name, 2)
    d = module(c)
    x = d.sample((5,)).clone()
    want, g_want = _grad_log_prob(d.log_prob, x)
    got, g_got = _grad_log_prob(prior.log_prob, x)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert got.shape == want.shape == (5,) + prior.batch_shape
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    torch.testing.assert_close(g_got, g_want, rtol=tol, atol=tol)
    # one value broadcast against a context batch: the gradient sums over the batch
    if c is not None:
        want, g_want = _grad_log_prob(d.log_prob, x[0, 0])
        got, g_got = _grad_log_prob(prior.log_prob, x[0, 0])
        torch.testing.assert_close(got, want, rtol=tol, atol=tol)
        torch.testing.assert_close(g_got, g_want, rtol=tol, atol=tol)
    without = Prior(module, c, fused=False)
    assert not without.fused
    torch.testing.assert_close(without.log_prob(x), want if c is None else d.log_prob(x), rtol=tol, atol=tol)


def test_fused_pass_of_a_positive_flow_scores_outside_values_minus_inf():
    prior = Prior(MAF(2, transforms=2, hidden=(8,), support=constraints.positive), validate_args=False)
    lp = prior.log_prob(torch.tensor([[1.0, 2.0], [-1.0, 2.0]]))
    assert lp[0].isfinite() and lp[1] == -torch.inf


def test_trace_log_prob_equals_the_fitted_modules(fitted):
    prior = Prior(fitted)

    def model(y):
        z = pyro.sample("z", prior)
        with pyro.plate("obs", len(y)):
            pyro.sample("y", dist.Normal(z, 1.0).to_event(1), obs=y)

    y = torch.randn(3, 2)
    trace = poutine.trace(model).get_trace(y)
    trace.compute_log_prob()
    z = trace.nodes["z"]["value"]
    torch.testing.assert_close(trace.nodes["z"]["log_prob"], fitted().log_prob(z.clone()), rtol=1e-5, atol=1e-5)
    # the fit learned the Gaussian: the prior's density is close to the true one near the mean
    x = dist.MultivariateNormal(MEAN, COV).sample((500,))
    gap = (prior.log_prob(x) - dist.MultivariateNormal(MEAN, COV).log_prob(x)).abs().median()
    assert gap < 0.15
    assert "prior" not in dict(pyro.get_param_store().named_parameters())


def test_svi_does_not_train_the_prior(fitted):
    before = {k: v.clone() for k, v in fitted.state_dict().items()}
    prior = Prior(fitted)
    assert not prior.module.training and not any(p.requires_grad for p in prior.module.parameters())
    assert all(p.requires_grad for p in fitted.parameters())  # the user's module is left alone (a copy)
    A = torch.tensor([[1.0, 0.5], [0.0, 1.0], [1.0, -1.0]])

    def model(y):
        z = pyro.sample("z", prior)
        pyro.sample("y", dist.Normal(A @ z, 0.5).to_event(1), obs=y)

    pyro.clear_param_store()
    guide = AutoNormal(model)
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    y = torch.tensor([1.0, 0.0, 1.0])
    for _ in range(20):
        svi.step(y)
    names = list(pyro.get_param_store().keys())
    assert names and all(n.startswith("AutoNormal") for n in names)
    for k, v in fitted.state_dict().items():
        torch.testing.assert_close(v, before[k])
    for k, v in prior.module.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # frozen in place on request
    other = MAF(2, transforms=1, hidden=(4,))
    frozen = Prior(other, copy=False)
    assert frozen.module is other and not any(p.requires_grad for p in other.parameters())


def test_nuts_recovers_the_conjugate_posterior(fitted):
    prior = Prior(fitted)
    A = torch.tensor([[1.0, 0.0], [0.5, 1.0], [1.0, -1.0]])
    sigma = 0.7
    y = torch.tensor([1.2, 0.1, 1.5])

    def model(y):
        z = pyro.sample("z", prior)
        pyro.sample("y", dist.Normal(A @ z, sigma).to_event(1), obs=y)

    pyro.set_rng_seed(0)
    mcmc = MCMC(NUTS(model), num_samples=300, warmup_steps=150, disable_progbar=True)
    mcmc.run(y)
    z = mcmc.get_samples()["z"]
    post_cov = torch.linalg.inv(torch.linalg.inv(COV) + A.T @ A / sigma**2)
    post_mean = post_cov @ (torch.linalg.solve(COV, MEAN) + A.T @ y / sigma**2)
    sd = post_cov.diagonal().sqrt()
    assert ((z.mean(0) - post_mean).abs() / sd).max() < 0.4
    assert ((z.std(0) / sd - 1).abs()).max() < 0.35
    assert len(mcmc.diagnostics()["divergences"]["chain 0"]) == 0


def test_plates_expand_to_event_mask_and_predictive():
    prior = Prior(MAF(2, transforms=2, hidden=(8,)))

    def plated():
        with pyro.plate("groups", 4, dim=-2), pyro.plate("items", 3, dim=-1):
            a = pyro.sample("a", prior)
        b = pyro.sample("b", prior.expand([5]).to_event(1))
        with pyro.plate("masked", 3):
            c = pyro.sample("c", prior.mask(torch.tensor([True, False, True])))
        return a, b, c

    trace = poutine.trace(plated).get_trace()
    trace.compute_log_prob()
    a = trace.nodes["a"]
    assert a["value"].shape == (4, 3, 2) and a["log_prob"].shape == (4, 3)
    torch.testing.assert_close(a["log_prob"], prior.distribution.log_prob(a["value"].clone()), rtol=1e-5, atol=1e-5)
    assert trace.nodes["b"]["value"].shape == (5, 2) and trace.nodes["b"]["log_prob"].shape == ()
    assert trace.nodes["c"]["log_prob"][1] == 0
    expanded = prior.expand([3])
    assert isinstance(expanded, Prior) and expanded.batch_shape == (3,) and expanded.log_prob_kind == "exact"
    assert expanded.log_prob(torch.zeros(2)).shape == (3,)
    assert expanded.sample().shape == (3, 2)

    def model():
        return pyro.sample("z", prior)

    draws = Predictive(model, num_samples=7)()
    assert draws["z"].shape == (7, 2)


def test_other_families_state_their_kinds():
    torch.manual_seed(0)
    x = torch.randn(3, 2)
    made = Prior(MADE(2, Normal(), hidden=(8,)))
    assert made.log_prob_kind == "exact" and made.deterministic and not made.fused
    torch.testing.assert_close(made.log_prob(x), made.distribution.log_prob(x))

    diffusion = DiffusionModel(2, hidden=(8,))
    exact = Prior(diffusion, method="rk4", ode_steps=4)
    assert exact.log_prob_kind == "exact" and exact.deterministic
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(exact.log_prob(xg).sum(), xg)
    assert g.shape == x.shape and bool(g.isfinite().all())
    hutchinson = Prior(diffusion, divergence="hutchinson", method="rk4", ode_steps=4)
    assert hutchinson.log_prob_kind == "estimate" and hutchinson.stochastic and not hutchinson.deterministic
    assert Prior(diffusion, divergence="hutchinson", method="rk4", ode_steps=4, fixed_noise=0).deterministic

    vae = VAE(2, latent=2, family="normal", hidden=(8,))
    estimate = Prior(vae, particles=3)
    assert estimate.log_prob_kind == "estimate" and estimate.stochastic and not estimate.deterministic
    bound = Prior(vae, kind="bound")
    assert bound.log_prob_kind == "bound" and not bound.deterministic
    assert bool(estimate.log_prob(x).isfinite().all()) and bool(bound.log_prob(x).isfinite().all())
    assert "estimate" in repr(estimate)


def test_fixed_noise_makes_a_vae_prior_deterministic_and_leaves_the_rng_alone():
    vae = VAE(2, latent=2, family="normal", hidden=(8,))
    x = torch.randn(4, 2)
    fresh = Prior(vae, particles=2)
    assert not torch.equal(fresh.log_prob(x), fresh.log_prob(x))
    fixed = Prior(vae, particles=2, fixed_noise=3)
    state = torch.get_rng_state()
    first = fixed.log_prob(x)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, fixed.log_prob(x))
    assert torch.equal(first, Prior(vae, particles=2, fixed_noise=3).log_prob(x))


def test_nuts_refuses_a_stochastic_prior_unless_the_noise_is_fixed():
    vae = VAE(2, latent=2, family="normal", hidden=(8,))

    def model(prior):
        z = pyro.sample("z", prior)
        pyro.sample("y", dist.Normal(z, 1.0).to_event(1), obs=torch.zeros(2))

    with pytest.raises(StochasticLogProb, match="fixed_noise=<seed>.*common random numbers"):
        MCMC(NUTS(model), num_samples=2, warmup_steps=2, disable_progbar=True).run(Prior(vae, particles=2))
    mcmc = MCMC(NUTS(model, max_tree_depth=3), num_samples=3, warmup_steps=3, disable_progbar=True)
    mcmc.run(Prior(vae, particles=2, fixed_noise=0))
    assert mcmc.get_samples()["z"].shape == (3, 2)
    # outside MCMC a stochastic estimate is fine (SVI, scoring)
    Prior(vae, particles=2).log_prob(torch.zeros(2))


def test_energy_needs_kind_unnormalized_and_gan_is_refused():
    energy = Energy(2, hidden=(8,))
    with pytest.raises(ValueError, match="kind='unnormalized'.*constant cancels"):
        Prior(energy)
    prior = Prior(energy, kind="unnormalized")
    assert prior.log_prob_kind == "unnormalized"
    x = torch.randn(3, 2)
    torch.testing.assert_close(prior.log_prob(x), -prior.distribution.energy_of(x))
    with pytest.raises(ValueError, match="must not depend on other latent"):
        Prior(Energy(2, context=1, hidden=(8,)), torch.zeros(1, requires_grad=True), kind="unnormalized")
    with pytest.raises(TypeError, match="no log-density.*pyro.deterministic"):
        Prior(GAN(2))


def test_support_mismatch_names_both():
    real = MAF(2, transforms=1, hidden=(4,))
    with pytest.raises(ValueError, match=r"needs support GreaterThan\(lower_bound=0.0\).*support is .*Real"):
        Prior(real, support=constraints.positive)
    positive = Prior(MAF(2, transforms=1, hidden=(4,), support=constraints.positive), support=constraints.positive)
    assert bool((positive.sample((10,)) > 0).all())
    # a positive prior where the model takes any real value is fine
    trace = poutine.trace(lambda: pyro.sample("z", positive)).get_trace()
    assert bool((trace.nodes["z"]["value"] > 0).all())
    with pytest.raises(TypeError, match="torch constraint"):
        Prior(real, support="positive")


def test_bad_input():
    prior = Prior(MAF(2, transforms=1, hidden=(4,)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\).*got shape \(3,\)"):
        prior.log_prob(torch.zeros(3))

    def model():
        pyro.sample("z", prior, obs=torch.zeros(4, 3))

    with pytest.raises(ValueError, match=r"event shape \(2,\)"):
        poutine.trace(model).get_trace().log_prob_sum()
    with pytest.raises(TypeError, match="dtype torch.float64 but the model is torch.float32"):
        prior.log_prob(torch.zeros(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="an instance"):
        Prior(MAF)
    with pytest.raises(TypeError, match="gendist model"):
        Prior(object())
    with pytest.raises(ValueError, match="`particles`"):
        Prior(MAF(2), particles=4)
    with pytest.raises(ValueError, match="'exact'; kind='bound' is for a VAE"):
        Prior(MAF(2), kind="bound")
    with pytest.raises(ValueError, match="`kind` must be"):
        Prior(MAF(2), kind="approximate")
    with pytest.raises(ValueError, match="built Flow"):
        Prior(MAF(2)(), torch.zeros(3))
    with pytest.raises(ValueError, match="`compile` is for flows"):
        Prior(MADE(2, Normal(), hidden=(4,)), compile="eager")
    with pytest.raises(ValueError, match="fixed_noise"):
        Prior(MAF(2), fixed_noise=-1)


def test_prior_pickles():
    prior = Prior(MAF(3, transforms=2, hidden=(8,), activation=nn.LeakyReLU))
    again = pickle.loads(pickle.dumps(prior))
    x = torch.randn(4, 3)
    assert again.fused
    torch.testing.assert_close(again.log_prob(x), prior.log_prob(x))


def test_a_built_distribution_is_used_as_given():
    module = MAF(2, transforms=1, hidden=(4,))
    d = module()
    prior = Prior(d)
    assert prior.module is None and prior.distribution is d and prior.fused
    x = torch.randn(3, 2)
    torch.testing.assert_close(prior.log_prob(x), d.log_prob(x))


def test_compile_option_matches():
    module = NSF(2, transforms=1, hidden=(4,), bins=3)
    prior = Prior(module, compile="eager")
    assert not prior.fused
    x = torch.randn(3, 2)
    want, g_want = _grad_log_prob(module().log_prob, x)
    got, g_got = _grad_log_prob(prior.log_prob, x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g_got, g_want)


def test_compile_flow_refuses_what_it_cannot_read():
    assert compile_flow(dist.Normal(0.0, 1.0)) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_prior_on_cuda_in_float64():
    prior = Prior(MAF(3, context=2, transforms=2, hidden=(8,)).double().cuda(),
                  torch.randn(4, 2, dtype=torch.float64, device="cuda"))
    assert prior.fused
    x = prior.sample((2,)).clone().requires_grad_(True)
    lp = prior.log_prob(x)
    (g,) = torch.autograd.grad(lp.sum(), x)
    assert lp.is_cuda and g.is_cuda and lp.dtype == torch.float64
    want, g_want = _grad_log_prob(prior.distribution.log_prob, x)
    torch.testing.assert_close(lp.detach(), want)
    torch.testing.assert_close(g, g_want)


def test_benchmark_runs_and_resumes(tmp_path):
    spec = importlib.util.spec_from_file_location("prior_nuts", Path(__file__).parents[1] / "benchmarks/prior_nuts.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["prior_nuts"] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    argv = ["--dims", "2", "--flows", "maf", "--transforms", "1", "--hidden", "4", "--fit-samples", "200",
            "--fit-epochs", "1", "--evals", "2", "--repeats", "1", "--priors", "gaussian", "before", "prior",
            "--nuts-priors", "gaussian", "prior", "--samples", "10", "--warmup", "5", "--nuts-repeats", "1",
            "--out", str(out), "--cache", str(tmp_path / "cache")]
    threads = torch.get_num_threads()
    try:
        results = bench.main(argv)
    finally:
        torch.set_num_threads(threads)
    (entry,) = results.values()
    assert set(entry["ratio_to_gaussian"]) == {"gaussian", "before", "prior"} and entry["fused"]
    assert entry["nuts"]["prior"]["model_executions"] > 0 and "mean_error_in_sd" in entry["nuts"]["prior"]
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    try:
        assert bench.main(argv) == json.loads(out.read_text())  # resumed: the entry is not recomputed
    finally:
        torch.set_num_threads(threads)
