r"""Bijections as :class:`torch.distributions.Transform` objects with fused value-and-log-det paths."""

from gendist.transforms.autoregressive import Autoregressive, Coupling
from gendist.transforms.base import Compose, Inverse, Transform, call_and_ladj, inv_and_ladj
from gendist.transforms.elementwise import LeakyReLU, Logit, MonotonicAffine, Sigmoid, Softplus
from gendist.transforms.linear import LULinear, Permutation
from gendist.transforms.spline import MonotonicRQSpline

__all__ = [
    "Autoregressive",
    "Compose",
    "Coupling",
    "Inverse",
    "LULinear",
    "LeakyReLU",
    "Logit",
    "MonotonicAffine",
    "MonotonicRQSpline",
    "Permutation",
    "Sigmoid",
    "Softplus",
    "Transform",
    "call_and_ladj",
    "inv_and_ladj",
]
