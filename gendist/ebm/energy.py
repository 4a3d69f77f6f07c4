r"""Deep energy-based models: :math:`p_\theta(x \mid c) = e^{-E_\theta(x, c)} / Z_\theta(c)` with a network energy."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_context, check_integer, check_number, check_shape, check_value
from gendist._recipes import Recorded
from gendist.distributions.energy import ENUMERATION_LIMIT, EnergyBased
from gendist.distributions.lazy import LazyDistribution
from gendist.nn.energy import EnergyConvNet, EnergyMLP
from gendist.samplers.mcmc import MCMC_SAMPLERS, check_step_size

__all__ = [
    "PARTITION_METHODS", "SUPPORTS", "BinaryNetEnergy", "Energy", "EnergyRecipe", "NetEnergy", "SingleSiteGibbs",
    "check_confine", "gaussian_envelope",
]

SUPPORTS: dict[str, constraints.Constraint] = {"real": constraints.real, "binary": constraints.boolean}
r"""The supports of one entry a deep energy takes, by name."""

PARTITION_METHODS = ("auto", "exact", "quadrature", "ais", "reverse_ais")
r"""The ``log_partition`` methods a recipe computes :math:`\log Z` by when it builds its distribution."""

_OPTIONS = ("sampler", "steps", "step_size", "sampler_options", "log_partition", "partition_options", "init")
_BINARY_SAMPLERS = ("gibbs", "parallel_tempering")  # the others move real values along the energy's gradient


class NetEnergy:
    r"""The energy ``E(x, c)`` of a network ``net(x[, c])`` over events of ``event_shape`` (picklable).

    ``flatten_event`` flattens the event to a vector first (a perceptron over a matrix-shaped event);
    ``flatten_batch`` runs the network on ``(N, *event_shape)`` (and ``(N, context)``), for networks written
    for one batch dimension. The network may return ``(...,)`` or ``(..., 1)``. ``confine`` adds
    :math:`\frac{\lambda}{2} \lVert x \rVert^2`: a Gaussian envelope that keeps :math:`e^{-E}` integrable
    whatever the network (a perceptron's output grows at most linearly in :math:`x`).
    """

    def __init__(self, net: nn.Module, event_shape: Size, flatten_event: bool = False,
                 flatten_batch: bool = False, confine: float = 0.0) -> None:
        self.net, self.event_shape = net, Size(event_shape)
        self.flatten_event, self.flatten_batch = flatten_event, flatten_batch
        self.confine = float(confine)

    def __call__(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        n = len(self.event_shape)
        batch = x.shape[: x.dim() - n]
        envelope = gaussian_envelope(x, n, self.confine) if self.confine else None
        if c is not None:
            c = c.expand(batch + c.shape[-1:])
        if self.flatten_batch:
            x = x.reshape(batch.numel(), *self.event_shape)
            c = c.reshape(batch.numel(), c.shape[-1]) if c is not None else None
        if self.flatten_event:
            x = x.flatten(x.dim() - n)
        e = self.net(x) if c is None else self.net(x, c)
        if not isinstance(e, Tensor) or e.numel() != batch.numel() or e.dim() > len(batch) + 1:
            got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
            raise ValueError(f"the energy network must return one energy per example, shape {tuple(batch)} "
                             f"(or {(*batch, 1)}) for inputs of shape {(*batch, *self.event_shape)}; got {got}")
        return e.reshape(batch) if envelope is None else e.reshape(batch) + envelope


class SingleSiteGibbs:
    r"""Mixin for an energy ``self(x, c)`` over binary events of ``self.event_shape``: single-site Gibbs
    sweeps, what ``sampler="gibbs"`` runs (``D`` energy evaluations of both values of one entry per sweep)."""

    event_shape: Size
    __call__: Any  # the energy, from the class this is mixed into

    def gibbs(self, x: Tensor, c: Tensor | None = None, generator: torch.Generator | None = None,
              beta: float | Tensor = 1.0) -> Tensor:
        r"""One sweep of single-site Gibbs sampling over binary ``x`` (every entry in turn):
        :math:`P(x_i = 1 \mid x_{-i}) = \sigma(\beta (E(x_{i \to 0}) - E(x_{i \to 1})))`."""
        n = len(self.event_shape)
        batch, D = x.shape[: x.dim() - n], self.event_shape.numel()
        flat = x.reshape(*batch, D).clone()
        cc = c.expand(batch + c.shape[-1:]) if c is not None else None
        both_c = cc.expand(2, *cc.shape) if cc is not None else None
        device = generator.device if generator is not None else x.device
        for i in range(D):
            both = flat.expand(2, *flat.shape).clone()
            both[0, ..., i], both[1, ..., i] = 0, 1
            e = self(both.reshape(2, *batch, *self.event_shape), both_c)
            p = torch.sigmoid((e[0] - e[1]) * beta)
            u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=device).to(p.device)
            flat[..., i] = (u < p).to(flat.dtype)
        return flat.reshape(x.shape)


class BinaryNetEnergy(SingleSiteGibbs, NetEnergy):
    r"""A :class:`NetEnergy` over binary values, with single-site Gibbs sweeps for ``sampler="gibbs"``."""


def _device_of(module: nn.Module, c: Tensor | None) -> tuple[torch.dtype, torch.device]:
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    if c is not None:
        return c.dtype, c.device
    return torch.get_default_dtype(), torch.device("cpu")


def gaussian_envelope(x: Tensor, event_dim: int, confine: float) -> Tensor:
    r""":math:`\frac{\lambda}{2} \lVert x \rVert^2` over the last ``event_dim`` dimensions (λ is ``confine``)."""
    return 0.5 * confine * x.pow(2).flatten(x.dim() - event_dim).sum(-1)


def check_confine(where: str, confine: float | None, default: float) -> float:
    r"""``confine`` (``default`` for None) as a finite number :math:`\ge 0`, or a ``ValueError`` naming it."""
    return default if confine is None else check_number(f"{where}: `confine`", confine, zero=True)


class EnergyRecipe(Recorded, LazyDistribution):
    r"""What every energy recipe shares: how its distribution samples and finds :math:`\log Z`.

    A subclass sets ``self.options`` with :meth:`_set_options` and builds its distribution with
    :meth:`_distribution`; keyword options of ``forward`` override the stored ones for one call.
    """

    _records = False

    def _set_options(self, where: str, binary: bool, sampler: str | None, steps: int, step_size: float,
                     sampler_options: dict[str, Any] | None, log_partition: str | None,
                     partition_options: dict[str, Any] | None, init: Distribution | None = None) -> None:
        self.options = self._check_options(where, binary, {
            "sampler": sampler, "steps": steps, "step_size": step_size, "sampler_options": sampler_options,
            "log_partition": log_partition, "partition_options": partition_options, "init": init})

    def _check_options(self, where: str, binary: bool, o: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(o) - set(_OPTIONS))
        if unknown:
            raise TypeError(f"{where}: unknown option(s) {unknown}; expected some of {list(_OPTIONS)}")
        if o["sampler"] is None:
            o["sampler"] = "gibbs" if binary else "mala"
        if binary and o["sampler"] not in _BINARY_SAMPLERS:
            raise ValueError(f"{where}: the sampler {o['sampler']!r} moves real values; binary values need "
                             "sampler='gibbs' (single-site Gibbs sweeps) or 'parallel_tempering' over them")
        if o["sampler"] not in MCMC_SAMPLERS:
            raise ValueError(f"{where}: unknown `sampler` {o['sampler']!r}; expected one of {sorted(MCMC_SAMPLERS)}")
        check_integer(f"{where}: `steps`", o["steps"], low=1)
        check_step_size(where, o["step_size"])
        for key in ("sampler_options", "partition_options"):
            if o[key] is not None and not isinstance(o[key], dict):
                raise TypeError(f"{where}: `{key}` must be a dict of keyword arguments or None, "
                                f"got {type(o[key]).__name__}")
        if o["log_partition"] is not None and o["log_partition"] not in PARTITION_METHODS:
            raise ValueError(f"{where}: `log_partition` must be None (log Z unknown) or one of "
                             f"{list(PARTITION_METHODS)}, got {o['log_partition']!r}")
        return o

    def _check_partition(self, where: str, method: str | None, shape: Size, binary: bool) -> None:
        D = shape.numel()
        if method == "quadrature" and (binary or D > 2):
            raise ValueError(f"{where}: log_partition='quadrature' needs 1 or 2 real entries, the event "
                             f"{tuple(shape)} has {D}{' binary' if binary else ''}; use 'exact' (binary) or 'ais'")
        if method == "exact" and not binary:
            raise ValueError(f"{where}: log_partition='exact' enumerates binary values; real values take "
                             "'quadrature' (1-2 entries, an exact log Z) or 'ais' (an estimate)")
        if method == "exact" and D > ENUMERATION_LIMIT:
            raise ValueError(f"{where}: log_partition='exact' enumerates at most {ENUMERATION_LIMIT} binary "
                             f"entries, the event has {D}; use 'ais'")
        if method in ("ais", "reverse_ais") and binary:
            raise ValueError(f"{where}: the generic AIS anneals real values; binary values take 'exact' "
                             f"(at most {ENUMERATION_LIMIT} entries)")

    def _distribution(self, where: str, energy: Any, shape: Size, binary: bool, c: Tensor | None,
                      options: dict[str, Any]) -> EnergyBased:
        o = self._check_options(where, binary, {**self.options, **options})
        self._check_partition(where, o["log_partition"], shape, binary)
        dtype, device = _device_of(self, c)
        sampler_options = dict(o["sampler_options"] or {})
        sampler = MCMC_SAMPLERS.get(o["sampler"])
        if sampler is not None and "step_size" in inspect.signature(sampler).parameters:
            sampler_options.setdefault("step_size", o["step_size"])
        d = EnergyBased(energy, shape, SUPPORTS["binary" if binary else "real"], context=c, sampler=o["sampler"],
                        steps=o["steps"], sampler_options=sampler_options, init=o["init"], dtype=dtype,
                        device=device)
        if o["log_partition"] is not None:
            d = d.normalized(o["log_partition"], **(o["partition_options"] or {}))
        return d


class Energy(EnergyRecipe):
    r"""A deep energy-based model :math:`p_\theta(x \mid c) = e^{-E_\theta(x, c)} / Z_\theta(c)`; calling it
    returns its :class:`~gendist.EnergyBased` (sampled by MCMC; ``log_prob`` only once :math:`\log Z` is known).

    The energy is a network: by default an :class:`~gendist.nn.EnergyConvNet` for images ``(C, H, W)`` and an
    :class:`~gendist.nn.EnergyMLP` for any other shape (its event flattened), both smooth in :math:`x`.

    Arguments:
        shape: the event shape of :math:`x`.
        context: the context size (0 for none); the distribution's batch shape is the context's leading shape.
        hidden: the perceptron's hidden sizes; ``width``: the convolutional network's first channels.
        activation: the networks' activation class (smooth: ``nn.SiLU``, ``nn.Softplus``, ...).
        net: a network ``net(x[, c]) -> E`` to use instead, called on ``(N, *shape)`` (and ``(N, context)``),
            returning ``(N,)`` or ``(N, 1)`` (the model then has no JSON config).
        support: ``"real"`` or ``"binary"`` (0/1 entries; sampled by single-site Gibbs sweeps, ``"gibbs"``).
        sampler, steps, step_size, sampler_options: how the distribution samples (a name of
            :data:`~gendist.samplers.MCMC_SAMPLERS`; default ``"mala"``, or ``"gibbs"`` for binary values).
        log_partition: how :math:`\log Z` is found each time the distribution is built: None (unknown:
            ``log_prob`` raises, ``unnormalized_log_prob`` works), ``"quadrature"`` (1-2 real entries: exact),
            ``"exact"`` (enumeration of binary values), ``"ais"`` (an estimate with its standard error) or
            ``"auto"``; ``partition_options``: that method's options (``bound``, ``points``, ``chains``, ...;
            see :meth:`~gendist.EnergyBased.log_partition`). A quadrature keeps the graph: ``log_prob`` is then
            differentiable in the parameters.
        confine: :math:`\lambda \ge 0` of the envelope :math:`\frac{\lambda}{2} \lVert x \rVert^2` added to
            the network's energy of real values (default: 0.01, about :math:`\mathcal{N}(0, 10^2)`, for the
            default network; 0 for a given ``net``): with it :math:`e^{-E}` is integrable for every weight, so
            :math:`\log Z` is finite and a quadrature over a box that holds the mass is the whole integral.
        learn_normalizer: add a learned scalar ``log_normalizer`` (:math:`\log Z` as a parameter, what noise-
            contrastive estimation fits). The distribution does not use it: its ``log_prob`` stays honest.

    Example:
        >>> model = Energy(2, hidden=(16,), steps=5)
        >>> d = model()
        >>> d.sample((3,)).shape, d.log_prob_kind
        (torch.Size([3, 2]), 'unnormalized')
        >>> model(log_partition="quadrature", partition_options={"points": 51}).log_prob_kind
        'exact'
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        context: int = 0,
        hidden: Sequence[int] = (128, 128),
        width: int = 32,
        activation: type[nn.Module] = nn.SiLU,
        net: nn.Module | None = None,
        support: str = "real",
        sampler: str | None = None,
        steps: int = 200,
        step_size: float = 0.01,
        sampler_options: dict[str, Any] | None = None,
        log_partition: str | None = None,
        partition_options: dict[str, Any] | None = None,
        learn_normalizer: bool = False,
        confine: float | None = None,
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape, "Energy: `shape`")
        confine = check_confine("Energy", confine, 0.01 if net is None else 0.0)
        self.context = check_integer("Energy: `context`", context, low=0)
        if support not in SUPPORTS:
            raise ValueError(f"Energy: `support` must be one of {sorted(SUPPORTS)}, got {support!r}")
        self.support = support
        binary = support == "binary"
        self._set_options("Energy", binary, sampler, steps, step_size, sampler_options, log_partition,
                          partition_options)
        self._check_partition("Energy", log_partition, self.shape, binary)
        kind = BinaryNetEnergy if binary else NetEnergy  # only binary values take Gibbs sweeps
        extra = {} if binary else {"confine": confine}
        if net is None:
            if len(self.shape) == 3:
                net = EnergyConvNet(self.shape[0], self.shape[1:], width, context=context, activation=activation)
                self.energy_fn = kind(net, self.shape, **extra)
            else:
                net = EnergyMLP(self.shape.numel(), hidden, context, activation)
                self.energy_fn = kind(net, self.shape, flatten_event=len(self.shape) > 1, **extra)
        elif isinstance(net, nn.Module):
            self.energy_fn = kind(net, self.shape, flatten_batch=True, **extra)
        else:
            raise TypeError(f"Energy: `net` must be an nn.Module (net(x[, c]) -> energy) or None, "
                            f"got {type(net).__name__}")
        self.net = net
        if learn_normalizer:
            self.log_normalizer = nn.Parameter(torch.zeros(()))
        else:
            self.register_parameter("log_normalizer", None)

    def energy(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r""":math:`E_\theta(x, c)`, shape ``x.shape[:-len(shape)]`` (the context broadcast against it)."""
        dtype, _ = _device_of(self, c)
        check_context(c, self.context, "Energy.energy", dtype)
        check_value("x", x, self.shape, "Energy.energy", dtype)
        if c is not None:
            batch = torch.broadcast_shapes(x.shape[: x.dim() - len(self.shape)], c.shape[:-1])
            x, c = x.expand(batch + self.shape), c.expand(batch + c.shape[-1:])
        return self.energy_fn(x, c)

    def forward(self, c: Tensor | None = None, **options: Any) -> EnergyBased:
        r"""The distribution :math:`p(x \mid c)`; keyword ``options`` (``sampler``, ``steps``, ``step_size``,
        ``sampler_options``, ``log_partition``, ``partition_options``, ``init``) override the stored ones."""
        dtype, _ = _device_of(self, c)
        check_context(c, self.context, "Energy", dtype)
        return self._distribution("Energy", self.energy_fn, self.shape, self.support == "binary", c, options)
