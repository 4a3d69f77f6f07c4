"""The latent-variable conformance suite: the public checks that apply to an estimated log_prob, on every entry.

Entries registered with ``estimate=True`` (``log_prob`` an importance-sampled
estimate) are left out of ``tests/test_conformance.py``, whose goodness-of-fit,
quadrature and fused-path checks need an exact density. Here: shapes, bad
inputs, log_prob_kind, Pyro sites in plates, float64, state_dict, gradients
(and extreme magnitudes for continuous values), with hypothesis drawing seeds,
perturbation scales and batch shapes; plus the bounds
(ELBO <= IWAE_1 <= IWAE_k, statistically) and the facts the generic checks
rely on (the same seed gives the same estimate; building the marginal draws
no random numbers).
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gendist.distributions.latent import LatentVariable
from gendist.testing import (
    check_bad_inputs,
    check_bounds,
    check_extreme_inputs,
    check_float64,
    check_gradients,
    check_log_prob_kind,
    check_pyro,
    check_shapes,
    check_state_dict,
)
from gendist.testing.registry import MODELS, perturb

LATENT = sorted(n for n, e in MODELS.items() if e.estimate)

seeds = st.integers(0, 2**16)
scales = st.sampled_from([0.0, 0.05, 0.3, 1.0])
batches = st.lists(st.integers(1, 3), max_size=2).map(tuple)


def _model(name, scale=0.3, seed=0):
    entry = MODELS[name]
    torch.manual_seed(seed)
    return entry, perturb(entry.factory(), scale, torch.Generator().manual_seed(seed)).eval()


def _context(entry, *batch, seed=0):
    if not entry.context:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, entry.context, generator=g, dtype=entry.dtype or torch.get_default_dtype())


def _distribution(entry, module, batch=(), seed=0):
    r"""``module(c)`` with a context of batch shape ``batch``, or the unconditional one expanded to it."""
    if entry.context:
        return module(_context(entry, *batch, seed=seed))
    d = module()
    return d.expand(batch) if batch else d


def test_every_latent_entry_builds_an_estimate():
    assert len(LATENT) >= 10
    for name in LATENT:
        entry, module = _model(name)
        assert not entry.normalize and not entry.autoregressive, name
        d = _distribution(entry, module, (2,))
        assert isinstance(d, LatentVariable) and d.log_prob_kind == "estimate", name
        assert d.support.is_discrete == entry.discrete, name
        assert d.event_shape.numel() == entry.features, name
        assert d.sample().dtype == (entry.dtype or torch.get_default_dtype()), name


@pytest.mark.parametrize("name", LATENT)
def test_shapes_and_errors(name):
    entry, module = _model(name)
    for c in (_context(entry), _context(entry, 2)) if entry.context else (None,):
        d = module(c)
        check_log_prob_kind(d)
        check_shapes(d)
        check_bad_inputs(d)


@pytest.mark.parametrize("name", LATENT)
def test_pyro(name):
    entry, module = _model(name)
    check_pyro(module(_context(entry, 3)))


@pytest.mark.parametrize("name", LATENT)
def test_float64_state_dict_gradients(name):
    entry, module = _model(name)
    c = _context(entry, 5)
    check_float64(module, c)
    check_state_dict(entry.factory, c)
    x = module(c).sample((3,))
    check_gradients(module, x, c)
    if not entry.discrete:
        check_extreme_inputs(module, c)


@pytest.mark.parametrize("name", LATENT)
@given(seed=seeds, scale=scales, batch=batches)
def test_shapes_and_pyro_over_batches(name, seed, scale, batch):
    entry, module = _model(name, scale, seed)
    d = _distribution(entry, module, batch, seed)
    check_shapes(d, (2,))
    check_pyro(d, plate_size=3)


@pytest.mark.parametrize("name", LATENT)
def test_bounds_in_order(name):
    # on any model (trained or not): E[ELBO] <= E[IWAE_1] (equal) <= E[IWAE_4] <= E[IWAE_32]
    entry, module = _model(name)
    c = _context(entry, 16)
    x = module(c).sample() if entry.context else module().sample((16,))
    means = check_bounds(module, x, ks=(1, 4, 32), c=c, repeats=16)
    assert all(math.isfinite(m) for m in means.values())


@pytest.mark.parametrize("name", LATENT)
def test_same_seed_same_estimate(name):
    # what check_shapes, check_pyro and check_state_dict rely on: an estimate is a function of the random numbers;
    # log_prob (chunked or not) is the log-mean-exp of the log-weights drawn from the same stream
    entry, module = _model(name)
    c = _context(entry, 2)
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


@pytest.mark.parametrize("name", LATENT)
def test_building_the_marginal_draws_no_random_numbers(name):
    entry = MODELS[name]
    module = entry.factory().eval()
    c = _context(entry, 2)
    state = torch.get_rng_state()
    d = module(c)  # the first call reads the decoder's support: at z = 0, not at a draw
    assert isinstance(d, LatentVariable)
    assert torch.equal(torch.get_rng_state(), state)
