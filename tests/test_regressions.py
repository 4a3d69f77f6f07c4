"""Regressions found by an independent conformance run.

(a) every distribution gendist returns pickles (``pickle`` and ``torch.save``/``torch.load``) and scores the same
after; (b) no gendist call changes torch's or Pyro's global validation flags; (c) a NaN in a ``log_prob`` value
gets gendist's own error naming the value (or ``-inf``, where it is out of a discrete support), with
validation on and off; (d) every ``NotImplementedError`` a gendist distribution raises says what to use instead.
"""

from __future__ import annotations

import io
import itertools
import math
import pickle
from collections.abc import Callable, Iterator

import pyro
import pyro.infer.util
import pyro.poutine.util
import pytest
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution, kl_divergence

from gendist.autoregressive import MADE, NADE, PixelCNN, Transformer, WaveNet
from gendist.data.toy2d import Moons
from gendist.diffusion import DiffusionModel
from gendist.distributions import (
    Chain,
    DiagNormal,
    Factorized,
    GaussianMixture,
    LatentVariable,
    StandardNormal,
)
from gendist.distributions.conditionals import Bernoulli, Categorical, Normal
from gendist.ebm import JEM, RBM, Energy, ProductOfExperts
from gendist.flows import IAF, MAF, NICE, NSF, PlanarFlow, RadialFlow, RealNVP, SylvesterFlow
from gendist.latent import IWAE, VAE, VQVAE, HierarchicalVAE
from gendist.testing import check_support, check_unimplemented

H = (8,)
KW = dict(latent=2, hidden=H, particles=4)

# name -> (module factory, context size); one model of every family and option
MODELS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "maf": (lambda: MAF(2, transforms=2, hidden=H), 0),
    "maf-context-spline": (lambda: MAF(3, context=2, transforms=1, hidden=H, univariate="spline"), 2),
    "maf-mixture-base": (lambda: MAF(2, transforms=1, hidden=H, base=GaussianMixture(2, 2)), 0),
    "iaf": (lambda: IAF(2, transforms=2, hidden=H), 0),
    "nsf": (lambda: NSF(2, transforms=1, hidden=H), 0),
    "nsf-coupling-context": (lambda: NSF(3, context=2, transforms=2, hidden=H, coupling=True), 2),
    "realnvp": (lambda: RealNVP(3, transforms=2, hidden=H), 0),
    "nice-context": (lambda: NICE(3, context=1, transforms=2, hidden=H), 1),
    "planar": (lambda: PlanarFlow(2, transforms=2), 0),
    "radial-context": (lambda: RadialFlow(3, context=2, transforms=2, hidden=H), 2),
    "sylvester": (lambda: SylvesterFlow(2, transforms=2), 0),
    "made-bernoulli": (lambda: MADE(4, Bernoulli(), hidden=H), 0),
    "made-normal-orders2": (lambda: MADE(2, Normal(), hidden=H, orders=2), 0),  # an Ensemble
    "nade-categorical": (lambda: NADE(3, Categorical(3), hidden=8), 0),
    "pixelcnn-bernoulli": (lambda: PixelCNN((1, 2, 2), Bernoulli(), channels=4, layers=1, kernel=3), 0),
    "wavenet-normal-context": (lambda: WaveNet(3, Normal(), channels=4, blocks=1, layers=1, context=2), 2),
    "transformer-categorical": (lambda: Transformer(3, Categorical(3), d_model=8, heads=2, layers=1), 0),
    "vae-bernoulli": (lambda: VAE(4, **KW), 0),
    "vae-normal-context-flow-encoder": (lambda: VAE(3, family=Normal(), encoder="flow", flow_steps=1, context=2,
                                                    **KW), 2),
    "vae-flow-prior": (lambda: VAE(4, prior="flow", flow_steps=1, **KW), 0),
    "vae-vamp-prior": (lambda: VAE(3, family=Normal(), prior="vamp", components=2, **KW), 0),
    "iwae-normal": (lambda: IWAE(3, family=Normal(), k=3, **KW), 0),
    "hvae-bernoulli": (lambda: HierarchicalVAE(4, latents=(2, 2), hidden=H, top_hidden=H, particles=4), 0),
    "hvae-normal-context": (lambda: HierarchicalVAE(3, family=Normal(), latents=(2, 2), hidden=H, top_hidden=H,
                                                    particles=4, context=2), 2),
    "vqvae-bernoulli": (lambda: VQVAE((1, 4, 4), "bernoulli", codes=4, dim=2, channels=4, downsample=1, blocks=1,
                                      prior_channels=4, prior_layers=1), 0),
    "diffusion-vp": (lambda: DiffusionModel(2, hidden=H, sampler="dpmpp_2m", steps=3, method="euler",
                                            ode_steps=3), 0),
    "diffusion-ve-context": (lambda: DiffusionModel(2, sde="ve", parametrization="edm", hidden=H, context=2,
                                                    sampler="ddim", steps=3, method="euler", ode_steps=3), 2),
    "rbm-bernoulli-exact": (lambda: RBM(4, 3, steps=5, log_partition="exact"), 0),
    "rbm-gaussian-centered-exact": (lambda: RBM(2, 3, visible_kind="gaussian", centering=True, steps=5,
                                                log_partition="exact"), 0),
    "energy-context-quadrature": (lambda: Energy(1, context=2, hidden=H, steps=5, log_partition="quadrature"), 2),
    "jem-quadrature": (lambda: JEM(3, 2, hidden=H, steps=5, log_partition="quadrature"), 0),
    "product-quadrature": (lambda: ProductOfExperts(Energy(2, hidden=H), MAF(2, transforms=1, hidden=H), steps=5,
                                                    log_partition="quadrature"), 0),
}


def _build(name: str) -> tuple[nn.Module, Tensor | None]:
    factory, context = MODELS[name]
    torch.manual_seed(0)
    module = factory().eval()
    return module, (torch.randn(3, context) if context else None)


def _seeded(fn: Callable[[], Tensor], seed: int = 0) -> Tensor:
    r"""``fn()`` on the global RNG seeded with ``seed``: an estimate's ``log_prob`` draws the same numbers."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return fn()


def _flags() -> tuple[bool, ...]:
    return (
        bool(Distribution._validate_args),
        pyro.distributions.is_validation_enabled(),
        pyro.infer.util.is_validation_enabled(),
        pyro.poutine.util.is_validation_enabled(),
    )


def _set_flags(torch_default: bool, pyro_flag: bool) -> None:
    pyro.enable_validation(pyro_flag)  # also sets torch's default: torch's own flag is set after it
    Distribution.set_default_validate_args(torch_default)


@pytest.fixture
def keep_flags() -> Iterator[None]:
    r"""Restore torch's and Pyro's validation flags after the test, whatever it sets."""
    torch_default, pyro_flag, *_ = _flags()
    infer, poutine = pyro.infer.util.is_validation_enabled(), pyro.poutine.util.is_validation_enabled()
    yield
    pyro.distributions.enable_validation(pyro_flag)
    pyro.infer.enable_validation(infer)
    pyro.poutine.enable_validation(poutine)
    Distribution.set_default_validate_args(torch_default)


# ---------------------------------------------------------------- (a) pickling


@pytest.mark.parametrize("name", sorted(MODELS))
def test_distributions_pickle_and_score_the_same(name):
    module, c = _build(name)
    d = module(c)
    with torch.no_grad():
        x = _seeded(lambda: d.sample((3,))).clone()
        want = _seeded(lambda: d.log_prob(x))
        for loaded in (pickle.loads(pickle.dumps(d)), _torch_round_trip(d)):
            assert type(loaded) is type(d)
            assert loaded.batch_shape == d.batch_shape and loaded.event_shape == d.event_shape
            torch.testing.assert_close(_seeded(lambda q=loaded: q.log_prob(x)), want)


def _torch_round_trip(d: Distribution) -> Distribution:
    buffer = io.BytesIO()
    torch.save(d, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_the_pieces_pickle():
    # the parts a user may hold alone: a coupling/MADE transform, a hierarchical prior (a Chain), bases
    maf, nvp = MAF(2, transforms=1, hidden=H), RealNVP(2, transforms=1, hidden=H)
    x = torch.randn(4, 2)
    for t in (maf.transforms[0](), nvp.transforms[0]()):
        torch.testing.assert_close(pickle.loads(pickle.dumps(t))(x), t(x))
    prior = HierarchicalVAE(4, latents=(2, 2), hidden=H, top_hidden=H).prior_distribution()
    z = prior.sample((5,))
    torch.testing.assert_close(pickle.loads(pickle.dumps(prior)).log_prob(z), prior.log_prob(z))
    for base in (StandardNormal(2)(), DiagNormal(2)(), GaussianMixture(2, 3)()):
        torch.testing.assert_close(pickle.loads(pickle.dumps(base)).log_prob(x), base.log_prob(x))


# ---------------------------------------------------------------- (b) global validation flags


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_call_changes_the_global_validation_flags(name, keep_flags):
    module, c = _build(name)
    for torch_default, pyro_flag in itertools.product((False, True), (False, True)):
        _set_flags(torch_default, pyro_flag)
        before = _flags()
        assert before[:2] == (torch_default, pyro_flag)
        d = module(c)
        x = d.sample((2,))
        d.log_prob(x)
        if d.has_rsample:
            d.rsample((2,))
        if isinstance(d, LatentVariable):
            d.elbo(x)
        assert _flags() == before, f"{name} changed the flags {before} to {_flags()}"


def test_an_out_of_support_value_under_default_validation_off(keep_flags):
    # the reported case: torch's default off, Pyro's on; scoring -inf used to switch torch's default on
    _set_flags(False, True)
    vae = VAE(4, **KW)
    x = torch.tensor([[0.0, 1.0, 2.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
    lp = vae().log_prob(x)
    assert lp[0] == -math.inf and torch.isfinite(lp[1])
    assert _flags()[:2] == (False, True)


# ---------------------------------------------------------------- (c) NaN values


@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_nan_values_get_a_clear_error_or_minus_inf(name, validate, keep_flags):
    _set_flags(validate, validate)
    module, c = _build(name)
    if hasattr(module, "validate_args"):
        module.validate_args = validate  # a latent model's marginals take it from the module
    d = module(c)
    x = d.sample((2,)).clone()
    x.reshape(2, -1)[0, 0] = math.nan
    discrete = d.support.is_discrete
    if discrete and not validate:  # NaN is no value of a discrete support: log-density -inf, the rest untouched
        lp = _seeded(lambda: d.log_prob(x))
        assert bool((lp[0] == -math.inf).all()) and bool(torch.isfinite(lp[1]).all())
        return
    with pytest.raises(ValueError, match="`value`") as info:
        d.log_prob(x)
    assert ("NaN" in str(info.value)) or (discrete and "support" in str(info.value))


def test_bernoulli_vae_nan_reaches_no_network(keep_flags):
    # the reported case: validation off, a NaN in a binary value used to surface as torch's "Expected parameter loc"
    for torch_default in (False, True):
        _set_flags(torch_default, torch_default)
        for model in (VAE(4, **KW), IWAE(4, k=2, **KW), HierarchicalVAE(4, latents=(2, 2), hidden=H, top_hidden=H,
                                                                     particles=4)):
            model.validate_args = False
            x = torch.tensor([[0.0, math.nan, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
            for lp in (model().log_prob(x), model().log_weights(x).logsumexp(0), model().elbo(x)):
                assert lp[0] == -math.inf and torch.isfinite(lp[1])
            model.validate_args = True
            with pytest.raises(ValueError, match="`value`.*support"):
                model().log_prob(x)


def test_latent_models_pass_check_support():
    # -inf for out-of-support (and NaN) entries without validation, an error naming the value with it
    for model in (VAE(4, **KW), VAE((2, 3), family=Categorical(3), **KW),
                  HierarchicalVAE(4, latents=(2, 2), hidden=H, top_hidden=H, particles=4)):
        torch.manual_seed(0)
        check_support(model())


# ---------------------------------------------------------------- (d) what cannot be computed says what to do


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_family_explains_what_it_cannot_compute(name):
    module, c = _build(name)
    d = module(c)
    value = torch.zeros(d.event_shape) if "diffusion" in name else None  # spare a diffusion sample
    check_unimplemented(d, value)


def test_the_shared_pieces_explain_what_they_cannot_compute():
    first = StandardNormal(2)()
    chain = Chain(first, lambda u: StandardNormal(1)(u), 1)
    factorized = Factorized(Bernoulli(), torch.zeros(3, 4, 1))
    for d in (chain, factorized, first, DiagNormal(2)(), GaussianMixture(2, 3)(torch.zeros(4, 1)), Moons()):
        check_unimplemented(d)


def test_flow_messages_name_the_alternatives():
    flow = NSF(2, transforms=1, hidden=H)
    d = flow()
    x = d.sample()
    expect = {
        "mean": (lambda: d.mean, "d.sample((n,)).mean(0)"),
        "variance": (lambda: d.variance, "d.sample((n,)).var(0)"),
        "stddev": (lambda: d.stddev, ".std(0)"),
        "entropy": (d.entropy, "-d.log_prob(d.sample((n,))).mean(0)"),
        "cdf": (lambda: d.cdf(x), "d.sample((n,)) <= x"),
        "icdf": (lambda: d.icdf(torch.full((2,), 0.5)), "quantile"),
        "enumerate_support": (d.enumerate_support, "d.sample((n,))"),
        "kl": (lambda: kl_divergence(d, flow()), "gendist.metrics"),  # two calls build two sets of transforms
        "kl-other": (lambda: kl_divergence(d, StandardNormal(2)()), "p.log_prob(x) - q.log_prob(x)"),
        "kl-latent": (lambda: kl_divergence(VAE(2, **KW)(), d), "gendist.metrics"),
    }
    for what, (fn, words) in expect.items():
        with pytest.raises(NotImplementedError) as info:
            fn()
        assert words in str(info.value), (what, str(info.value))
    assert kl_divergence(d, d).abs().max() == 0  # the same transforms: the KL of the bases, as torch does


def test_check_unimplemented_rejects_bare_errors():
    class Bare(torch.distributions.Normal):
        @property
        def mean(self) -> Tensor:
            raise NotImplementedError

    class Vague(torch.distributions.Normal):
        def entropy(self) -> Tensor:
            raise NotImplementedError("not implemented")

    with pytest.raises(AssertionError, match="empty message"):
        check_unimplemented(Bare(torch.zeros(2), 1.0))
    with pytest.raises(AssertionError, match="names no alternative"):
        check_unimplemented(Vague(torch.zeros(2), 1.0))
