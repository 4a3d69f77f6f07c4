"""AutoFlow: a flow autoguide for any Pyro model; its default schedule, summaries, NeuTra and bad input."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import MCMC, NUTS, SVI, Predictive, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO
from pyro.infer.autoguide import AutoNormal, init_to_value
from pyro.optim import Adam

from gendist.bayes import AutoFlow, NeuTraModel, identity_init, svi
from gendist.flows import IAF, MAF, NSF, RealNVP


def conjugate(y: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mu, 0.5), obs=y)


def exact(y: torch.Tensor) -> tuple[float, float]:
    var = 1 / (1 / 100 + len(y) / 0.25)
    return var * float(y.sum()) / 0.25, math.sqrt(var)


def two_sites(y: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    sigma = pyro.sample("sigma", dist.LogNormal(0.0, 1.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mu, sigma.unsqueeze(-1)).to_event(1), obs=y)  # particle-safe


@pytest.fixture(autouse=True)
def _clear():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conjugate_gaussian_recovered_by_the_default_schedule(seed):
    # the conjugate model: posterior sd 0.11; mean and sd within 0.01 after the default schedule
    y = torch.randn(20, generator=torch.Generator().manual_seed(0)) + 2.0
    pyro.set_rng_seed(seed)
    guide = AutoFlow(conjugate)
    guide.fit(y)
    with torch.no_grad():
        theta = guide.get_posterior().sample((40000,))
    mean, sd = exact(y)
    assert abs(sd - 0.112) < 1e-3
    assert abs(theta.mean().item() - mean) < 0.01
    assert abs(theta.std().item() - sd) < 0.01


def test_starts_where_autonormal_starts():
    y = torch.randn(10, 2)
    init = init_to_value(values={"mu": torch.tensor([0.3, -0.2]), "sigma": torch.tensor(2.0)})
    guide = AutoFlow(two_sites, init_loc_fn=init, init_scale=0.05)
    guide(y)
    normal = AutoNormal(two_sites, init_loc_fn=init, init_scale=0.05)
    normal(y)
    torch.testing.assert_close(guide.loc.detach(), torch.tensor([0.3, -0.2, math.log(2.0)]))
    torch.testing.assert_close(guide.scale.detach(), torch.full((3,), 0.05))
    # the flow is the identity: the posterior is exactly AutoNormal's N(loc, scale^2)
    with torch.no_grad():
        q = guide.get_posterior()
        theta = torch.randn(5, 3)
        ref = dist.Normal(guide.loc, guide.scale).to_event(1)
        torch.testing.assert_close(q.log_prob(theta), ref.log_prob(theta))
        locs = torch.cat([normal.locs.mu, normal.locs.sigma.reshape(1)])
    torch.testing.assert_close(guide.loc.detach(), locs.detach())


def test_constrained_sites_median_quantiles_and_predictive():
    torch.manual_seed(0)
    y = torch.randn(30, 2) * 0.7 + torch.tensor([1.0, -1.0])
    guide = AutoFlow(two_sites)
    guide.fit(y, steps=300)
    draws = guide(y)
    assert draws["mu"].shape == (2,) and draws["sigma"].shape == () and draws["sigma"] > 0
    median = guide.median(y)
    assert median["sigma"] > 0 and torch.allclose(median["mu"], torch.tensor([1.0, -1.0]), atol=0.4)
    again = guide.median(y)
    assert all(torch.equal(median[k], again[k]) for k in median)  # reproducible
    q = guide.quantiles([0.05, 0.5, 0.95], y)
    assert q["mu"].shape == (3, 2) and bool((q["mu"][0] < q["mu"][2]).all())
    torch.testing.assert_close(q["mu"][1], median["mu"])
    predictive = Predictive(two_sites, guide=guide, num_samples=50)(y)
    assert predictive["sigma"].shape[0] == 50 and bool((predictive["sigma"] > 0).all())
    with pytest.raises(ValueError, match="quantiles"):
        guide.quantiles([1.5], y)


@pytest.mark.parametrize(
    "elbo",
    [
        Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1),
        TraceMeanField_ELBO(num_particles=2, vectorize_particles=True, max_plate_nesting=1),
        RenyiELBO(alpha=0.5, num_particles=3, vectorize_particles=True, max_plate_nesting=1),
        Trace_ELBO(),
    ],
    ids=["trace", "meanfield", "renyi", "single"],
)
def test_elbos_and_vectorized_particles(elbo):
    y = torch.randn(10, 2)
    guide = AutoFlow(two_sites)
    losses = svi(two_sites, guide, y, steps=20, elbo=elbo)
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)


def test_any_flow_recipe():
    y = torch.randn(10, 2)
    for spec, kwargs in [(NSF, {"transforms": 2, "hidden": (8,)}), (MAF, {"transforms": 1}), (RealNVP, {})]:
        pyro.clear_param_store()
        guide = AutoFlow(two_sites, spec, **kwargs)
        guide(y)
        if spec is not RealNVP:
            assert all(layer.fast == "sample" for layer in guide.flow.transforms)  # the VI orientation by default
        z = torch.randn(4, 3)
        with torch.no_grad():
            torch.testing.assert_close(guide.flow().transform(z), z)  # identity at init
        svi(two_sites, guide, y, steps=3)
    pyro.clear_param_store()
    guide = AutoFlow(two_sites, lambda d: IAF(d, transforms=1, hidden=(4,)))
    guide(y)
    assert len(guide.flow.transforms) == 1
    pyro.clear_param_store()
    built = IAF(3, transforms=2)
    guide = AutoFlow(two_sites, built)
    guide(y)
    assert guide.flow is built


def test_bad_flows():
    y = torch.randn(10, 2)
    with pytest.raises(ValueError, match="features but the model's latent sites make a vector of size 3"):
        AutoFlow(two_sites, IAF(5))(y)
    with pytest.raises(ValueError, match="support"):
        AutoFlow(two_sites, IAF(3, support=torch.distributions.constraints.positive))(y)
    with pytest.raises(ValueError, match="unconditional"):
        AutoFlow(two_sites, IAF(3, context=2))(y)
    with pytest.raises(TypeError, match="flow must be None"):
        AutoFlow(two_sites, 3)(y)
    with pytest.raises(TypeError, match="flow_kwargs"):
        AutoFlow(two_sites, IAF(3), transforms=2)(y)
    with pytest.raises(ValueError, match="init_scale"):
        AutoFlow(two_sites, init_scale=-1.0)


def test_state_dict_round_trip():
    y = torch.randn(10, 2)
    guide = AutoFlow(two_sites)
    guide.fit(y, steps=30)
    state = guide.state_dict()
    pyro.clear_param_store()
    fresh = AutoFlow(two_sites)
    fresh(y)  # set up, then load (as for Pyro's autoguides)
    fresh.load_state_dict(state)
    torch.manual_seed(3)
    a = guide.get_posterior().sample((5,))
    torch.manual_seed(3)
    b = fresh.get_posterior().sample((5,))
    torch.testing.assert_close(a, b)


def test_float64():
    y = torch.randn(10, 2, dtype=torch.float64)

    def model(y):
        mu = pyro.sample("mu", dist.Normal(torch.zeros(2, dtype=torch.float64), 1.0).to_event(1))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal(mu, 1.0).to_event(1), obs=y)

    guide = AutoFlow(model)
    svi(model, guide, y, steps=5)
    assert guide(y)["mu"].dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in guide.parameters())


def test_flow_guide_covers_the_funnel_neck():
    # Neal's funnel in 2-D; exact P(v < -3) = Phi(-1) = 0.159. A Gaussian guide cannot reach the neck.
    def funnel():
        v = pyro.sample("v", dist.Normal(0.0, 3.0))
        pyro.sample("x", dist.Normal(0.0, torch.exp(v / 2)))

    pyro.set_rng_seed(0)
    guide = AutoFlow(funnel, NSF, transforms=2, hidden=(32,))
    guide.fit(steps=1500)
    with torch.no_grad():
        v = guide.get_posterior().sample((20000,))[:, 0]
    p_neck = (v < -3).float().mean().item()
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    normal = AutoNormal(funnel)
    svi(funnel, normal, steps=1500)
    with torch.no_grad():
        v_normal = torch.stack([normal()["v"] for _ in range(4000)])
    assert (v_normal < -3).float().mean().item() < 0.05
    assert 0.08 < p_neck < 0.25


def test_neutra_in_one_call():
    def funnel():
        v = pyro.sample("v", dist.Normal(0.0, 3.0))
        pyro.sample("x", dist.Normal(0.0, torch.exp(v / 2)))

    pyro.set_rng_seed(0)
    guide = AutoFlow(funnel)
    with pytest.raises(ValueError, match="train it"):
        guide.neutra()
    guide.fit(steps=200)
    model = guide.neutra()
    assert isinstance(model, NeuTraModel) and not any(p.requires_grad for p in guide.parameters())
    mcmc = MCMC(NUTS(model, max_tree_depth=5), num_samples=40, warmup_steps=40, disable_progbar=True)
    mcmc.run()
    draws = model.transform_sample(mcmc.get_samples())
    assert draws["v"].shape == (40,) and draws["x"].shape == (40,)
    assert torch.isfinite(draws["v"]).all()
    with pytest.raises(KeyError, match="shared_latent"):
        model.transform_sample({"v": torch.zeros(3)})
    with pytest.raises(TypeError, match="AutoContinuous"):
        NeuTraModel(AutoNormal(funnel))


def test_identity_init_warns_for_layers_it_cannot_reach():
    from gendist.flows import PlanarFlow

    flow = PlanarFlow(3, transforms=2)
    with pytest.warns(UserWarning, match="identity"):
        identity_init(flow)


# --- bad models -------------------------------------------------------------------------------------------------


def test_discrete_site_named_with_enumeration_advice():
    def model():
        k = pyro.sample("k", dist.Categorical(torch.ones(3) / 3))
        pyro.sample("x", dist.Normal(k.float(), 1.0))

    with pytest.raises(ValueError, match=r"latent site 'k' is discrete.*TraceEnum_ELBO"):
        AutoFlow(model)()


def test_no_latent_sites():
    def model(y):
        pyro.sample("y", dist.Normal(0.0, 1.0), obs=y)

    with pytest.raises(ValueError, match="no latent sites"):
        AutoFlow(model)(torch.tensor(0.5))


def test_site_shape_changes_between_calls():
    def model(y):
        with pyro.plate("data", len(y)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("y", dist.Normal(z, 1.0), obs=y)

    guide = AutoFlow(model)
    guide(torch.randn(5))
    guide(torch.randn(5))  # same shapes: fine
    with pytest.raises(ValueError, match=r"latent site 'z' had shape \(5,\) .* has shape \(7,\)"):
        guide(torch.randn(7))


def test_svi_arguments_checked():
    with pytest.raises(ValueError, match="steps"):
        svi(conjugate, AutoNormal(conjugate), torch.zeros(3), steps=0)
    with pytest.raises(ValueError, match="warm"):
        svi(conjugate, AutoNormal(conjugate), torch.zeros(3), warm=1.0)
    with pytest.raises(ValueError, match="lr"):
        svi(conjugate, AutoNormal(conjugate), torch.zeros(3), lr=-1.0)


def test_svi_stops_on_a_nan_elbo():
    def model():
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.factor("bad", z * float("nan"))

    torch_default = torch.distributions.Distribution._validate_args
    try:  # pyro.validation_enabled restores Pyro's flag and sets torch's default to it on exit: restore torch's too
        with pyro.validation_enabled(False), pytest.raises(FloatingPointError, match="ELBO became nan"):
            svi(model, AutoFlow(model), steps=3)
    finally:
        torch.distributions.Distribution.set_default_validate_args(torch_default)


def test_plain_svi_with_autoflow():
    # the guide is an ordinary Pyro guide: any SVI loop trains it
    y = torch.randn(10, 2)
    guide = AutoFlow(two_sites)
    loop = SVI(two_sites, guide, Adam({"lr": 1e-2}), Trace_ELBO())
    for _ in range(5):
        loop.step(y)
    trace = poutine.trace(guide).get_trace(y)
    assert {"mu", "sigma"} <= set(trace.nodes)
