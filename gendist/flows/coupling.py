r"""Coupling flows: NICE (additive), RealNVP (affine) and coupling spline layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import BoolTensor, Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.transforms import Transform as _TorchTransform

from gendist.distributions.lazy import LazyDistribution, LazyTransform
from gendist.flows.core import FlowModule
from gendist.flows.elementwise import Elementwise
from gendist.flows.univariate import Univariate, as_univariate
from gendist.nn.mlp import MLP
from gendist.transforms.autoregressive import Coupling

__all__ = ["CouplingLayer", "alternating_masks", "NICE", "RealNVP"]


class CouplingLayer(LazyTransform):
    r"""A coupling transform: features where ``mask`` is True condition the others.

    :math:`x_b = f(z_b; \theta(z_a, c))`, :math:`x_a = z_a`; both directions
    cost one conditioner (MLP) pass.

    Arguments:
        features: the number of features :math:`D`.
        mask: a boolean tensor of shape :math:`(D,)`; True marks the conditioning part :math:`a`.
        context: the context size (0 for none).
        univariate: the elementwise family applied to part :math:`b`.
        hidden: the conditioner's hidden sizes.
        activation: the conditioner's activation class.
    """

    def __init__(
        self,
        features: int,
        mask: BoolTensor,
        context: int = 0,
        univariate: str | Univariate = "affine",
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.shape != (features,):
            raise ValueError(f"mask must have shape ({features},), got {tuple(mask.shape)}")
        if mask.all() or not mask.any():
            raise ValueError("mask must mark at least one conditioning and one transformed feature")
        self.univariate = as_univariate(univariate)
        self.register_buffer("idx_a", mask.nonzero().squeeze(-1))
        self.register_buffer("idx_b", (~mask).nonzero().squeeze(-1))
        nb, P = len(self.idx_b), self.univariate.params
        self.net = MLP(len(self.idx_a), nb * P, hidden, context, activation)
        self._shape = (nb, P)

    def forward(self, c: Tensor | None = None) -> _TorchTransform:
        return Coupling(_CouplingConditioner(self.univariate, self.net, self._shape, c), self.idx_a, self.idx_b)


class _CouplingConditioner:
    r"""The conditioner of :class:`CouplingLayer` at a context: ``meta(x_a)``, the elementwise transform of
    :math:`x_b` with the network's parameters at :math:`x_a`.

    A module-level class rather than a closure, so the transforms (and flows) holding it pickle.
    """

    def __init__(self, univariate: Univariate, net: MLP, shape: tuple[int, int], c: Tensor | None) -> None:
        self.univariate, self.net, self.shape, self.c = univariate, net, shape, c

    def __call__(self, xa: Tensor) -> _TorchTransform:
        return self.univariate(self.net(xa, self.c).unflatten(-1, self.shape))


def alternating_masks(features: int, transforms: int) -> list[Tensor]:
    r"""Masks that alternate between even and odd features (for :math:`D \ge 2`)."""
    if features < 2:
        raise ValueError(f"coupling flows need features >= 2, got {features}")
    even = torch.arange(features) % 2 == 0
    return [even if i % 2 == 0 else ~even for i in range(transforms)]


def _coupling_stack(
    features: int,
    context: int,
    transforms: int,
    masks: Sequence[Tensor] | None,
    univariate: str | Univariate,
    hidden: Sequence[int],
    activation: type[nn.Module],
) -> list[LazyTransform]:
    masks = alternating_masks(features, transforms) if masks is None else list(masks)
    return [CouplingLayer(features, m, context, univariate, hidden, activation) for m in masks]


class RealNVP(FlowModule):
    r"""Real-valued non-volume preserving flow (Dinh et al., 2017): affine coupling layers.

    Both ``log_prob`` and sampling cost one conditioner pass per layer.

    Arguments:
        features: the data dimension :math:`D \ge 2`.
        context: the context size (0 for none).
        transforms: the number of coupling layers (ignored when ``masks`` is given).
        hidden: the conditioners' hidden sizes.
        base: the base distribution (standard normal by default).
        support: an optional data constraint.
        masks: user-chosen boolean masks, one per layer; alternating by default.

    Example:
        >>> flow = RealNVP(4, context=1)
        >>> flow(torch.zeros(1)).rsample_and_log_prob((3,))[1].shape
        torch.Size([3])

    References:
        | Density estimation using Real NVP (Dinh et al., 2017)
        | https://arxiv.org/abs/1605.08803
    """

    univariate: str | Univariate = "affine"

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 5,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        masks: Sequence[Tensor] | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers = _coupling_stack(
            features, context, transforms, masks, self.univariate, hidden, activation
        )
        super().__init__(layers, features, context, base, support)


class NICE(FlowModule):
    r"""Non-linear independent components estimation (Dinh et al., 2015).

    Additive (volume-preserving) coupling layers followed by a learned
    diagonal scaling, as in the paper.

    Arguments: as :class:`RealNVP`.

    References:
        | NICE: Non-linear Independent Components Estimation (Dinh et al., 2015)
        | https://arxiv.org/abs/1410.8516
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 4,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        masks: Sequence[Tensor] | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers = _coupling_stack(
            features, context, transforms, masks, "additive", hidden, activation
        )
        # the scaling acts on the data side, after the couplings
        layers.append(Elementwise(features, context, "affine"))
        super().__init__(layers, features, context, base, support)
