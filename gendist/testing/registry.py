r"""The conformance registry: one entry type for every public model and transform, every option.

Each entry builds a fresh module and declares what the checks need to know
about it: its family, whether its values are discrete, what its ``log_prob``
is (``log_prob_kind``), its context size and dtype, and which checks do not
apply, each with its reason. The conformance suite
(``tests/test_conformance.py``) runs every check of :data:`CHECKS` on every
entry that does not skip it, and the checks of :data:`FAMILY_CHECKS` on the
entries of that family; users can register their own compositions and run the
same suite:

Example:
    >>> from gendist.flows import NSF
    >>> entry = register_model("my-nsf", lambda: NSF(2, transforms=1, hidden=(8,)), features=2)
    >>> entry.name in MODELS, entry.family, entry.runs("normalized")
    (True, 'flow', True)
    >>> del MODELS["my-nsf"]

What an entry declares decides the rest. A discrete family gives way to
enumeration instead of quadrature and drops the checks of continuous
densities; an autoregressive model adds the checks of
:mod:`gendist.testing.autoregressive`:

    >>> from gendist.autoregressive import MADE, Bernoulli
    >>> entry = register_model("my-made", lambda: MADE(4, family=Bernoulli(), hidden=(8,)), 4,
    ...                        family="autoregressive", discrete=True)
    >>> entry.runs("normalized"), entry.runs("enumeration"), entry.skip["normalized"]
    (False, True, 'quadrature needs a continuous density of 1 or 2 numbers: enumeration checks a discrete one')
    >>> del MODELS["my-made"]

A latent-variable model's ``log_prob`` is a stochastic estimate
(``log_prob_kind="estimate"``): the checks that compare two ``log_prob`` calls
do so on the same random numbers, and those that need an exact density
(goodness of fit, quadrature, fused paths) are skipped, saying why:

    >>> from gendist.latent import VAE
    >>> entry = register_model("my-vae", lambda: VAE(4, latent=2, hidden=(8,), particles=4), 4,
    ...                        family="latent", discrete=True, log_prob_kind="estimate")
    >>> entry.estimate, entry.runs("sample_log_prob"), entry.runs("bounds")
    (True, False, True)
    >>> del MODELS["my-vae"]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pyro.distributions as dist
import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution, constraints

from gendist.autoregressive import MADE, NADE, PixelCNN, Transformer, WaveNet
from gendist.diffusion import DiffusionModel
from gendist.distributions import (
    Autoregressive,
    Diffusion,
    EnergyBased,
    Ensemble,
    Flow,
    Implicit,
    LatentVariable,
    VQVAEDistribution,
)
from gendist.distributions.bases import DiagNormal, GaussianMixture
from gendist.distributions.conditionals import (
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    Normal,
    NormalMixture,
)
from gendist.ebm import JEM, RBM, Energy, ProductOfExperts
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
from gendist.gan import GAN, CycleGAN, Pix2Pix, ProgressiveGAN, TextToImage
from gendist.latent import IWAE, VAE, VQVAE, HierarchicalVAE
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

__all__ = [
    "CHECKS",
    "FAMILIES",
    "FAMILY_CHECKS",
    "MODELS",
    "TRANSFORMS",
    "ModelEntry",
    "OneOrder",
    "Settings",
    "Unnormalized",
    "TransformEntry",
    "build_model",
    "build_transform",
    "draw_context",
    "entries",
    "perturb",
    "register_model",
    "register_transform",
]

Family = Literal["flow", "autoregressive", "latent", "vqvae", "diffusion", "energy", "gan"]
Kind = Literal["exact", "bound", "estimate", "unnormalized", "none"]

FAMILIES: dict[str, tuple[type[Distribution], ...]] = {
    "flow": (Flow,),
    "autoregressive": (Autoregressive, Ensemble),
    "latent": (LatentVariable,),
    "vqvae": (VQVAEDistribution,),
    "diffusion": (Diffusion,),
    "energy": (EnergyBased,),
    "gan": (Implicit,),
}
r"""Each family and the distribution classes its modules build."""

CHECKS: dict[str, str] = {
    "builds": "module(c) is a distribution of the entry's family, support, event size and dtype",
    "log_prob_kind": "check_log_prob_kind(d, entry.log_prob_kind): the declared kind, honest about randomness",
    "shapes": "check_shapes(d): sample/rsample/log_prob shapes, support, expand, to_event",
    "bad_inputs": "check_bad_inputs(d): NaN, infinite, integer and wrongly shaped values rejected clearly",
    "support": "check_support(d): out-of-support values give -inf, or a clear error with validate_args",
    "pyro": "check_pyro(d): a pyro.sample site in a plate, under trace, condition and mask",
    "batches": "check_shapes and check_pyro over hypothesis-drawn batch shapes, seeds and perturbations",
    "float64": "check_float64(module, c)",
    "state_dict": "check_state_dict(factory, c): a weights_only round trip reproduces log_prob",
    "gradients": "check_gradients(module, x, c): finite gradients reach every parameter",
    "extreme_inputs": "check_extreme_inputs(module, c): finite log_prob and gradients at |x| ~ 30, 1e3",
    "normalized": "check_normalized(d): the density integrates to 1 by quadrature",
    "enumeration": "check_enumeration(d): the probabilities of every value sum to 1",
    "sample_log_prob": "check_sample_log_prob(d): samples follow log_prob (goodness of fit)",
    "fused_paths": "rsample_and_log_prob / sample_and_log_prob agree with log_prob, over hypothesis draws",
    "unimplemented": "check_unimplemented(d): mean, variance, entropy, cdf, ... work or say what to use instead",
}
r"""The checks run on every entry that does not skip them, by name."""

FAMILY_CHECKS: dict[str, dict[str, str]] = {
    "autoregressive": {
        "autoregressive": "check_autoregressive(module, c, connected=False) over hypothesis draws: no peeking",
        "connected": "check_autoregressive(module, c) on three initializations: each position sees an earlier one",
        "cached_sampling": "check_cached_sampling(d) over hypothesis draws",
        "inpaint": "check_inpaint(d) on each order",
    },
    "energy": {
        "log_partition": "check_log_partition(d): AIS within 4 standard errors of the exact log Z, and reverse AIS "
                         "from exact draws on its other side",
    },
    "gan": {
        "implicit": "check_implicit(d, generator=...) on a context and a batch of two (the unconditional d and "
                    "d.expand((2,))), and check_reparameterized in training mode; the generator is module.sampler "
                    "or the submodules Settings(options={'generator': names}) names: in place of shapes and pyro",
        "implicit_batches": "check_implicit over hypothesis-drawn batch shapes, seeds and perturbations: in place of "
                            "batches",
        "float64_samples": "module.double() samples, rsamples and scores with its critic in float64: in place of "
                           "float64",
        "same_samples": "a weights_only state_dict round trip reproduces samples on the same random numbers, push(z) "
                        "and the critic's scores: in place of state_dict",
        "critic": "critic(x, c) has shape (N,), finite scores and finite gradients in x and in every critic "
                  "parameter, at samples and at |x| ~ 30, 1e3, and rejects a wrong event shape and integers: in "
                  "place of extreme_inputs and bad_inputs",
        "trains": "each objective's loss reaches every parameter it trains with a finite gradient; fit steps each "
                  "objective (and the EMA) with finite losses and weights: in place of gradients",
    },
    "latent": {
        "bounds": "check_bounds(module, x): ELBO <= IWAE_1 <= IWAE_4 <= IWAE_32, statistically",
        "same_seed": "the same random numbers give the same estimate, chunked or not, and from log_weights",
        "no_random_numbers": "building the marginal draws no random numbers",
    },
}
r"""The checks specific to one family, run on each of its entries that does not skip them."""


@dataclass(frozen=True)
class Settings:
    r"""How one check runs on one entry, where it differs from the suite's defaults.

    Attributes:
        scale: the standard deviation of the noise added to the parameters (None: the check's default).
        call: keyword arguments of the call building the distribution, ``module(c, **call)`` (a diffusion
            model's solver and sampler).
        options: keyword arguments of the check itself (``check_normalized(d, **options)``).
        float64: whether a continuous model runs in float64 (peaked float32 densities under large
            perturbations move by more than the check's float32 tolerance).
    """

    scale: float | None = None
    call: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    float64: bool = False


_DEFAULT = Settings()


@dataclass(frozen=True)
class ModelEntry:
    r"""A model factory and what the checks need to know about it; one type for every family.

    Attributes:
        name: a unique name.
        factory: builds a fresh module; ``module(c)`` returns a distribution.
        features: the event size :math:`D` (the number of entries of an event: :math:`C H W` for images).
        context: the context size (0 for none).
        family: ``"flow"``, ``"autoregressive"``, ``"latent"``, ``"vqvae"``, ``"diffusion"``, ``"energy"`` or
            ``"gan"`` (see :data:`FAMILIES`): the class ``module(c)`` must be, and which :data:`FAMILY_CHECKS` apply.
        discrete: whether values are discrete (a Bernoulli, Categorical or discretized family).
        log_prob_kind: what ``log_prob`` is, as the distribution must declare it: ``"exact"``, ``"bound"``
            (a deterministic lower bound), ``"estimate"`` (stochastic: comparisons run on the same random
            numbers), ``"unnormalized"`` or ``"none"`` (no ``log_prob``: an implicit distribution).
        dtype: the dtype of the module's parameters (and of the contexts drawn for it); None for the default.
        skip: the checks that do not apply (names of :data:`CHECKS` or :data:`FAMILY_CHECKS`), each with why.
        settings: how a check runs on this entry where it differs from the defaults (see :class:`Settings`).
        tags: free-form labels (``"slow-log-prob"`` for IAF-oriented models, ...).
        vocab: for a context of token ids (a caption), the vocabulary size: :func:`draw_context` draws ids
            ``1 .. vocab - 1`` (as floats); 0 for a real context, drawn standard normal.
    """

    name: str
    factory: Callable[[], nn.Module]
    features: int
    context: int = 0
    family: Family = "flow"
    discrete: bool = False
    log_prob_kind: Kind = "exact"
    dtype: torch.dtype | None = None
    skip: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Settings] = field(default_factory=dict)
    tags: frozenset[str] = field(default_factory=frozenset)
    vocab: int = 0

    @property
    def autoregressive(self) -> bool:
        r"""Whether the checks of :mod:`gendist.testing.autoregressive` apply."""
        return self.family == "autoregressive"

    @property
    def estimate(self) -> bool:
        r"""Whether ``log_prob`` is a stochastic estimate."""
        return self.log_prob_kind == "estimate"

    @property
    def normalize(self) -> bool:
        r"""Whether quadrature normalization applies."""
        return self.runs("normalized")

    def runs(self, check: str) -> bool:
        r"""Whether ``check`` (a name of :data:`CHECKS` or of this family's :data:`FAMILY_CHECKS`) runs here."""
        if check in CHECKS:
            return check not in self.skip
        return check in FAMILY_CHECKS.get(self.family, {}) and check not in self.skip

    def settings_for(self, check: str) -> Settings:
        r"""How ``check`` runs on this entry (the defaults unless :attr:`settings` says otherwise)."""
        return self.settings.get(check, _DEFAULT)


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

_QUADRATURE = "quadrature needs a continuous density of 1 or 2 numbers: enumeration checks a discrete one"


_NONE = "log_prob raises LogProbUnavailable (log_prob_kind 'none'): "
_NO_LOG_PROB: dict[str, str] = {
    "shapes": _NONE + "check_shapes scores the samples; the gan family's 'implicit' check (check_implicit) checks "
                      "sample/rsample shapes, the support, expand and to_event",
    "pyro": _NONE + "check_pyro compares the site's log_prob with d.log_prob; 'implicit' checks the sites' shapes, "
                    "that scoring them raises, Predictive and EnergyDistance",
    "batches": _NONE + "check_shapes and check_pyro score samples; 'implicit_batches' runs check_implicit over the "
                       "drawn batch shapes",
    "bad_inputs": _NONE + "there is no log_prob to reject bad values; 'critic' checks the critic rejects a wrong "
                          "event shape and integers",
    "support": _NONE + "out-of-support values cannot be scored -inf; 'implicit' checks the samples lie in the support",
    "float64": _NONE + "check_float64 scores float64 samples; 'float64_samples' samples and scores with the critic",
    "state_dict": _NONE + "check_state_dict compares log_prob; 'same_samples' compares samples, push(z) and the "
                          "critic's scores",
    "gradients": _NONE + "check_gradients differentiates log_prob; 'trains' differentiates the objectives, "
                         "'implicit' rsample",
    "extreme_inputs": _NONE + "far-out values cannot be scored; 'critic' scores them by the critic",
    "normalized": _NONE + "there is no density to integrate",
    "enumeration": _NONE + "there are no probabilities to sum",
    "sample_log_prob": _NONE + "there is no density to test the samples against (compare samples with data by "
                               "gendist.metrics)",
    "fused_paths": _NONE + "there is no fused sample-and-log-prob path",
}


def _declared_skips(features: int, family: str, discrete: bool, kind: str) -> dict[str, str]:
    r"""The checks an entry's declarations rule out, with why."""
    skip: dict[str, str] = {}
    if discrete or features > 2:
        skip["normalized"] = _QUADRATURE
    if discrete:
        skip["extreme_inputs"] = "values are integers: there are no far-out magnitudes to score"
    else:
        skip["enumeration"] = "a continuous support: quadrature (normalized) checks normalization"
    if kind == "estimate":
        why = "log_prob is a stochastic estimate: {} needs an exact density"
        for check, what in (("normalized", "quadrature"), ("enumeration", "enumeration"),
                            ("sample_log_prob", "goodness of fit"), ("fused_paths", "agreement of two paths")):
            skip[check] = why.format(what)
    elif kind == "bound":
        why = "log_prob is a lower bound: {}"
        skip["normalized"] = skip["enumeration"] = why.format("it integrates to less than 1")
        skip["sample_log_prob"] = why.format("the samples follow the marginal, not the bound")
    elif kind == "unnormalized":
        why = "log Z is unknown (log_prob is -E(x), up to a constant): {}"
        skip["normalized"] = skip["enumeration"] = why.format("it does not integrate to 1")
        skip["sample_log_prob"] = why.format("goodness of fit needs the normalized density")
    elif kind == "none":
        skip.update(_NO_LOG_PROB)
    if family == "energy":
        skip["fused_paths"] = "sampled by MCMC: there is no fused sample-and-log-prob path to compare"
        if not discrete:
            skip["batches"] = ("each draw runs MCMC and a quadrature of log Z: 15 drawn batch shapes per entry would "
                               "add 20-80 s (shapes and pyro check a batch of contexts; the binary entries draw them)")
    if family == "flow":
        skip["batches"] = ("a flow's batch shape only broadcasts its context (shapes and pyro check a batch of "
                           "contexts); 15 drawn batch shapes on every flow would add ~15 s")
    elif family == "diffusion":
        skip["batches"] = ("each draw samples and scores through the PF-ODE: 15 drawn batch shapes per entry would "
                           "add ~60 s (shapes and pyro check a batch of contexts)")
    return skip


def register_model(name: str, factory: Callable[[], nn.Module], features: int, context: int = 0, *,
                   family: Family | None = None, discrete: bool = False, log_prob_kind: Kind | None = None,
                   dtype: torch.dtype | None = None, skip: Mapping[str, str] | None = None,
                   settings: Mapping[str, Settings] | None = None, normalize: bool = True,
                   tags: tuple[str, ...] = (), autoregressive: bool = False, estimate: bool = False,
                   vocab: int = 0) -> ModelEntry:
    r"""Add a model factory to :data:`MODELS` and return its entry (see :class:`ModelEntry`).

    The checks that ``features``, ``discrete`` and ``log_prob_kind`` rule out are skipped with their reasons;
    ``skip`` adds (or rewords) others. ``normalize=False`` skips quadrature. ``autoregressive=True`` is
    ``family="autoregressive"``; ``estimate=True`` is ``family="latent", log_prob_kind="estimate"``.
    """
    if name in MODELS:
        raise ValueError(f"a model named {name!r} is registered already")
    family = family or ("autoregressive" if autoregressive else "latent" if estimate else "flow")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    kind = log_prob_kind or ("estimate" if estimate else "exact")
    declared = _declared_skips(features, family, discrete, kind)
    if not normalize:
        declared.setdefault("normalized", "declared not to integrate to 1 on a grid (normalize=False)")
    declared.update(skip or {})
    known = set(CHECKS) | set(FAMILY_CHECKS.get(family, {}))
    for check in (*declared, *(settings or {})):
        if check not in known:
            raise ValueError(f"{name}: no check named {check!r} applies to a {family} model; known: {sorted(known)}")
    if not all(isinstance(why, str) and why for why in declared.values()):
        raise ValueError(f"{name}: every skipped check needs a reason")
    entry = ModelEntry(name, factory, features, context, family, discrete, kind, dtype,
                       MappingProxyType(declared), MappingProxyType(dict(settings or {})), frozenset(tags), vocab)
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


def entries(check: str, family: str | None = None) -> list[ModelEntry]:
    r"""The entries (of ``family``, or all) ``check`` runs on, sorted by name."""
    return [e for _, e in sorted(MODELS.items()) if (family is None or e.family == family) and e.runs(check)]


def perturb(module: nn.Module, scale: float, generator: torch.Generator | None = None) -> nn.Module:
    r"""Add Gaussian noise of standard deviation ``scale`` to every parameter (in place); return the module."""
    with torch.no_grad():
        for p in module.parameters():
            noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
            p.add_(scale * noise.to(p.device))
    return module


def build_model(entry: ModelEntry, scale: float = 0.3, seed: int = 0, float64: bool = False) -> nn.Module:
    r"""An entry's module built after ``torch.manual_seed(seed)``, its parameters perturbed by ``scale`` (seeded),
    in eval mode (ActNorm's data-dependent initialization and batch statistics would change the map between
    sampling and scoring); with ``float64``, a continuous model in float64."""
    torch.manual_seed(seed)
    module = perturb(entry.factory(), scale, torch.Generator().manual_seed(seed)).eval()
    return module.double() if float64 and not entry.discrete else module


def draw_context(entry: ModelEntry, *batch: int, seed: int = 0,
                 dtype: torch.dtype | None = None) -> Tensor | None:
    r"""A seeded standard-normal context of batch shape ``batch`` (None for an unconditional entry); token ids
    ``1 .. vocab - 1`` as floats for an entry with a ``vocab``."""
    if not entry.context:
        return None
    g = torch.Generator().manual_seed(seed)
    dtype = dtype or entry.dtype or torch.get_default_dtype()
    if entry.vocab:
        return torch.randint(1, entry.vocab, (*batch, entry.context), generator=g).to(dtype)
    return torch.randn(*batch, entry.context, generator=g, dtype=dtype)


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


# ---------------------------------------------------------------- flows

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
      skip={"normalized": "a log-normal-like spike at 0: a uniform grid cannot integrate it to 1e-3"})
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


# ---------------------------------------------------------------- autoregressive models


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


# large perturbations make peaked float32 densities (scales near the 1e-3 floor, means near 20) whose
# log-probabilities move by 1e-3 when the batch composition or the summation order changes: beyond float32
# tolerances, so continuous autoregressive models run these in float64 (discrete ones are exact in float32)
_PRECISE = MappingProxyType({"batches": Settings(float64=True), "cached_sampling": Settings(float64=True)})


def _autoregressive_models() -> None:
    # one line per model: register_model(name, factory, features, context, discrete=...)
    m = functools.partial(register_model, family="autoregressive", settings=_PRECISE)
    d, f64 = True, torch.float64
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


# ---------------------------------------------------------------- latent-variable models


def _latent_models() -> None:
    # one line per model: register_model(name, factory, features, context, discrete=...);
    # tiny (latent 2, one hidden layer of 16, 16 particles): log_prob is an importance-sampled estimate
    m = functools.partial(register_model, family="latent", log_prob_kind="estimate")
    d, f64 = True, torch.float64
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


def _vqvae_models() -> None:
    # log_prob is log p(x | k(x)) + log p(k(x)) at the encoder's nearest codes: deterministic, a lower bound
    m = functools.partial(register_model, family="vqvae", log_prob_kind="bound", settings={
        check: Settings(options={"unreached": ("encoder.",)}) for check in ("gradients", "extreme_inputs")})
    d, f64 = True, torch.float64
    kw = dict(codes=4, dim=2, channels=8, downsample=1, blocks=1, prior_channels=4, prior_layers=1)
    m("vqvae-bernoulli", lambda: VQVAE((1, 4, 4), "bernoulli", **kw), 16, discrete=d)
    m("vqvae-categorical-transformer-prior", lambda: VQVAE((2, 4, 4), Categorical(5), prior="transformer", **kw),
      32, discrete=d)
    m("vqvae-normal-no-ema", lambda: VQVAE((1, 2, 2), Normal(), ema=False, **kw), 4)
    m("vqvae-bernoulli-float64", lambda: VQVAE((1, 4, 4), "bernoulli", **kw).double(), 16, discrete=d, dtype=f64)


# ---------------------------------------------------------------- diffusion models

_FAST = {"hidden": (16, 16), "method": "rk4", "ode_steps": 16, "sampler": "ddim", "steps": 4}  # fixed grids
_DIFFUSION: dict[str, dict[str, Any]] = {
    "vp-eps": {"sde": "vp"},
    "vp-cosine-v": {"sde": "vp", "schedule": "cosine", "parametrization": "v"},
    "subvp-x0": {"sde": "subvp", "parametrization": "x0"},
    "ve-edm": {"sde": "ve", "sigma_max": 10.0, "parametrization": "edm", "sigma_data": 0.5},
    "ddpm-score": {"sde": "ddpm", "ddpm_steps": 100, "parametrization": "score"},
    "vp-context": {"sde": "vp", "context": 2},
    "vp-gaussian-features": {"sde": "vp", "parametrization": "gaussian", "features": 8, "feature_scale": 0.5,
                             "dropout": 0.1},
}
_DIFFUSION_1D = ("vp-eps", "ve-edm", "ddpm-score", "vp-gaussian-features")  # quadrature is exact in 1-D


def _diffusion(config: Mapping[str, Any], shape: int) -> Callable[[], nn.Module]:
    r"""A factory of a small diffusion model with fixed-grid solvers (a fitted, correlated Gaussian for the
    ``"gaussian"`` parametrization)."""

    def build() -> nn.Module:
        module = DiffusionModel(shape, **{**_FAST, **config})
        if module.denoiser.parametrization == "gaussian":
            g = torch.Generator().manual_seed(0)
            module.fit_gaussian(torch.randn(100, shape, generator=g) @ torch.full((shape, shape), 0.7).tril() + 1.5)
        return module

    return build


def _diffusion_models() -> None:
    # a diffusion model's distribution is a continuous normalizing flow (the probability-flow ODE from the prior):
    # its log_prob must integrate to 1 and agree with its sampler whatever the network's weights
    m = functools.partial(register_model, family="diffusion")
    slow = "each hypothesis draw would integrate the PF-ODE: too slow for 15 draws per entry (no fused path either)"
    in_1d = "checked on the 1-D entry of this configuration ({}-1d): {}"
    for name, config in _DIFFUSION.items():
        skip = {"fused_paths": slow}
        if name in _DIFFUSION_1D:
            skip["normalized"] = in_1d.format(name, "2-D quadrature would integrate the PF-ODE at 10^6 points")
            skip["sample_log_prob"] = in_1d.format(name, "in 2-D, 16 steps of DPM-Solver++ and of RK4 disagree")
        else:
            skip["normalized"] = "2-D quadrature would integrate the PF-ODE at 10^6 points"
            skip["sample_log_prob"] = "in 2-D, 16 steps of DPM-Solver++ and of RK4 disagree beyond the test's power"
        m(f"diffusion-{name}", _diffusion(config, 2), 2, config.get("context", 0), skip=skip)
    # the exact flow (adaptive solver, rk45 sampler) for quadrature; DPM-Solver++ against the fixed-grid density;
    # the other checks run on the 2-D entries
    only = ("builds", "normalized", "sample_log_prob", "unimplemented")
    others = {check: "checked on the 2-D entry of this configuration" for check in CHECKS if check not in only}
    exact = {"method": "dopri5", "ode_steps": None, "rtol": 1e-6, "atol": 1e-6, "sampler": "rk45"}
    for name in _DIFFUSION_1D:
        # random Fourier features make the perturbed network wiggly in x: 16 steps of DPM-Solver++ are too coarse
        steps = 64 if _DIFFUSION[name].get("features") else 16
        m(f"diffusion-{name}-1d", _diffusion(_DIFFUSION[name], 1), 1, skip=others, settings={
            "normalized": Settings(call=exact, options={"samples": 2000, "pad": 0.75, "points": 2001}),
            "sample_log_prob": Settings(scale=0.3, call={"sampler": "dpmpp_2m", "steps": steps},
                                        options={"n": 1500, "fused": False, "rounds": 1}),
        })


# ---------------------------------------------------------------- energy-based models


class Unnormalized(nn.Module):
    r"""An energy-based model whose distribution scores :math:`-E(x)` (``d.unnormalized()``): the checks that
    call ``log_prob`` run on an energy whose :math:`\log Z` is unknown.

    Example:
        >>> Unnormalized(Energy(3, hidden=(8,)))().log_prob_kind
        'unnormalized'
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, c: Tensor | None = None, **options: Any) -> EnergyBased:
        return self.model(c, **options).unnormalized()


# MALA that mixes over a perturbed network's density within the checks' draws; an envelope (confine) that keeps
# the perturbed densities inside the quadrature's box
_MALA = {"steps": 300, "step_size": 0.05, "confine": 2.0}
_QUAD_1D = {"log_partition": "quadrature", "partition_options": {"bound": 12.0, "points": 2001}}
_QUAD_2D = {"log_partition": "quadrature", "partition_options": {"bound": 10.0, "points": 301}}


def _energy_models() -> None:
    # deep energies normalized by quadrature (1-2 real entries: exact), by enumeration (binary: exact), and one
    # whose log Z is unknown (its log_prob is -E through Unnormalized); every sampler option reaches MCMC
    m = functools.partial(register_model, family="energy")
    h = (16, 16)
    ais = {"log_partition": Settings(options={"chains": 200, "betas": 300})}
    same = "AIS anneals the same network energy as energy-2d's (checked there)"
    m("energy-1d", lambda: Energy(1, hidden=h, **_MALA, **_QUAD_1D), 1, settings=ais)
    m("energy-2d", lambda: Energy(2, hidden=h, **_MALA, **_QUAD_2D), 2, settings=ais)
    m("energy-2d-context", lambda: Energy(2, context=2, hidden=h, **_MALA, **_QUAD_2D), 2, 2,
      skip={"sample_log_prob": "goodness of fit needs batch shape (): checked on energy-2d", "log_partition": same})
    m("energy-2d-hmc", lambda: Energy(2, hidden=h, sampler="hmc", steps=200, step_size=0.1, confine=2.0,
                                      sampler_options={"leapfrog": 5}, **_QUAD_2D), 2,
      skip={"log_partition": same, "normalized": "the same network energy as energy-2d's, normalized there"})
    m("energy-3d-unnormalized", lambda: Unnormalized(Energy(3, hidden=h, **_MALA)), 3,
      log_prob_kind="unnormalized", skip={"log_partition": "no exact log Z in 3 dimensions to compare AIS with"})
    m("energy-binary-4", lambda: Energy(4, hidden=h, support="binary", steps=50, log_partition="exact"), 4,
      discrete=True, skip={"log_partition": "the generic AIS anneals real values (a binary energy's log Z is "
                                            "exact by enumeration)"})
    # RBMs: exact log Z by enumerating the smaller layer (Bernoulli: a discrete density; Gaussian: a continuous
    # one, quadrature checks it), an AIS estimate, and one too large to enumerate cheaply, whose log Z is unknown
    m("rbm-bernoulli", lambda: RBM(4, 3, steps=200, log_partition="exact"), 4, discrete=True, settings=ais)
    m("rbm-bernoulli-centered", lambda: RBM(5, 3, centering=True, steps=200, log_partition="exact"), 5,
      discrete=True, settings=ais)
    m("rbm-gaussian", lambda: RBM(2, 3, visible_kind="gaussian", steps=200, log_partition="exact"), 2,
      settings=ais)
    m("rbm-gaussian-1d", lambda: RBM(1, 2, visible_kind="gaussian", steps=200, log_partition="exact"), 1,
      skip={"log_partition": "the Gaussian RBM's AIS is checked on rbm-gaussian"})
    m("rbm-ais", lambda: RBM(6, 4, steps=200, log_partition="ais",
                             partition_options={"chains": 64, "betas": 100}), 6,
      discrete=True, log_prob_kind="estimate", settings=ais)
    m("rbm-unnormalized", lambda: Unnormalized(RBM(30, 40, steps=50)), 30, discrete=True,
      log_prob_kind="unnormalized", skip={"log_partition": "2^30 states: no exact log Z to compare AIS with"})
    m("jem-2d", lambda: JEM(3, 2, hidden=h, **_MALA, **_QUAD_2D), 2, settings=ais)
    m("product-energy-flow", lambda: ProductOfExperts(Energy(2, hidden=h, confine=2.0),
                                                      MAF(2, transforms=1, hidden=(8,)),
                                                      steps=300, step_size=0.05, **_QUAD_2D), 2,
      # a flow perturbed at scale 1 carries the product's mass out of the quadrature's box (which log Z refuses)
      settings={"batches": Settings(scale=0.3), **ais})


# ---------------------------------------------------------------- generative adversarial networks

_GAN_SAME = "the option changes only the objectives: the distribution, the critic and the state are gan-mlp's, " \
            "checked there"
_GAN_OBJECTIVES_ONLY = MappingProxyType({
    check: _GAN_SAME for check in ("log_prob_kind", "unimplemented", "implicit", "implicit_batches",
                                   "float64_samples", "same_samples", "critic")})
_GAN_CONV_BATCHES = ("the batch shape is Implicit's, the same whatever the network: drawn on the MLP entries "
                     "(15 draws of conv networks would add seconds per entry)")


def _gan_models() -> None:
    # tiny networks (hidden 8, channels 4, 8x8 images): Implicit distributions (log_prob_kind 'none', the
    # log_prob checks skipped by _declared_skips); the family checks sample, push latents, score with the critic
    # and take a fit step with the GAN's objectives
    m = functools.partial(register_model, family="gan", log_prob_kind="none")
    h, f64 = (8,), torch.float64
    conv = dict(latent=4, discriminator="dcgan", channels=4)
    style = dict(w_dim=4, mapping_layers=1)
    later = {"implicit_batches": _GAN_CONV_BATCHES}
    m("gan-mlp", lambda: GAN(2, latent=2, hidden=h), 2)
    m("gan-mlp-tanh-truncation", lambda: GAN(3, latent=2, hidden=h, out="tanh", truncation=0.7), 3)
    m("gan-mlp-sigmoid-spectral-norm-minibatch-std", lambda: GAN(2, latent=3, hidden=h, out="sigmoid",
                                                                  spectral_norm=True, minibatch_std=True), 2)
    m("gan-mlp-context-concat", lambda: GAN(2, latent=2, hidden=h, context=3), 2, 3)
    m("gan-mlp-context-projection", lambda: GAN(2, latent=2, hidden=h, context=3, conditioning="projection"), 2, 3)
    m("gan-mlp-context-float64", lambda: GAN(2, latent=2, hidden=h, context=2).double(), 2, 2, dtype=f64)
    m("gan-flow-latent", lambda: GAN(2, latent=MAF(2, transforms=1, hidden=h), hidden=h), 2)
    m("gan-ema", lambda: GAN(2, latent=2, hidden=h, ema=0.9), 2)
    m("gan-uniform-latent", lambda: GAN(2, latent=dist.Uniform(-torch.ones(3), torch.ones(3)).to_event(1),
                                        hidden=h), 2)
    m("gan-dcgan-attention-spectral-norm-minibatch-std", lambda: GAN(
        (1, 8, 8), generator="dcgan", attention=True, spectral_norm=True, minibatch_std=True, **conv), 64,
      skip=later)
    m("gan-dcgan-context-batchnorm-projection", lambda: GAN(
        (1, 8, 8), generator="dcgan", context=3, conditioning=("batchnorm", "projection"), **conv), 64, 3,
      skip=later)
    m("gan-dcgan-image-rows-context", lambda: GAN(64, image=(1, 8, 8), generator="dcgan", context=2, **conv),
      64, 2, skip=later)
    m("gan-style-modulated-truncation", lambda: GAN((1, 8, 8), generator="style", style=style, truncation=0.7,
                                                    **conv), 64, skip=later)
    m("gan-style-adain-context", lambda: GAN((1, 8, 8), generator="style", style={**style, "style": "adain"},
                                             context=2, **conv), 64, 2, skip=later)
    # image to image: a U-Net translates the (flattened) source given as the context; a PatchGAN critic; pix2pix's L1
    m("gan-unet-patch-l1", lambda: GAN((1, 8, 8), latent=2, generator="unet", discriminator="patch", context=64,
                                       channels=4, dropout=0.5, l1=10.0), 64, 64, skip=later)
    # the objectives' options: each checked by a fit step ('trains'); the distribution is gan-mlp's
    o = functools.partial(m, skip=_GAN_OBJECTIVES_ONLY)
    o("gan-loss-minimax", lambda: GAN(2, latent=2, hidden=h, loss="minimax"), 2)
    o("gan-loss-wasserstein-gp-n-critic-2", lambda: GAN(2, latent=2, hidden=h, loss="wasserstein", gp=10.0,
                                                        n_critic=2), 2)
    o("gan-loss-hinge-lr", lambda: GAN(2, latent=2, hidden=h, loss="hinge", lr_generator=1e-4, lr_critic=4e-4,
                                       betas=(0.0, 0.9)), 2)
    o("gan-loss-least-squares-feature-matching", lambda: GAN(2, latent=2, hidden=h, loss="least_squares",
                                                             feature_matching=1.0), 2)
    o("gan-loss-relativistic-context", lambda: GAN(2, latent=2, hidden=h, loss="relativistic", context=3), 2, 3)
    o("gan-r1-r2-lazy-2", lambda: GAN(2, latent=2, hidden=h, r1=1.0, r2=1.0, lazy=2), 2)
    # the helpers' recipes: pix2pix (a GAN), CycleGAN (two translators, two critics), text to image (token ids)
    m("pix2pix", lambda: Pix2Pix((1, 8, 8), channels=4, l1=10.0), 64, 64, skip=later)
    m("pix2pix-latent-ema", lambda: Pix2Pix((1, 8, 8), (2, 8, 8), channels=4, latent=2, dropout=0.0, ema=0.9,
                                            loss="hinge"), 64, 128, skip=later)
    m("cyclegan", lambda: CycleGAN((1, 8, 8), channels=4, dropout=0.5), 64, 64,
      skip={**later, "critic": "two critics scoring patches, no critic(x, c): their losses are checked by trains"},
      settings={"implicit": Settings(options={"generator": ("generator_ab",)})})
    m("text-to-image", lambda: TextToImage((1, 8, 8), 12, text_dim=4, latent=4, augment=4, channels=4, hidden=8),
      64, 5, vocab=12, skip=later,
      # rsample runs the text encoder, the conditioning augmentation and the generator (not the critic)
      settings={"implicit": Settings(options={"generator": ("text", "augment", "net")})})
    # progressive growing, midway through the fade-in (both resolutions' layers in use)
    m("progressive-gan-fading", _progressive_fading, 256, skip=later)


def _progressive_fading() -> nn.Module:
    model = ProgressiveGAN((1, 16, 16), latent=4, channels=4, fade_steps=2)
    model.grow(0.5)
    return model


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
_vqvae_models()
_diffusion_models()
_energy_models()
_gan_models()
_transforms()
