r"""Adapters between gendist and `nflows <https://github.com/bayesiains/nflows>`_, both ways.

The two libraries orient a flow's bijection in opposite directions:

- a gendist (torch) transform :math:`f` maps the **base** space to the **data**
  space, :math:`x = f(z)`, and its log-determinant is :math:`\log |\det J_f(z)|`;
- an nflows ``Transform.forward(x, context)`` maps **data** to **noise**,
  :math:`z = f^{-1}(x)`, returning :math:`\log |\det J_{f^{-1}}(x)|`, and
  ``inverse`` maps noise to data.

So, per sample,

.. math:: f.\mathrm{call\_and\_ladj}(z) = \mathrm{nflows.inverse}(z), \qquad
          f.\mathrm{inv\_and\_ladj}(x) = (z, -\ell) \text{ where } (z, \ell) = \mathrm{nflows.forward}(x).

nflows transforms act on one batch dimension, ``(N, *event_shape)``, and
return one log-determinant per row; the adapters flatten any leading batch
dimensions to one and back, and broadcast a context against the inputs.

- :func:`from_nflows` / :class:`FromNflows`: an nflows transform as a gendist
  :class:`~gendist.transforms.Transform` (a value: holds no parameters itself);
- :class:`NflowsTransform`: the same as a :class:`~gendist.LazyTransform`
  module that owns the nflows module, so it trains, moves and saves;
- :func:`from_nflows_flow` / :class:`NflowsFlow`: a whole nflows ``Flow`` as a
  gendist module returning a :class:`~gendist.Flow` distribution;
- :func:`to_nflows` / :class:`ToNflows`: a gendist transform (or
  :class:`~gendist.LazyTransform` module) as an nflows ``Transform``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyro.distributions as dist
import torch
import torch.nn as nn
from nflows.distributions.base import Distribution as _NflowsDistribution
from nflows.distributions.normal import ConditionalDiagonalNormal, DiagonalNormal
from nflows.distributions.normal import StandardNormal as _NflowsStandardNormal
from nflows.flows.base import Flow as _NflowsFlow
from nflows.transforms.base import Transform as _NflowsTransform
from pyro.distributions.conditional import ConditionalTransform
from torch import Size, Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.transforms import Transform as _TorchTransform
from torch.distributions.utils import _sum_rightmost

from gendist.distributions.flow import Flow
from gendist.distributions.lazy import LazyDistribution, LazyTransform
from gendist.transforms.base import Transform, call_and_ladj, inv_and_ladj

__all__ = [
    "FromNflows",
    "NflowsBase",
    "NflowsFlow",
    "NflowsTransform",
    "ToNflows",
    "from_nflows",
    "from_nflows_flow",
    "to_nflows",
]


def _check_nflows_transform(transform: object, where: str) -> None:
    if not isinstance(transform, _NflowsTransform):
        raise TypeError(
            f"{where}: expected an nflows.transforms.Transform, got {type(transform).__name__}; "
            "use gendist.interop.to_nflows to go the other way"
        )


def _batch_of(t: Tensor, event_dim: int, name: str, where: str) -> Size:
    if t.dim() < event_dim:
        raise ValueError(
            f"{where}: `{name}` must have at least {event_dim} dimension(s) (its event), got shape "
            f"{tuple(t.shape)}"
        )
    return t.shape[: t.dim() - event_dim]


def _flatten(
    v: Tensor, event_dim: int, context: Tensor | None, context_event_dim: int, where: str
) -> tuple[Tensor, Tensor | None, Size]:
    """Broadcast ``v`` and ``context`` on their batch dimensions and flatten those to one."""
    batch = _batch_of(v, event_dim, "input", where)
    if context is None:
        return v.reshape((-1,) + v.shape[len(batch) :]), None, batch
    c_batch = _batch_of(context, context_event_dim, "context", where)
    try:
        batch = torch.broadcast_shapes(batch, c_batch)
    except RuntimeError:
        raise ValueError(
            f"{where}: the input's batch shape {tuple(batch)} and the context's batch shape "
            f"{tuple(c_batch)} do not broadcast (input shape {tuple(v.shape)}, event_dim "
            f"{event_dim}; context shape {tuple(context.shape)}, context_event_dim "
            f"{context_event_dim})"
        ) from None
    v = v.expand(batch + v.shape[v.dim() - event_dim :])
    context = context.expand(batch + context.shape[context.dim() - context_event_dim :])
    flat_v = v.reshape((-1,) + v.shape[len(batch) :])
    flat_c = context.reshape((-1,) + context.shape[len(batch) :])
    return flat_v, flat_c, batch


class FromNflows(Transform):
    r"""An nflows ``Transform`` as a gendist transform, oriented base :math:`\to` data.

    With :math:`g` the nflows transform (data :math:`\to` noise), this is
    :math:`f = g^{-1}`: ``call_and_ladj`` runs ``g.inverse`` and returns its
    log-determinant as it is, ``inv_and_ladj`` runs ``g.forward`` (one pass,
    the fast direction of an nflows MAF) and returns the negated one.

    Inputs of shape ``batch + event_shape`` are flattened to nflows'
    ``(N, *event_shape)`` and back; the log-determinant has shape ``batch``
    (nflows sums it over the event). A context of shape
    ``context_batch + context_event_shape`` is broadcast against the input's
    batch shape before both are flattened. The transform holds a reference
    to the nflows module, not a copy: gradients reach its parameters, but use
    :class:`NflowsTransform` to register them in a module.

    Arguments:
        transform: the nflows transform :math:`g` (data to noise).
        context: an optional fixed context passed to every call of :math:`g`.
        event_dim: the number of trailing dimensions nflows sees as one
            sample's event (1 for vectors, 3 for ``(C, H, W)`` images).
        context_event_dim: the number of trailing dimensions of ``context``
            that are one context's event.
        shapes: for transforms that change shape (``SqueezeTransform``,
            ``MultiscaleCompositeTransform``): the pair ``(base_event_shape,
            data_event_shape)``; it overrides ``event_dim`` and gives
            ``forward_shape``/``inverse_shape``.

    Example:
        >>> from nflows.transforms import PointwiseAffineTransform
        >>> g = PointwiseAffineTransform(shift=1.0, scale=2.0)  # noise = 2 x + 1
        >>> f = from_nflows(g)  # x = (z - 1) / 2
        >>> x, ladj = f.call_and_ladj(torch.ones(4, 3))
        >>> x[0], ladj
        (tensor([0., 0., 0.]), tensor([-2.0794, -2.0794, -2.0794, -2.0794]))
    """

    bijective = True

    def __init__(
        self,
        transform: _NflowsTransform,
        context: Tensor | None = None,
        event_dim: int = 1,
        context_event_dim: int = 1,
        shapes: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        _check_nflows_transform(transform, "from_nflows")
        if context is not None and not isinstance(context, Tensor):
            raise TypeError(f"from_nflows: `context` must be a tensor or None, got {type(context).__name__}")
        if shapes is not None:
            base_shape, data_shape = Size(shapes[0]), Size(shapes[1])
            base_dim, data_dim = len(base_shape), len(data_shape)
            if base_shape.numel() != data_shape.numel():
                raise ValueError(
                    f"from_nflows: shapes {tuple(base_shape)} and {tuple(data_shape)} have different "
                    "numbers of elements; a bijection keeps the number of elements"
                )
        else:
            base_shape = data_shape = None
            base_dim = data_dim = int(event_dim)
        if base_dim < 0 or data_dim < 0 or context_event_dim < 0:
            raise ValueError(
                f"from_nflows: event dimensions must be >= 0, got event_dim={event_dim}, "
                f"context_event_dim={context_event_dim}"
            )
        self.nflows = transform
        self.context = context
        self.context_event_dim = int(context_event_dim)
        self.base_shape, self.data_shape = base_shape, data_shape
        self.base_event_dim, self.data_event_dim = base_dim, data_dim

    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.real, self.base_event_dim)

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.real, self.data_event_dim)

    def _run(self, v: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        event_dim = self.base_event_dim if inverse else self.data_event_dim
        where = f"{type(self).__name__}.{'call_and_ladj' if inverse else 'inv_and_ladj'}"
        flat, flat_c, batch = _flatten(v, event_dim, self.context, self.context_event_dim, where)
        g = self.nflows.inverse if inverse else self.nflows
        out, logabsdet = g(flat, context=flat_c)
        return out.reshape(batch + out.shape[1:]), logabsdet.reshape(batch)

    def call_and_ladj(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._run(z, inverse=True)

    def inv_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, ladj = self._run(x, inverse=False)
        return z, -ladj

    def _swap(self, shape: Sequence[int], src: Size | None, dst: Size | None, name: str) -> Size:
        shape = Size(shape)
        if src is None or dst is None:
            return shape
        if shape[len(shape) - len(src) :] != src:
            raise ValueError(f"{type(self).__name__}.{name}: shape {tuple(shape)} does not end in {tuple(src)}")
        return shape[: len(shape) - len(src)] + dst

    def forward_shape(self, shape: Sequence[int]) -> Size:
        return self._swap(shape, self.base_shape, self.data_shape, "forward_shape")

    def inverse_shape(self, shape: Sequence[int]) -> Size:
        return self._swap(shape, self.data_shape, self.base_shape, "inverse_shape")

    def __repr__(self) -> str:
        return f"FromNflows({type(self.nflows).__name__}, event_dim={self.data_event_dim})"


def from_nflows(
    transform: _NflowsTransform,
    context: Tensor | None = None,
    event_dim: int = 1,
    context_event_dim: int = 1,
    shapes: tuple[Sequence[int], Sequence[int]] | None = None,
) -> FromNflows:
    r"""Wrap an nflows transform (data :math:`\to` noise) as a gendist transform (base :math:`\to` data).

    See :class:`FromNflows` for the arguments.

    Example:
        >>> from nflows.transforms import MaskedAffineAutoregressiveTransform
        >>> g = MaskedAffineAutoregressiveTransform(features=3, hidden_features=8)
        >>> f = from_nflows(g)
        >>> x = torch.randn(5, 2, 3)
        >>> z, ladj = f.inv_and_ladj(x)
        >>> bool(torch.allclose(f(z), x, atol=1e-5)), ladj.shape
        (True, torch.Size([5, 2]))
    """
    return FromNflows(transform, context, event_dim, context_event_dim, shapes)


class NflowsTransform(LazyTransform):
    r"""A module owning an nflows transform, whose call builds its gendist transform.

    ``module(c)`` returns :func:`from_nflows(transform, c) <from_nflows>`; the
    nflows module is a submodule, so its parameters train, ``.to()`` moves
    them and ``state_dict`` saves them. It can sit in a
    :class:`~gendist.flows.FlowModule`'s list of transforms.

    Arguments:
        transform: the nflows transform (data to noise).
        event_dim: see :class:`FromNflows`.
        context_event_dim: see :class:`FromNflows`.
        shapes: see :class:`FromNflows`.

    Example:
        >>> from nflows.transforms import MaskedAffineAutoregressiveTransform
        >>> from gendist.flows import FlowModule
        >>> g = MaskedAffineAutoregressiveTransform(features=2, hidden_features=8, context_features=1)
        >>> flow = FlowModule([NflowsTransform(g)], features=2, context=1)
        >>> flow(torch.randn(4, 1)).log_prob(torch.randn(4, 2)).shape
        torch.Size([4])
    """

    def __init__(
        self,
        transform: _NflowsTransform,
        event_dim: int = 1,
        context_event_dim: int = 1,
        shapes: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        _check_nflows_transform(transform, "NflowsTransform")
        self.nflows = transform
        self.event_dim = int(event_dim)
        self.context_event_dim = int(context_event_dim)
        self.shapes = shapes

    def forward(self, c: Tensor | None = None) -> FromNflows:
        return FromNflows(self.nflows, c, self.event_dim, self.context_event_dim, self.shapes)


def _dtype_device(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The floating dtype and the device of a module's first floating parameter (else the defaults)."""
    for p in module.parameters():
        if p.dtype.is_floating_point:
            return p.dtype, p.device
    for name, b in module.named_buffers():
        if b.dtype.is_floating_point and not name.endswith("_log_z"):  # nflows keeps _log_z in float64
            return b.dtype, b.device
    device = next((b.device for b in module.buffers()), torch.device("cpu"))
    return torch.get_default_dtype(), device


class NflowsBase(LazyDistribution):
    r"""An nflows base distribution as a module building the equivalent Pyro distribution.

    Supported (each gives ``Normal(...).to_event(len(shape))`` with the same
    density as the nflows one):

    - ``StandardNormal(shape)``: :math:`\mathcal{N}(0, I)`; its tensors are
      buffers of this module, made with the dtype of ``reference``;
    - ``DiagonalNormal(shape)``: mean ``mean_`` and standard deviation
      ``exp(log_std_)``, the nflows parameters themselves (they train);
    - ``ConditionalDiagonalNormal(shape, context_encoder)``: mean and log-std
      from the context encoder, which needs a context.

    The nflows distribution is a submodule, so its parameters train and save.

    Arguments:
        distribution: the nflows distribution.
        reference: a module whose first floating parameter sets the dtype and
            device of a ``StandardNormal``'s buffers (the distribution itself
            when None).
        register: register the nflows distribution as a submodule (False when
            a parent module already holds it).

    Example:
        >>> from nflows.distributions import StandardNormal
        >>> NflowsBase(StandardNormal([3]))(torch.zeros(5, 2)).batch_shape
        torch.Size([5])
    """

    def __init__(
        self, distribution: _NflowsDistribution, reference: nn.Module | None = None, register: bool = True
    ) -> None:
        super().__init__()
        kind = type(distribution)
        if kind not in (_NflowsStandardNormal, DiagonalNormal, ConditionalDiagonalNormal):
            raise TypeError(
                f"nflows base distribution {kind.__module__}.{kind.__qualname__} has no torch/Pyro "
                "equivalent in gendist.interop (supported: StandardNormal, DiagonalNormal, "
                "ConditionalDiagonalNormal); wrap the transform with gendist.interop.NflowsTransform "
                "and give gendist.flows.FlowModule a torch or Pyro distribution as `base` instead"
            )
        if register:
            self.nflows = distribution
        else:  # already a submodule of the parent (NflowsFlow): keep state_dict keys unique
            self.__dict__["nflows"] = distribution
        self.shape = Size(distribution._shape)
        if kind is _NflowsStandardNormal:
            dtype, device = _dtype_device(reference if reference is not None else distribution)
            self.register_buffer("loc", torch.zeros(self.shape, dtype=dtype, device=device))
            self.register_buffer("scale", torch.ones(self.shape, dtype=dtype, device=device))

    def forward(self, c: Tensor | None = None, context_event_dim: int = 1) -> Distribution:
        d, shape = self.nflows, self.shape
        batch = Size() if c is None else _batch_of(c, context_event_dim, "c", "NflowsBase")
        if type(d) is _NflowsStandardNormal:
            loc, scale = self.loc, self.scale
        elif type(d) is DiagonalNormal:
            loc, scale = d.mean_.reshape(shape), d.log_std_.exp().reshape(shape)
        else:
            if c is None:
                raise ValueError(
                    "NflowsBase: nflows ConditionalDiagonalNormal needs a context: call it with `c`"
                )
            flat = c.reshape((-1,) + c.shape[len(batch) :])
            means, log_stds = d._compute_params(flat)
            loc, scale = means.reshape(batch + shape), log_stds.exp().reshape(batch + shape)
        loc, scale = loc.expand(batch + shape), scale.expand(batch + shape)
        return dist.Normal(loc, scale).to_event(len(shape))


class NflowsFlow(LazyDistribution):
    r"""An nflows ``Flow`` as a gendist module: ``module(c)`` returns a :class:`~gendist.Flow`.

    The distribution is :math:`x = g^{-1}(z)`, :math:`z \sim p_Z(\cdot \mid e)`,
    with :math:`g` the nflows transform (wrapped by :class:`FromNflows`),
    :math:`p_Z` the nflows base as a Pyro distribution (:class:`NflowsBase`)
    and :math:`e` the flow's embedded context (its ``embedding_net`` applied to
    ``c``), so ``module(c).log_prob(x)`` equals ``flow.log_prob(x, c)``. The
    nflows flow is a submodule: its parameters train, move and save.

    A context ``c`` of shape ``batch + context_event_shape`` (its last
    ``context_event_dim`` dimensions are one context) gives a distribution
    with batch shape ``batch``.

    Arguments:
        flow: the nflows flow.
        context_event_dim: the number of trailing dimensions of one context.
        data_shape: the event shape of the data, when the nflows transform
            changes shape (the base's shape otherwise).

    Example:
        >>> from nflows.distributions import StandardNormal
        >>> from nflows.flows import Flow as NFlow
        >>> from nflows.transforms import MaskedAffineAutoregressiveTransform
        >>> g = MaskedAffineAutoregressiveTransform(features=2, hidden_features=8)
        >>> nflow = NFlow(g, StandardNormal([2]))
        >>> module = from_nflows_flow(nflow)
        >>> x = torch.randn(6, 2)
        >>> bool(torch.allclose(module().log_prob(x), nflow.log_prob(x), atol=1e-5))
        True
    """

    def __init__(
        self, flow: _NflowsFlow, context_event_dim: int = 1, data_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        if not isinstance(flow, _NflowsFlow):
            raise TypeError(f"from_nflows_flow: expected an nflows.flows.Flow, got {type(flow).__name__}")
        self.nflows = flow
        self.context_event_dim = int(context_event_dim)
        self.base = NflowsBase(flow._distribution, reference=flow, register=False)
        base_shape = self.base.shape
        self.data_shape = base_shape if data_shape is None else Size(data_shape)

    def _embed(self, c: Tensor | None) -> tuple[Tensor | None, int]:
        if c is None:
            return None, self.context_event_dim  # nflows' default embedding (Identity) maps None to None
        if not isinstance(c, Tensor):
            raise TypeError(f"NflowsFlow: context `c` must be a tensor or None, got {type(c).__name__}")
        batch = _batch_of(c, self.context_event_dim, "c", "NflowsFlow")
        e = self.nflows._embedding_net(c.reshape((-1,) + c.shape[len(batch) :]))
        return e.reshape(batch + e.shape[1:]), e.dim() - 1

    def forward(self, c: Tensor | None = None) -> Flow:
        e, e_dim = self._embed(c)
        shapes = (self.base.shape, self.data_shape) if self.data_shape != self.base.shape else None
        f = FromNflows(
            self.nflows._transform, e, len(self.data_shape), context_event_dim=e_dim, shapes=shapes
        )
        return Flow(self.base(e, e_dim), [f])


def from_nflows_flow(
    flow: _NflowsFlow, context_event_dim: int = 1, data_shape: Sequence[int] | None = None
) -> NflowsFlow:
    r"""Wrap an nflows ``Flow`` as a gendist module returning :class:`~gendist.Flow` distributions.

    See :class:`NflowsFlow` for the arguments.
    """
    return NflowsFlow(flow, context_event_dim, data_shape)


class ToNflows(_NflowsTransform):
    r"""A gendist transform as an nflows ``Transform`` (``forward``: data :math:`\to` noise).

    With :math:`f` the gendist transform (base :math:`\to` data),
    ``forward(x, context)`` returns :math:`(f^{-1}(x), -\log |\det J_f(f^{-1}(x))|)`
    and ``inverse(z, context)`` returns :math:`(f(z), \log |\det J_f(z)|)`,
    each log-determinant summed to one value per row as nflows expects.

    ``transform`` is either a fixed torch/gendist transform (the context is
    ignored, as nflows' own unconditional transforms do), a
    :class:`~gendist.LazyTransform` module (called with the context on every
    call) or a Pyro ``ConditionalTransform`` (conditioned on the context).
    Modules are registered as submodules, so their parameters train inside
    an nflows ``Flow``.

    Arguments:
        transform: the gendist transform or module.

    Example:
        >>> from gendist.transforms import MonotonicAffine
        >>> g = to_nflows(MonotonicAffine(torch.tensor(1.0), torch.tensor(2.0).log()))
        >>> z, logabsdet = g(torch.ones(4, 3))  # z = (x - 1) / 2
        >>> z[0], logabsdet
        (tensor([0., 0., 0.]), tensor([-2.0794, -2.0794, -2.0794, -2.0794]))
    """

    def __init__(self, transform: _TorchTransform | LazyTransform | ConditionalTransform) -> None:
        super().__init__()
        if not isinstance(transform, (_TorchTransform, LazyTransform, ConditionalTransform)):
            raise TypeError(
                "to_nflows: expected a torch/gendist Transform, a gendist LazyTransform or a Pyro "
                f"ConditionalTransform, got {type(transform).__name__}"
            )
        self.transform = transform  # registered as a submodule when it is a module
        if isinstance(transform, FromNflows) and not isinstance(transform, nn.Module):
            self.wrapped = transform.nflows  # register the wrapped nflows parameters

    def _resolve(self, context: Tensor | None) -> _TorchTransform:
        t = self.transform
        if isinstance(t, LazyTransform):
            return t(context)
        if isinstance(t, ConditionalTransform):
            if context is None:
                raise ValueError(f"ToNflows: the conditional {type(t).__name__} needs a context")
            return t.condition(context)
        return t

    @staticmethod
    def _per_row(ladj: Tensor, n: int) -> Tensor:
        ladj = _sum_rightmost(ladj, max(ladj.dim() - 1, 0))
        return ladj.expand(n)

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, ladj = inv_and_ladj(self._resolve(context), inputs)
        return z, -self._per_row(ladj, inputs.shape[0])

    def inverse(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, ladj = call_and_ladj(self._resolve(context), inputs)
        return x, self._per_row(ladj, inputs.shape[0])


def to_nflows(transform: _TorchTransform | LazyTransform | ConditionalTransform) -> ToNflows:
    r"""Wrap a gendist transform (base :math:`\to` data) as an nflows transform (data :math:`\to` noise).

    See :class:`ToNflows`.

    Example:
        >>> from nflows.distributions import StandardNormal
        >>> from nflows.flows import Flow as NFlow
        >>> from gendist.flows import MaskedAutoregressive
        >>> nflow = NFlow(to_nflows(MaskedAutoregressive(3)), StandardNormal([3]))
        >>> nflow.log_prob(torch.randn(4, 3)).shape
        torch.Size([4])
    """
    return ToNflows(transform)

