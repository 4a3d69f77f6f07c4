r"""The conformance registry: a small factory for every public model and transform, every option.

Each entry builds a fresh module. The conformance suite
(``tests/test_conformance.py``) runs every applicable public check on every
entry; users can register their own compositions and run the same suite:

Example:
    >>> from gendist.flows import NSF
    >>> entry = register_model("my-nsf", lambda: NSF(2, transforms=1, hidden=(8,)), features=2)
    >>> entry.name in MODELS
    True
    >>> del MODELS["my-nsf"]

An autoregressive model says so (``autoregressive=True``: the checks of
:mod:`gendist.testing.autoregressive` run on it too) and, for a discrete
family, ``discrete=True`` (flow-only checks are skipped or adapted, and the
quadrature check gives way to enumeration):

    >>> from gendist.autoregressive import MADE, Bernoulli
    >>> entry = register_model("my-made", lambda: MADE(4, family=Bernoulli(), hidden=(8,)), 4,
    ...                        discrete=True, autoregressive=True)
    >>> entry.normalize, entry.discrete
    (False, True)
    >>> del MODELS["my-made"]

A latent-variable model says its ``log_prob`` is a stochastic estimate
(``estimate=True``): the checks that compare two ``log_prob`` calls do so on
the same random numbers, and those that need an exact density (goodness of
fit, quadrature, fused paths) do not apply (``tests/test_latent_conformance.py``):

    >>> from gendist.latent import VAE
    >>> entry = register_model("my-vae", lambda: VAE(4, latent=2, hidden=(8,), particles=4), 4,
    ...                        discrete=True, estimate=True)
    >>> entry.normalize, entry.estimate
    (False, True)
    >>> del MODELS["my-vae"]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import constraints

from gendist.autoregressive import MADE, NADE, PixelCNN, Transformer, WaveNet
from gendist.distributions.bases import DiagNormal, GaussianMixture
from gendist.distributions.conditionals import (
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    Normal,
    NormalMixture,
)
from gendist.flows import (
    IAF,
    LU,
    MAF,
    NICE,
    NSF,
    ActNorm,
    BatchNorm,
    CouplingLayer,
    Elementwise,
    FlowModule,
    MaskedAutoregressive,
    Permute,
    PlanarFlow,
    PlanarLayer,
    RadialFlow,
    RadialLayer,
    RandomPermutation,
    RealNVP,
    Reverse,
    Standardize,
    SylvesterFlow,
    SylvesterLayer,
)
from gendist.flows.univariate import Spline
from gendist.latent import IWAE, VAE, HierarchicalVAE
from gendist.transforms import (
    LeakyReLU,
    LULinear,
    MonotonicAffine,
    MonotonicRQSpline,
    Permutation,
    Sigmoid,
    Softplus,
    ToSupport,
)

__all__ = ["ModelEntry", "OneOrder", "TransformEntry", "MODELS", "TRANSFORMS", "register_model",
           "register_transform"]


@dataclass
class ModelEntry:
    r"""A model factory and what the checks need to know about it.

    Attributes:
        name: a unique name.
        factory: builds a fresh module; ``module(c)`` returns a distribution.
        features: the event size :math:`D` (the number of entries of an event: :math:`C H W` for images).
        context: the context size (0 for none).
        normalize: whether quadrature normalization applies (1-2 features, light tails, continuous).
        tags: free-form labels (``"slow-log-prob"`` for IAF-oriented models, ...).
        discrete: whether values are discrete (a Bernoulli, Categorical or discretized family):
            checks of continuous densities (quadrature, extreme magnitudes, gradients w.r.t. the value)
            are skipped, goodness of fit becomes a chi-square test, and enumeration checks normalization.
        autoregressive: whether ``module(c)`` is an :class:`~gendist.distributions.Autoregressive`
            (or an :class:`~gendist.distributions.Ensemble` of them): the checks of
            :mod:`gendist.testing.autoregressive` apply.
        dtype: the dtype of the module's parameters (and of the contexts drawn for it); None for the default.
        estimate: whether ``log_prob`` is a stochastic estimate (``log_prob_kind = "estimate"``: a latent-variable
            model's importance-sampled marginal): goodness of fit, quadrature and fused-path checks are skipped,
            and comparisons of two ``log_prob`` calls run on the same random numbers.
    """

    name: str
    factory: Callable[[], nn.Module]
    features: int
    context: int = 0
    normalize: bool = True
    tags: frozenset[str] = field(default_factory=frozenset)
    discrete: bool = False
    autoregressive: bool = False
    dtype: torch.dtype | None = None
    estimate: bool = False


@dataclass
class TransformEntry:
    r"""A transform factory: ``factory(scale)`` builds a module whose call gives the transform.

    Attributes:
        name: a unique name.
        factory: ``factory(scale)`` builds a fresh module; parameters are
            then perturbed by noise of standard deviation ``scale``.
        features: the event size (0 for an elementwise map on scalars).
        context: the context size (0 for none).
        magnitude: the largest input magnitude the map inverts accurately at.
    """

    name: str
    factory: Callable[[float], nn.Module]
    features: int
    context: int = 0
    magnitude: float = 100.0


MODELS: dict[str, ModelEntry] = {}
TRANSFORMS: dict[str, TransformEntry] = {}


def register_model(name: str, factory: Callable[[], nn.Module], features: int, context: int = 0,
                   normalize: bool = True, tags: tuple[str, ...] = (), discrete: bool = False,
                   autoregressive: bool = False, dtype: torch.dtype | None = None,
                   estimate: bool = False) -> ModelEntry:
    r"""Add a model factory to :data:`MODELS` and return its entry (see :class:`ModelEntry`).

    ``normalize`` is turned off for more than two features, for discrete models and for estimates.
    """
    if name in MODELS:
        raise ValueError(f"a model named {name!r} is registered already")
    entry = ModelEntry(name, factory, features, context, normalize and features <= 2 and not discrete and not estimate,
                       frozenset(tags), discrete, autoregressive, dtype, estimate)
    MODELS[name] = entry
    return entry


def register_transform(name: str, factory: Callable[[float], nn.Module], features: int, context: int = 0,
                       magnitude: float = 100.0) -> TransformEntry:
    r"""Add a transform factory to :data:`TRANSFORMS` and return its entry."""
    if name in TRANSFORMS:
        raise ValueError(f"a transform named {name!r} is registered already")
    entry = TransformEntry(name, factory, features, context, magnitude)
    TRANSFORMS[name] = entry
    return entry


def perturb(module: nn.Module, scale: float, generator: torch.Generator | None = None) -> nn.Module:
    r"""Add Gaussian noise of standard deviation ``scale`` to every parameter (in place); return the module."""
    with torch.no_grad():
        for p in module.parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
            p.add_(scale * noise.to(p.device))
    return module


class _Stateless(nn.Module):
    """A module around a stateless transform built from a scale; ``.to(dtype)`` converts its tensors."""

    def __init__(self, build: Callable[[float], object], scale: float) -> None:
        super().__init__()
        self.build, self.scale = build, scale
        self.register_buffer("probe", torch.zeros(()))

    def forward(self, c: Tensor | None = None) -> object:
        t = self.build(self.scale)
        for key, value in list(vars(t).items()):
            if isinstance(value, Tensor) and value.dtype.is_floating_point:
                setattr(t, key, value.to(self.probe))
        return t


def _stateless(build: Callable[[float], object]) -> Callable[[float], nn.Module]:
    return lambda scale: _Stateless(build, scale)


# ---------------------------------------------------------------- models

_H = (16, 16)


def _models() -> None:
    m = register_model
    m("maf", lambda: MAF(2, transforms=2, hidden=_H), 2)
    m("maf-context", lambda: MAF(3, context=2, transforms=2, hidden=_H), 3, 2)
    m("maf-randperm", lambda: MAF(3, transforms=2, hidden=_H, randperm=True, seed=3), 3)
    m("maf-spline", lambda: MAF(2, transforms=2, hidden=_H, univariate="spline"), 2)
    m("maf-additive", lambda: MAF(2, transforms=2, hidden=_H, univariate="additive"), 2)
    m("maf-1d", lambda: MAF(1, transforms=2, hidden=_H), 1)
    m("maf-tanh", lambda: MAF(2, transforms=2, hidden=_H, activation=nn.Tanh), 2)
    m("maf-mixture-base", lambda: MAF(2, transforms=2, hidden=_H, base=GaussianMixture(2, 3)), 2)
    m("maf-diag-base", lambda: MAF(2, transforms=1, hidden=_H, base=DiagNormal(2)), 2)
    m("maf-laplace-base", lambda: MAF(2, transforms=1, hidden=_H,
                                      base=dist.Laplace(torch.zeros(2), torch.ones(2)).to_event(1)), 2)
    m("maf-positive", lambda: MAF(2, transforms=2, hidden=_H, support=constraints.positive), 2,
      normalize=False)  # log-normal-like spike at 0: a uniform grid cannot integrate it to 1e-3
    m("maf-interval", lambda: MAF(2, transforms=2, hidden=_H, support=constraints.interval(-2.0, 3.0)), 2)
    m("iaf", lambda: IAF(2, transforms=2, hidden=_H), 2, tags=("slow-log-prob",))
    m("iaf-context", lambda: IAF(3, context=2, transforms=2, hidden=_H), 3, 2, tags=("slow-log-prob",))
    m("nsf", lambda: NSF(2, transforms=2, hidden=_H), 2)
    m("nsf-context", lambda: NSF(3, context=2, transforms=2, hidden=_H), 3, 2)
    m("nsf-bins3-bound2", lambda: NSF(2, transforms=2, bins=3, bound=2.0, hidden=_H), 2)
    m("nsf-sample-fast", lambda: NSF(2, transforms=2, hidden=_H, fast="sample"), 2, tags=("slow-log-prob",))
    m("nsf-randperm", lambda: NSF(3, transforms=2, hidden=_H, randperm=True), 3)
    m("nsf-coupling", lambda: NSF(2, transforms=2, hidden=_H, coupling=True), 2)
    m("nsf-coupling-context", lambda: NSF(4, context=3, transforms=2, hidden=_H, coupling=True), 4, 3)
    m("nsf-coupling-masks", lambda: NSF(3, transforms=2, hidden=_H, coupling=True,
                                        masks=[torch.tensor([1, 1, 0]), torch.tensor([0, 1, 1])]), 3)
    m("realnvp", lambda: RealNVP(2, transforms=3, hidden=_H), 2)
    m("realnvp-masks", lambda: RealNVP(3, hidden=_H, masks=[torch.tensor([1, 0, 0]), torch.tensor([0, 1, 1]),
                                                           torch.tensor([1, 0, 1])]), 3)
    m("realnvp-context", lambda: RealNVP(3, context=2, transforms=2, hidden=_H), 3, 2)
    m("nice", lambda: NICE(2, transforms=2, hidden=_H), 2)
    m("nice-context", lambda: NICE(3, context=1, transforms=2, hidden=_H), 3, 1)
    m("composed", lambda: FlowModule([
        ActNorm(3), LU(3), Reverse(3), Elementwise(3, univariate="spline"),
        MaskedAutoregressive(3, hidden=_H), RandomPermutation(3, seed=0), BatchNorm(3).eval(),
        Elementwise(3, univariate="additive"),
    ], features=3), 3)
    m("planar", lambda: PlanarFlow(2, transforms=3), 2)
    m("planar-context", lambda: PlanarFlow(3, context=2, transforms=2, hidden=_H), 3, 2)
    m("radial", lambda: RadialFlow(2, transforms=3), 2)
    m("radial-context", lambda: RadialFlow(3, context=2, transforms=2, hidden=_H), 3, 2)
    m("sylvester", lambda: SylvesterFlow(2, transforms=2), 2)
    m("sylvester-rank1-context", lambda: SylvesterFlow(3, context=2, transforms=2, hidden=_H, rank=1), 3, 2)
    m("composed-context", lambda: FlowModule([
        Elementwise(2, context=2, univariate=Spline(4, 3.0), hidden=(8,)), LU(2), Permute([1, 0]),
        CouplingLayer(2, torch.tensor([True, False]), context=2, hidden=_H),
    ], features=2, context=2), 2, 2)


class OneOrder(nn.Module):
    r"""A multi-order model fixed to one order: ``OneOrder(made, k)(c)`` is ``made(c, k=k)``.

    Example:
        >>> made = MADE(3, family=Bernoulli(), hidden=(8,), orders=2)
        >>> OneOrder(made, 1)().model.ordering() == made._orderings[1]
        True
    """

    def __init__(self, model: nn.Module, k: int) -> None:
        super().__init__()
        self.model, self.k = model, int(k)
        self.context = getattr(model, "context", 0)

    def forward(self, c: Tensor | None = None) -> object:
        return self.model(c, k=self.k)


def _autoregressive_models() -> None:
    # one line per model: register_model(name, factory, features, context, discrete=..., autoregressive=True)
    m, d, f64 = functools.partial(register_model, autoregressive=True), True, torch.float64
    m("made-bernoulli", lambda: MADE(4, Bernoulli(), hidden=_H), 4, discrete=d)
    m("made-bernoulli-context", lambda: MADE(4, Bernoulli(), hidden=_H, context=2), 4, 2, discrete=d)
    m("made-bernoulli-random-order-tanh", lambda: MADE(5, Bernoulli(), hidden=(16,), order="random",
                                                         activation=nn.Tanh, seed=3), 5, discrete=d)
    m("made-bernoulli-no-hidden", lambda: MADE(3, Bernoulli(), hidden=()), 3, discrete=d)
    m("made-categorical-onehot", lambda: MADE(3, Categorical(3), hidden=_H), 3, discrete=d)
    m("made-categorical-scalar-context", lambda: MADE(3, Categorical(4, encode="scalar"), hidden=_H,
                                                        context=2), 3, 2, discrete=d)
    m("made-dlogistic", lambda: MADE(3, DiscretizedLogisticMixture(6, 2), hidden=_H), 3, discrete=d)
    m("made-dlogistic-context-order", lambda: MADE(3, DiscretizedLogisticMixture(4, 3), hidden=_H, context=2,
                                                     order=[2, 0, 1]), 3, 2, discrete=d)
    m("made-normal", lambda: MADE(2, Normal(), hidden=_H), 2)
    m("made-normal-1d", lambda: MADE(1, Normal(), hidden=_H), 1)
    m("made-normal-context-random-order", lambda: MADE(3, Normal(), hidden=_H, context=2, order="random",
                                                         seed=1), 3, 2)
    m("made-normal-mixture", lambda: MADE(2, NormalMixture(3), hidden=_H), 2)
    m("made-normal-mixture-context", lambda: MADE(3, NormalMixture(2), hidden=_H, context=2), 3, 2)
    m("made-bernoulli-orders3", lambda: MADE(4, Bernoulli(), hidden=_H, orders=3), 4, discrete=d)  # an Ensemble
    m("made-normal-orders3", lambda: MADE(2, Normal(), hidden=_H, orders=3), 2)
    m("made-bernoulli-direct-orders2", lambda: MADE(5, Bernoulli(), hidden=_H, orders=2, direct=True), 5, discrete=d)
    m("made-normal-direct-context", lambda: MADE(3, Normal(), hidden=_H, context=2, direct=True), 3, 2)
    m("made-categorical-orders3-k1-context", lambda: OneOrder(MADE(3, Categorical(3), hidden=_H, orders=3,
                                                                     context=2), 1), 3, 2, discrete=d)
    m("made-bernoulli-float64", lambda: MADE(4, Bernoulli(), hidden=_H).double(), 4, discrete=d, dtype=f64)
    m("made-normal-float64-context", lambda: MADE(2, Normal(), hidden=_H, context=2).double(), 2, 2, dtype=f64)
    m("nade-bernoulli", lambda: NADE(4, Bernoulli(), hidden=16), 4, discrete=d)
    m("nade-categorical-random-order-relu", lambda: NADE(3, Categorical(3), hidden=16, order="random",
                                                           activation=nn.ReLU, seed=2), 3, discrete=d)
    m("nade-normal-mixture-context", lambda: NADE(2, NormalMixture(2), hidden=16, context=2), 2, 2)
    m("nade-normal-float64", lambda: NADE(2, Normal(), hidden=16).double(), 2, dtype=f64)
    m("pixelcnn-bernoulli", lambda: PixelCNN((1, 2, 3), Bernoulli(), channels=8, layers=2, kernel=3), 6, discrete=d)
    m("pixelcnn-categorical-rgb-context", lambda: PixelCNN((3, 1, 2), Categorical(3), channels=9, layers=2,
                                                           kernel=3, context=2), 6, 2, discrete=d)
    m("pixelcnn-dlogistic", lambda: PixelCNN((1, 2, 2), DiscretizedLogisticMixture(4, 2), channels=8, layers=1,
                                             kernel=3), 4, discrete=d)
    m("pixelcnn-normal", lambda: PixelCNN((1, 1, 2), Normal(), channels=8, layers=1, kernel=3), 2)
    m("wavenet-bernoulli", lambda: WaveNet(5, Bernoulli(), channels=8, blocks=1, layers=2), 5, discrete=d)
    m("wavenet-dlogistic-context", lambda: WaveNet(4, DiscretizedLogisticMixture(4, 2), channels=8, blocks=2,
                                                   layers=1, context=2), 4, 2, discrete=d)
    m("wavenet-normal-mixture", lambda: WaveNet(2, NormalMixture(2), channels=8, blocks=1, layers=2), 2)
    m("transformer-categorical", lambda: Transformer(4, Categorical(3), d_model=16, heads=2, layers=1), 4,
      discrete=d)
    m("transformer-bernoulli-context", lambda: Transformer(5, Bernoulli(), d_model=16, heads=4, layers=2,
                                                           context=2), 5, 2, discrete=d)
    m("transformer-normal-context", lambda: Transformer(2, Normal(), d_model=16, heads=2, layers=1, context=2), 2, 2)
    m("transformer-normal-float64", lambda: Transformer(2, Normal(), d_model=16, heads=2, layers=1).double(), 2,
      dtype=f64)


def _latent_models() -> None:
    # one line per model: register_model(name, factory, features, context, discrete=..., estimate=True);
    # tiny (latent 2, one hidden layer of 16, 16 particles): log_prob is an importance-sampled estimate
    m, d, f64 = functools.partial(register_model, estimate=True), True, torch.float64
    kw = dict(latent=2, hidden=(16,), particles=16)
    m("vae-bernoulli", lambda: VAE(4, **kw), 4, discrete=d)
    m("vae-normal-context", lambda: VAE(3, family=Normal(), context=2, **kw), 3, 2)
    m("vae-normal-fixed-scale", lambda: VAE(3, family=Normal(0.5), **kw), 3)
    m("vae-normal-learned-scale", lambda: VAE(3, family=Normal(), learned_scale=True, **kw), 3)
    m("vae-categorical-image", lambda: VAE((2, 3), family=Categorical(3), **kw), 6, discrete=d)
    m("vae-dlogistic-chunked", lambda: VAE(3, family=DiscretizedLogisticMixture(4, 2), chunk=5, **kw), 3,
      discrete=d)
    m("vae-full-encoder", lambda: VAE(4, family=Normal(), encoder="full", **kw), 4)
    m("vae-flow-encoder-context", lambda: VAE(4, encoder="flow", flow_steps=1, context=2, **kw), 4, 2, discrete=d)
    m("vae-mixture-prior-context", lambda: VAE(3, family=Normal(), prior="mixture", components=3, context=1, **kw),
      3, 1)
    m("vae-flow-prior", lambda: VAE(4, prior="flow", flow_steps=1, **kw), 4, discrete=d)
    m("vae-vamp-prior", lambda: VAE(5, family=Normal(), prior="vamp", components=3, **kw), 5)
    m("vae-beta-warmup", lambda: VAE(4, beta=4.0, warmup=10, **kw), 4, discrete=d)
    m("iwae-bernoulli", lambda: IWAE(4, k=5, **kw), 4, discrete=d)
    m("iwae-normal-float64-context", lambda: IWAE(3, k=3, family=Normal(), context=2, **kw).double(), 3, 2,
      dtype=f64)
    m("vae-full-encoder-float64", lambda: VAE(4, encoder="full", **kw).double(), 4, discrete=d, dtype=f64)
    hkw = dict(latents=(2, 2), hidden=(16,), top_hidden=(16,), particles=16)
    m("hvae-bernoulli", lambda: HierarchicalVAE(4, **hkw), 4, discrete=d)
    m("hvae-normal-context", lambda: HierarchicalVAE(3, family=Normal(), context=2, **hkw), 3, 2)


# ---------------------------------------------------------------- transforms

def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spline(scale: float, bins: int = 6, bound: float = 3.0) -> MonotonicRQSpline:
    g = _g()
    return MonotonicRQSpline(scale * torch.randn(bins, generator=g), scale * torch.randn(bins, generator=g),
                             scale * torch.randn(bins - 1, generator=g), bound=bound)


def _lu(scale: float) -> LULinear:
    g = _g()
    upper = torch.eye(3) + scale * torch.randn(3, 3, generator=g).triu(1)
    return LULinear(scale * torch.randn(3, 3, generator=g), upper, torch.randn(3, generator=g))


def _transforms() -> None:
    t = register_transform
    t("monotonic-affine", _stateless(lambda s: MonotonicAffine(torch.tensor(s), torch.tensor(-s / 2))), 0)
    t("shift", _stateless(lambda s: MonotonicAffine(torch.tensor(s))), 0)
    t("rq-spline", _stateless(_spline), 0)
    t("rq-spline-2bins-bound10", _stateless(lambda s: _spline(s, bins=2, bound=10.0)), 0)
    t("rq-spline-16bins-bound0.5", _stateless(lambda s: _spline(s, bins=16, bound=0.5)), 0)
    t("sigmoid", _stateless(lambda s: Sigmoid()), 0, magnitude=15.0)
    t("softplus", _stateless(lambda s: Softplus()), 0, magnitude=30.0)
    t("leaky-relu", _stateless(lambda s: LeakyReLU(0.05 + abs(s))), 0)
    t("to-support-interval", _stateless(lambda s: ToSupport(constraints.interval(-1.0, 2.0 + abs(s)))), 0,
      magnitude=15.0)
    t("permutation", _stateless(lambda s: Permutation(torch.tensor([2, 0, 1]))), 3)
    t("lu-linear", _stateless(_lu), 3, magnitude=100.0)
    for uni in ("affine", "additive", "spline"):
        t(f"elementwise-{uni}", lambda s, u=uni: Elementwise(3, univariate=u), 3)
        t(f"elementwise-{uni}-context", lambda s, u=uni: Elementwise(3, context=2, univariate=u, hidden=(8,)), 3, 2)
        t(f"coupling-{uni}", lambda s, u=uni: CouplingLayer(3, torch.tensor([1, 0, 1]), univariate=u, hidden=_H), 3)
        t(f"coupling-{uni}-context", lambda s, u=uni: CouplingLayer(
            4, torch.tensor([0, 1, 0, 0]), context=2, univariate=u, hidden=_H), 4, 2)
        for fast in ("log_prob", "sample"):
            t(f"made-{uni}-{fast}", lambda s, u=uni, f=fast: MaskedAutoregressive(
                3, univariate=u, fast=f, hidden=_H, order=torch.tensor([1, 2, 0])), 3)
            t(f"made-{uni}-{fast}-context", lambda s, u=uni, f=fast: MaskedAutoregressive(
                3, context=2, univariate=u, fast=f, hidden=_H), 3, 2)
    t("made-spline-bins3-bound1", lambda s: MaskedAutoregressive(2, univariate=Spline(3, 1.0), hidden=_H), 2)
    t("planar", lambda s: PlanarLayer(3), 3)
    t("planar-context", lambda s: PlanarLayer(3, context=2, hidden=(8,)), 3, 2)
    t("radial", lambda s: RadialLayer(3), 3)
    t("radial-context", lambda s: RadialLayer(3, context=2, hidden=(8,)), 3, 2)
    t("sylvester", lambda s: SylvesterLayer(3), 3)
    t("sylvester-rank2-context", lambda s: SylvesterLayer(4, context=2, hidden=(8,), rank=2), 4, 2)
    t("lu", lambda s: LU(3), 3)
    t("reverse", lambda s: Reverse(4), 4)
    t("random-permutation", lambda s: RandomPermutation(5, seed=1), 5)
    t("permute", lambda s: Permute([0, 2, 1]), 3)
    t("actnorm", lambda s: ActNorm(3), 3)
    t("batchnorm-eval", lambda s: BatchNorm(3).eval(), 3)
    t("standardize", lambda s: Standardize.from_data(torch.tensor([[1.0, -5.0, 30.0], [2.0, 5.0, 50.0]])), 3)


def build_transform(entry: TransformEntry, scale: float, seed: int,
                    dtype: torch.dtype = torch.float64) -> tuple[nn.Module, Tensor | None]:
    r"""Build an entry's module with parameters perturbed by ``scale`` (seeded), and a context if it needs one."""
    g = _g(seed)
    with torch.random.fork_rng():  # the default initialization draws from the global RNG
        torch.manual_seed(seed)
        module = entry.factory(scale)
    perturb(module, scale, g).to(dtype)
    c = torch.randn(4, entry.context, generator=g, dtype=dtype) if entry.context else None
    return module, c


_models()
_autoregressive_models()
_latent_models()
_transforms()
