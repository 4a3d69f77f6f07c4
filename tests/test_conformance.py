"""The conformance suite: one body per check, run over every registry entry it applies to.

``gendist.testing.registry`` lists every public model (flows, autoregressive,
latent-variable, VQ-VAE, diffusion, energy-based models and GANs) and transform, each entry
declaring its family, discreteness, ``log_prob_kind``, context size, dtype,
and the checks it skips with why. Each test below is parametrized over the
entries of :data:`~gendist.testing.registry.MODELS`: those that run the check,
and those that skip it (reported as skipped, with the entry's reason). The
family checks (autoregressive ordering, cached sampling, inpainting; latent
bounds and estimates; a GAN's samples, critic and objectives) run over the entries of their family, and the
transform
checks over :data:`~gendist.testing.registry.TRANSFORMS`. Hypothesis draws
seeds, perturbation scales, batch shapes and input magnitudes (the
repository's ``ci`` profile).
"""

from __future__ import annotations

import copy
import inspect
import io
import itertools
import math
from collections.abc import Iterator
from typing import Any

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn as nn
from hypothesis import assume, given
from hypothesis import strategies as st
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO
from pyro.optim import Adam
from torch import Tensor
from torch.distributions import Distribution, constraints

import gendist
from gendist._recipes import Recorded
from gendist.autoregressive import MADE, Bernoulli, Categorical, Normal
from gendist.distributions import Autoregressive, Ensemble, LatentVariable
from gendist.inference import fit
from gendist.testing import (
    check_autoregressive,
    check_bad_inputs,
    check_bounds,
    check_cached_sampling,
    check_enumeration,
    check_extreme_inputs,
    check_finite_gradients,
    check_float64,
    check_gradients,
    check_implicit,
    check_inpaint,
    check_invertible,
    check_log_abs_det_jacobian,
    check_log_partition,
    check_log_prob_kind,
    check_normalized,
    check_pyro,
    check_reparameterized,
    check_sample_log_prob,
    check_shapes,
    check_state_dict,
    check_support,
    check_unimplemented,
)
from gendist.testing.registry import (
    CHECKS,
    FAMILIES,
    FAMILY_CHECKS,
    MODELS,
    TRANSFORMS,
    ModelEntry,
    OneOrder,
    TransformEntry,
    Unnormalized,
    build_model,
    build_transform,
    draw_context,
    entries,
)

seeds = st.integers(0, 2**16)
scales = st.sampled_from([0.0, 0.05, 0.3, 1.0])
batches = st.lists(st.integers(1, 3), max_size=2).map(tuple)
log10_magnitudes = st.floats(-3.0, 2.0)


def over(check: str, family: str | None = None) -> pytest.MarkDecorator:
    r"""Parametrize ``entry`` over the models (of ``family``) that run ``check``, and those that skip it, skipped."""
    params = []
    for name, entry in sorted(MODELS.items()):
        if family is not None and entry.family != family:
            continue
        if entry.runs(check):
            params.append(pytest.param(entry, id=name))
        elif check in entry.skip:
            params.append(pytest.param(entry, id=name, marks=pytest.mark.skip(reason=f"{name}: {entry.skip[check]}")))
    return pytest.mark.parametrize("entry", params)


def _module(entry: ModelEntry, check: str, scale: float = 0.3, seed: int = 0) -> nn.Module:
    r"""The entry's module for ``check``: perturbed by ``scale`` unless the entry says otherwise, in eval mode."""
    s = entry.settings_for(check)
    return build_model(entry, scale if s.scale is None else s.scale, seed, s.float64)


def _dtype(module: nn.Module) -> torch.dtype:
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.dtype.is_floating_point:
            return t.dtype
    return torch.get_default_dtype()


def _distribution(entry: ModelEntry, module: nn.Module, check: str, batch: tuple[int, ...] = (),
                  seed: int = 0) -> Distribution:
    r"""``module(c)`` with a context of batch shape ``batch`` (the entry's call options for ``check``), or the
    unconditional distribution expanded to it."""
    c = draw_context(entry, *batch, seed=seed, dtype=_dtype(module))
    call = entry.settings_for(check).call
    d = module(c, **call) if call else module(c)
    return d.expand(batch) if batch and not entry.context else d


def _contexts(entry: ModelEntry, module: nn.Module) -> tuple[Tensor | None, ...]:
    r"""One context and a batch of two for a conditional entry; None for an unconditional one."""
    if not entry.context:
        return (None,)
    return draw_context(entry, dtype=_dtype(module)), draw_context(entry, 2, dtype=_dtype(module))


def _options(entry: ModelEntry, check: str) -> dict[str, Any]:
    return dict(entry.settings_for(check).options)


# ---------------------------------------------------------------- the registry itself


def test_the_registry_covers_every_family_and_declares_its_skips() -> None:
    families = {e.family for e in MODELS.values()}
    assert families == set(FAMILIES)
    assert len(entries("builds", "autoregressive")) >= 10 and entries("enumeration", "autoregressive")
    assert len(entries("builds", "latent")) >= 10
    for entry in MODELS.values():
        known = set(CHECKS) | set(FAMILY_CHECKS.get(entry.family, {}))
        assert set(entry.skip) <= known and set(entry.settings) <= known, entry.name
        assert all(isinstance(why, str) and why for why in entry.skip.values()), entry.name
        assert entry.runs("builds"), entry.name
        if entry.estimate or entry.discrete:
            assert not entry.normalize, entry.name
        if entry.log_prob_kind == "none":  # no check that scores values runs on a distribution without log_prob
            assert {c for c in CHECKS if entry.runs(c)} <= {"builds", "log_prob_kind", "unimplemented"}, entry.name
    assert len(entries("builds", "gan")) >= 10 and len(entries("trains", "gan")) >= 10


def _recipes() -> set[type]:
    r"""Every public model class: the concrete recipes the model packages export."""
    found = set()
    for package in (gendist.flows, gendist.autoregressive, gendist.latent, gendist.diffusion, gendist.ebm,
                    gendist.gan):
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj) and issubclass(obj, Recorded) and not inspect.isabstract(obj):
                found.add(obj)
    return found


def test_every_public_model_has_an_entry() -> None:
    built = set()
    for entry in MODELS.values():
        module = entry.factory()
        built.add(type(module.model if isinstance(module, (OneOrder, Unnormalized)) else module))
    missing = sorted(cls.__name__ for cls in _recipes() - built)
    assert not missing, f"public models with no registry entry: {missing}"


# ---------------------------------------------------------------- every entry


@over("builds")
def test_builds(entry: ModelEntry) -> None:
    module = _module(entry, "builds")
    d = _distribution(entry, module, "builds", (2,))
    assert isinstance(d, FAMILIES[entry.family]), type(d)
    assert d.support.is_discrete == entry.discrete
    assert d.event_shape.numel() == entry.features
    assert d.batch_shape == (2,)
    assert d.sample().dtype == (entry.dtype or torch.get_default_dtype())


@over("log_prob_kind")
def test_log_prob_kind(entry: ModelEntry) -> None:
    module = _module(entry, "log_prob_kind")  # on a batch of contexts, or the unconditional distribution expanded
    check_log_prob_kind(_distribution(entry, module, "log_prob_kind", (2,)), entry.log_prob_kind)


@over("shapes")
def test_shapes(entry: ModelEntry) -> None:
    module = _module(entry, "shapes")
    for c in _contexts(entry, module):
        check_shapes(module(c))


@over("bad_inputs")
def test_bad_inputs(entry: ModelEntry) -> None:
    module = _module(entry, "bad_inputs")
    for c in _contexts(entry, module):
        check_bad_inputs(module(c))


@over("support")
def test_support(entry: ModelEntry) -> None:
    module = _module(entry, "support")
    for batch in ((), (2,)):
        check_support(_distribution(entry, module, "support", batch))


@over("pyro")
def test_pyro(entry: ModelEntry) -> None:
    module = _module(entry, "pyro")
    check_pyro(_distribution(entry, module, "pyro", (3,) if entry.context else ()))


@over("batches")
@given(seed=seeds, scale=scales, batch=batches)
def test_batches(entry: ModelEntry, seed: int, scale: float, batch: tuple[int, ...]) -> None:
    module = _module(entry, "batches", scale, seed)
    d = _distribution(entry, module, "batches", batch, seed)
    check_shapes(d, (2,))
    check_pyro(d, plate_size=3)


@over("float64")
def test_float64(entry: ModelEntry) -> None:
    module = _module(entry, "float64")
    check_float64(module, draw_context(entry, 5))


@over("state_dict")
def test_state_dict(entry: ModelEntry) -> None:
    check_state_dict(entry.factory, draw_context(entry, 5))


@over("gradients")
def test_gradients(entry: ModelEntry) -> None:
    module = _module(entry, "gradients")
    c = draw_context(entry, 5)
    check_gradients(module, module(c).sample((3,)), c, **_options(entry, "gradients"))


@over("extreme_inputs")
def test_extreme_inputs(entry: ModelEntry) -> None:
    module = _module(entry, "extreme_inputs")
    check_extreme_inputs(module, draw_context(entry, 5), **_options(entry, "extreme_inputs"))


@over("normalized")
def test_normalized(entry: ModelEntry) -> None:
    module = _module(entry, "normalized")
    check_normalized(_distribution(entry, module, "normalized"), **_options(entry, "normalized"))


@over("enumeration")
@given(seed=seeds, scale=scales, batch=batches)
def test_enumeration(entry: ModelEntry, seed: int, scale: float, batch: tuple[int, ...]) -> None:
    module = _module(entry, "enumeration", scale, seed)
    total = check_enumeration(_distribution(entry, module, "enumeration", batch, seed))
    assert total.shape == batch


@over("sample_log_prob")
def test_sample_log_prob(entry: ModelEntry) -> None:
    # moderate perturbations: the nearest-neighbour test loses power on very spiky densities
    module = _module(entry, "sample_log_prob", scale=0.1)
    options = {"n": 1000 * entry.features + 2000, **_options(entry, "sample_log_prob")}
    check_sample_log_prob(_distribution(entry, module, "sample_log_prob"), **options)


@over("fused_paths")
@given(seed=seeds, scale=st.sampled_from([0.0, 0.05, 0.2, 0.5]), log10_magnitude=log10_magnitudes)
def test_fused_paths(entry: ModelEntry, seed: int, scale: float, log10_magnitude: float) -> None:
    module = _module(entry, "fused_paths", scale, seed).double()
    d = module(draw_context(entry, 2, seed=seed, dtype=torch.float64))
    if d.support.event_dim and not isinstance(d.support.base_constraint, type(constraints.real)):
        # a bounded support saturates (sigmoid rounds to the bound) for huge base values
        assume(scale <= 0.2)
    fused = getattr(d, "rsample_and_log_prob" if d.has_rsample else "sample_and_log_prob", None)
    if fused is None and entry.discrete:
        pytest.skip("no fused path, and rescaled integers leave the support: nothing to check")
    if fused is not None:
        x, lp = fused((3,))
        torch.testing.assert_close(lp, d.log_prob(x), atol=1e-5, rtol=1e-5)
    else:
        x = d.sample((3,))
    if entry.discrete:  # rescaled integers leave the support: check_support covers that
        return
    y = x * 10.0**log10_magnitude / x.abs().amax().clamp_min(1e-9)
    inside = d.support.check(y)
    lp = d.log_prob(y[inside]) if not inside.all() else d.log_prob(y)
    assert torch.isfinite(lp).all()


@over("unimplemented")
def test_unimplemented(entry: ModelEntry) -> None:
    module = _module(entry, "unimplemented")
    for c in _contexts(entry, module):
        check_unimplemented(module(c))


# ---------------------------------------------------------------- autoregressive entries


@over("autoregressive", "autoregressive")
@given(seed=seeds, scale=scales)
def test_autoregressive_property(entry: ModelEntry, seed: int, scale: float) -> None:
    # exact zeros for every network: no position sees itself or a later one (every order of a multi-order model)
    module = _module(entry, "autoregressive", scale, seed)
    check_autoregressive(module, draw_context(entry, 3, seed=seed), seed=seed, connected=False)


@over("connected", "autoregressive")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_connected(entry: ModelEntry, seed: int) -> None:
    # each position sees some earlier one: a property of an initialization (a small random network can have
    # a connection cut by dead ReLUs or saturated gates everywhere), so checked on fixed ones
    module = _module(entry, "connected", 0.3, seed)
    check_autoregressive(module, draw_context(entry, 3, seed=seed), seed=seed)


@over("cached_sampling", "autoregressive")
@given(seed=seeds, scale=scales, batch=batches, sample_shape=st.sampled_from([(), (1,), (4,), (2, 3)]))
def test_cached_sampling(entry: ModelEntry, seed: int, scale: float, batch: tuple[int, ...],
                         sample_shape: tuple[int, ...]) -> None:
    module = _module(entry, "cached_sampling", scale, seed)
    check_cached_sampling(_distribution(entry, module, "cached_sampling", batch, seed), sample_shape, seed)


@over("inpaint", "autoregressive")
def test_inpaint(entry: ModelEntry) -> None:
    # a large perturbation: strong dependence between positions, so ignoring an observation would show
    module = _module(entry, "inpaint", scale=1.0)
    d = _distribution(entry, module, "inpaint", (2,) if entry.context else ())
    for part in d.components if isinstance(d, Ensemble) else [d]:  # each order of an Ensemble
        found = check_inpaint(part, samples=1500, particles=16)
        if entry.discrete and entry.features > 1:
            assert set(found) == {"chi2_pvalue", "tv_particles_1", "tv_sir"}


def test_multi_order_made_in_training_mode() -> None:
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


@pytest.fixture
def fresh_pyro() -> Iterator[None]:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


def test_made_bernoulli_observed_in_a_plate(fresh_pyro: None) -> None:
    made = MADE(4, Bernoulli(), hidden=(16,), context=2)
    c = torch.randn(6, 2)
    x = made(c).sample()

    def model() -> None:
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


def test_made_normal_latent_in_svi(fresh_pyro: None) -> None:
    # z ~ N(0, I), x_n ~ N(z, 0.5^2): the guide is the MADE distribution itself (rsample)
    torch.manual_seed(0)
    made = MADE(2, Normal(), hidden=(16,))
    data = torch.tensor([1.0, -0.5]) + 0.5 * torch.randn(8, 2)

    def model() -> None:
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        with pyro.plate("data", len(data)):
            pyro.sample("x", dist.Normal(z, 0.5).to_event(1), obs=data)

    def guide() -> None:
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
def test_enumerated_discrete_latent(fresh_pyro: None, orders: int) -> None:
    # a MADE (or its Ensemble over orders) as a latent summed out by TraceEnum_ELBO: the loss is -log p(x) exactly
    torch.manual_seed(0)
    made = MADE(3, Bernoulli(), hidden=(16,), orders=orders).eval()
    d = made()
    assert isinstance(d, Ensemble if orders > 1 else Autoregressive)
    x = torch.tensor([0.5, 2.0, -1.0, 3.2])

    def model() -> None:
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", d, infer={"enumerate": "parallel"})
            pyro.sample("x", dist.Normal(z.sum(-1), 1.0), obs=x)

    def guide() -> None:
        pass

    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide)
    with torch.no_grad():
        zs = d.enumerate_support(expand=False)  # (8, 3)
        joint = d.log_prob(zs)[:, None] + dist.Normal(zs.sum(-1)[:, None], 1.0).log_prob(x)  # (8, N)
        exact = -joint.logsumexp(0).sum().item()
    assert loss == pytest.approx(exact, rel=1e-5)


def test_ensemble_in_pyro(fresh_pyro: None) -> None:
    made = MADE(3, Categorical(3), hidden=(16,), orders=3, context=2).eval()
    c = torch.randn(4, 2)
    d = made(c)
    assert isinstance(d, Ensemble)
    check_pyro(d)
    x = d.sample()

    def model() -> None:
        with pyro.plate("data", 4):
            latent = pyro.sample("latent", d)
            pyro.sample("obs", d, obs=x)
        return latent

    trace = poutine.trace(model).get_trace()
    trace.compute_log_prob()
    assert trace.nodes["latent"]["value"].shape == (4, 3)
    torch.testing.assert_close(trace.nodes["obs"]["log_prob"], d.log_prob(x))
    assert torch.isfinite(trace.log_prob_sum())


# ---------------------------------------------------------------- latent-variable entries


@over("bounds", "latent")
def test_bounds_in_order(entry: ModelEntry) -> None:
    # on any model (trained or not): E[ELBO] <= E[IWAE_1] (equal) <= E[IWAE_4] <= E[IWAE_32]
    module = _module(entry, "bounds")
    c = draw_context(entry, 16)
    x = module(c).sample() if entry.context else module().sample((16,))
    means = check_bounds(module, x, ks=(1, 4, 32), c=c, repeats=16)
    assert all(math.isfinite(m) for m in means.values())


@over("same_seed", "latent")
def test_same_seed_same_estimate(entry: ModelEntry) -> None:
    # what check_shapes, check_pyro and check_state_dict rely on: an estimate is a function of the random numbers;
    # log_prob (chunked or not) is the log-mean-exp of the log-weights drawn from the same stream
    module = _module(entry, "same_seed")
    c = draw_context(entry, 2)
    d = module(c)
    x = d.sample((3,))
    values = []
    for fn in (lambda: d.log_prob(x), lambda: module(c).log_prob(x),
               lambda: torch.logsumexp(d.log_weights(x), 0) - math.log(d.particles)):
        torch.manual_seed(7)
        values.append(fn().detach())
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=0)
    tol = 1e-5 if values[0].dtype == torch.float32 else 1e-12
    torch.testing.assert_close(values[2], values[0], rtol=tol, atol=tol)
    torch.manual_seed(8)
    assert not torch.equal(d.log_prob(x).detach(), values[0])  # other random numbers, another estimate


@over("no_random_numbers", "latent")
def test_building_the_marginal_draws_no_random_numbers(entry: ModelEntry) -> None:
    module = entry.factory().eval()
    c = draw_context(entry, 2)
    state = torch.get_rng_state()
    d = module(c)  # the first call reads the decoder's support: at z = 0, not at a draw
    assert isinstance(d, LatentVariable)
    assert torch.equal(torch.get_rng_state(), state)


# ---------------------------------------------------------------- transforms


def _inputs(entry: TransformEntry, seed: int, log10_magnitude: float, n: int = 4) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n,) + ((entry.features,) if entry.features else ())
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    return x * min(10.0**log10_magnitude, entry.magnitude)


transform_scales = st.sampled_from([0.0, 0.05, 0.3, 1.0, 2.0])


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@given(seed=seeds, scale=transform_scales, log10_magnitude=log10_magnitudes)
def test_transform_invertible(name: str, seed: int, scale: float, log10_magnitude: float) -> None:
    entry = TRANSFORMS[name]
    module, c = build_transform(entry, scale, seed)
    module.eval()
    check_invertible(module(c), _inputs(entry, seed, log10_magnitude))


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@given(seed=seeds, scale=transform_scales, log10_magnitude=st.floats(-2.0, 1.5))
def test_transform_log_abs_det_jacobian(name: str, seed: int, scale: float, log10_magnitude: float) -> None:
    entry = TRANSFORMS[name]
    module, c = build_transform(entry, scale, seed)
    module.eval()
    check_log_abs_det_jacobian(module(c), _inputs(entry, seed, log10_magnitude))


# ---------------------------------------------------------------- energy-based entries


@over("log_partition", "energy")
def test_log_partition(entry: ModelEntry) -> None:
    module = _module(entry, "log_partition").double()
    check_log_partition(_distribution(entry, module, "log_partition"), **_options(entry, "log_partition"))


# ---------------------------------------------------------------- generative adversarial networks
# an Implicit distribution has no log_prob (log_prob_kind 'none'): these take the place of the checks that score


def _gan_batch(entry: ModelEntry, module: nn.Module, n: int, seed: int = 0) -> tuple[Tensor, ...]:
    r"""``n`` of the module's own samples as data, ``(x,)`` or ``(x, c)``: in the support whatever the output."""
    c = draw_context(entry, n, seed=seed, dtype=_dtype(module))
    with torch.no_grad():
        x = module(c).sample() if c is not None else module().sample((n,))
    return (x,) if c is None else (x, c)


def _generator(entry: ModelEntry, module: nn.Module) -> nn.Module:
    r"""The module whose parameters ``rsample`` reaches: ``module.sampler`` (a GAN's generator, or in eval mode the
    EMA's average), or the submodules the entry names (settings of the check ``implicit``)."""
    names = entry.settings_for("implicit").options.get("generator", ("sampler",))
    return getattr(module, names[0]) if len(names) == 1 else nn.ModuleList(getattr(module, n) for n in names)


@over("implicit", "gan")
def test_gan_implicit(entry: ModelEntry) -> None:
    module = _module(entry, "implicit")
    for c in _contexts(entry, module):
        check_implicit(module(c), generator=_generator(entry, module))
    if not entry.context:
        check_implicit(module().expand((2,)), generator=_generator(entry, module))
    # the generator itself (not an EMA's average) samples in training mode: rsample reaches its parameters
    module.train()
    check_reparameterized(module, draw_context(entry, 3, dtype=_dtype(module)), generator=_generator(entry, module))


@over("implicit_batches", "gan")
@given(seed=seeds, scale=scales, batch=batches)
def test_gan_implicit_batches(entry: ModelEntry, seed: int, scale: float, batch: tuple[int, ...]) -> None:
    module = _module(entry, "implicit_batches", scale, seed)
    d = _distribution(entry, module, "implicit_batches", batch, seed)
    check_implicit(d, generator=_generator(entry, module), sample_shapes=((2,),))


@over("float64_samples", "gan")
def test_gan_float64_samples(entry: ModelEntry) -> None:
    module = copy.deepcopy(_module(entry, "float64_samples")).double()
    c = draw_context(entry, 5, dtype=torch.float64)
    d = module(c)
    x, y = d.sample() if c is not None else d.sample((5,)), d.rsample((2,))
    assert x.dtype == y.dtype == torch.float64, (x.dtype, y.dtype)
    assert d.latent.sample((1,)).dtype == torch.float64
    if hasattr(module, "critic"):
        scores = module.critic(x, c)
        assert scores.dtype == torch.float64 and scores.shape == (5,) and torch.isfinite(scores).all()


@over("same_samples", "gan")
def test_gan_same_samples(entry: ModelEntry) -> None:
    # check_state_dict's round trip, compared on samples instead of log_prob: two modules built from other seeds,
    # the second loaded with the first's weights, draw the same samples from the same random numbers
    with torch.random.fork_rng():
        torch.manual_seed(1)
        a = entry.factory()
        torch.manual_seed(2)
        b = entry.factory()
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    a.eval(), b.eval()
    c = draw_context(entry, 5, dtype=_dtype(a))

    def draws(module: nn.Module) -> tuple[Tensor, ...]:
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(0)
            d = module(c)
            x = d.sample((3,))
            z = torch.randn((3, *d.batch_shape, *d.latent_shape), dtype=x.dtype)
            pushed = d.push(z)
            flat = x.reshape(-1, *d.event_shape)
            cc = None if c is None else c.expand(3, *c.shape).reshape(-1, c.shape[-1])
            return x, pushed, module.critic(flat, cc) if hasattr(module, "critic") else pushed

    for what, u, v in zip(("samples", "push(z)", "critic scores"), draws(a), draws(b)):
        assert torch.equal(u, v), f"{what} differ after a state_dict round trip by {(u - v).abs().max():.3g}"


@over("critic", "gan")
def test_gan_critic(entry: ModelEntry) -> None:
    module = _module(entry, "critic")
    x0, *rest = _gan_batch(entry, module, 6)
    c = rest[0] if rest else None
    params = [p for p in module.discriminator.parameters() if p.requires_grad]
    for scale in (None, 30.0, 1e3):
        x = x0 if scale is None else x0 / x0.abs().amax().clamp_min(1e-6) * scale
        x = x.detach().requires_grad_(True)
        scores = module.critic(x, c)
        assert scores.shape == (6,), scores.shape
        check_finite_gradients(scores, params + [x], f"the critic's scores at |x| ~ {scale or 'samples'}")
    wrong = x0.reshape(6, -1)[:, :-1]
    with pytest.raises(ValueError, match=r"shape"):
        module.critic(wrong, c)
    with pytest.raises(TypeError, match="dtype"):
        module.critic(x0.long(), c)


@over("trains", "gan")
def test_gan_trains(entry: ModelEntry) -> None:
    module = _module(entry, "trains").train()
    objectives = module.objectives()
    steps = max(o.every for o in objectives)  # enough batches for every objective to step (n_critic)
    batch = _gan_batch(entry, module, 8 * steps)
    for o in objectives:  # the loss of a batch of 8 reaches every parameter it trains
        params = o.trainable(module)
        assert params, o.name
        check_finite_gradients(o.loss(module, tuple(t[:8] for t in batch)), params, f"the {o.name} loss")
    before = {id(p): p.detach().clone() for p in module.parameters()}
    ema = getattr(module, "ema", None)
    averaged = [p.detach().clone() for p in ema.averaged.parameters()] if ema is not None else []
    history = fit(module, batch if len(batch) > 1 else batch[0], epochs=1, batch_size=8, progress=False)
    assert history is not None
    for o in objectives:
        params = o.trainable(module)
        assert all(torch.isfinite(p).all() for p in params), o.name
        assert any(not torch.equal(before[id(p)], p) for p in params), f"{o.name}: fit moved none of its parameters"
    if ema is not None:
        assert int(ema.updates) == 1
        assert any(not torch.equal(u, v) for u, v in zip(averaged, ema.averaged.parameters()))


def test_check_implicit_catches_what_it_checks() -> None:
    gen = nn.Linear(2, 3)
    latent = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    check_implicit(gendist.Implicit(lambda z, c: gen(z), latent, (3,)), generator=gen)
    with pytest.raises(AssertionError, match="does not require grad"):  # a generator that cuts the graph
        check_implicit(gendist.Implicit(lambda z, c: gen(z).detach(), latent, (3,)), generator=gen)
    with pytest.raises(AssertionError, match="no gradient reaches"):  # a parameter off the sampling path
        check_implicit(gendist.Implicit(lambda z, c: gen(z), latent, (3,)),
                       generator=nn.ModuleList([gen, nn.Linear(1, 1)]))
    with pytest.raises(AssertionError, match="outside the declared support"):
        check_implicit(gendist.Implicit(lambda z, c: gen(z), latent, (3,), support=constraints.positive))

    class Silent(gendist.Implicit):
        def log_prob(self, value: Tensor) -> Tensor:
            raise gendist.distributions.LogProbUnavailable("no density")

    with pytest.raises(AssertionError, match="does not mention"):  # the error must say what to use instead
        check_implicit(Silent(lambda z, c: gen(z), latent, (3,)))
    with pytest.raises(AssertionError, match="log_prob_kind"):
        check_implicit(dist.Normal(torch.zeros(3), 1.0).to_event(1))
