r"""The flow module: lazy transforms and a base, assembled into a :class:`~gendist.Flow`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.transforms import Transform as _TorchTransform

from gendist._checks import check_context, check_sizes
from gendist._recipes import Recorded
from gendist.distributions.bases import as_base
from gendist.distributions.flow import Flow
from gendist.distributions.lazy import LazyDistribution, LazyTransform
from gendist.transforms.support import ToSupport

__all__ = ["FlowModule", "Unconditional"]


class Unconditional(LazyTransform):
    r"""Wrap a fixed (parameter-free) transform so it can sit in a flow's list."""

    def __init__(self, transform: _TorchTransform) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, c: Tensor | None = None) -> _TorchTransform:
        return self.transform


class FlowModule(Recorded, LazyDistribution):
    r"""A normalizing flow as a module: ``flow(c)`` returns a :class:`~gendist.Flow`.

    Arguments:
        transforms: lazy transforms (or fixed transforms) from the base space
            to the data space, applied in order.
        features: the data dimension :math:`D`.
        context: the context size (0 for an unconditional flow).
        base: the base distribution: None for a standard normal, a
            :class:`~gendist.distributions.LazyDistribution` module, or any
            torch/Pyro distribution over vectors of size :math:`D`.
        support: an optional constraint on the data (``constraints.positive``,
            ``constraints.interval(a, b)``, ...); the flow ends with
            ``biject_to(support)`` so its samples and density live there.

    Set ``validate_args`` (an attribute, None by default: torch's global
    default) to make every distribution it builds validate its arguments.

    Example:
        >>> from gendist.flows import MAF
        >>> flow = MAF(3, context=2)
        >>> d = flow(torch.randn(5, 2))
        >>> d.sample().shape, d.batch_shape
        (torch.Size([5, 3]), torch.Size([5]))
    """

    validate_args: bool | None = None
    _records = False  # recipes (subclasses) record their arguments; a hand-made stack has no config

    def __init__(
        self,
        transforms: Sequence[LazyTransform | _TorchTransform],
        features: int,
        context: int = 0,
        base: LazyDistribution | torch.distributions.Distribution | None = None,
        support: constraints.Constraint | None = None,
    ) -> None:
        super().__init__()
        check_sizes(features, context)
        self.features = int(features)
        self.context = int(context)
        self.transforms = nn.ModuleList(
            t if isinstance(t, nn.Module) else Unconditional(t) for t in transforms
        )
        self.base = as_base(base, features)
        self.support = support
        if support is not None:
            if not isinstance(support, constraints.Constraint):
                raise TypeError(f"support must be a torch constraint, got {type(support).__name__}")
            self._bijector = ToSupport(support)

    def _dtype(self) -> torch.dtype | None:
        for t in self.parameters():
            return t.dtype
        for t in self.buffers():
            if t.dtype.is_floating_point:
                return t.dtype
        return None

    def forward(self, c: Tensor | None = None) -> Flow:
        dtype = self._dtype()
        check_context(c, self.context, type(self).__name__, dtype)
        transforms = [t(c) for t in self.transforms]
        if self.support is not None:
            transforms.append(self._bijector)
        flow = Flow(self.base(c), transforms, validate_args=self.validate_args)
        flow.dtype = dtype
        return flow
