r"""``AutoAmortizedFlow``: an amortized flow autoguide for the per-datum latent sites of a plate."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from operator import attrgetter

import pyro
import pyro.distributions as dist
import torch
import torch.nn as nn
import torch.nn.functional as F
from pyro import poutine
from pyro.distributions.util import sum_rightmost
from pyro.infer.autoguide import AutoGuide
from pyro.infer.autoguide.initialization import InitMessenger, init_to_median
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch import Tensor
from torch.distributions import biject_to, constraints

from gendist._checks import check_integer, check_number
from gendist.bayes.autoflow import AutoFlow, build_flow, identity_init
from gendist.bayes.svi import fit_guide
from gendist.distributions.flow import Flow
from gendist.flows.core import FlowModule
from gendist.nn.mlp import MLP
from gendist.transforms.elementwise import MonotonicAffine

__all__ = ["AutoAmortizedFlow"]

FlowSpec = FlowModule | type[FlowModule] | Callable[[int, int], FlowModule] | None
ContextFn = Callable[..., Tensor]


class AutoAmortizedFlow(AutoGuide):
    r"""An amortized guide: one conditional flow, shared by every datum of a plate, for the plate's latent sites.

    For a model with global latents :math:`\theta` and per-datum latents :math:`z_n`
    inside a plate, whose likelihood factorizes over the data,

    .. math:: p(\theta, z \mid x) = p(\theta \mid x) \prod_n p(z_n \mid x_n, \theta),

    the guide has the same structure:

    .. math:: q(\theta, z) = q(\theta) \prod_n q(z_n \mid x_n, \theta), \qquad
              u_n = \mu(h_n) + \sigma(h_n) \odot f(\epsilon_n; h_n), \quad \epsilon_n \sim \mathcal{N}(0, I),

    where :math:`u_n` is the per-datum vector of the plate's latent sites in the
    unconstrained space (each site reached through ``biject_to`` of its support),
    :math:`h_n` is the datum's context :math:`c_n` (standardized) beside an MLP
    embedding of it, :math:`f` a conditional gendist flow (IAF orientation, every
    layer the identity at start) and :math:`\mu, \sigma` a linear head, zero
    weights at start with :math:`\mu` from ``init_loc_fn`` and :math:`\sigma`
    ``init_scale``: the guide starts where ``AutoNormal`` starts, for every datum.
    The network is shared, so its size does not grow with the data, it trains on
    subsamples, and it gives the posterior of a datum it never saw in one pass.

    - The context :math:`c_n` is, by default, the observed values of the plate's
      observed sites at datum :math:`n`, flattened and concatenated (the guide runs
      the model's head, with every latent site held at a cheap point of its
      support, up to the last of them, to read them). ``context`` replaces it:
      a function ``context(idx, *args, **kwargs)`` of the subsample's indices and
      the model's arguments returning a ``(len(idx), C)`` tensor.
    - The global sites (the latent sites outside the plate) get their own guide,
      ``global_guide(model with the plate's latents hidden)``, an
      :class:`~gendist.bayes.AutoFlow` by default. With ``condition_on_globals``
      (the default) each datum's flow also sees the globals' draw (unconstrained,
      and its deviation from their guide's location): :math:`p(z_n \mid x_n, \theta)`
      moves with :math:`\theta` (in a hierarchical model the globals are the locals'
      prior location and scale), and a guide blind to :math:`\theta` makes the two
      levels independent, which narrows the globals' posterior by the ratio of the
      conditional to the marginal precision (a factor 0.45 in sd on a conjugate
      model whose data say little about each :math:`z_n`; measured after 400
      steps, the globals' sd at 0.44-0.59 of the exact one blind, 0.57-1.13
      conditioned: ``benchmarks/amortized.py``).
      Set it False when the globals are many (a neural network's weights).
    - Subsampling: the guide's plate replays the indices the model's plate draws
      (``pyro.plate(name, N, subsample_size=B)``), and the plate's size is read
      at every call, so the same guide encodes held-out data of any size.

    Works with ``Trace_ELBO`` (``vectorize_particles=True`` too),
    ``TraceMeanField_ELBO``, ``Predictive`` and ``state_dict``; :meth:`fit` runs
    SVI with the default schedule (:func:`~gendist.bayes.svi`);
    :meth:`local_posterior` gives the conditional flow of every datum.
    It is a top-level guide (not a part of an ``AutoGuideList``). The local sites
    must lie in the plate only (put further per-datum dimensions in the event,
    ``.to_event``), and be continuous.

    Arguments:
        model: a Pyro model with per-datum latent sites in a plate.
        plate: the plate's name; by default the one plate that holds latent sites.
        context: the per-datum context function (see above), or None for the
            observed values.
        flow: the local flow: a recipe class (built as
            ``flow(d, context=H, fast="sample", **flow_kwargs)``), a function
            ``(d, H) -> FlowModule`` or a built conditional flow module; the default
            is ``IAF(d, context=H, transforms=2, hidden=(max(3 d + 1, 32),))``.
        encoder: the context's embedding: the hidden sizes then the output size of
            an MLP (``()``: the raw context only), or a module mapping
            ``(..., C)`` to ``(..., E)``.
        condition_on_globals: whether the local flow sees the globals' draw.
        global_guide: a function from the model with the plate's latents hidden to
            a guide for the globals (``AutoNormal``, ...); AutoFlow by default.
        init_loc_fn: the per-site initialisation (Pyro's ``init_to_*``).
        init_scale: the initial posterior scale of every unconstrained coordinate.
        num_samples: the Monte Carlo draws of :meth:`median` and :meth:`quantiles`.
        flow_kwargs: keyword arguments of the local flow's recipe.

    Example:
        >>> import pyro.distributions as dist
        >>> def model(x):
        ...     with pyro.plate("data", len(x), subsample_size=4) as i:
        ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
        ...         pyro.sample("x", dist.Normal(z, 0.5), obs=x[i])
        >>> pyro.clear_param_store()
        >>> guide = AutoAmortizedFlow(model, plate="data")
        >>> losses = guide.fit(torch.randn(10), steps=5)
        >>> guide.local_posterior(torch.randn(7)).batch_shape
        torch.Size([7])
    """

    _global_inputs: tuple[str, ...] = ("draw", "deviation")  # what the local flow sees of the globals (see below)

    def __init__(
        self,
        model: Callable,
        plate: str | None = None,
        *,
        context: ContextFn | None = None,
        flow: FlowSpec = None,
        encoder: Sequence[int] | nn.Module = (64, 32),
        condition_on_globals: bool = True,
        global_guide: Callable[[Callable], AutoGuide] | None = None,
        init_loc_fn: Callable = init_to_median,
        init_scale: float = 0.1,
        num_samples: int = 1000,
        **flow_kwargs,
    ) -> None:
        if plate is not None and not isinstance(plate, str):
            raise TypeError(f"plate must be the name of a plate of the model (a str), got {type(plate).__name__}")
        if context is not None and not callable(context):
            raise TypeError(
                "context must be a function context(idx, *args, **kwargs) -> (len(idx), C) tensor, "
                f"got {type(context).__name__}"
            )
        if global_guide is not None and not callable(global_guide):
            raise TypeError(f"global_guide must build a guide from a model, got {type(global_guide).__name__}")
        self._plate_arg = plate
        self._context_fn = context
        self._flow_spec = flow
        self._flow_kwargs = flow_kwargs
        if isinstance(encoder, nn.Module):
            self._encoder_spec: tuple[int, ...] | nn.Module = encoder
        elif isinstance(encoder, Sequence) and not isinstance(encoder, str):
            self._encoder_spec = tuple(check_integer("encoder", h, low=1) for h in encoder)
        else:
            raise TypeError(
                "encoder must be a list of sizes (the MLP's hidden sizes, then its output size) or a module, "
                f"got {type(encoder).__name__}"
            )
        self._condition = bool(condition_on_globals)
        self._global_factory = global_guide
        self._init_loc_fn = init_loc_fn
        self._init_scale = check_number("init_scale", init_scale)
        self._num_samples = check_integer("num_samples", num_samples, low=1)
        self._original_model = model
        super().__init__(InitMessenger(init_loc_fn)(model))
        self.global_guide: AutoGuide | None = None

    # --- set-up -------------------------------------------------------------------------------------------------------

    def _setup_prototype(self, *args, **kwargs) -> None:
        model = self._original_model
        with poutine.block(), torch.no_grad():
            full = poutine.trace(model).get_trace(*args, **kwargs)
        plates = _plate_names(full)
        self.plate = self._pick_plate(full, plates)
        latent = [(name, site) for name, site in full.iter_stochastic_nodes() if not site_is_subsample(site)]
        local = [name for name, site in latent if _in_plate(site, self.plate)]
        if not local:
            raise ValueError(
                f"plate {self.plate!r} holds no latent site: an amortized guide is for per-datum latents "
                f"sampled inside the plate; the latent sites are {[n for n, _ in latent]}"
            )
        for name in local:
            fn = full.nodes[name]["fn"]
            if fn.support.is_discrete:
                raise ValueError(
                    f"local site {name!r} (in plate {self.plate!r}) is discrete ({type(fn).__name__}, support "
                    f"{fn.support}): AutoAmortizedFlow guides continuous sites only. Enumerate it out instead: mark "
                    "it infer={'enumerate': 'parallel'}, train with TraceEnum_ELBO and guide the other sites, "
                    f"AutoAmortizedFlow(poutine.block(model, hide=[{name!r}]))"
                )
        self._observed = [
            name for name, site in full.nodes.items()
            if site["type"] == "sample" and site["is_observed"] and not site_is_subsample(site)
            and not site["infer"].get("_deterministic") and not site["infer"].get("is_auxiliary")
            and _in_plate(site, self.plate)
        ]
        if self._context_fn is None and not self._observed:
            raise ValueError(
                f"plate {self.plate!r} has no observed site for the local sites {local} to be conditioned on: pass "
                "context=lambda idx, *args, **kwargs: ... returning each subsampled datum's features, a "
                "(len(idx), C) tensor"
            )
        self._nesting = max([-f.dim for site in full.nodes.values() if site["type"] == "sample"
                             for f in site["cond_indep_stack"] if f.vectorized] + [1])

        super()._setup_prototype(*args, **kwargs)  # the latent sites at their initial values, and the plates
        frame = next(f for f in self.prototype_trace.nodes[local[0]]["cond_indep_stack"] if f.name == self.plate)
        self._dim = frame.dim
        self._locals = [self._local_info(name) for name in local]
        self._globals = [self._global_info(name) for name, _ in latent if name not in local]
        self.latent_dim = sum(info.size for info in self._locals)
        first = self.prototype_trace.nodes[local[0]]["value"]
        like = torch.empty(0, dtype=first.dtype if first.dtype.is_floating_point else torch.get_default_dtype(),
                           device=first.device)

        # the globals' guide, set up now so its errors (a discrete site, ...) come at once
        if self._globals:
            hidden_model = poutine.block(model, hide=local)
            factory = self._global_factory or (
                lambda m: AutoFlow(m, init_loc_fn=self._init_loc_fn, init_scale=self._init_scale)
            )
            self.global_guide = factory(hidden_model)
            if not isinstance(self.global_guide, AutoGuide):
                raise TypeError(f"global_guide must build a Pyro AutoGuide, got {type(self.global_guide).__name__}")
            self.global_guide._setup_prototype(*args, **kwargs)
        g = 0
        if self._condition and self._globals:
            g = sum(info.size for info in self._globals)
            g *= 1 if self._global_location() is None else len(self._global_inputs)

        # the context's standardization, from the first batch
        probe = self._run_probe(args, kwargs)
        cx = self._data_context(probe, args, kwargs, like)
        loc, scale = cx.mean(0), cx.std(0) if len(cx) > 1 else torch.ones_like(cx[0])
        scale = torch.where(scale > 1e-6 * (1 + loc.abs()), scale, torch.ones_like(scale))
        self.register_buffer("context_loc", loc)
        self.register_buffer("context_scale", scale)
        width = cx.shape[-1] + g

        d = self.latent_dim
        self.encoder = self._build_encoder(width, like)
        features = width
        if self.encoder is not None:
            out = self.encoder(torch.zeros(2, width).to(like))
            if not isinstance(out, Tensor) or out.shape[:-1] != (2,) or out.dim() != 2:
                raise ValueError(
                    f"encoder must map a (..., {width}) context to (..., E) features, got "
                    f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__} for a (2, {width}) input"
                )
            features += out.shape[-1]
        head = nn.Linear(features, 2 * d).to(like)
        init = torch.cat([self._pack_prototype().mean(0), torch.full((d,), _softplus_inv(self._init_scale))])
        with torch.no_grad():
            head.weight.zero_()
            head.bias.copy_(init.to(like))
        self.head = head
        self.flow = identity_init(self._build_flow(d, features).to(like))

    def _build_encoder(self, width: int, like: Tensor) -> nn.Module | None:
        spec = self._encoder_spec
        if isinstance(spec, nn.Module):
            return spec.to(like)
        if not spec:
            return None
        return MLP(width, spec[-1], spec[:-1]).to(like)

    def _pick_plate(self, full: poutine.Trace, plates: list[str]) -> str:
        name = self._plate_arg
        if name is not None:
            if name not in plates:
                raise ValueError(f"plate {name!r} is not a plate of the model; its plates are {plates}")
            return name
        holding = sorted({f.name for site in full.nodes.values()
                          if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site)
                          for f in site["cond_indep_stack"]})
        if len(holding) != 1:
            raise ValueError(
                f"pass plate=: the model's latent sites lie in the plates {holding}, and the amortized guide needs "
                "the one plate whose latent sites are per-datum"
            )
        return holding[0]

    def _local_info(self, name: str) -> _Site:
        site = self.prototype_trace.nodes[name]
        fn, value = site["fn"], site["value"]
        u = biject_to(fn.support).inv(value)
        event_dim = fn.event_dim + u.dim() - value.dim()
        batch = u.shape[: u.dim() - event_dim]
        pos = len(batch) + self._dim
        others = [s for i, s in enumerate(batch) if i != pos and s != 1]
        if pos < 0 or others:
            raise ValueError(
                f"local site {name!r} has batch shape {tuple(batch)} in plate {self.plate!r} (dim {self._dim}): "
                "AutoAmortizedFlow needs the plate's latent sites to be batched by the plate alone; move the other "
                "per-datum dimensions into the event (.to_event)"
            )
        event = u.shape[u.dim() - event_dim:]
        return _Site(name, fn.support, fn.event_dim, event, math.prod(event), u.dim(), value.shape,
                     value.dim() - fn.event_dim + self._dim)

    def _global_info(self, name: str) -> _Site:
        site = self.prototype_trace.nodes[name]
        fn, value = site["fn"], site["value"]
        u = biject_to(fn.support).inv(value)
        event_dim = fn.event_dim + u.dim() - value.dim()
        return _Site(name, fn.support, fn.event_dim, u.shape, u.numel(), u.dim(), value.shape, u.dim() - event_dim)

    def _pack_prototype(self) -> Tensor:
        parts = []
        for info in self._locals:
            value = self.prototype_trace.nodes[info.name]["value"].detach()
            u = biject_to(info.support).inv(value)
            pos = info.udim - len(info.event_u) + self._dim
            parts.append(u.movedim(pos, 0).reshape(u.shape[pos], -1))
        return torch.cat(parts, -1)

    def _build_flow(self, d: int, features: int) -> FlowModule:
        flow = build_flow(self._flow_spec, self._flow_kwargs, d, context=features, transforms=2)
        if flow.features != d or flow.context != features:
            raise ValueError(
                f"flow has {flow.features} features and context {flow.context}, but plate {self.plate!r}'s latent "
                f"sites make a vector of size {d} per datum (unconstrained, concatenated) and the context is of size "
                f"{features}"
            )
        if flow.support is not None:
            raise ValueError(
                f"flow has support {flow.support} but the guide works in the unconstrained space; each site's own "
                "support is reached through biject_to: build the flow without support="
            )
        return flow

    def _check_prototype(self, part_trace: poutine.Trace) -> None:
        r"""Called by the globals' guide at its set-up: its sites must be this guide's globals, shapes alike."""
        globals_ = {info.name: info for info in self._globals}
        for name, site in part_trace.iter_stochastic_nodes():
            if name not in globals_ or site["value"].shape != globals_[name].shape:
                raise ValueError(f"the globals' guide has a site {name!r} that is not a global site of the model")

    # --- one call -----------------------------------------------------------------------------------------------------

    def _run_probe(self, args: tuple, kwargs: dict, subsample: Tensor | None = None,
                   observed: bool = True) -> _Probe:
        r"""Run the model's head, blocked, with its latent sites held still: the plate's size, subsample and data."""
        wanted = self._observed if observed and self._context_fn is None else []
        probe = _Probe(self.plate, wanted, subsample)
        with poutine.block(), torch.no_grad(), probe:
            try:
                self._original_model(*args, **kwargs)
            except _Stop:
                pass
        if probe.indices is None:
            raise ValueError(f"plate {self.plate!r} did not run in the model with these arguments")
        missing = [name for name in wanted if name not in probe.values]
        if missing:
            raise ValueError(
                f"the observed site(s) {missing} of plate {self.plate!r} were not observed in this call (obs=None?): "
                "the amortized guide conditions each datum's latents on them; pass the data, or build the guide "
                "with context="
            )
        return probe

    def _data_context(self, probe: _Probe, args: tuple, kwargs: dict, like: Tensor) -> Tensor:
        r"""The raw per-datum context at the probe's indices, ``(B, C)``."""
        idx = probe.indices
        if self._context_fn is not None:
            c = self._context_fn(idx, *args, **kwargs)
            if not isinstance(c, Tensor):
                raise TypeError(f"context must return a tensor, got {type(c).__name__}")
            if c.dim() == 1:
                c = c[:, None]
            if c.dim() != 2 or c.shape[0] != len(idx):
                raise ValueError(
                    f"context must return a ({len(idx)}, C) tensor for {len(idx)} indices of plate {self.plate!r}, "
                    f"got shape {tuple(c.shape)}"
                )
            return c.to(like)
        parts = []
        for name in self._observed:
            value, event_dim, dim = probe.values[name]
            pos = value.dim() - event_dim + dim
            if pos < 0 or value.shape[pos] != len(idx):
                raise ValueError(
                    f"observed site {name!r} has shape {tuple(value.shape)}, not one value per datum of plate "
                    f"{self.plate!r} ({len(idx)} in this subsample): pass context="
                )
            parts.append(value.movedim(pos, 0).reshape(len(idx), -1))
        return torch.cat(parts, -1).to(like)

    def _global_vector(self, values: dict[str, Tensor]) -> Tensor:
        r"""The globals' draw as the local flow sees it: unconstrained, one vector per particle, aligned to Pyro's
        batch dimensions; then its deviation from the globals' guide's location when that guide has one."""
        parts = []
        for info in self._globals:
            u = biject_to(info.support).inv(values[info.name])
            lead = u.shape[: u.dim() - info.udim]
            parts.append(u.reshape(lead + (1,) * info.pos + (-1,)))
        batch = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
        g = torch.cat([p.expand(batch + p.shape[-1:]) for p in parts], -1)
        loc = self._global_location()
        if loc is None:
            return g
        inputs = {"draw": g, "deviation": g - loc}
        return torch.cat([inputs[k] for k in self._global_inputs], -1)

    def _global_location(self) -> Tensor | None:
        r"""The globals' guide's location parameter, unconstrained and packed like the draw, if it has one.

        The local flow sees both the draw :math:`\theta` and :math:`\theta - m`. The globals' posterior is narrow
        (its spread shrinks like :math:`1/\sqrt{N}`) around a location of order one: fed :math:`\theta` alone, the
        network's coefficient of it is confounded with its bias, drifts under the gradient noise, and the ELBO pays
        for the locals' wrong coupling by narrowing the globals' spread; :math:`\theta - m` is centred, so the
        coupling is learned, while :math:`\theta` lets the locals follow :math:`m` as it moves. (Fed the draw alone,
        one coordinate's sd fell to 0.32 of the exact one on the strong-data model of ``benchmarks/amortized.py``;
        otherwise the choices were within each other's seed-to-seed spread there. Its ``--variants`` set
        ``_global_inputs``.)
        """
        guide, size = self.global_guide, sum(info.size for info in self._globals)
        loc, scale = getattr(guide, "loc", None), getattr(guide, "scale", None)
        if isinstance(loc, Tensor) and isinstance(scale, Tensor) and loc.shape == (size,):
            return loc  # AutoFlow, AutoDiagonalNormal, AutoMultivariateNormal
        locs = getattr(guide, "locs", None)
        if isinstance(locs, nn.Module):  # AutoNormal: one per site
            try:
                return torch.cat([attrgetter(info.name)(locs).reshape(-1) for info in self._globals])
            except AttributeError:
                return None
        return None

    def _features(self, cx: Tensor, g: Tensor | None, layout: bool = True) -> Tensor:
        c = (cx - self.context_loc) / self.context_scale
        if layout:  # the datum dimension where Pyro puts the plate
            c = c.reshape(c.shape[:1] + (1,) * (-self._dim - 1) + c.shape[1:])
        if g is None:
            return c
        batch = torch.broadcast_shapes(c.shape[:-1], g.shape[:-1])
        return torch.cat([c.expand(batch + c.shape[-1:]), g.expand(batch + g.shape[-1:])], -1)

    def conditional(self, features: Tensor) -> Flow:
        r"""The flow :math:`q(u_n \mid h_n)` at per-datum features (the standardized context, then the globals)."""
        h = features if self.encoder is None else torch.cat([features, self.encoder(features)], -1)
        loc, raw = self.head(h).chunk(2, -1)
        log_scale = F.softplus(raw).clamp_min(torch.finfo(raw.dtype).tiny).log()
        d = self.flow(h)
        return Flow(d.base_dist, [*d.transforms, MonotonicAffine(loc, log_scale)])

    def _plates(self, probe: _Probe) -> dict[str, pyro.plate]:
        self.plates = {}
        for name, frame in sorted(self._prototype_frames.items()):
            if name == self.plate:
                self.plates[name] = pyro.plate(name, probe.size, subsample=probe.indices, dim=frame.dim)
            else:
                self.plates[name] = pyro.plate(name, frame.full_size or frame.size, dim=frame.dim,
                                               subsample_size=frame.size)
        return self.plates

    def _unpack(self, latent: Tensor):
        pos = 0
        for info in self._locals:
            u = latent[..., pos:pos + info.size]
            yield info, u.reshape(u.shape[:-1] + info.event_u)
            pos += info.size

    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        if self.master is not None:
            raise NotImplementedError("AutoAmortizedFlow is a top-level guide: it cannot be a part of AutoGuideList")
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        probe = self._run_probe(args, kwargs)
        cx = self._data_context(probe, args, kwargs, self.context_loc)
        plates = self._plates(probe)
        result: dict[str, Tensor] = {}
        g = None
        if self.global_guide is not None:
            values = self.global_guide(*args, **kwargs)
            result.update(values)
            if self._condition:
                g = self._global_vector(values)
        q = self.conditional(self._features(cx, g))
        with plates[self.plate]:
            latent = pyro.sample(f"_{self._pyro_name}_latent", q, infer={"is_auxiliary": True})
        for info, u in self._unpack(latent):
            t = biject_to(info.support)
            value = t(u)
            if poutine.get_mask() is False:
                log_density: Tensor | float = 0.0
            else:
                log_density = t.inv.log_abs_det_jacobian(value, u)
                log_density = sum_rightmost(log_density, log_density.dim() - value.dim() + info.event_dim)
            with ExitStack() as stack:
                for frame in self.prototype_trace.nodes[info.name]["cond_indep_stack"]:
                    stack.enter_context(plates[frame.name])
                result[info.name] = pyro.sample(
                    info.name, dist.Delta(value, log_density=log_density, event_dim=info.event_dim)
                )
        return result

    # --- every datum ----------------------------------------------------------------------------------------------

    def _all_contexts(self, args: tuple, kwargs: dict) -> Tensor:
        r"""The raw context of every datum of the plate, in order, ``(N, C)`` (in subsample-sized chunks)."""
        head = self._run_probe(args, kwargs, observed=False)
        n, idx = head.size, head.indices
        b = len(idx)
        every = torch.arange(n, device=idx.device)
        if self._context_fn is not None:
            head.indices = every
            return self._data_context(head, args, kwargs, self.context_loc)
        chunks = []
        for start in range(0, n, b):
            chunk = every[start:start + b]
            if len(chunk) < b:  # the model draws subsamples of b: fill the last one up, then drop the extra
                chunk = torch.cat([chunk, every[: b - len(chunk)]])
            probe = self._run_probe(args, kwargs, subsample=chunk)
            chunks.append(self._data_context(probe, args, kwargs, self.context_loc)[: n - start])
        return torch.cat(chunks)

    def _check_globals(self, values: dict[str, Tensor]) -> Tensor:
        missing = [info.name for info in self._globals if info.name not in values]
        if missing:
            raise ValueError(f"globals must give a value of every global site; missing {missing}")
        shapes = {info.name: info.shape for info in self._globals}
        wrong = {k: tuple(torch.as_tensor(v).shape) for k, v in values.items()
                 if k in shapes and torch.as_tensor(v).numel() != shapes[k].numel()}
        if wrong:
            raise ValueError(
                f"globals must give one value of each global site (no sample dimensions): got shapes {wrong}, "
                f"expected {({k: tuple(shapes[k]) for k in wrong})}"
            )
        g = self._global_vector({k: torch.as_tensor(v).to(self.context_loc).reshape(shapes[k])
                                 for k, v in values.items() if k in shapes})
        return g.reshape(-1)

    def local_posterior(self, *args, globals: dict[str, Tensor] | None = None, **kwargs) -> Flow:
        r"""The guide's :math:`q(u_n \mid x_n, \theta)` for every datum :math:`n` of the plate, in order.

        A :class:`~gendist.Flow` with batch shape ``(N,)`` over each datum's local
        sites, unconstrained and concatenated in the model's order (a site on the
        real line is its own unconstrained value). ``globals`` gives the global
        sites' values (constrained, as the model samples them) when the guide is
        conditioned on them; by default the globals' guide's median.
        """
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        cx = self._all_contexts(args, kwargs)
        g = None
        if self._condition and self._globals:
            values = globals if globals is not None else self.global_guide.median(*args, **kwargs)
            g = self._check_globals(values)
        return self.conditional(self._features(cx, g, layout=False))

    def _global_draws(self, s: int, args: tuple, kwargs: dict) -> Tensor:
        with poutine.block(), torch.no_grad():
            self._plates(self._run_probe(args, kwargs))
            with pyro.plate("_num_draws", s, dim=-(self._nesting + 1)):
                values = self.global_guide(*args, **kwargs)
            return self._global_vector(values).reshape(s, -1)

    @torch.no_grad()
    def quantiles(self, quantiles: Sequence[float] | Tensor, *args, **kwargs) -> dict[str, Tensor]:
        r"""Posterior quantiles of every latent site, stacked on a first dimension.

        The globals' come from their guide; each local site's are Monte Carlo
        estimates (``num_samples`` joint draws of the globals and the datum's
        locals, a fixed seed), per coordinate, in the constrained space, for every
        datum of the plate.
        """
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        q = torch.as_tensor(quantiles, dtype=self.context_loc.dtype, device=self.context_loc.device)
        if q.dim() != 1 or bool(((q < 0) | (q > 1)).any()):
            raise ValueError(f"quantiles must be a list of numbers in [0, 1], got {quantiles!r}")
        result = {} if self.global_guide is None else dict(self.global_guide.quantiles(quantiles, *args, **kwargs))
        s = self._num_samples
        devices = [q.device] if q.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            g = self._global_draws(s, args, kwargs) if self._condition and self._globals else None
            cx = self._all_contexts(args, kwargs)
            n = len(cx)
            parts: dict[str, list[Tensor]] = {info.name: [] for info in self._locals}
            step = max(1, 2 ** 20 // (s * max(cx.shape[-1], 1)))
            for start in range(0, n, step):
                c = cx[start:start + step]
                if g is None:
                    latent = self.conditional(self._features(c, None, layout=False)).sample((s,))
                else:
                    c = c.expand((s,) + c.shape)
                    latent = self.conditional(self._features(c, g[:, None], layout=False)).sample()
                for info, u in self._unpack(latent):
                    parts[info.name].append(torch.quantile(biject_to(info.support)(u), q, dim=0))
        for info in self._locals:
            values = torch.cat(parts[info.name], 1)  # (Q, N, *event)
            shape = list(info.shape)
            shape[info.pos] = n
            result[info.name] = values.reshape((len(q), *shape))
        return result

    @torch.no_grad()
    def median(self, *args, **kwargs) -> dict[str, Tensor]:
        r"""The posterior median of every latent site (see :meth:`quantiles`); the locals' for every datum."""
        return {name: v[0] for name, v in self.quantiles([0.5], *args, **kwargs).items()}

    def fit(self, *args, **kwargs) -> list[float]:
        r"""Train by SVI with the default schedule (:func:`gendist.bayes.svi`) and return the losses.

        Keyword arguments ``steps``, ``lr``, ``final_lr``, ``warm``, ``average``, ``particles``, ``elbo`` and
        ``clip_norm`` go to :func:`~gendist.bayes.svi`; everything else goes to the model.
        """
        return fit_guide(self._original_model, self, args, kwargs)


@dataclass(frozen=True)
class _Site:
    r"""A latent site as the guide packs it: ``event_u`` the unconstrained event (per datum for a local site),
    ``udim`` the unconstrained prototype's dimensions, ``shape`` the constrained prototype's shape, ``pos`` the
    plate's position in it (a local site) or the unconstrained batch dimensions (a global one)."""

    name: str
    support: constraints.Constraint
    event_dim: int
    event_u: torch.Size
    size: int
    udim: int
    shape: torch.Size
    pos: int


class _Stop(Exception):
    r"""Raised by :class:`_Probe` once it has what the guide needs: the rest of the model need not run."""


class _Probe(Messenger):
    r"""Record a plate's size, subsample indices and observed values while a (blocked) model runs.

    Every latent site is held at a point of its support that costs no draw (its mean when finite, else one
    sample); ``subsample`` forces the plate's indices. Stops the model (``_Stop``) when it has seen them all.
    """

    def __init__(self, plate: str, observed: Sequence[str], subsample: Tensor | None) -> None:
        super().__init__()
        self.plate, self.wanted, self.subsample = plate, list(observed), subsample
        self.size: int | None = None
        self.indices: Tensor | None = None
        self.values: dict[str, tuple[Tensor, int, int]] = {}

    def _process_message(self, msg: dict) -> None:
        if msg["type"] != "sample":
            return
        fn = msg["fn"]
        if site_is_subsample(msg):
            if msg["name"] == self.plate and self.subsample is not None:
                msg["value"] = self.subsample
            return
        if msg["is_observed"]:
            frame = next((f for f in msg["cond_indep_stack"] if f.name == self.plate), None)
            if frame is not None and msg["name"] in self.wanted:
                self.values[msg["name"]] = (msg["value"], fn.event_dim, frame.dim)
                if len(self.values) == len(self.wanted):
                    raise _Stop
            return
        if msg["value"] is None:
            msg["value"] = _still_point(fn)

    def _postprocess_message(self, msg: dict) -> None:
        if site_is_subsample(msg) and msg["name"] == self.plate:
            self.size, self.indices = int(msg["fn"].size), msg["value"]
            if not self.wanted:
                raise _Stop


def _still_point(fn: torch.distributions.Distribution) -> Tensor:
    shape = fn.batch_shape + fn.event_shape
    try:
        value = fn.mean
    except (NotImplementedError, AttributeError):
        value = None
    if isinstance(value, Tensor) and value.shape == shape and bool(torch.isfinite(value).all()):
        return value
    return fn.sample()


def _plate_names(trace: poutine.Trace) -> list[str]:
    names = {f.name for site in trace.nodes.values() if site["type"] == "sample" for f in site["cond_indep_stack"]}
    names |= {name for name, site in trace.nodes.items() if site_is_subsample(site)}
    return sorted(names)


def _in_plate(site: dict, plate: str) -> bool:
    return any(f.name == plate for f in site["cond_indep_stack"])


def _softplus_inv(y: float) -> float:
    return y + math.log(-math.expm1(-y))
