r"""Bijections as :class:`torch.distributions.Transform` objects with fused value-and-log-det paths."""

from gendist.transforms.autoregressive import Autoregressive, Coupling
from gendist.transforms.base import Compose, Inverse, Transform, call_and_ladj, inv_and_ladj
from gendist.transforms.elementwise import LeakyReLU, Logit, MonotonicAffine, Sigmoid, Softplus
from gendist.transforms.linear import LULinear, Permutation
from gendist.transforms.spline import MonotonicRQSpline
from gendist.transforms.support import ToSupport
from gendist.transforms.vi import Planar, Radial, Sylvester, bisect_tanh

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
    "Planar",
    "Radial",
    "Sigmoid",
    "Softplus",
    "Sylvester",
    "ToSupport",
    "Transform",
    "bisect_tanh",
    "call_and_ladj",
    "inv_and_ladj",
]
