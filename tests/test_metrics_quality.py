"""Tests of the sample-quality metrics: mode coverage, PRDC, the Fréchet distance, the feature network."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gendist.metrics import (
    PRDC,
    FeatureClassifier,
    ModeCoverage,
    frechet_distance,
    mode_coverage,
    prdc,
    sample_quality,
    train_feature_classifier,
)


def _ring(m: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(m, dtype=torch.float64) * 2 * math.pi / m
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def _grid() -> torch.Tensor:
    v = torch.arange(-4.0, 5.0, 2.0, dtype=torch.float64)
    return torch.cartesian_prod(v, v)


def _draws(centres, std, n=2500, seed=0):
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(0, centres.shape[0], (n,), generator=g)
    return centres[which] + std * torch.randn(n, centres.shape[1], generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- mode coverage


def test_chi_square_value_of_three_sigma_in_2d():
    stats = pytest.importorskip("scipy.stats")
    # the share of a 2-D Gaussian within 3 standard deviations: chi-square(2) at 9 = 1 - exp(-9/2)
    assert stats.chi2.cdf(9.0, 2) == pytest.approx(1 - math.exp(-4.5), rel=1e-12)
    assert 1 - math.exp(-4.5) == pytest.approx(0.988891, abs=1e-6)


@pytest.mark.parametrize("centres, std", [(_ring(), 0.02), (_grid(), 0.05)], ids=["ring8", "grid25"])
def test_mode_coverage_exact_draws(centres, std):
    r = mode_coverage(_draws(centres, std), centres, std)
    assert isinstance(r, ModeCoverage)
    m = centres.shape[0]
    assert r.modes == m
    assert r.counts.shape == (m,) and int(r.counts.sum()) == round(r.high_quality * 2500)
    p = 1 - math.exp(-4.5)
    assert abs(r.high_quality - p) < 4 * math.sqrt(p * (1 - p) / 2500)
    # a balanced histogram: KL from uniform of order (M - 1) / (2 n)
    assert 0 <= r.kl < 0.05


def test_mode_coverage_collapsed_sample():
    centres = _ring()
    x = centres[3] + 0.02 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = mode_coverage(x, centres, 0.02)
    assert r.modes == 1 and r.counts.argmax().item() == 3
    assert r.kl == pytest.approx(math.log(8), rel=1e-12)


def test_mode_coverage_min_count_and_high_quality():
    centres = _ring()
    # 30 points on mode 0, 10 on mode 1, 5 far away from every mode
    x = torch.cat([centres[0].expand(30, 2), centres[1].expand(10, 2), torch.full((5, 2), 50.0, dtype=torch.float64)])
    assert mode_coverage(x, centres, 0.02).modes == 2  # default: one high-quality sample covers a mode
    assert mode_coverage(x, centres, 0.02, min_count=20).modes == 1
    r = mode_coverage(x, centres, 0.02)
    assert r.high_quality == pytest.approx(40 / 45)
    assert r.counts.tolist() == [30, 10, 0, 0, 0, 0, 0, 0]
    q = torch.tensor([0.75, 0.25], dtype=torch.float64)
    assert r.kl == pytest.approx(float((q * (q * 8).log()).sum()), rel=1e-12)
    # no high-quality sample at all: nothing covered, the histogram's KL undefined
    far = mode_coverage(torch.full((10, 2), 50.0), centres, 0.02)
    assert far.modes == 0 and far.high_quality == 0.0 and math.isnan(far.kl)


def test_mode_coverage_threshold_and_per_mode_std():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    x = torch.tensor([[0.5, 0.0], [10.5, 0.0]])  # 0.5 from each centre
    assert mode_coverage(x, centres, 0.2).modes == 2  # 2.5 std: within the threshold of 3
    assert mode_coverage(x, centres, 0.1).modes == 0  # 5 std
    assert mode_coverage(x, centres, 0.1, threshold=6.0).modes == 2
    assert mode_coverage(x, centres, torch.tensor([0.1, 1.0])).counts.tolist() == [0, 1]


def test_mode_coverage_errors():
    centres = _ring()
    with pytest.raises(ValueError, match="centres have 3 features"):
        mode_coverage(torch.randn(10, 2), torch.randn(4, 3), 0.1)
    with pytest.raises(ValueError, match="std"):
        mode_coverage(torch.randn(10, 2), centres, -1.0)
    with pytest.raises(ValueError, match="std"):
        mode_coverage(torch.randn(10, 2), centres, torch.ones(3))
    with pytest.raises(ValueError, match="min_count"):
        mode_coverage(torch.randn(10, 2), centres, 0.1, min_count=0)
    with pytest.raises(ValueError, match="samples contains NaN"):
        mode_coverage(torch.tensor([[math.nan, 0.0], [0.0, 0.0]]), centres, 0.1)


# ---------------------------------------------------------------- PRDC


def _features(n=300, m=250, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 1.2 * torch.randn(m, d, generator=g, dtype=torch.float64) + 0.3
    return x, y


def test_prdc_identical_and_disjoint_sets():
    x, _ = _features()
    assert prdc(x, x) == PRDC(1.0, 1.0, 1.0, 1.0)
    assert prdc(x, x, k=1) == PRDC(1.0, 1.0, 1.0, 1.0)
    assert prdc(x, x + 100.0) == PRDC(0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_prdc_agrees_with_the_prdc_package(k, capsys):
    prdc_package = pytest.importorskip("prdc", reason="the reference `prdc` package is not installed")
    x, y = _features(seed=k)
    ours = prdc(x, y, k)
    ref = prdc_package.compute_prdc(x.numpy(), y.numpy(), nearest_k=k)
    for name in PRDC._fields:
        assert getattr(ours, name) == pytest.approx(float(ref[name]), abs=1e-6), name
    assert 0 < ours.precision < 1 and 0 < ours.coverage < 1


def test_prdc_chunks_and_dtypes_give_the_same_answer():
    x, y = _features()
    full = prdc(x, y, 5)
    assert prdc(x, y, 5, chunk=7) == full
    assert prdc(x, y, 5, chunk=1) == full
    # float32 inputs are compared in float64: the same answer as their float64 copies
    x32, y32 = x.float(), y.float()
    assert prdc(x32, y32, 5) == prdc(x32.double(), y32.double(), 5)


def test_prdc_density_exceeds_one_on_a_dense_fake():
    # fakes packed at the real mode, where the real balls overlap most: density above 1, coverage low
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g, dtype=torch.float64)
    y = 0.05 * torch.randn(400, 2, generator=g, dtype=torch.float64)
    r = prdc(x, y)
    assert r.precision == 1.0 and r.density > 1.1 and r.coverage < 0.2 and r.recall < 0.2


@settings(max_examples=10, deadline=None)
@given(n=st.integers(6, 40), m=st.integers(6, 40), k=st.integers(1, 5), seed=st.integers(0, 1000))
def test_prdc_roles_swap(n, m, k, seed):
    # recall is the precision of the real features against the fake ones
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, generator=g), torch.randn(m, 3, generator=g) + 0.5
    a, b = prdc(x, y, k), prdc(y, x, k)
    assert a.recall == b.precision and a.precision == b.recall
    for v in (a.precision, a.recall, a.coverage):
        assert 0.0 <= v <= 1.0
    assert a.density >= 0.0


def test_prdc_errors():
    x, y = _features()
    with pytest.raises(ValueError, match="different dimensions"):
        prdc(x, y[:, :3])
    with pytest.raises(ValueError, match=r"fake_features needs more than k=5 samples"):
        prdc(x, y[:5])
    with pytest.raises(ValueError, match="fake_features contains NaN"):
        prdc(x, torch.full_like(y, math.nan))
    with pytest.raises(ValueError, match="k must be"):
        prdc(x, y, 0)


# ---------------------------------------------------------------- Fréchet distance


def _reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
    linalg = pytest.importorskip("scipy.linalg")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(sa @ sb)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(root).real)


def test_frechet_agrees_with_sqrtm():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(300, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = b + 0.5
    assert frechet_distance(a, b) == pytest.approx(_reference_frechet(a.numpy(), b.numpy()), rel=1e-9)


def _exact_moments(mean, std, n, seed):
    r"""Samples whose sample mean is ``mean`` and unbiased covariance ``diag(std^2)`` exactly."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, len(mean), generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.cat([torch.ones(n, 1, dtype=torch.float64), z], dim=1))
    q = q[:, 1:]  # orthonormal columns, orthogonal to the constant vector: centred and uncorrelated
    return math.sqrt(n - 1) * q * torch.tensor(std, dtype=torch.float64) + torch.tensor(mean, dtype=torch.float64)


def test_frechet_closed_form_for_diagonal_covariances():
    mean_a, std_a = [0.0, 1.0, -2.0], [1.0, 2.0, 0.5]
    mean_b, std_b = [1.0, 1.0, 0.0], [3.0, 0.5, 0.5]
    a, b = _exact_moments(mean_a, std_a, 50, 0), _exact_moments(mean_b, std_b, 80, 1)
    expected = sum((p - q) ** 2 for p, q in zip(mean_a, mean_b)) + sum((s - t) ** 2 for s, t in zip(std_a, std_b))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(a.float(), b.float()) == pytest.approx(expected, rel=1e-5)


def test_frechet_identical_shift_and_singular():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g, dtype=torch.float64)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-10)
    v = torch.tensor([1.0, -2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    assert frechet_distance(x, x + v) == pytest.approx(float(v.square().sum()), rel=1e-10)
    y = 2 * torch.randn(150, 5, generator=g, dtype=torch.float64)
    assert frechet_distance(x + v, y + v) == pytest.approx(frechet_distance(x, y), rel=1e-10)
    # more features than samples: singular covariances, still the sqrtm value, finite and non-negative
    a, b = torch.randn(10, 30, generator=g, dtype=torch.float64), torch.randn(12, 30, generator=g, dtype=torch.float64)
    d = frechet_distance(a, b)
    assert d >= 0 and math.isfinite(d)
    assert d == pytest.approx(_reference_frechet(a.numpy(), b.numpy()), rel=1e-6)
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(x, y[:, :2])


# ---------------------------------------------------------------- feature network and the table row


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1400], perm[1400:]
    return x[train], y[train], x[test], y[test]


@pytest.fixture(scope="module")
def digit_net(digits):
    xtr, ytr, xte, yte = digits
    return train_feature_classifier(xtr, ytr, (1, 8, 8), epochs=12, valid=(xte, yte))


def test_feature_classifier_learns_8x8_digits(digit_net, digits):
    assert not digit_net.training
    assert digit_net.accuracy > 0.9
    xte = digits[2]
    with torch.no_grad():
        assert digit_net.features(xte).shape == (len(xte), 64)
        assert digit_net.features(xte.flatten(1)).shape == (len(xte), 64)  # flattened images too
        assert digit_net(xte).shape == (len(xte), 10)


def test_train_feature_classifier_is_deterministic_and_keeps_global_rng():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(60, 1, 6, 6, generator=g, dtype=torch.float64), torch.arange(60) % 3
    state = torch.get_rng_state()
    a = train_feature_classifier(x, y, (1, 6, 6), epochs=2, batch_size=16, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_feature_classifier(x, y, (1, 6, 6), epochs=2, batch_size=16, seed=3)
    c = train_feature_classifier(x, y, (1, 6, 6), epochs=2, batch_size=16, seed=4)
    for p, q in zip(a.parameters(), b.parameters()):
        assert p.dtype == torch.float64 and torch.equal(p, q)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    assert a.accuracy is None
    with pytest.raises(ValueError, match="labels in"):
        train_feature_classifier(x, y, (1, 6, 6), classes=2)
    with pytest.raises(ValueError, match="shape"):
        FeatureClassifier((6, 6), classes=3)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 6, 6\)"):
        a.features(torch.zeros(2, 35))


def test_sample_quality_on_digits(digit_net, digits):
    xtr, ytr, xte, _ = digits
    good = sample_quality(xte, xtr[:400], features=digit_net.features, c2st=False)
    noise = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    bad = sample_quality(xte, noise, features=digit_net.features, c2st=False)
    ones = sample_quality(xte, xtr[ytr == 1], features=digit_net.features, c2st=False)  # a collapsed "model"
    assert good["precision"] > 0.9 and good["recall"] > 0.9 and good["coverage"] > 0.9
    assert bad["density"] < 0.2 and bad["coverage"] < 0.2 and bad["recall"] < 0.2
    assert bad["frechet"] > 10 * good["frechet"]
    # faithful but not diverse: high precision and density, low recall and coverage
    assert ones["precision"] > 0.9 and ones["density"] > 0.8 and ones["recall"] < 0.3 and ones["coverage"] < 0.3
    assert ones["frechet"] > 10 * good["frechet"]
    assert math.isnan(good["c2st"])


def test_sample_quality_row_and_errors():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    row = sample_quality(x, x, c2st=False)
    assert set(row) == {"c2st", "precision", "recall", "density", "coverage", "frechet"}
    assert all(isinstance(v, float) for v in row.values())
    assert (row["precision"], row["recall"], row["density"], row["coverage"]) == (1.0, 1.0, 1.0, 1.0)
    assert row["frechet"] == pytest.approx(0.0, abs=1e-10)
    # the C2ST of two draws of one distribution is near chance
    same = sample_quality(x[:80], x[80:160], generator=torch.Generator().manual_seed(0))
    assert abs(same["c2st"] - 0.5) < 0.15 and same["precision"] > 0.7
    far = sample_quality(x[:80], x[:80] + 20.0, c2st=True)
    assert far["c2st"] > 0.95 and far["precision"] == 0.0 and far["frechet"] == pytest.approx(3 * 400, rel=1e-6)
    # features: a callable to (N, F)
    row = sample_quality(x, x, features=lambda s: s[:, :2], c2st=False)
    assert row["precision"] == 1.0
    with pytest.raises(ValueError, match="different sizes"):
        sample_quality(x, x[:, :2], c2st=False)
    with pytest.raises(ValueError, match=r"features\(real\) and features\(fake\) have different dimensions"):
        sample_quality(x, x + 1, features=lambda s: s[:, :2] if s.mean() < 0.5 else s, c2st=False)
    with pytest.raises(ValueError, match=r"features\(fake\) contains NaN"):
        sample_quality(x, x + 1, features=lambda s: s if s.mean() < 0.5 else s * math.nan, c2st=False)
    with pytest.raises(ValueError, match=r"features\(real\) must be a tensor of shape \(200, F\)"):
        sample_quality(x, x, features=lambda s: s[0], c2st=False)
    with pytest.raises(ValueError, match="fake needs more than k=5 samples"):
        sample_quality(x, x[:5], c2st=False)
    with pytest.raises(ValueError, match="real contains inf"):
        sample_quality(torch.full((10, 3), math.inf), x, c2st=False)
