"""The autoregressive conformance suite: gendist.testing.autoregressive's checks on every registered AR model.

The generic checks (shapes, Pyro, goodness of fit, quadrature, float64,
state_dict, gradients, bad inputs, fused paths) run on these entries in
``tests/test_conformance.py``; here the autoregressive ones run, with
hypothesis drawing seeds, perturbation scales, batch and sample shapes (the
repository's ``ci`` profile), plus shapes and Pyro over drawn batch shapes, and
Pyro models with MADE as an observed site, a latent SVI site and an enumerated
discrete latent.
"""

import dataclasses
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from pyro.optim import Adam

from gendist.autoregressive import MADE, Bernoulli, Categorical, Normal
from gendist.distributions import Autoregressive, Ensemble
from gendist.testing import (
    check_autoregressive,
    check_cached_sampling,
    check_enumeration,
    check_inpaint,
    check_log_prob_kind,
    check_pyro,
    check_shapes,
    check_support,
)
from gendist.testing.registry import MODELS, perturb

AR = sorted(n for n, e in MODELS.items() if e.autoregressive)
DISCRETE = [n for n in AR if MODELS[n].discrete]

seeds = st.integers(0, 2**16)
scales = st.sampled_from([0.0, 0.05, 0.3, 1.0])
batches = st.lists(st.integers(1, 3), max_size=2).map(tuple)


def _model(name, scale=0.3, seed=0, precise=False):
    r"""The entry and its module, perturbed, in eval mode (a multi-order MADE is then the Ensemble of its orders).

    With ``precise``, continuous models run in float64: large perturbations make peaked float32 densities
    (scales near the 1e-3 floor, means near 20) whose log-probabilities move by 1e-3 when the batch
    composition or the summation order changes, beyond the checks' float32 tolerances.
    """
    entry = MODELS[name]
    torch.manual_seed(seed)
    module = perturb(entry.factory(), scale, torch.Generator().manual_seed(seed)).eval()
    if precise and not entry.discrete:
        module.double()
        entry = dataclasses.replace(entry, dtype=torch.float64)
    return entry, module


def _distribution(entry, module, batch=(), seed=0):
    r"""``module(c)`` with a context of batch shape ``batch``, or the unconditional one expanded to it."""
    if entry.context:
        g = torch.Generator().manual_seed(seed)
        c = torch.randn(*batch, entry.context, generator=g, dtype=entry.dtype or torch.get_default_dtype())
        return module(c)
    d = module()
    return d.expand(batch) if batch else d


def test_every_autoregressive_entry_builds_one():
    assert len(AR) >= 10 and DISCRETE
    for name in AR:
        entry, module = _model(name)
        d = _distribution(entry, module, (2,))
        assert isinstance(d, (Autoregressive, Ensemble)), name
        assert d.support.is_discrete == entry.discrete, name
        assert d.event_shape.numel() == entry.features, name


def _contexts(entry, seed, n=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, entry.context, generator=g, dtype=entry.dtype) if entry.context else None


@pytest.mark.parametrize("name", AR)
@given(seed=seeds, scale=scales)
def test_autoregressive_property(name, seed, scale):
    # exact zeros for every network: no position sees itself or a later one (every order of a multi-order model)
    entry, module = _model(name, scale, seed)
    check_autoregressive(module, _contexts(entry, seed), seed=seed, connected=False)


@pytest.mark.parametrize("name", AR)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_connected(name, seed):
    # each position sees some earlier one: a property of an initialization (a small random network can have
    # a connection cut by dead ReLUs or saturated gates everywhere), so checked on fixed ones
    entry, module = _model(name, 0.3, seed)
    check_autoregressive(module, _contexts(entry, seed), seed=seed)


@pytest.mark.parametrize("name", DISCRETE)
@given(seed=seeds, scale=scales, batch=batches)
def test_enumeration_sums_to_one(name, seed, scale, batch):
    entry, module = _model(name, scale, seed)
    total = check_enumeration(_distribution(entry, module, batch, seed))
    assert total.shape == batch


@pytest.mark.parametrize("name", AR)
@given(seed=seeds, scale=scales, batch=batches, sample_shape=st.sampled_from([(), (1,), (4,), (2, 3)]))
def test_cached_sampling(name, seed, scale, batch, sample_shape):
    entry, module = _model(name, scale, seed, precise=True)  # discrete families are checked in float32, exactly
    check_cached_sampling(_distribution(entry, module, batch, seed), sample_shape, seed)


@pytest.mark.parametrize("name", AR)
@given(seed=seeds, scale=scales, batch=batches)
def test_shapes_and_pyro_over_batches(name, seed, scale, batch):
    entry, module = _model(name, scale, seed, precise=True)
    d = _distribution(entry, module, batch, seed)
    check_log_prob_kind(d)
    check_shapes(d, (2,))
    check_pyro(d, plate_size=3)


@pytest.mark.parametrize("name", AR)
def test_support(name):
    entry, module = _model(name)
    for batch in ((), (2,)):
        check_support(_distribution(entry, module, batch))


@pytest.mark.parametrize("name", AR)
def test_inpaint(name):
    # a large perturbation: strong dependence between positions, so ignoring an observation would show
    entry, module = _model(name, scale=1.0)
    d = _distribution(entry, module, (2,) if entry.context else ())
    for part in d.components if isinstance(d, Ensemble) else [d]:  # each order of an Ensemble
        found = check_inpaint(part, samples=1500, particles=16)
        if entry.discrete and entry.features > 1:
            assert set(found) == {"chi2_pvalue", "tv_particles_1", "tv_sir"}


# ---------------------------------------------------------------- multi-order MADE in training mode


def test_multi_order_made_in_training_mode():
    made = MADE(4, Categorical(3), hidden=(16, 16), orders=3, context=2).train()
    c = torch.randn(5, 2)
    check_autoregressive(made, c)  # all three orders
    for k in range(3):
        check_autoregressive(made, c, k=k)
    seen = set()
    for _ in range(12):  # each call draws one order
        d = made(c)
        assert isinstance(d, Autoregressive)
        seen.add(tuple(d.model.ordering()))
        check_cached_sampling(d)
    assert len(seen) > 1
    check_enumeration(made.eval()(c))


# ---------------------------------------------------------------- Pyro


@pytest.fixture
def fresh_pyro():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


def test_made_bernoulli_observed_in_a_plate(fresh_pyro):
    made = MADE(4, Bernoulli(), hidden=(16,), context=2)
    c = torch.randn(6, 2)
    x = made(c).sample()

    def model():
        pyro.module("made", made)
        with pyro.plate("data", 6):
            pyro.sample("x", made(c), obs=x)
        with pyro.plate("copies", 5, dim=-1):  # an unconditional-style site broadcast by the plate
            pyro.sample("y", made(c[0]), obs=x[0])

    trace = poutine.trace(model).get_trace()
    trace.compute_log_prob()
    torch.testing.assert_close(trace.nodes["x"]["log_prob"], made(c).log_prob(x))
    torch.testing.assert_close(trace.nodes["y"]["log_prob"], made(c[0]).log_prob(x[0]).expand(5))
    loss = -trace.log_prob_sum()
    loss.backward()
    grads = [p.grad for p in made.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_made_normal_latent_in_svi(fresh_pyro):
    # z ~ N(0, I), x_n ~ N(z, 0.5^2): the guide is the MADE distribution itself (rsample)
    torch.manual_seed(0)
    made = MADE(2, Normal(), hidden=(16,))
    data = torch.tensor([1.0, -0.5]) + 0.5 * torch.randn(8, 2)

    def model():
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        with pyro.plate("data", len(data)):
            pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=data)

    def guide():
        pyro.module("made", made)
        pyro.sample("z", made())

    before = [p.detach().clone() for p in made.parameters()]
    svi = SVI(model, guide, Adam({"lr": 0.02}), Trace_ELBO(num_particles=4, vectorize_particles=False))
    losses = [svi.step() for _ in range(25)]
    assert all(math.isfinite(v) for v in losses), losses
    assert all(torch.isfinite(p).all() for p in made.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, made.parameters()))
    trace = poutine.trace(guide).get_trace()
    z = trace.nodes["z"]["value"]
    assert z.requires_grad and z.shape == (2,)


@pytest.mark.parametrize("orders", [1, 3])
def test_enumerated_discrete_latent(fresh_pyro, orders):
    # a MADE (or its Ensemble over orders) as a latent summed out by TraceEnum_ELBO: the loss is -log p(x) exactly
    torch.manual_seed(0)
    made = MADE(3, Bernoulli(), hidden=(16,), orders=orders).eval()
    d = made()
    assert isinstance(d, Ensemble if orders > 1 else Autoregressive)
    x = torch.tensor([0.5, 2.0, -1.0, 3.2])

    def model():
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", d, infer={"enumerate": "parallel"})
            pyro.sample("x", dist.Normal(z.sum(-1), 1.0), obs=x)

    def guide():
        pass

    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide)
    with torch.no_grad():
        zs = d.enumerate_support(expand=False)  # (8, 3)
        joint = d.log_prob(zs)[:, None] + dist.Normal(zs.sum(-1)[:, None], 1.0).log_prob(x)  # (8, N)
        exact = -joint.logsumexp(0).sum().item()
    assert loss == pytest.approx(exact, rel=1e-5)


def test_ensemble_in_pyro(fresh_pyro):
    made = MADE(3, Categorical(3), hidden=(16,), orders=3, context=2).eval()
    c = torch.randn(4, 2)
    d = made(c)
    assert isinstance(d, Ensemble)
    check_pyro(d)
    x = d.sample()

    def model():
        with pyro.plate("data", 4):
            latent = pyro.sample("latent", d)
            pyro.sample("obs", d, obs=x)
        return latent

    trace = poutine.trace(model).get_trace()
    trace.compute_log_prob()
    assert trace.nodes["latent"]["value"].shape == (4, 3)
    torch.testing.assert_close(trace.nodes["obs"]["log_prob"], d.log_prob(x))
    assert torch.isfinite(trace.log_prob_sum())
