r"""Linear bijections: permutations and LU-decomposed invertible matrices."""

from __future__ import annotations

import torch
from torch import LongTensor, Tensor
from torch.distributions import constraints

from gendist.transforms.base import Transform

__all__ = ["Permutation", "LULinear"]


class Permutation(Transform):
    r"""Feature permutation :math:`y = x_{\pi}`; volume preserving.

    Arguments:
        order: the permutation :math:`\pi` as a long tensor of shape :math:`(D,)`.

    Example:
        >>> t = Permutation(torch.tensor([2, 0, 1]))
        >>> t(torch.tensor([10.0, 11.0, 12.0]))
        tensor([12., 10., 11.])
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    volume_preserving = True

    def __init__(self, order: LongTensor) -> None:
        super().__init__()
        self.order = order
        self.inverse_order = torch.argsort(order)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.index_select(-1, self.order), x.new_zeros(x.shape[:-1])

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y.index_select(-1, self.inverse_order), y.new_zeros(y.shape[:-1])

    def __repr__(self) -> str:
        return f"Permutation({self.order.tolist()})"


class LULinear(Transform):
    r"""Invertible linear map :math:`y = L U x + b` with unit-lower :math:`L`, upper :math:`U`.

    :math:`\log |\det| = \sum_i \log |U_{ii}|`, computed without a
    determinant; the inverse uses two triangular solves.

    Arguments:
        lower: a matrix whose strictly lower triangle is :math:`L`'s, shape :math:`(D, D)`.
        upper: a matrix whose upper triangle (diagonal included) is :math:`U`'s.
        bias: the offset :math:`b`, shape :math:`(D,)`.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, lower: Tensor, upper: Tensor, bias: Tensor) -> None:
        super().__init__()
        eye = torch.eye(lower.shape[-1], dtype=lower.dtype, device=lower.device)
        self.L = lower.tril(-1) + eye
        self.U = upper.triu()
        self.bias = bias
        self.ladj = torch.log(torch.abs(torch.diagonal(self.U, dim1=-2, dim2=-1))).sum(-1)

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = (x @ self.U.mT) @ self.L.mT + self.bias
        return y, self.ladj.expand(y.shape[:-1])

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        shape = y.shape
        z = (y - self.bias).reshape(-1, shape[-1])
        # x U^T L^T = z: solve against L^T (upper, unit diagonal), then U^T (lower)
        z = torch.linalg.solve_triangular(self.L.mT, z, upper=True, left=False, unitriangular=True)
        x = torch.linalg.solve_triangular(self.U.mT, z, upper=False, left=False)
        return x.reshape(shape), self.ladj.expand(shape[:-1])
