r"""Linear layers: fixed permutations and a learned LU-decomposed matrix."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist.distributions.lazy import LazyTransform
from gendist.transforms.linear import LULinear, Permutation

__all__ = ["Permute", "Reverse", "RandomPermutation", "LU"]


class Permute(LazyTransform):
    r"""A fixed feature permutation, stored as a buffer.

    Arguments:
        order: the permutation, a sequence of the integers :math:`0..D-1`.
    """

    def __init__(self, order: Tensor) -> None:
        super().__init__()
        order = torch.as_tensor(order, dtype=torch.long)
        if sorted(order.tolist()) != list(range(len(order))):
            raise ValueError(f"order must be a permutation of 0..{len(order) - 1}, got {order.tolist()}")
        self.register_buffer("order", order)

    def forward(self, c: Tensor | None = None) -> Permutation:
        return Permutation(self.order)


class Reverse(Permute):
    r"""Reverse the order of the features."""

    def __init__(self, features: int) -> None:
        super().__init__(torch.arange(features).flip(0))


class RandomPermutation(Permute):
    r"""A random permutation drawn once, from ``seed``, and stored (so it survives ``state_dict``)."""

    def __init__(self, features: int, seed: int | None = None) -> None:
        g = torch.Generator()
        g.manual_seed(seed) if seed is not None else g.seed()
        super().__init__(torch.randperm(features, generator=g))


class LU(LazyTransform):
    r"""A learned invertible linear map :math:`x = L U z + b` (Kingma & Dhariwal, 2018).

    :math:`L` is unit lower triangular, :math:`U` upper triangular with
    diagonal :math:`\mathrm{softplus}(\cdot)`-positive, initialized at the identity.

    References:
        | Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma & Dhariwal, 2018)
        | https://arxiv.org/abs/1807.03039
    """

    _eps = 1e-5
    _shift = math.log(math.expm1(1 - _eps))  # the diagonal starts at exactly 1

    def __init__(self, features: int) -> None:
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(features, features))
        self.upper = nn.Parameter(torch.zeros(features, features))
        self.diag = nn.Parameter(torch.zeros(features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, c: Tensor | None = None) -> LULinear:
        d = F.softplus(self.diag + self._shift) + self._eps
        upper = self.upper.triu(1) + torch.diag_embed(d)
        return LULinear(self.lower, upper, self.bias)
