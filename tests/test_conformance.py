"""The conformance suite: every public check on every registered model and transform."""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch.distributions import constraints

from gendist.testing import (
    check_bad_inputs,
    check_extreme_inputs,
    check_float64,
    check_gradients,
    check_invertible,
    check_log_abs_det_jacobian,
    check_log_prob_kind,
    check_normalized,
    check_pyro,
    check_sample_log_prob,
    check_shapes,
    check_state_dict,
)
from gendist.testing.registry import MODELS, TRANSFORMS, build_transform, perturb

seeds = st.integers(0, 2**16)
scales = st.sampled_from([0.0, 0.05, 0.3, 1.0, 2.0])
log10_magnitudes = st.floats(-3.0, 2.0)


def _inputs(entry, seed, log10_magnitude, n=4):
    g = torch.Generator().manual_seed(seed)
    shape = (n,) + ((entry.features,) if entry.features else ())
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    magnitude = min(10.0**log10_magnitude, entry.magnitude)
    return x * magnitude


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@given(seed=seeds, scale=scales, log10_magnitude=log10_magnitudes)
def test_transform_invertible(name, seed, scale, log10_magnitude):
    entry = TRANSFORMS[name]
    module, c = build_transform(entry, scale, seed)
    module.eval()
    check_invertible(module(c), _inputs(entry, seed, log10_magnitude))


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@given(seed=seeds, scale=scales, log10_magnitude=st.floats(-2.0, 1.5))
def test_transform_log_abs_det_jacobian(name, seed, scale, log10_magnitude):
    entry = TRANSFORMS[name]
    module, c = build_transform(entry, scale, seed)
    module.eval()
    check_log_abs_det_jacobian(module(c), _inputs(entry, seed, log10_magnitude))


# latent-variable models (log_prob an importance-sampled estimate) run the checks that apply to them in
# tests/test_latent_conformance.py; the checks here need an exact (or deterministic) log_prob
EXACT = sorted(n for n, e in MODELS.items() if not e.estimate)


def _model(name, scale=0.3, seed=0):
    # eval mode: ActNorm's data-dependent initialization would otherwise run on
    # the first data scored, so sampled and scored densities would differ
    entry = MODELS[name]
    torch.manual_seed(seed)
    module = perturb(entry.factory(), scale, torch.Generator().manual_seed(seed))
    return entry, module.eval()


def _context(entry, *batch):
    return torch.randn(*batch, entry.context, dtype=entry.dtype) if entry.context else None


@pytest.mark.parametrize("name", EXACT)
def test_model_shapes_and_errors(name):
    entry, module = _model(name)
    for c in (_context(entry), _context(entry, 2)) if entry.context else (None,):
        d = module(c)
        check_log_prob_kind(d)
        check_shapes(d)
        check_bad_inputs(d)


@pytest.mark.parametrize("name", EXACT)
def test_model_pyro(name):
    entry, module = _model(name)
    check_pyro(module(_context(entry, 3)))


@pytest.mark.parametrize("name", EXACT)
def test_model_sample_log_prob_agree(name):
    # moderate perturbations: the nearest-neighbour test loses power on very spiky densities
    entry, module = _model(name, scale=0.1)
    check_sample_log_prob(module(_context(entry)), n=1000 * entry.features + 2000)


@pytest.mark.parametrize("name", [n for n in EXACT if MODELS[n].normalize])
def test_model_normalized(name):
    entry, module = _model(name, scale=0.3)
    check_normalized(module(_context(entry)))


@pytest.mark.parametrize("name", EXACT)
def test_model_float64_state_dict_gradients(name):
    entry, module = _model(name)
    c = _context(entry, 5)
    check_float64(module, c)
    check_state_dict(entry.factory, c)
    x = module(c).sample((3,))
    check_gradients(module, x, c)
    if not entry.discrete:  # far-out magnitudes and gradients w.r.t. the value are for continuous densities
        check_extreme_inputs(module, c)


@pytest.mark.parametrize("name", EXACT)
@given(seed=seeds, scale=st.sampled_from([0.0, 0.05, 0.2, 0.5]), log10_magnitude=log10_magnitudes)
def test_model_fused_paths_agree(name, seed, scale, log10_magnitude):
    entry, module = _model(name, scale, seed)
    module.double().eval()  # eval: batch statistics and ActNorm's data init would change the map
    c = _context(entry, 2)
    c = None if c is None else c.double()
    d = module(c)
    if d.support.event_dim and not isinstance(d.support.base_constraint, type(constraints.real)):
        # a bounded support saturates (sigmoid rounds to the bound) for huge base values
        assume(scale <= 0.2)
    fused = d.rsample_and_log_prob if d.has_rsample else getattr(d, "sample_and_log_prob", None)
    if fused is None and entry.discrete:
        pytest.skip("a discrete Ensemble: no fused path and no magnitudes to try")
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
