r"""Deep energy-based models (issue 14): the energy networks, ``Energy``, ``JEM`` and ``ProductOfExperts``.

Shapes (sample + batch + event) of every method, conditional contexts and ``expand``; the score against
autograd and its gradient in the parameters; quadrature log Z against closed forms (a Gaussian energy, a
product of Gaussians); pickling, ``state_dict`` and JSON config round trips; float64; JEM's classifier;
binary support (enumeration, single-site Gibbs); bad inputs with clear errors.
"""

from __future__ import annotations

import io
import json
import math
import pickle

import pytest
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Independent, Normal

import gendist
from gendist.config import config, from_config
from gendist.distributions import EnergyBased, LogPartitionUnknown
from gendist.ebm import JEM, BinaryNetEnergy, Energy, NetEnergy, ProductOfExperts
from gendist.flows import MAF
from gendist.nn import ConvNet, EnergyConvNet, EnergyMLP
from gendist.samplers.mcmc import MCMC_SAMPLERS

GIBBS = "gibbs" in MCMC_SAMPLERS  # sample_gibbs is added to the samplers by another change

# ----------------------------------------------------------------------------------------------- helpers


class GaussianNet(nn.Module):
    r"""An energy net :math:`E(x, c) = \frac12 \lVert (x - m - W c) / s \rVert^2` with a known
    :math:`\log Z = \frac D2 \log 2\pi + \sum \log s` (its parameters learnable)."""

    def __init__(self, features: int, context: int = 0) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.linspace(-0.5, 0.5, features))
        self.log_scale = nn.Parameter(torch.linspace(-0.3, 0.2, features))
        self.weight = nn.Parameter(torch.randn(features, context) * 0.5) if context else None

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        m = self.mean if c is None else self.mean + c @ self.weight.T
        return 0.5 * ((x - m) / self.log_scale.exp()).pow(2).sum(-1)

    def normal(self, c: Tensor | None = None) -> Independent:
        m = self.mean if c is None else self.mean + c @ self.weight.T
        return Independent(Normal(m, self.log_scale.exp()), 1)


class NormalModule(nn.Module):
    r"""A module whose call builds a torch Gaussian (an expert with an exact log_prob)."""

    def __init__(self, loc: list[float], scale: list[float]) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.tensor(loc))
        self.log_scale = nn.Parameter(torch.tensor(scale).log())

    def forward(self, c: Tensor | None = None) -> Independent:
        return Independent(Normal(self.loc, self.log_scale.exp()), 1)


def _round_trip(d: EnergyBased) -> list[EnergyBased]:
    buffer = io.BytesIO()
    torch.save(d, buffer)
    buffer.seek(0)
    return [pickle.loads(pickle.dumps(d)), torch.load(buffer, weights_only=False)]


# ----------------------------------------------------------------------------------------------- networks


def test_energy_networks_take_any_leading_dims():
    mlp = EnergyMLP(3, hidden=(8,), context=2)
    assert mlp(torch.randn(4, 5, 3), torch.randn(5, 2)).shape == (4, 5)
    assert mlp(torch.randn(3), torch.randn(2)).shape == ()
    conv = EnergyConvNet(2, (8, 6), width=4, context=3)
    assert conv(torch.randn(3, 4, 2, 8, 6), torch.randn(4, 3)).shape == (3, 4)
    assert conv(torch.randn(2, 8, 6), torch.randn(3)).shape == ()
    assert conv(torch.randn(0, 2, 8, 6), torch.randn(3)).shape == (0,)
    assert ConvNet(1, 28, 10, width=4)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="context"):
        mlp(torch.randn(3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 8, 6\)"):
        conv(torch.randn(2, 6, 8), torch.randn(3))
    with pytest.raises(TypeError, match="activation"):
        EnergyMLP(3, activation="relu")
    with pytest.raises(ValueError, match="depth"):
        EnergyConvNet(1, 4, depth=3)


def test_energy_networks_are_smooth_and_twice_differentiable():
    net = EnergyMLP(2, hidden=(6,)).double()
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda y: net(y), (x,))


def test_energy_mlp_fourier_features():
    # fourier=0 is the network it was: the same parameters and state_dict keys, no buffer
    plain = EnergyMLP(2, hidden=(8,))
    assert plain.embed is None and all(k.startswith("net.") for k in plain.state_dict())
    net = EnergyMLP(2, hidden=(8, 8), context=3, fourier=16, fourier_scale=2.0)
    assert net(torch.randn(4, 5, 2), torch.randn(5, 3)).shape == (4, 5)
    assert net(torch.randn(2), torch.randn(3)).shape == ()
    assert net.net.layers[0].in_features == 2 + 16
    # the frequencies B ~ N(0, (2 pi s)^2), a saved buffer: a model loads its own, whatever the seed
    B = net.state_dict()["embed.B"]
    assert B.shape == (8, 2) and 0.3 < B.std().item() / (2 * math.pi * 2.0) < 2.0
    other = EnergyMLP(2, hidden=(8, 8), context=3, fourier=16, fourier_scale=2.0, fourier_seed=1)
    assert not torch.equal(other.embed.B, B)
    other.load_state_dict(net.state_dict())
    x, c = torch.randn(6, 2), torch.randn(6, 3)
    assert torch.equal(other(x, c), net(x, c))
    # smooth: twice differentiable in x, in float64 too
    net64 = EnergyMLP(2, hidden=(6,), fourier=4).double()
    y = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda v: net64(v), (y,))
    for bad, match in [({"fourier": 3}, "fourier"), ({"fourier": -2}, "fourier"), ({"fourier_scale": 0.0}, "scale"),
                       ({"fourier_scale": float("inf")}, "scale")]:
        with pytest.raises(ValueError, match=match):
            EnergyMLP(2, **bad)


def test_energy_with_fourier_network_normalizes_by_quadrature():
    # what benchmarks/ebm_2d.py trains: the exact NLL, differentiable in the weights, integrating to one
    torch.manual_seed(0)
    model = Energy(2, net=EnergyMLP(2, hidden=(8,), fourier=8, fourier_scale=0.5), confine=0.5,
                   log_partition="quadrature", partition_options={"bound": 7.0, "points": 141})
    d = model()
    assert d.log_prob_kind == "exact"
    d.log_prob(torch.randn(16, 2)).mean().backward()
    assert all(p.grad is not None for p in model.parameters())  # the output bias's is 0: log Z cancels it
    assert all(layer.weight.grad.abs().sum() > 0 for layer in model.net.net.layers)
    g = torch.linspace(-7, 7, 281)
    x = torch.cartesian_prod(g, g)
    with torch.no_grad():
        mass = d.log_prob(x).exp().sum().item() * (g[1] - g[0]).item() ** 2
    assert abs(mass - 1) < 1e-3


# ----------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("shape", [(2,), (2, 3), (1, 6, 6)])
def test_shapes_unconditional(shape):
    model = Energy(shape, hidden=(8,), width=4, steps=3)
    d = model()
    assert isinstance(d, EnergyBased) and d.batch_shape == () and d.event_shape == shape
    x = d.sample((5,))
    assert x.shape == (5, *shape)
    assert d.unnormalized_log_prob(x).shape == (5,)
    assert d.energy_of(x).shape == (5,)
    assert d.score(x).shape == x.shape
    torch.testing.assert_close(model.energy(x), d.energy_of(x))
    assert d.expand((4,)).sample((2,)).shape == (2, 4, *shape)


def test_shapes_conditional_batch_is_the_context_leading_shape():
    model = Energy(2, context=3, hidden=(8,), steps=3)
    c = torch.randn(4, 3)
    d = model(c)
    assert d.batch_shape == (4,) and d.event_shape == (2,)
    x = d.sample((5,))
    assert x.shape == (5, 4, 2)
    assert d.unnormalized_log_prob(x).shape == (5, 4)
    assert d.score(x).shape == (5, 4, 2)
    assert d.energy_of(torch.zeros(2)).shape == (4,)  # one value broadcast over the batch
    e = d.expand((3, 4))
    assert e.batch_shape == (3, 4) and e.sample((2,)).shape == (2, 3, 4, 2)
    # each row of the batch sees its own context
    x0 = torch.zeros(4, 2)
    want = torch.stack([model(c[i]).energy_of(x0[i]) for i in range(4)])
    torch.testing.assert_close(d.energy_of(x0), want)
    torch.testing.assert_close(model.energy(x0, c), want)
    # a conditional image energy
    img = Energy((1, 6, 6), context=2, width=4, steps=2)
    assert img(torch.randn(3, 2)).sample((2,)).shape == (2, 3, 1, 6, 6)


def test_a_custom_net_sees_one_batch_dimension():
    seen = []

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(2))

        def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
            seen.append((x.shape, None if c is None else c.shape))
            return (x * self.w).sum(-1, keepdim=True)  # (N, 1) is taken too

    model = Energy(2, context=3, net=Net(), steps=2)
    assert model(torch.randn(4, 3)).energy_of(torch.randn(5, 4, 2)).shape == (5, 4)
    assert seen[-1] == ((20, 2), (20, 3))
    with pytest.raises(ValueError, match="no JSON form"):
        config(model)

    class Bad(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x

    with pytest.raises(ValueError, match="one energy per example"):
        Energy(2, net=Bad())().energy_of(torch.randn(3, 2))


# ----------------------------------------------------------------------------------------------- score


def test_score_is_minus_grad_energy_and_differentiable_in_parameters():
    model = Energy(2, context=1, hidden=(8,))
    c = torch.randn(3, 1)
    d = model(c)
    x = torch.randn(3, 2, requires_grad=True)
    (want,) = torch.autograd.grad(-d.energy_of(x).sum(), x)
    torch.testing.assert_close(d.score(x.detach()), want)
    loss = d.score(x.detach()).pow(2).sum()  # a score-matching-like loss reaches the weights
    loss.backward()
    moved = {n for n, p in model.net.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    assert moved == {n for n, _ in model.net.named_parameters()} - {"net.layers.1.bias"}  # a constant shift: no


# ----------------------------------------------------------------------------------------------- log Z


@pytest.mark.parametrize("features", [1, 2])
def test_quadrature_log_z_of_a_gaussian_energy(features):
    net = GaussianNet(features).double()
    model = Energy(features, net=net, log_partition="quadrature", partition_options={"bound": 9.0, "points": 301})
    d = model()
    assert d.log_prob_kind == "exact"
    want_log_z = features / 2 * math.log(2 * math.pi) + net.log_scale.sum()
    torch.testing.assert_close(d.log_partition_value, want_log_z.detach(), rtol=0, atol=1e-6)
    x = torch.randn(7, features, dtype=torch.float64)
    torch.testing.assert_close(d.log_prob(x), net.normal().log_prob(x), rtol=0, atol=1e-6)
    # the quadrature keeps the graph: log_prob is differentiable in the parameters (exact maximum likelihood)
    d.log_prob(x).sum().backward()
    assert net.log_scale.grad is not None and bool(net.log_scale.grad.abs().sum() > 0)


def test_quadrature_log_z_per_context():
    net = GaussianNet(1, context=2).double()
    model = Energy(1, context=2, net=net, log_partition="quadrature", partition_options={"bound": 10.0})
    c = torch.randn(3, 2, dtype=torch.float64)
    d = model(c)
    assert d.log_partition_value.shape == (3,)
    x = torch.randn(5, 3, 1, dtype=torch.float64)
    torch.testing.assert_close(d.log_prob(x), net.normal(c).log_prob(x), rtol=0, atol=1e-6)


def test_log_prob_without_log_z_is_refused_and_the_options_override():
    model = Energy(1, hidden=(8,))
    d = model()
    with pytest.raises(LogPartitionUnknown, match="log_partition.*unnormalized_log_prob|unnormalized_log_prob"):
        d.log_prob(torch.zeros(1))
    assert d.unnormalized().log_prob(torch.zeros(1)).shape == ()
    n = model(log_partition="quadrature", partition_options={"points": 101})
    assert n.log_prob_kind == "exact" and n.log_prob(torch.zeros(3, 1)).shape == (3,)
    a = model(log_partition="ais", partition_options={"chains": 8, "betas": 5})
    assert a.log_prob_kind == "estimate" and a.log_partition_stderr is not None


def test_learned_normalizer_is_a_parameter_only():
    model = Energy(1, net=GaussianNet(1), learn_normalizer=True)
    assert isinstance(model.log_normalizer, nn.Parameter) and "log_normalizer" in model.state_dict()
    with torch.no_grad():
        model.log_normalizer.fill_(5.0)
    assert model().log_prob_kind == "unnormalized"  # log_prob stays honest: the parameter is not log Z
    with pytest.raises(LogPartitionUnknown):
        model().log_prob(torch.zeros(1))
    assert Energy(1).log_normalizer is None and "log_normalizer" not in Energy(1, hidden=(4,)).state_dict()


# ----------------------------------------------------------------------------------------------- binary


@pytest.mark.skipif(not GIBBS, reason="sample_gibbs is not in MCMC_SAMPLERS yet")
def test_binary_energy_exact_log_z():
    model = Energy(3, hidden=(8,), support="binary", log_partition="exact", steps=2)
    d = model()
    assert d.log_prob_kind == "exact" and d.binary and d.sampler == "gibbs"
    torch.testing.assert_close(d.log_prob(d.enumerate_support()).exp().sum(), torch.tensor(1.0))
    assert set(d.sample((5,)).unique().tolist()) <= {0.0, 1.0}
    assert isinstance(model.energy_fn, BinaryNetEnergy)


@pytest.mark.skipif(not GIBBS, reason="sample_gibbs is not in MCMC_SAMPLERS yet")
def test_product_of_binary_energies():
    a, b = Energy(3, hidden=(4,), support="binary"), Energy(3, hidden=(4,), support="binary")
    poe = ProductOfExperts(a, b, log_partition="exact", steps=2)
    d = poe()
    assert d.binary and d.sampler == "gibbs" and d.log_prob_kind == "exact"
    states = d.enumerate_support()
    with torch.no_grad():
        want = torch.log_softmax(-(a().energy_of(states) + b().energy_of(states)), 0)
        torch.testing.assert_close(d.log_prob(states), want)
        assert d.sample((4,)).shape == (4, 3)


def test_binary_energy_gibbs_sweeps_leave_it_invariant():
    assert not hasattr(Energy(2, hidden=(4,)).energy_fn, "gibbs")  # real values: gradient samplers only
    energy = BinaryNetEnergy(EnergyMLP(3, hidden=(8,)), torch.Size([3]))  # what Energy(3, support="binary") holds
    with pytest.raises(ValueError, match="gibbs"):
        Energy(3, support="binary", sampler="mala")
    states = torch.tensor([[(n >> k) & 1 for k in (2, 1, 0)] for n in range(8)], dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        p = torch.softmax(-energy(states), 0)
        x = states[torch.multinomial(p, 4000, True, generator=g)]
        for _ in range(3):  # chains drawn from p stay at its frequencies
            x = energy.gibbs(x, None, g)
    counts = (x @ torch.tensor([4.0, 2.0, 1.0])).long().bincount(minlength=8) / 4000
    torch.testing.assert_close(counts, p, rtol=0, atol=0.03)


# ----------------------------------------------------------------------------------------------- round trips


def test_pickle_state_dict_config_round_trip():
    model = Energy(2, context=1, hidden=(8,), steps=3, step_size=0.05)
    c = torch.randn(2, 1)
    d = model(c)
    x = torch.randn(4, 2, 2)
    for loaded in _round_trip(d):
        assert type(loaded) is EnergyBased and loaded.batch_shape == d.batch_shape
        torch.testing.assert_close(loaded.unnormalized_log_prob(x), d.unnormalized_log_prob(x))
    clone = from_config(json.loads(json.dumps(config(model))))
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(c).energy_of(x), d.energy_of(x))
    assert clone(c).sampler_options["step_size"] == 0.05
    jem = JEM(3, 2, hidden=(8,))
    clone = from_config(json.loads(json.dumps(config(jem))))
    clone.load_state_dict(jem.state_dict())
    torch.testing.assert_close(clone.logits(x), jem.logits(x))
    poe = ProductOfExperts(Energy(2, hidden=(4,)), NormalModule([0.0, 1.0], [1.0, 2.0]))
    for loaded in _round_trip(poe()):
        torch.testing.assert_close(loaded.energy_of(x), poe().energy_of(x))
    for loaded in _round_trip(jem()):
        torch.testing.assert_close(loaded.energy_of(x), jem().energy_of(x))


def test_float64():
    model = Energy(2, context=1, hidden=(8,), steps=3).double()
    c = torch.randn(3, 1, dtype=torch.float64)
    d = model(c)
    x = d.sample((2,))
    assert x.dtype == torch.float64 and d.score(x).dtype == torch.float64
    assert Energy(1, hidden=(4,)).double()(log_partition="quadrature").log_partition_value.dtype == torch.float64
    with pytest.raises(TypeError, match="dtype"):
        d.energy_of(x.float())
    jem = JEM(3, (1, 6, 6), width=4, steps=2).double()
    assert jem().sample((2,)).dtype == torch.float64


# ----------------------------------------------------------------------------------------------- JEM


def test_jem_classifier_and_energy():
    jem = JEM(4, (1, 6, 6), width=4, steps=2, confine=0.0)  # the energies are the logits alone
    x = torch.randn(3, 2, 1, 6, 6)
    f = jem.logits(x)
    assert f.shape == (3, 2, 4)
    torch.testing.assert_close(jem.classify(x).probs, torch.softmax(f, -1))
    torch.testing.assert_close(jem.log_prob_y(x), torch.log_softmax(f, -1))
    y = torch.tensor([0, 3])
    torch.testing.assert_close(jem.log_prob_y(x, y), torch.log_softmax(f, -1)[..., [0, 3]].diagonal(dim1=-2, dim2=-1))
    d = jem()
    torch.testing.assert_close(d.energy_of(x), -torch.logsumexp(f, -1))
    torch.testing.assert_close(jem.energy(x), -torch.logsumexp(f, -1))
    # p(x | y) ∝ exp f(x)[y]: the energy is -f(x)[y]
    dy = jem.given(y)
    assert dy.batch_shape == (2,)
    torch.testing.assert_close(dy.energy_of(x), -f.gather(-1, y.expand(3, 2)[..., None]).squeeze(-1))
    # the joint is consistent: log p(x) - log p(x|y) = log p(y|x) up to log p(y), a constant in x
    diff = jem.log_prob_y(x, y) + dy.energy_of(x) - d.energy_of(x)
    torch.testing.assert_close(diff, torch.zeros_like(diff), atol=1e-5, rtol=0)
    assert jem.given(y).sample((3,)).shape == (3, 2, 1, 6, 6)
    with pytest.raises(ValueError, match="0..3"):
        jem.given(torch.tensor([4]))
    with pytest.raises(ValueError, match=">= 0"):
        jem(torch.tensor([[-1.0, 1.0, 1.0, 0.0]]))


def test_jem_with_a_custom_classifier():
    jem = JEM(nn.Sequential(nn.Flatten(), nn.Linear(6, 3)), (2, 3), steps=2)
    x = torch.randn(5, 2, 3)
    assert jem.logits(x).shape == (5, 3) and jem().sample((2,)).shape == (2, 2, 3)
    assert jem.given(torch.tensor(1)).energy_of(x).shape == (5,)
    bad = JEM(nn.Sequential(nn.Flatten(), nn.Linear(6, 1), nn.Flatten(0)), (2, 3))  # (N,): no classes
    with pytest.raises(ValueError, match="logits of shape"):
        bad().energy_of(x)


# ----------------------------------------------------------------------------------------------- products


@pytest.mark.parametrize("features", [1, 2])
def test_product_of_two_gaussians_is_their_product_gaussian(features):
    a = NormalModule([0.5, -1.0][:features], [1.0, 0.7][:features]).double()
    b = NormalModule([-0.5, 2.0][:features], [2.0, 1.3][:features]).double()
    poe = ProductOfExperts(a, b, log_partition="quadrature", partition_options={"bound": 10.0, "points": 401})
    d = poe()
    assert d.log_prob_kind == "exact" and d.event_shape == (features,)
    pa, pb = a(), b()
    prec = pa.base_dist.scale ** -2 + pb.base_dist.scale ** -2
    mean = (pa.base_dist.loc * pa.base_dist.scale ** -2 + pb.base_dist.loc * pb.base_dist.scale ** -2) / prec
    want = Independent(Normal(mean, prec ** -0.5), 1)
    x = torch.randn(6, features, dtype=torch.float64)
    torch.testing.assert_close(d.log_prob(x), want.log_prob(x), rtol=0, atol=1e-6)
    # unnormalized: -E is the sum of the experts' log-densities
    torch.testing.assert_close(poe(log_partition=None).unnormalized_log_prob(x), pa.log_prob(x) + pb.log_prob(x))


def test_product_of_a_flow_an_energy_and_a_gaussian():
    flow, energy, gauss = MAF(2, transforms=1, hidden=(4,)), Energy(2, hidden=(4,)), NormalModule([0.0, 0.0], [1, 1])
    poe = ProductOfExperts(flow, energy, gauss, steps=3)
    x = torch.randn(5, 2)
    want = -flow().log_prob(x) + energy().energy_of(x) - gauss().log_prob(x)
    torch.testing.assert_close(poe().energy_of(x), want)
    torch.testing.assert_close(poe.energy(x), want)
    assert poe().sample((4,)).shape == (4, 2)
    # conditional experts share the context
    cpoe = ProductOfExperts(MAF(2, context=1, transforms=1, hidden=(4,)), Energy(2, context=1, hidden=(4,)), steps=2)
    c = torch.randn(3, 1)
    assert cpoe(c).batch_shape == (3,) and cpoe(c).sample((2,)).shape == (2, 3, 2)
    # the product of products is a product
    assert ProductOfExperts(poe, gauss)().energy_of(x).shape == (5,)


def test_product_errors():
    with pytest.raises(ValueError, match="event shape"):
        ProductOfExperts(Energy(2, hidden=(4,)), Energy(3, hidden=(4,)))()
    with pytest.raises(ValueError, match="to_event"):
        ProductOfExperts(Energy(2, hidden=(4,)), _Batched())()
    with pytest.raises(TypeError, match="nn.Module"):
        ProductOfExperts(Normal(0.0, 1.0))
    with pytest.raises(ValueError, match="at least one"):
        ProductOfExperts()
    if GIBBS:
        with pytest.raises(ValueError, match="binary and real"):
            ProductOfExperts(Energy(2, hidden=(4,)), Energy(2, hidden=(4,), support="binary"))()


class _Batched(nn.Module):
    def forward(self, c: Tensor | None = None) -> Normal:
        return Normal(torch.zeros(2), torch.ones(2))  # batch (2,), event (): not a vector distribution


# ----------------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_give_clear_errors():
    model = Energy(2, context=1, hidden=(4,), steps=2)
    d = model(torch.randn(3, 1))
    with pytest.raises(ValueError, match="NaN"):
        d.energy_of(torch.tensor([[math.nan, 0.0]]))
    with pytest.raises(ValueError, match="NaN"):
        d.score(torch.tensor([[math.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        d.unnormalized_log_prob(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="context"):
        model()
    with pytest.raises(ValueError, match=r"\(\.\.\., 1\)"):
        model(torch.randn(3, 2))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.tensor([[math.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        model.energy(torch.tensor([math.nan, 0.0]), torch.zeros(1))
    for bad in (0.0, -0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match="step_size"):
            Energy(2, step_size=bad)
        with pytest.raises(ValueError, match="step_size"):
            model(torch.randn(1), step_size=bad)
    with pytest.raises(ValueError, match="at least one chain"):
        d.sample((0,))
    with pytest.raises(ValueError, match="steps"):
        Energy(2, steps=0)
    with pytest.raises(TypeError, match="unknown option"):
        model(torch.randn(1), stepsize=0.1)
    with pytest.raises(ValueError, match="sampler"):
        Energy(2, sampler="nope")
    with pytest.raises(ValueError, match="support"):
        Energy(2, support="positive")
    with pytest.raises(ValueError, match="quadrature.*'ais'"):
        Energy(3, log_partition="quadrature")
    with pytest.raises(ValueError, match="'exact' enumerates binary"):
        Energy(2, log_partition="exact")
    with pytest.raises(ValueError, match="log_partition"):
        Energy(2, log_partition="magic")
    with pytest.raises(ValueError, match="shape"):
        Energy(0)
    with pytest.raises(TypeError, match="net"):
        Energy(2, net=lambda x: x.sum(-1))
    with pytest.raises(ValueError, match="classes"):
        JEM(1, 2)


def test_exported():
    assert gendist.ebm.Energy is Energy and gendist.nn.EnergyMLP is EnergyMLP
    assert isinstance(Energy(2, hidden=(4,)).energy_fn, NetEnergy)


def test_the_envelope_makes_the_density_integrable_and_the_quadrature_refuses_a_box_that_misses_mass():
    net = nn.Sequential(nn.Linear(1, 1))  # E(x) = w x + b: e^{-E} is not integrable on the real line
    with torch.no_grad():
        net[0].weight.fill_(-1.0)
    bare = Energy(1, net=net)
    with pytest.raises(ValueError, match="edge of the box"):
        bare(log_partition="quadrature", partition_options={"bound": 10.0})
    confined = Energy(1, net=net, confine=1.0)  # E = -x + x^2 / 2 + b: a Gaussian N(1, 1)
    d = confined(log_partition="quadrature", partition_options={"bound": 10.0, "points": 2001})
    x = torch.linspace(-2, 4, 7)[:, None]
    want = torch.distributions.Normal(1.0, 1.0).log_prob(x[:, 0])
    torch.testing.assert_close(d.log_prob(x), want, atol=1e-5, rtol=0)
    assert JEM(3, 2, hidden=(8,)).energy_fn.confine == 0.01 and Energy(2, hidden=(8,)).energy_fn.confine == 0.01
    with pytest.raises(ValueError, match="confine"):
        Energy(2, confine=-1.0)
