r"""gendist: deep generative models as composable, Pyro-native torch distributions.

Importing gendist changes no global state (argument validation, default dtype,
RNG) of torch or Pyro.
"""

from gendist import data, distributions, flows, nn, transforms
from gendist.distributions import Flow, LazyDistribution, LazyTransform

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "LazyDistribution",
    "LazyTransform",
    "data",
    "distributions",
    "flows",
    "nn",
    "transforms",
]
