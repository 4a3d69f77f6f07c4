r"""``AutoFlow``: a normalizing-flow autoguide for any Pyro model with continuous latent sites."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer.autoguide import AutoContinuous
from pyro.infer.autoguide.initialization import init_to_feasible
from pyro.nn import PyroParam
from pyro.poutine.util import prune_subsample_sites
from torch import Tensor
from torch.distributions import biject_to

from gendist._checks import check_integer, check_number
from gendist.bayes.neutra import NeuTraModel
from gendist.bayes.svi import fit_guide
from gendist.distributions.flow import Flow
from gendist.flows.autoregressive import IAF, MaskedAutoregressive
from gendist.flows.core import FlowModule
from gendist.flows.coupling import CouplingLayer
from gendist.transforms.base import Compose, call_and_ladj
from gendist.transforms.elementwise import MonotonicAffine

__all__ = ["AutoFlow", "identity_init"]

FlowSpec = FlowModule | type[FlowModule] | Callable[[int], FlowModule] | None


def identity_init(flow: FlowModule) -> FlowModule:
    r"""Zero the output layer of every conditioner of ``flow``, so each layer starts as the identity.

    Affine, additive and spline layers all map zero parameters to the identity,
    so the flow starts as :math:`f(z) = z` and learns away from it (the
    initialisation of Glow's last layers). Fixed layers (permutations, ...) are
    kept. A conditional flow starts as the identity at every context. Returns
    ``flow``; a layer this cannot reach is reported by a warning.

    Example:
        >>> flow = identity_init(IAF(3, transforms=2))
        >>> z = torch.randn(4, 3)
        >>> bool(torch.equal(flow().transform(z), z))
        True
    """
    for layer in flow.transforms:
        if isinstance(layer, MaskedAutoregressive):
            last = [layer.made.layers[-1]] + ([layer.made.direct] if layer.made.direct is not None else [])
        elif isinstance(layer, CouplingLayer):
            last = [layer.net.layers[-1]]
        else:
            continue
        with torch.no_grad():
            for linear in last:
                linear.weight.zero_()
                if linear.bias is not None:
                    linear.bias.zero_()
    with torch.no_grad():
        like = _tensor_of(flow)
        z = torch.randn(8, flow.features, generator=torch.Generator().manual_seed(0)).to(like)
        c = torch.zeros(8, flow.context, dtype=like.dtype, device=like.device) if flow.context else None
        x, ladj = call_and_ladj(flow(c).transform, z)
        isometry = torch.allclose(x.norm(dim=-1), z.norm(dim=-1), atol=1e-4) and bool(ladj.abs().max() < 1e-4)
    if not isometry:
        warnings.warn(
            f"{type(flow).__name__} has layers that do not start as the identity (or a rotation); the guide will not "
            "start where AutoNormal starts",
            stacklevel=2,
        )
    return flow


def build_flow(spec: object, kwargs: dict, dim: int, context: int = 0, transforms: int = 3) -> FlowModule:
    r"""The flow of a guide over vectors of size ``dim`` (conditional on ``context`` numbers) from its spec.

    ``spec`` is None (an :class:`~gendist.flows.IAF` with ``transforms`` layers), a gendist recipe class (built
    with ``kwargs`` and ``fast="sample"`` when it has that option), a function ``dim -> flow`` (``(dim, context)
    -> flow`` for a conditional one) or a built flow module.
    """
    kwargs = dict(kwargs)
    conditional = {"context": context} if context else {}
    if spec is None:
        kwargs.setdefault("transforms", transforms)
        kwargs.setdefault("hidden", (max(3 * dim + 1, 32),))
        flow = IAF(dim, **conditional, **kwargs)
    elif isinstance(spec, FlowModule):
        if kwargs:
            raise TypeError(f"flow_kwargs {sorted(kwargs)} are for a recipe; flow is already built")
        flow = spec
    elif isinstance(spec, type) and issubclass(spec, FlowModule):
        if "fast" in inspect.signature(spec).parameters:
            kwargs.setdefault("fast", "sample")
        flow = spec(dim, **conditional, **kwargs)
    elif callable(spec):
        flow = spec(dim, context) if context else spec(dim)
    else:
        signature = "(d, context) -> FlowModule" if context else "dim -> FlowModule"
        raise TypeError(
            f"flow must be None, a gendist flow recipe (e.g. gendist.flows.NSF), a function {signature} "
            f"or a FlowModule, got {type(spec).__name__}"
        )
    if not isinstance(flow, FlowModule):
        raise TypeError(f"flow must build a gendist FlowModule, got {type(flow).__name__}")
    return flow


def _tensor_of(module: nn.Module) -> Tensor:
    for t in module.parameters():
        return t
    for t in module.buffers():
        if t.dtype.is_floating_point:
            return t
    return torch.empty(0)


class AutoFlow(AutoContinuous):
    r"""A normalizing-flow guide over all latent sites of a Pyro model.

    Like Pyro's :class:`~pyro.infer.autoguide.AutoContinuous` guides, it maps
    every latent site to the unconstrained space with ``biject_to(site.support)``
    and concatenates them into one vector :math:`\theta \in \mathbb{R}^D`. Its
    posterior is

    .. math:: \theta = \mu + \sigma \odot f(\epsilon), \qquad \epsilon \sim \mathcal{N}(0, I_D),

    a gendist flow :math:`f` followed by an elementwise affine map. The defaults
    are chosen for variational inference:

    - :math:`f` is an :class:`~gendist.flows.IAF` (three affine layers): the
      base-to-sample direction is one network pass per layer, and
      ``rsample_and_log_prob`` gives each draw and its log-density in that pass,
      which is what every SVI step asks for. A flow in the other orientation would
      run :math:`D` sequential passes per layer per step.
    - Each layer of :math:`f` starts as the identity (:func:`identity_init`), so
      the untrained guide is the diagonal Gaussian :math:`\mathcal{N}(\mu, \sigma^2)`
      of :class:`~pyro.infer.autoguide.AutoNormal`, with :math:`\mu` from
      ``init_loc_fn`` (``init_to_feasible``, AutoNormal's default) and
      :math:`\sigma` = ``init_scale``. The scale starts at 1 rather than
      AutoNormal's 0.1: reverse KL is mode-seeking, and a guide that starts
      wide finds the posterior's mass before it narrows, while a narrow start
      commits early to what is near it (measured in ``benchmarks/posteriors.py``:
      on a bimodal posterior the C2ST goes from 0.63 at 0.1 to 0.51 at 1, and it
      is lower on each of the five posteriors tried).
    - The flow works on standardized coordinates and :math:`\sigma` carries the
      posterior's scale, so the flow's parameters need not learn it: a posterior
      standard deviation of 0.01 or 100 asks the same of the network.

    Any gendist flow recipe can replace the default: ``flow`` is a recipe class
    (built as ``flow(D, **flow_kwargs)``, with ``fast="sample"`` when the recipe
    has that option), a function ``D -> FlowModule``, or a flow module of
    dimension :math:`D`. It must be unconditional, on the real line (no
    ``support``), and reparameterizable.

    ``median`` and ``quantiles`` are Monte Carlo estimates from ``num_samples``
    draws (a fixed seed, so they are reproducible), taken per coordinate in the
    constrained space; :meth:`fit` runs SVI with the default schedule (:func:`svi`).

    Arguments:
        model: a Pyro model whose latent sites are all continuous.
        flow: the flow recipe (see above); the default is
            ``IAF(D, transforms=3, hidden=(max(3 D + 1, 32),))``.
        init_loc_fn: the per-site initialisation of :math:`\mu` (Pyro's ``init_to_*``).
        init_scale: the initial :math:`\sigma` (every coordinate); lower it for a
            model whose likelihood overflows far from ``init_loc_fn``'s point.
        num_samples: the Monte Carlo draws of ``median`` and ``quantiles``.
        flow_kwargs: keyword arguments of the recipe.

    Example:
        >>> import pyro.distributions as dist
        >>> def model(y):
        ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     sigma = pyro.sample("sigma", dist.LogNormal(0.0, 1.0))
        ...     with pyro.plate("data", len(y)):
        ...         pyro.sample("y", dist.Normal(mu, sigma), obs=y)
        >>> pyro.clear_param_store()
        >>> guide = AutoFlow(model)
        >>> losses = guide.fit(torch.randn(20), steps=10)
        >>> sorted(guide(torch.randn(20)))
        ['mu', 'sigma']
    """

    def __init__(
        self,
        model: Callable,
        flow: FlowSpec = None,
        *,
        init_loc_fn: Callable = init_to_feasible,
        init_scale: float = 1.0,
        num_samples: int = 1000,
        **flow_kwargs,
    ) -> None:
        init_scale = check_number("init_scale", init_scale)
        num_samples = check_integer("num_samples", num_samples, low=1)
        super().__init__(model, init_loc_fn=init_loc_fn)
        self._flow_spec = (flow,)  # in a tuple: a flow module given here is registered once, as self.flow
        self._flow_kwargs = flow_kwargs
        self._init_scale = init_scale
        self._num_samples = num_samples
        self._original_model = model
        self._shapes_key: tuple | None = None

    # --- set-up -----------------------------------------------------------------------------------------------------

    def _setup_prototype(self, *args, **kwargs) -> None:
        _check_latent_sites(self._original_model, args, kwargs)
        super()._setup_prototype(*args, **kwargs)
        loc = self._init_loc()
        self.loc = nn.Parameter(loc)
        self.scale = PyroParam(torch.full_like(loc, self._init_scale), constraints.softplus_positive)
        self.flow = identity_init(self._build_flow(self.latent_dim).to(loc))
        self._shapes_key = _shapes_key(args, kwargs)

    def _build_flow(self, dim: int) -> FlowModule:
        flow = build_flow(self._flow_spec[0], self._flow_kwargs, dim, transforms=3)
        if flow.features != dim:
            raise ValueError(
                f"flow has {flow.features} features but the model's latent sites make a vector of size {dim} "
                "(unconstrained, all sites concatenated)"
            )
        if flow.context:
            raise ValueError(f"flow must be unconditional (context=0), got context={flow.context}")
        if flow.support is not None:
            raise ValueError(
                f"flow has support {flow.support} but AutoFlow works in the unconstrained space "
                f"({constraints.real_vector}); each site's own support is reached through biject_to: "
                "build the flow without support="
            )
        if not flow().has_rsample:
            raise ValueError(f"flow's base {type(flow.base).__name__} has no rsample: a guide must be reparameterized")
        return flow

    # --- the posterior ------------------------------------------------------------------------------------------------

    def get_base_dist(self) -> torch.distributions.Distribution:
        return self.flow.base()

    def get_transform(self, *args, **kwargs) -> Compose:
        return Compose([*self.flow().transforms, self._affine()])

    def get_posterior(self, *args, **kwargs) -> Flow:
        r"""The guide's distribution over the unconstrained latent vector :math:`\theta`: a :class:`~gendist.Flow`."""
        d = self.flow()
        return Flow(d.base_dist, [*d.transforms, self._affine()])

    def _affine(self) -> MonotonicAffine:
        return MonotonicAffine(self.loc, self.scale.log())

    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        if self.prototype_trace is not None:
            key = _shapes_key(args, kwargs)
            if key != self._shapes_key:
                self._check_same_sites(args, kwargs)
                self._shapes_key = key
        return super().forward(*args, **kwargs)

    def _check_same_sites(self, args: tuple, kwargs: dict) -> None:
        with poutine.block(), torch.no_grad():
            trace = prune_subsample_sites(poutine.trace(self.model).get_trace(*args, **kwargs))
        for name, site in self.prototype_trace.iter_stochastic_nodes():
            if name not in trace.nodes:
                raise ValueError(f"latent site {name!r} is gone from the model since the guide was set up")
            before, now = site["value"].shape, trace.nodes[name]["value"].shape
            if before != now:
                raise ValueError(
                    f"latent site {name!r} had shape {tuple(before)} when the guide was set up and has shape "
                    f"{tuple(now)} now: an AutoFlow's latent vector has a fixed size; use a new guide, or an "
                    "amortized guide (gendist.bayes.AutoAmortizedFlow) for per-datum latents"
                )

    # --- summaries ----------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def _draws(self, *args, **kwargs) -> Tensor:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        with torch.random.fork_rng(devices=[self.loc.device] if self.loc.is_cuda else []):
            torch.manual_seed(0)
            return self.get_posterior(*args, **kwargs).sample((self._num_samples,))

    @torch.no_grad()
    def median(self, *args, **kwargs) -> dict[str, Tensor]:
        r"""The posterior median of every latent site (Monte Carlo, per coordinate, in the constrained space)."""
        return {name: q[0] for name, q in self.quantiles([0.5], *args, **kwargs).items()}

    @torch.no_grad()
    def quantiles(self, quantiles: Sequence[float] | Tensor, *args, **kwargs) -> dict[str, Tensor]:
        r"""Posterior quantiles of every latent site, stacked on a first dimension (Monte Carlo, per coordinate)."""
        theta = self._draws(*args, **kwargs)
        q = torch.as_tensor(quantiles, dtype=theta.dtype, device=theta.device)
        if q.dim() != 1 or bool(((q < 0) | (q > 1)).any()):
            raise ValueError(f"quantiles must be a list of numbers in [0, 1], got {quantiles!r}")
        return {
            site["name"]: torch.quantile(biject_to(site["fn"].support)(value), q, dim=0)
            for site, value in self._unpack_latent(theta)
        }

    def neutra(self, model: Callable | None = None) -> NeuTraModel:
        r"""The model reparameterized by this (trained) guide for NUTS: see :class:`~gendist.bayes.NeuTraModel`."""
        return NeuTraModel(self, model)

    def fit(self, *args, **kwargs) -> list[float]:
        r"""Train by SVI with the default schedule (:func:`gendist.bayes.svi`) and return the losses.

        Keyword arguments ``steps``, ``lr``, ``final_lr``, ``warm``, ``average``, ``particles``, ``elbo`` and
        ``clip_norm`` go to :func:`~gendist.bayes.svi`; everything else goes to the model.
        """
        return fit_guide(self._original_model, self, args, kwargs)


def _shapes_key(args: tuple, kwargs: dict) -> tuple:
    def shape(v: object) -> object:
        return tuple(v.shape) if isinstance(v, Tensor) else None

    return tuple(shape(a) for a in args) + tuple((k, shape(v)) for k, v in sorted(kwargs.items()))


def _check_latent_sites(model: Callable, args: tuple, kwargs: dict) -> None:
    r"""Refuse models an AutoFlow cannot guide: no latent site, or a discrete one, with the site's name."""
    with poutine.block():
        trace = prune_subsample_sites(poutine.trace(model).get_trace(*args, **kwargs))
    latent = [site for _, site in trace.iter_stochastic_nodes()]
    if not latent:
        raise ValueError(
            "the model has no latent sites (every pyro.sample is observed): there is no posterior to guide; "
            "an empty guide `def guide(*args, **kwargs): pass` is all it needs"
        )
    for site in latent:
        fn = site["fn"]
        if fn.support.is_discrete:
            raise ValueError(
                f"latent site {site['name']!r} is discrete ({type(fn).__name__}, support {fn.support}): AutoFlow "
                "guides continuous sites only. Enumerate it out instead: mark the site with "
                "infer={'enumerate': 'parallel'} (or @config_enumerate), train with TraceEnum_ELBO, and give AutoFlow "
                f"the other sites, AutoFlow(poutine.block(model, hide=[{site['name']!r}]))"
            )
