"""The implicit distribution: shapes, reparameterization, truncation, interpolation, honest log_prob, Pyro."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import kl_divergence

from gendist import Implicit
from gendist.distributions import LogProbUnavailable


def normal(d: int, dtype=torch.float32) -> dist.Distribution:
    return dist.Normal(torch.zeros(d, dtype=dtype), torch.ones(d, dtype=dtype)).to_event(1)


def linear(d: int, k: int, context: int = 0, dtype=torch.float32) -> tuple[torch.nn.Module, object]:
    net = torch.nn.Linear(d + context, k).to(dtype)
    return net, (lambda z, c: net(z if c is None else torch.cat([z, c], -1)))


@given(sample=st.lists(st.integers(1, 3), max_size=2), batch=st.lists(st.integers(1, 3), max_size=2),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_shapes_and_reparameterized(sample, batch, dtype):
    net, g = linear(2, 3, context=1, dtype=dtype)
    d = Implicit(g, normal(2, dtype), (3,), torch.randn(*batch, 1, dtype=dtype))
    x = d.rsample(torch.Size(sample))
    assert x.shape == torch.Size(sample) + torch.Size(batch) + torch.Size([3]) and x.dtype == dtype
    x.sum().backward()
    assert net.weight.grad is not None and bool(net.weight.grad.abs().sum() > 0)
    assert not d.sample().requires_grad
    assert d.expand((2, *batch)).sample().shape == (2, *batch, 3)


def test_the_context_is_per_batch_entry():
    d = Implicit(lambda z, c: z * 0 + c, normal(1), (1,), torch.tensor([[1.0], [2.0]]))
    x = d.sample((4,))
    assert torch.equal(x[:, 0], torch.ones(4, 1)) and torch.equal(x[:, 1], 2 * torch.ones(4, 1))


def test_image_events_and_a_flow_like_latent_with_rsample():
    loc = torch.zeros(4, requires_grad=True)
    latent = dist.Normal(loc, 1.0).to_event(1)
    d = Implicit(lambda z, c: z.reshape(-1, 1, 2, 2), latent, (1, 2, 2))
    x = d.rsample((3,))
    assert x.shape == (3, 1, 2, 2)
    x.sum().backward()
    assert torch.equal(loc.grad, 3 * torch.ones(4))  # the latent's parameters train through rsample


def test_log_prob_is_absent_and_says_what_to_use():
    d = Implicit(linear(2, 2)[1], normal(2), (2,))
    assert d.log_prob_kind == "none" and d.has_rsample
    with pytest.raises(LogProbUnavailable, match="gendist.metrics.*EnergyDistance"):
        d.log_prob(torch.zeros(2))
    with pytest.raises(NotImplementedError, match="mean"):
        _ = d.mean
    with pytest.raises(NotImplementedError, match="kl"):
        kl_divergence(d, dist.Normal(torch.zeros(2), 1.0).to_event(1))


def test_bad_input_is_named():
    _, g = linear(2, 3, context=1)
    with pytest.raises(ValueError, match="context"):
        Implicit(g, normal(2), (3,), torch.randn(4, 2), context_size=1)
    with pytest.raises(ValueError, match=r"returned shape \(5, 3\).*event shape is \(4,\)"):
        Implicit(linear(2, 3)[1], normal(2), (4,)).sample((5,))
    with pytest.raises(ValueError, match="truncation"):
        Implicit(g, normal(2), (3,), truncation=1.5)
    with pytest.raises(TypeError, match="latent"):
        Implicit(g, "normal", (3,))


def test_truncation_pulls_latents_to_the_mean_or_is_passed_to_the_generator():
    d = Implicit(lambda z, c: z, normal(2), (2,), truncation=0.5)
    torch.manual_seed(0)
    x = d.sample((4000,))
    assert abs(float(x.std()) - 0.5) < 0.03

    class Style(torch.nn.Module):
        def forward(self, z, c=None, truncation=None):
            return torch.full_like(z, truncation if truncation is not None else -1.0)

    assert torch.equal(Implicit(Style(), normal(2), (2,), truncation=0.3).sample(), torch.full((2,), 0.3))


def test_push_and_interpolate():
    d = Implicit(lambda z, c: 3 * z, normal(2), (2,))
    assert torch.equal(d.push(torch.ones(5, 2)), 3 * torch.ones(5, 2))
    z0, z1 = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    path = d.interpolate(5, z0, z1)
    assert path.shape == (5, 2)
    assert torch.allclose(path.norm(dim=-1), torch.full((5,), 6.0))  # slerp keeps the radius
    assert torch.allclose(d.interpolate(3, z0, z1, method="lerp")[1], torch.tensor([3.0, 3.0]))
    with pytest.raises(ValueError, match="latent shape"):
        d.push(torch.ones(5, 3))
    with pytest.raises(ValueError, match="method"):
        d.interpolate(3, method="cubic")


def test_in_pyro_sample_predictive_and_energy_distance():
    torch.manual_seed(0)
    pyro.clear_param_store()
    data = 3.0 + 0.5 * torch.randn(256, 1)
    net = torch.nn.Linear(1, 1)

    def model(x=None):
        pyro.module("generator", net)
        d = Implicit(lambda z, c: net(z), normal(1), (1,))
        with pyro.plate("data", 256):
            return pyro.sample("x", d, obs=x)

    def guide(x=None):
        pass

    assert pyro.infer.Predictive(model, num_samples=3)()["x"].shape == (3, 256, 1)
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), pyro.infer.EnergyDistance(num_particles=4))
    for _ in range(300):
        svi.step(data)
    assert abs(float(net.bias.detach()) - 3.0) < 0.3 and abs(abs(float(net.weight.detach())) - 0.5) < 0.3
