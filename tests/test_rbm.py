"""Restricted Boltzmann machines (gendist.ebm.rbm): exact log Z, free energies, centering, AIS, Gibbs, exact ML."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare
from torch.distributions import constraints

from gendist.config import config, from_config
from gendist.distributions import EnergyBased
from gendist.distributions.energy import ENUMERATION_LIMIT
from gendist.ebm import RBM, RBMEnergy, ais_schedule
from gendist.inference import fit
from gendist.samplers.mcmc import MCMC_SAMPLERS

D = torch.float64
GIBBS = "gibbs" in MCMC_SAMPLERS  # sample_gibbs is added to the samplers by another change
SAMPLER = "gibbs" if GIBBS else "mala"


def _binary(n: int) -> torch.Tensor:
    k = torch.arange(2**n)
    return ((k[:, None] >> torch.arange(n - 1, -1, -1)) & 1).to(D)


def _energy(V: int, H: int, seed: int, scale: float, centered: bool, kind: str = "bernoulli") -> RBMEnergy:
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(V, H, generator=g, dtype=D) * scale
    b, c = torch.randn(V, generator=g, dtype=D), torch.randn(H, generator=g, dtype=D)
    sigma = torch.rand(V, generator=g, dtype=D) + 0.5 if kind == "gaussian" else None
    mu = torch.rand(V, generator=g, dtype=D) if centered else None
    lam = torch.rand(H, generator=g, dtype=D) if centered else None
    return RBMEnergy(W, b, c, kind, sigma, mu, lam)


def _dist(energy: RBMEnergy, exact: bool = True) -> EnergyBased:
    support = constraints.real if energy.gaussian else constraints.boolean
    log_z = energy.log_partition("exact") if exact else None
    return EnergyBased(energy, (energy.visible_size,), support, log_z=log_z, sampler=SAMPLER, dtype=D)


sizes = st.integers(1, 6)


@given(V=sizes, H=sizes, seed=st.integers(0, 2**16), scale=st.floats(0.0, 3.0), centered=st.booleans())
def test_bernoulli_exact(V: int, H: int, seed: int, scale: float, centered: bool) -> None:
    e = _energy(V, H, seed, scale, centered)
    d = _dist(e)
    states = d.enumerate_support()
    assert d.log_prob_kind == "exact"
    assert abs(d.log_prob(states).exp().sum().item() - 1) < 1e-6
    # log Z by hidden enumeration, by visible enumeration, and by the generic enumeration of EnergyBased
    by_hidden = e.log_partition("exact", layer="hidden").value
    by_visible = e.log_partition("exact", layer="visible").value
    generic = torch.logsumexp(-e(states), 0)
    torch.testing.assert_close(by_hidden, by_visible)
    torch.testing.assert_close(by_hidden, generic)
    torch.testing.assert_close(by_hidden, torch.logsumexp(-e.hidden_free_energy(_binary(H)), 0))
    # the free energy is -log sum_h exp(-E(v, h)), by brute force over every (v, h)
    hs = _binary(H)
    joint = e.joint_energy(states[:, None, :], hs[None, :, :])
    torch.testing.assert_close(e.free_energy(states), -torch.logsumexp(-joint, 1))
    torch.testing.assert_close(e.hidden_free_energy(hs), -torch.logsumexp(-joint, 0))
    # centering is a reparametrization: the plain RBM with absorbed biases is the same distribution
    p = _dist(e.plain())
    torch.testing.assert_close(p.log_prob(states), d.log_prob(states))


@pytest.mark.parametrize("V", [1, 2])
@pytest.mark.parametrize("centered", [False, True])
def test_gaussian_exact_vs_quadrature(V: int, centered: bool) -> None:
    e = _energy(V, 3, 7 + V, 0.8, centered, "gaussian")
    d = _dist(e, exact=False)
    exact = d.log_partition("exact")
    quad = d.log_partition("quadrature", bound=14.0, points=1201 if V == 1 else 301)
    assert exact.method == "exact" and quad.method == "quadrature"
    torch.testing.assert_close(exact.value, quad.value, atol=1e-5, rtol=0)
    # centering is a reparametrization for Gaussian units too
    x = torch.randn(50, V, dtype=D) * 2
    torch.testing.assert_close(_dist(e.plain()).log_prob(x), _dist(e).log_prob(x))


def test_gaussian_free_energies_by_brute_force() -> None:
    e = _energy(1, 3, 3, 1.2, True, "gaussian")
    hs = _binary(3)
    v = torch.linspace(-20, 20, 8001, dtype=D)[:, None]
    joint = e.joint_energy(v[:, None, :], hs[None])  # (points, 2^H)
    torch.testing.assert_close(e.free_energy(v), -torch.logsumexp(-joint, 1))
    dv = (v[1] - v[0]).item()  # the integral over v of exp(-E(v, h)), a Riemann sum on a wide grid
    torch.testing.assert_close(e.hidden_free_energy(hs), -(torch.logsumexp(-joint, 0) + math.log(dv)),
                               atol=1e-8, rtol=0)


def _exact_draws(e: RBMEnergy, n: int, g: torch.Generator, beta: float = 1.0,
                 joint: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draws of exp(-beta F) (or, with ``joint``, of the tempered joint's marginal exp(-F_beta)) by enumeration."""
    states = _binary(e.visible_size)
    probs = torch.softmax(-e.free_energy(states, beta) if joint else -beta * e.free_energy(states), 0)
    return states[torch.multinomial(probs, n, replacement=True, generator=g)], probs


def _chi_square(y: torch.Tensor, probs: torch.Tensor) -> float:
    index = (y * 2 ** torch.arange(y.shape[-1] - 1, -1, -1, dtype=D)).sum(-1).long()
    counts = torch.bincount(index, minlength=len(probs)).double()
    return chisquare(counts.numpy(), (probs * len(y)).numpy()).pvalue


def test_ais_brackets_exact() -> None:
    e = _energy(10, 8, 1, 0.7, False)
    exact = e.log_partition("exact").value.item()
    g = torch.Generator().manual_seed(0)
    fwd = e.log_partition("ais", chains=200, betas=300, generator=g)
    assert fwd.method == "ais" and fwd.kind == "estimate"
    assert abs(fwd.value.item() - exact) < 3 * fwd.stderr.item() + 1e-3, (fwd, exact)
    x, _ = _exact_draws(e, 200, g)
    rev = e.log_partition("reverse_ais", x=x, betas=300, generator=g)
    assert rev.method == "reverse_ais"
    assert abs(rev.value.item() - exact) < 3 * rev.stderr.item() + 1e-3, (rev, exact)
    # a data base rate and the linear schedule work too
    lin = e.log_partition("ais", chains=200, betas=300, schedule="linear", base_rate=x.mean(0), generator=g)
    assert abs(lin.value.item() - exact) < 3 * lin.stderr.item() + 1e-3, (lin, exact)


def test_ais_bracketing() -> None:
    # strong weights and a coarse schedule: forward AIS is a stochastic lower bound, reverse AIS from exact draws
    # a stochastic upper bound (on 10 seeds of this model, forward <= reverse held 10 times)
    e = _energy(10, 8, 1, 2.5, False)
    exact = e.log_partition("exact").value.item()
    g = torch.Generator().manual_seed(0)
    fwd = e.log_partition("ais", chains=200, betas=30, generator=g)
    x, _ = _exact_draws(e, 200, g)
    rev = e.log_partition("reverse_ais", x=x, betas=30, generator=g)
    assert fwd.value.item() <= rev.value.item(), (fwd, rev)
    assert rev.value.item() >= exact - 3 * rev.stderr.item(), (rev, exact)
    assert fwd.value.item() <= exact + 3 * fwd.stderr.item(), (fwd, exact)


def test_ais_gaussian() -> None:
    e = _energy(3, 4, 2, 0.8, True, "gaussian")
    exact = e.log_partition("exact").value.item()
    out = e.log_partition("ais", chains=200, betas=200, generator=torch.Generator().manual_seed(1))
    assert abs(out.value.item() - exact) < 3 * out.stderr.item() + 1e-3, (out, exact)


def test_too_many_units() -> None:
    n = ENUMERATION_LIMIT + 1
    e = RBMEnergy(torch.zeros(n + 2, n), torch.zeros(n + 2), torch.zeros(n))
    with pytest.raises(ValueError, match=rf"2\^{n} .*method='ais'"):
        e.log_partition("exact")
    with pytest.raises(ValueError, match="Gaussian visible units cannot be enumerated"):
        RBMEnergy(torch.zeros(2, 2), torch.zeros(2), torch.zeros(2), "gaussian").log_partition("exact",
                                                                                               layer="visible")


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.2])
def test_gibbs_leaves_the_distribution_invariant(beta: float) -> None:
    e = _energy(3, 2, 5, 1.5, True)
    g = torch.Generator().manual_seed(0)
    # gibbs (what sampler="gibbs" and parallel tempering call) leaves exp(-beta F) invariant
    x, probs = _exact_draws(e, 20000, g, beta)
    y = e.gibbs(x, None, g, beta)
    assert _chi_square(y, probs) > 1e-3
    assert (x != y).any(-1).float().mean() > 0.2
    # a per-chain tensor beta does the same
    y = e.gibbs(x, None, g, torch.full((len(x),), beta, dtype=D))
    assert _chi_square(y, probs) > 1e-3
    # the plain tempered-joint sweep leaves the tempered joint's marginal exp(-F_beta) invariant
    x, probs = _exact_draws(e, 20000, g, beta, joint=True)
    assert _chi_square(e.sweep(x, g, beta), probs) > 1e-3


def test_parallel_tempering_with_gibbs() -> None:
    e = _energy(4, 3, 8, 2.5, False)
    d = _dist(e)
    g = torch.Generator().manual_seed(0)
    out = d.mcmc((5000,), sampler="parallel_tempering", steps=15, kernel="gibbs", betas=[0.3, 0.6, 1.0],
                 generator=g)
    probs = d.log_prob(d.enumerate_support()).exp()
    assert _chi_square(out.x, probs) > 1e-3
    assert bool((out.info["swap_rates"] > 0.3).all())


def test_gibbs_gaussian_moments() -> None:
    e = _energy(1, 3, 4, 1.0, False, "gaussian")
    v = torch.linspace(-15, 15, 3001, dtype=D)[:, None]
    w = torch.softmax(-e.free_energy(v), 0)
    mean, second = (w * v[:, 0]).sum(), (w * v[:, 0] ** 2).sum()
    g = torch.Generator().manual_seed(0)
    x = e.init((4000, 1), g)
    for _ in range(30):
        x = e.gibbs(x, None, g)
    se = (second - mean**2).sqrt() / math.sqrt(len(x))
    assert abs(x.mean() - mean) < 4 * se
    assert abs((x**2).mean() - second) < 0.1 * second


def test_ais_schedule() -> None:
    b = ais_schedule(1000)
    assert len(b) == 1000 and b[0] == 0 and b[-1] == 1 and bool((b[1:] > b[:-1]).all())
    assert int((b < 0.5).sum()) == 34 and int((b >= 0.9).sum()) > 600
    torch.testing.assert_close(ais_schedule(5, "linear"), torch.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="schedule"):
        ais_schedule(10, "cosine")


def test_bad_binary_input() -> None:
    rbm = RBM(3, 2, sampler=SAMPLER, log_partition="exact").double()
    bad = torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.0, 1.0]], dtype=D)
    lp = rbm(validate_args=False).log_prob(bad)
    assert lp[0].item() == -math.inf and math.isfinite(lp[1].item())
    with pytest.raises(ValueError, match=r"0\.5"):
        rbm(validate_args=True).log_prob(bad)


def test_module_distribution() -> None:
    rbm = RBM(4, 3, centering=True, sampler=SAMPLER, init_std=0.5).double()
    d = rbm()
    assert d.log_prob_kind == "unnormalized" and d.binary and d.event_shape == (4,)
    exact = rbm(log_partition="exact")
    assert exact.log_prob_kind == "exact"
    est = rbm(log_partition="ais", partition_options={"chains": 50, "betas": 100,
                                                      "generator": torch.Generator().manual_seed(0)})
    assert est.log_prob_kind == "estimate" and est.log_partition_stderr is not None
    assert abs(est.log_partition_value - exact.log_partition_value) < 3 * est.log_partition_stderr + 1e-3
    g = rbm(sampler=SAMPLER, log_partition="exact")
    torch.testing.assert_close(g.log_partition_value, exact.log_partition_value)
    v = d.enumerate_support()
    torch.testing.assert_close(rbm.free_energy(v), d.energy_of(v))
    assert rbm.hidden_probs(v).shape == (16, 3) and rbm.visible_probs(rbm.sample_hidden(v)).shape == (16, 4)
    assert set(rbm.gibbs(v, steps=3, generator=torch.Generator().manual_seed(0)).unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="unconditional"):
        rbm(torch.zeros(1, dtype=D))
    with pytest.raises(ValueError, match="log_partition"):
        RBM(4, 3, log_partition="quadrature")
    # the recipe's config round-trips
    again = from_config(config(rbm))
    assert isinstance(again, RBM) and again.centering and again.hidden == 3


@pytest.mark.skipif(not GIBBS, reason="sample_gibbs is not in MCMC_SAMPLERS yet")
def test_sample_by_gibbs() -> None:
    rbm = RBM(3, 2, init_std=1.0, steps=20).double()
    d = rbm(log_partition="exact")
    out = d.mcmc((4000,), generator=torch.Generator().manual_seed(0))
    x = out.x
    assert x.shape == (4000, 3) and set(x.unique().tolist()) <= {0.0, 1.0}
    probs = d.log_prob(d.enumerate_support()).exp().detach()
    assert _chi_square(x, probs) > 1e-3


def test_update_offsets_keeps_the_distribution() -> None:
    for kind in ("bernoulli", "gaussian"):
        rbm = RBM(4, 3, kind, centering=True, init_std=0.7, sampler=SAMPLER, log_partition="exact").double()
        with torch.no_grad():
            rbm.visible_bias.normal_()
            rbm.hidden_bias.normal_()
        data = (torch.rand(64, 4, dtype=D) < 0.3).to(D) if kind == "bernoulli" else torch.randn(64, 4, dtype=D)
        x = data[:10]
        before = rbm().log_prob(x)
        mu, lam = rbm.visible_offset.clone(), rbm.hidden_offset.clone()
        rbm.update_offsets(data, decay=0.5)
        assert not torch.allclose(mu, rbm.visible_offset) and not torch.allclose(lam, rbm.hidden_offset)
        torch.testing.assert_close(rbm().log_prob(x), before)
    with pytest.raises(ValueError, match="centering=False"):
        RBM(2, 2).update_offsets(torch.zeros(1, 2))


def test_init_from_data() -> None:
    data = (torch.rand(500, 5, dtype=D) < torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=D)).to(D)
    for centering in (False, True):
        rbm = RBM(5, 3, centering=centering, init_std=0.0, sampler=SAMPLER).double()
        rbm.init_from_data(data)
        torch.testing.assert_close(rbm.energy().init((200000, 5), torch.Generator().manual_seed(0)).mean(0),
                                   data.mean(0), atol=5e-3, rtol=0)
        rbm = RBM(5, 3, centering=centering, init_std=0.0, sampler=SAMPLER, log_partition="exact").double()
        rbm.init_from_data(data)
        d = rbm()
        marginals = (d.log_prob(d.enumerate_support()).exp()[:, None] * d.enumerate_support()).sum(0)
        torch.testing.assert_close(marginals, data.mean(0).clamp(1e-3, 1 - 1e-3), atol=1e-9, rtol=0)


def test_exact_maximum_likelihood() -> None:
    g = torch.Generator().manual_seed(0)
    proto = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=D)
    data = proto[torch.randint(0, 2, (256,), generator=g)]
    data = torch.where(torch.rand(data.shape, generator=g, dtype=D) < 0.05, 1 - data, data)
    torch.manual_seed(0)
    rbm = RBM(6, 4, log_partition="exact", init_std=0.1, sampler=SAMPLER).double()
    with torch.no_grad():
        start = -rbm().log_prob(data).mean().item()
    fit(rbm, data, epochs=20, batch_size=64, lr=0.05, progress=False)
    with torch.no_grad():
        end = -rbm().log_prob(data).mean().item()
    assert end < start - 1.0, (start, end)
    assert end < 6 * math.log(2) - 1.5
