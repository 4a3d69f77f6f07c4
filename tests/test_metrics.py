"""Tests of gendist.metrics: bits/dim closed forms and the two-sample tests' calibration and power."""

import math

import pytest
import torch
from torch.distributions import Independent, Uniform

from gendist.metrics import (
    TestResult,
    bits_per_dim,
    classifier_two_sample_test,
    energy_distance,
    mmd,
    nll,
    sliced_wasserstein,
)


def _gaussians(shift: float = 0.0, scale: float = 1.0, n: int = 300, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = scale * torch.randn(n, dim, generator=g) + shift
    return x, y


# ---------------------------------------------------------------- likelihood


def test_nll_is_mean_negative_log_prob():
    d = torch.distributions.Normal(0.0, 1.0)
    x = torch.randn(1000, dtype=torch.float64)
    assert nll(d.log_prob(x)) == pytest.approx(-d.log_prob(x).mean().item())
    assert nll(torch.tensor([-math.inf, 0.0])) == math.inf


@pytest.mark.parametrize("levels", [2, 17, 256])
@pytest.mark.parametrize("dim", [1, 64])
def test_bits_per_dim_uniform_closed_form(levels, dim):
    # uniform density over [0, L)^D, bin width 1: NLL = D log L nats, so exactly log2(L) bits/dim
    x = torch.randint(0, levels, (500, dim)).double() + torch.rand(500, dim, dtype=torch.float64)
    u = Independent(Uniform(torch.zeros(dim).double(), float(levels)), 1)
    assert bits_per_dim(nll(u.log_prob(x)), dim) == pytest.approx(math.log2(levels), rel=1e-12)
    # the same data rescaled to [0, 1): density 1, NLL 0; the correction restores log2(L)
    v = Independent(Uniform(torch.zeros(dim).double(), 1.0), 1)
    nll01 = nll(v.log_prob(x / levels))
    assert nll01 == 0.0
    assert bits_per_dim(nll01, dim, levels=levels) == pytest.approx(math.log2(levels), rel=1e-12)
    assert bits_per_dim(nll01, dim, scale=1 / levels) == pytest.approx(math.log2(levels), rel=1e-12)
    # rescaled to [-1, 1): density 2^-D, NLL D log 2, bin width 2 / L
    w = Independent(Uniform(-torch.ones(dim).double(), 1.0), 1)
    nll11 = nll(w.log_prob(2 * x / levels - 1))
    assert bits_per_dim(nll11, dim, levels=levels, scale=2 / levels) == pytest.approx(math.log2(levels), rel=1e-12)


def test_bits_per_dim_invariant_to_rescaling_a_gaussian():
    # a Gaussian fitted in raw units and the same Gaussian in [0, 1) units give the same bits/dim
    dim, levels = 64, 17
    x = torch.randint(0, levels, (300, dim)).double() + torch.rand(300, dim, dtype=torch.float64)
    mu, sd = x.mean(0), x.std(0)
    raw = torch.distributions.Normal(mu, sd).log_prob(x).sum(-1)
    unit = torch.distributions.Normal(mu / levels, sd / levels).log_prob(x / levels).sum(-1)
    assert bits_per_dim(nll(unit), dim, levels=levels) == pytest.approx(bits_per_dim(nll(raw), dim), rel=1e-10)
    assert bits_per_dim(torch.tensor(nll(raw)), dim) == pytest.approx(nll(raw) / (dim * math.log(2)))


def test_likelihood_bad_inputs():
    with pytest.raises(ValueError, match="log_prob"):
        nll(torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="log_prob"):
        nll(torch.tensor([]))
    with pytest.raises(ValueError, match="dim"):
        bits_per_dim(1.0, 0)
    with pytest.raises(ValueError, match="levels"):
        bits_per_dim(1.0, 4, levels=1)
    with pytest.raises(ValueError, match="scale"):
        bits_per_dim(1.0, 4, scale=0.0)
    with pytest.raises(ValueError, match="nll_nats"):
        bits_per_dim(math.nan, 4)
    with pytest.raises(ValueError, match="nll_nats"):
        bits_per_dim(torch.ones(3), 4)


# ---------------------------------------------------------------- distances with permutation tests


@pytest.mark.parametrize("test", [mmd, energy_distance])
def test_permutation_tests_calibrated_and_powerful(test):
    same = test(*_gaussians())
    assert isinstance(same, TestResult) and same.floor is None
    assert abs(same.statistic) < 0.05
    assert same.p_value > 0.05
    shifted = test(*_gaussians(shift=0.5))
    assert shifted.statistic > 10 * abs(same.statistic)
    assert shifted.p_value < 0.01
    scaled = test(*_gaussians(scale=1.5))
    assert scaled.p_value < 0.01


@pytest.mark.parametrize("test", [mmd, energy_distance])
def test_permutation_tests_seeded_and_flexible(test):
    x, y = _gaussians(n=60, dim=3)
    a = test(x, y, generator=torch.Generator().manual_seed(1))
    b = test(x, y, generator=torch.Generator().manual_seed(1))
    assert a == b
    assert test(x, y) == test(x, y)  # default generator is seeded
    # dtype, extra dimensions and unequal sizes
    c = test(x.double().reshape(60, 3, 1), y[:40].float().reshape(40, 1, 3), permutations=0)
    assert c.p_value is None
    assert c.statistic == pytest.approx(test(x, y[:40], permutations=0).statistic, rel=1e-5)
    p = test(x, y, permutations=9).p_value
    assert p in {k / 10 for k in range(1, 11)}


def test_mmd_bandwidths():
    x, y = _gaussians(shift=0.5, n=100)
    r = mmd(x, y, bandwidths=[1.0, 4.0], permutations=0)
    assert r.statistic > 0
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, y, bandwidths=[0.0])


def test_energy_distance_closed_form_in_one_dimension():
    # population energy distance of N(0,1) vs N(c,1): 2E|Z + c| - 2E|Z|, Z ~ N(0, 2)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2500, generator=g), torch.randn(2500, generator=g) + 1.0
    s = math.sqrt(2)
    e_abs = s * math.sqrt(2 / math.pi) * math.exp(-1 / (2 * s * s)) + 1.0 * math.erf(1 / (s * math.sqrt(2)))
    expected = 2 * e_abs - 2 * s * math.sqrt(2 / math.pi)
    assert energy_distance(x, y, permutations=0).statistic == pytest.approx(expected, abs=0.03)


def test_sliced_wasserstein():
    same = sliced_wasserstein(*_gaussians())
    assert same.p_value is None and same.floor is None
    shifted = sliced_wasserstein(*_gaussians(shift=0.5))
    # a shift c (1, ..., 1) projects to a shift of c <theta, 1>, with E<theta, 1>^2 = 1: SW_2 ~ c
    assert shifted.statistic == pytest.approx(0.5, abs=0.15)
    assert shifted.statistic > 2 * same.statistic
    assert sliced_wasserstein(*_gaussians(scale=2.0)).statistic > 2 * same.statistic
    x = torch.randn(200, 5)
    assert sliced_wasserstein(x, x).statistic == 0.0
    assert sliced_wasserstein(x, x[torch.randperm(200)], p=1).statistic == pytest.approx(0.0, abs=1e-12)


def test_sliced_wasserstein_unequal_sizes_exact():
    # 1-D: W_1 between {0, 1} and {0, 0.5, 1}: quantiles differ by 0.5 on (1/3, 2/3), so 1/6
    x, y = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.5, 1.0])
    assert sliced_wasserstein(x, y, p=1).statistic == pytest.approx(1 / 6, abs=1e-12)
    assert sliced_wasserstein(x, y, p=2).statistic == pytest.approx(math.sqrt(0.25 / 3), abs=1e-12)


# ---------------------------------------------------------------- classifier two-sample test


def test_c2st_same_distribution_and_floor():
    x, y = _gaussians(dim=64)
    r = classifier_two_sample_test(x, y, steps=150, floor=True)
    assert abs(r.statistic - 0.5) < 0.07
    assert r.p_value > 0.001  # the binomial p-value is approximate (folds correlate predictions)
    assert r.floor is not None and abs(r.floor - 0.5) < 0.1


@pytest.mark.parametrize("shift,scale", [(0.5, 1.0), (0.0, 1.5)])
def test_c2st_detects_differences(shift, scale):
    x, y = _gaussians(shift=shift, scale=scale, dim=64)
    r = classifier_two_sample_test(x, y, steps=150)
    assert r.statistic > 0.7
    assert r.p_value < 0.01
    assert r.floor is None


def test_c2st_deterministic_and_unequal_sizes():
    x, y = _gaussians(shift=0.5, n=80, dim=4)
    a = classifier_two_sample_test(x, y[:50], steps=50)
    assert a == classifier_two_sample_test(x, y[:50], steps=50)
    assert 0 <= a.statistic <= 1 and 0 < a.p_value <= 1
    assert (a.statistic * 100) == pytest.approx(round(a.statistic * 100))  # 100 held-out points: 50 x, 50 y


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("test", [mmd, energy_distance, sliced_wasserstein, classifier_two_sample_test])
def test_bad_inputs(test):
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="dimensions"):
        test(x, torch.randn(10, 4))
    with pytest.raises(ValueError, match="x needs at least 2"):
        test(x[:1], x)
    with pytest.raises(ValueError, match="y needs at least 2"):
        test(x, x[:1])
    bad = x.clone()
    bad[3, 1] = math.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        test(x, bad)
    with pytest.raises(ValueError, match="x contains NaN"):
        test(bad, x)
    with pytest.raises(ValueError, match="x"):
        test(torch.tensor(1.0), x)
