r"""Masked autoregressive flows: MAF, IAF and the autoregressive neural spline flow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.transforms import Transform as _TorchTransform

from gendist.distributions.lazy import LazyDistribution, LazyTransform
from gendist.flows.core import FlowModule
from gendist.flows.univariate import Univariate, as_univariate
from gendist.nn.mlp import MaskedMLP
from gendist.transforms.autoregressive import Autoregressive

__all__ = ["MaskedAutoregressive", "MAF", "IAF", "orders"]

Fast = Literal["log_prob", "sample"]


class MaskedAutoregressive(LazyTransform):
    r"""An autoregressive transform whose conditioner is a MADE.

    ``fast`` picks the orientation:

    - ``"log_prob"`` (MAF): the data-to-base direction :math:`z_i = f(x_i; \theta(x_{<i}))`
      is one MADE pass, so ``log_prob`` costs one pass per layer and sampling
      costs :math:`D` passes;
    - ``"sample"`` (IAF): the base-to-data direction :math:`x_i = f(z_i; \theta(z_{<i}))`
      is one pass, so sampling and ``rsample_and_log_prob`` cost one pass and
      ``log_prob`` of arbitrary data costs :math:`D` passes.

    Arguments:
        features: the number of features :math:`D`.
        context: the context size (0 for none).
        univariate: the elementwise family (``"affine"``, ``"additive"``,
            ``"spline"`` or a :class:`~gendist.flows.univariate.Univariate`).
        fast: the fast direction, ``"log_prob"`` or ``"sample"``.
        hidden: the MADE's hidden sizes.
        order: the autoregressive order (rank of each feature); natural by default.
        activation: the MADE's activation class.
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        univariate: str | Univariate = "affine",
        fast: Fast = "log_prob",
        hidden: Sequence[int] = (64, 64),
        order: Tensor | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if fast not in ("log_prob", "sample"):
            raise ValueError(f"fast must be 'log_prob' (MAF) or 'sample' (IAF), got {fast!r}")
        self.univariate = as_univariate(univariate)
        self.fast = fast
        self.features = features
        self.made = MaskedMLP(features, self.univariate.params, hidden, context, order, activation)
        self._sequence = torch.argsort(self.made.order).tolist()  # features by rank

    def forward(self, c: Tensor | None = None) -> _TorchTransform:
        meta = _MADEConditioner(self.univariate, self.made, c)
        t = Autoregressive(meta, self.features, meta.step, self._sequence)
        return t.inv if self.fast == "log_prob" else t


class _MADEConditioner:
    r"""The conditioner of :class:`MaskedAutoregressive` at a context: ``meta(x)``, the elementwise transform
    with the MADE's parameters at ``x``, and ``meta.step(x, i)``, feature ``i``'s alone.

    A module-level class rather than a closure, so the transforms (and flows) holding it pickle.
    """

    def __init__(self, univariate: Univariate, made: MaskedMLP, c: Tensor | None) -> None:
        self.univariate, self.made, self.c = univariate, made, c

    def __call__(self, x: Tensor) -> _TorchTransform:
        return self.univariate(self.made(x, self.c))

    def step(self, x: Tensor, i: int) -> _TorchTransform:
        return self.univariate(self.made.feature(x, self.c, i))


def orders(features: int, transforms: int, randperm: bool = False, seed: int = 0) -> list[Tensor]:
    r"""Autoregressive orders for a stack: alternating natural/reversed, or seeded random permutations."""
    if randperm:
        g = torch.Generator().manual_seed(seed)
        return [torch.randperm(features, generator=g) for _ in range(transforms)]
    natural = torch.arange(features)
    return [natural if i % 2 == 0 else natural.flip(0) for i in range(transforms)]


class MAF(FlowModule):
    r"""Masked autoregressive flow (Papamakarios et al., 2017).

    A stack of :class:`MaskedAutoregressive` layers with alternating (or
    random) orders. Default orientation ``fast="log_prob"``: ``log_prob``
    is one MADE pass per layer; ``sample`` is :math:`D` passes per layer.

    Arguments:
        features: the data dimension :math:`D`.
        context: the context size (0 for none).
        transforms: the number of layers.
        hidden: each MADE's hidden sizes.
        base: the base distribution (standard normal by default).
        support: an optional data constraint, see :class:`~gendist.flows.FlowModule`.
        randperm: random orders instead of alternating ones.
        fast: ``"log_prob"`` (MAF) or ``"sample"`` (IAF).
        univariate: the elementwise family, affine by default.
        seed: the seed of the random orders.

    Example:
        >>> flow = MAF(2, transforms=2)
        >>> flow().log_prob(torch.randn(4, 2)).shape
        torch.Size([4])

    References:
        | Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017)
        | https://arxiv.org/abs/1705.07057
    """

    def __init__(
        self,
        features: int,
        context: int = 0,
        transforms: int = 5,
        hidden: Sequence[int] = (64, 64),
        base: LazyDistribution | Distribution | None = None,
        support: constraints.Constraint | None = None,
        randperm: bool = False,
        fast: Fast = "log_prob",
        univariate: str | Univariate = "affine",
        seed: int = 0,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        layers = [
            MaskedAutoregressive(features, context, univariate, fast, hidden, order, activation)
            for order in orders(features, transforms, randperm, seed)
        ]
        super().__init__(layers, features, context, base, support)


class IAF(MAF):
    r"""Inverse autoregressive flow (Kingma et al., 2016): a :class:`MAF` with ``fast="sample"``.

    Sampling and ``rsample_and_log_prob`` cost one MADE pass per layer (the
    right choice for a variational guide); ``log_prob`` of data not drawn
    from it costs :math:`D` passes per layer.

    References:
        | Improving Variational Inference with Inverse Autoregressive Flow (Kingma et al., 2016)
        | https://arxiv.org/abs/1606.04934
    """

    def __init__(self, features: int, context: int = 0, **kwargs) -> None:
        kwargs.setdefault("fast", "sample")
        super().__init__(features, context, **kwargs)

