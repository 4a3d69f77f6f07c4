r"""Normalizing flows as modules: ``flow(context)`` returns a :class:`~gendist.Flow` distribution."""

from gendist.flows.autoregressive import IAF, MAF, MaskedAutoregressive, orders
from gendist.flows.core import FlowModule, Unconditional
from gendist.flows.coupling import NICE, CouplingLayer, RealNVP, alternating_masks
from gendist.flows.elementwise import Elementwise
from gendist.flows.linear import LU, Permute, RandomPermutation, Reverse
from gendist.flows.normalization import ActNorm, BatchNorm, Standardize
from gendist.flows.spline import NSF
from gendist.flows.univariate import Additive, Affine, Spline, Univariate
from gendist.flows.vi import PlanarFlow, PlanarLayer, RadialFlow, RadialLayer, SylvesterFlow, SylvesterLayer

__all__ = [
    "IAF",
    "LU",
    "MAF",
    "NICE",
    "NSF",
    "ActNorm",
    "Additive",
    "Affine",
    "BatchNorm",
    "CouplingLayer",
    "Elementwise",
    "FlowModule",
    "MaskedAutoregressive",
    "Permute",
    "PlanarFlow",
    "PlanarLayer",
    "RadialFlow",
    "RadialLayer",
    "RandomPermutation",
    "RealNVP",
    "Reverse",
    "Spline",
    "Standardize",
    "SylvesterFlow",
    "SylvesterLayer",
    "Unconditional",
    "Univariate",
    "alternating_masks",
    "orders",
]
