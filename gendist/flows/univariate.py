r"""Elementwise transform families a conditioner can parametrize: affine, additive, spline.

A family knows how many parameters it needs per feature (``params``) and turns
a tensor of shape :math:`(*, D, P)` into an elementwise transform.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from gendist.transforms.base import Transform
from gendist.transforms.elementwise import MonotonicAffine
from gendist.transforms.spline import MonotonicRQSpline

__all__ = ["Univariate", "Affine", "Additive", "Spline", "as_univariate"]


class Univariate(abc.ABC):
    """A family of elementwise transforms, built from :attr:`params` numbers per feature."""

    params: int

    @abc.abstractmethod
    def __call__(self, p: Tensor) -> Transform: ...


class Affine(Univariate):
    r"""Affine :math:`y = x e^{s} + m`, with :math:`s = a \tanh(\tilde s / a)` soft-clamped to :math:`(-a, a)`."""

    params = 2

    def __init__(self, max_log_scale: float = 3.0) -> None:
        self.max_log_scale = float(max_log_scale)

    def __call__(self, p: Tensor) -> Transform:
        a = self.max_log_scale
        shift, raw = p.unbind(-1)
        # a tanh(s / a) written as 2a sigmoid(2s / a) - a: the same map, and sigmoid is ~3x cheaper
        return MonotonicAffine(shift, torch.sigmoid(raw * (2 / a)) * (2 * a) - a)

    def __repr__(self) -> str:
        return f"Affine(max_log_scale={self.max_log_scale})"


class Additive(Univariate):
    r"""Additive :math:`y = x + m`, volume preserving (NICE)."""

    params = 1

    def __call__(self, p: Tensor) -> Transform:
        return MonotonicAffine(p[..., 0])

    def __repr__(self) -> str:
        return "Additive()"


class Spline(Univariate):
    r"""Monotone rational-quadratic spline with ``bins`` bins on ``[-bound, bound]`` and identity tails."""

    def __init__(self, bins: int = 8, bound: float = 5.0) -> None:
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        self.bins = int(bins)
        self.bound = float(bound)
        self.params = 3 * self.bins - 1

    def __call__(self, p: Tensor) -> Transform:
        return MonotonicRQSpline.from_params(p, bound=self.bound)

    def __repr__(self) -> str:
        return f"Spline(bins={self.bins}, bound={self.bound})"


def as_univariate(spec: str | Univariate, **kwargs: float) -> Univariate:
    r"""Return a family from its name (``"affine"``, ``"additive"``, ``"spline"``) or pass one through."""
    if isinstance(spec, Univariate):
        return spec
    names = {"affine": Affine, "additive": Additive, "spline": Spline}
    if spec not in names:
        raise ValueError(f"univariate must be one of {sorted(names)} or a Univariate, got {spec!r}")
    return names[spec](**kwargs)
